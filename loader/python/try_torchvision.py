#!/usr/bin/env python3
"""'Models you have not seen': export full-width torchvision models and check Kestrel.

For each model (random init, BatchNorm randomised), each input size (224x224 and 160x256)
and batch 1 and 2, this exports the model and a reference with every layer into a temp
folder, runs ``KESTREL compare MODEL REF --per-layer`` and prints a table.  --models takes
any torchvision classifier or segmenter (whose {"out", "aux"} become two outputs).  Each
model's files are deleted after its check.  Without the Kestrel binary (or with --python-check) the JSON
is re-run by kestrel_check.py instead, which checks the exporter on its own.

    python3 loader/python/try_torchvision.py [--kestrel target/release/kestrel] [--models a,b]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kestrel_check  # noqa: E402
from kestrel_export import ExportError, TracedModel, randomize_bn  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = {
    "resnet18": {}, "resnet50": {}, "mobilenet_v2": {}, "vgg11_bn": {}, "densenet121": {},
    "squeezenet1_1": {}, "resnext50_32x4d": {}, "mnasnet0_5": {}, "regnet_x_400mf": {},
    "alexnet": {},
    "googlenet": {"aux_logits": False, "transform_input": False, "init_weights": True},
}
# constructor arguments for models named with --models that are not in MODELS
KWARGS = {
    "inception_v3": {"aux_logits": False, "transform_input": False, "init_weights": True},
    # segmenters: no ImageNet backbone download; fcn and deeplabv3 also return "aux"
    **{f"{a}_{b}": {"weights_backbone": None, "aux_loss": True}
       for a in ("fcn", "deeplabv3") for b in ("resnet50", "resnet101")},
    "deeplabv3_mobilenet_v3_large": {"weights_backbone": None, "aux_loss": True},
    "lraspp_mobilenet_v3_large": {"weights_backbone": None},
}


def build(name):
    """torchvision classifier or segmenter ``name`` at random weights."""
    kw = MODELS.get(name, KWARGS.get(name, {}))
    fn = getattr(torchvision.models, name, None) or getattr(torchvision.models.segmentation, name)
    return fn(weights=None, **kw)
SIZES = [(224, 224), (160, 256)]
NUM = r"([0-9.]+(?:[eE][-+]?[0-9]+)?|nan|inf)"


def max_rel(text):
    """Largest max relative error in Kestrel's output (None when none is found). Reads
    'max rel err: X' and tables whose header has a 'max rel err' column (rows are matched
    from the right, since a shape column like '[3, 10]' holds spaces)."""
    vals = [float(v) for v in re.findall(r"max[ _]rel(?:ative)?[ _]?err(?:or)?\s*[:=]?\s*" + NUM,
                                         text, re.I)]
    after = None  # numeric columns right of 'max rel err' in the current table
    for line in text.splitlines():
        if re.search(r"max rel err\s*$|max rel err\s{2,}", line, re.I):
            after = len(re.split(r"\s{2,}", line.lower().split("max rel err", 1)[1].strip())) \
                if line.lower().split("max rel err", 1)[1].strip() else 0
            continue
        if after is None or not line.strip():
            after = None
            continue
        nums = [t for t in line.split() if re.fullmatch(NUM, t, re.I)]
        if len(nums) > after:
            vals.append(float(nums[-1 - after]))
    return max(vals) if vals else None


def run_kestrel(kestrel, model, ref, device):
    cmd = [kestrel, "compare", model, ref, "--per-layer"] + (["--device", device] if device else [])
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return "TIMEOUT", None, ""
    result = {0: "pass", 1: "OVER", 2: "ERROR"}.get(p.returncode, f"CRASH({p.returncode})")
    out = p.stdout + p.stderr
    return result, max_rel(out), out


def run_python(model, ref, rtol=1e-5, local=False):
    ok, worst, lines = kestrel_check.compare(model, ref, rtol=rtol, local=local)
    return ("pass" if ok else "OVER"), worst, "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kestrel", default=os.environ.get(
        "KESTREL", os.path.join(ROOT, "target", "release", "kestrel")))
    p.add_argument("--device", help="passed to kestrel compare --device")
    p.add_argument("--models", help="comma-separated torchvision model names (default: "
                   + ",".join(MODELS) + ")")
    p.add_argument("--sizes", default="224x224,160x256", help="HxW list")
    p.add_argument("--batches", default="1,2")
    p.add_argument("--python-check", action="store_true",
                   help="also re-run each file with kestrel_check.py (the JSON oracle)")
    p.add_argument("--export-only", action="store_true", help="stop after the exports")
    p.add_argument("--rtol", type=float, default=1e-5, help="kestrel_check.py tolerance")
    p.add_argument("--bn-perturb", type=float, default=1.0,
                   help="randomize_bn's perturb: below 1 keeps deep squeeze-excite nets from "
                        "saturating their gates (their random logits reach thousands at 1)")
    p.add_argument("--local", action="store_true",
                   help="kestrel_check.py runs each node on the reference values of its inputs")
    p.add_argument("--tmp", help="work folder (default: a fresh temp folder)")
    p.add_argument("-v", "--verbose", action="store_true", help="print Kestrel's output")
    a = p.parse_args()

    names = a.models.split(",") if a.models else list(MODELS)
    sizes = [tuple(int(v) for v in s.split("x")) for s in a.sizes.split(",")]
    batches = [int(b) for b in a.batches.split(",")]
    have_kestrel = os.path.isfile(a.kestrel) and os.access(a.kestrel, os.X_OK)
    if not have_kestrel and not a.export_only:
        print(f"note: no Kestrel binary at {a.kestrel}; checking with kestrel_check.py only")
    torch.backends.cudnn.allow_tf32 = False
    work = a.tmp or tempfile.mkdtemp(prefix="kestrel_tv_")
    os.makedirs(work, exist_ok=True)
    rows, ops_seen, failed = [], {}, False
    try:
        for name in names:
            torch.manual_seed(0)
            model = build(name).eval()
            calib = torch.randn(2, 3, *sizes[0], generator=torch.Generator().manual_seed(1))
            randomize_bn(model, 0, calibrate=calib, perturb=a.bn_perturb)
            for h, w in sizes:
                gen = torch.Generator().manual_seed(h * 1000 + w)
                t0 = time.time()
                x = torch.randn(max(batches), 3, h, w, generator=gen)
                path = os.path.join(work, f"{name}_{h}x{w}.safetensors")
                try:
                    tm = TracedModel(model, x[:1])
                    tm.save(path)
                except ExportError as e:
                    print(f"SKIP {name} {h}x{w}: {e}")
                    rows.append((name, f"{h}x{w}", "-", "skipped", None, time.time() - t0))
                    break
                ops_seen.setdefault(name, set()).update(tm.aten_ops())
                for b in batches:
                    ref = os.path.join(work, f"{name}_{h}x{w}_b{b}.ref.safetensors")
                    out = tm.reference(x[:b], ref, intermediates=True)
                    mag = max(o.abs().max().item() for o in out)
                    results = []
                    if have_kestrel and not a.export_only:
                        res, rel, text = run_kestrel(a.kestrel, path, ref, a.device)
                        results.append(("kestrel", res, rel))
                        if a.verbose or res != "pass":
                            print(text.rstrip())
                    if a.python_check or (not have_kestrel and not a.export_only):
                        res, rel, text = run_python(path, ref, a.rtol, a.local)
                        results.append(("json-oracle", res, rel))
                        if res != "pass":
                            print(text)
                    if a.export_only:
                        results.append(("export", "ok", None))
                    mb = (os.path.getsize(path) + os.path.getsize(ref)) / 2**20
                    for tool, res, rel in results:
                        failed |= res not in ("pass", "ok")
                        rows.append((name, f"{h}x{w}", b, f"{tool}: {res}", rel,
                                     time.time() - t0))
                    print(f"{name:16s} {h}x{w} b{b}: {', '.join(f'{t} {r}' for t, r, _ in results)}"
                          f"  (|out| {mag:.3g}, files {mb:.0f} MB, {time.time() - t0:.0f} s)",
                          flush=True)
                    os.remove(ref)
                os.remove(path)
    finally:
        if not a.tmp:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'model':16s} {'input':8s} {'batch':5s} {'result':22s} {'max rel err':>11s}")
    for name, size, b, res, rel, _ in rows:
        print(f"{name:16s} {size:8s} {str(b):5s} {res:22s} "
              f"{'-' if rel is None else f'{rel:.2e}':>11s}")
    print("\nATen ops per model:")
    for name, ops in ops_seen.items():
        short = sorted(o.replace("aten.", "") for o in ops)
        print(f"  {name}: {', '.join(short)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
