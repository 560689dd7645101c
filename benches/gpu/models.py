#!/usr/bin/env python3
"""The GPU check's models, built as side_by_side.py builds them, and their exports.

The four models of docs/anchors/torch_gpu_anchors.py: the CIFAR net ("seednet", the
fixture's CifarNet, 3x32x32) and torchvision resnet18, mobilenet_v2, resnet50 (3x224x224).
Random init seeded with 0, BatchNorm randomised and calibrated with
kestrel_export.randomize_bn, float32: the same weights side_by_side.py times on the CPU.

    python3 models.py export --models seednet,resnet18 --out DIR [--batches 1,32]

writes DIR/NAME.safetensors (kestrel_export.TracedModel, dynamic batch) and, per batch B,
DIR/NAME.bB.ref.safetensors: `input` and PyTorch's `output`, fp32 with TF32 off, computed
on the GPU when there is one (else on the CPU). One JSON line per model on stdout, and with
--json the same as a list. torch_graphs.py imports build() and example_input() from here.
"""
import argparse
import json
import os
import sys
import time

import torch
import torchvision

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "loader", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
from kestrel_export import TracedModel, randomize_bn  # noqa: E402
from fixture_models import CifarNet  # noqa: E402

# name: input size (square, 3 channels). "cifarnet" is side_by_side.py's name for seednet.
MODELS = {"seednet": 32, "resnet18": 224, "mobilenet_v2": 224, "resnet50": 224}
ALIASES = {"cifarnet": "seednet"}


def canonical(name):
    name = ALIASES.get(name, name)
    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return name


def tf32_off():
    # cuDNN convolutions run in TF32 by default: fp32 references need it off.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def build(name):
    """Seeded model on the CPU in eval mode, BN randomised and calibrated (side_by_side's build)."""
    name = canonical(name)
    size = MODELS[name]
    torch.manual_seed(0)
    model = CifarNet() if name == "seednet" else getattr(torchvision.models, name)(weights=None)
    calib = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1))
    randomize_bn(model.eval(), 0, calibrate=calib)
    return model.eval()


def example_input(name, batch, seed=2):
    size = MODELS[canonical(name)]
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def reference_output(model, x, device):
    """PyTorch's fp32 output for x on `device` (TF32 off, no cuDNN autotuning)."""
    tf32_off()
    torch.backends.cudnn.benchmark = False
    m = model.to(device)
    with torch.inference_mode():
        y = m(x.to(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    model.to("cpu")
    return y.float().cpu()


def export(name, out, batches, ref_device):
    """Model file plus one reference per batch; returns a dict for the report."""
    from safetensors.torch import save_file

    name = canonical(name)
    t0 = time.perf_counter()
    model = build(name)
    kpath = os.path.join(out, f"{name}.safetensors")
    graph = TracedModel(model, example_input(name, 2)).save(kpath)
    res = {"model": name, "file": kpath, "nodes": len(graph["nodes"]),
           "export_s": round(time.perf_counter() - t0, 2), "ref_device": str(ref_device),
           "torch": torch.__version__, "refs": {}}
    for b in batches:
        x = example_input(name, b, seed=10 + b)
        y = reference_output(model, x, ref_device)
        rpath = os.path.join(out, f"{name}.b{b}.ref.safetensors")
        info = {"version": 1, "outputs": graph["outputs"], "torch": torch.__version__,
                "device": str(ref_device), "tf32": False}
        save_file({"input": x.contiguous(), "output": y.contiguous()}, rpath,
                  metadata={"kestrel.reference": json.dumps(info)})
        r = {"file": rpath, "max_abs_output": float(y.abs().max())}
        if ref_device.type == "cuda" and b == batches[0]:
            # The GPU reference against the CPU one: how far apart two correct fp32 runs are.
            c = reference_output(model, x, torch.device("cpu"))
            r["gpu_vs_cpu_max_abs"] = float((y - c).abs().max())
        res["refs"][str(b)] = r
    res["total_s"] = round(time.perf_counter() - t0, 2)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="write NAME.safetensors and NAME.bB.ref.safetensors")
    e.add_argument("--models", default=",".join(MODELS), help="comma list of: " + ",".join(MODELS))
    e.add_argument("--out", required=True, help="folder for the model and reference files")
    e.add_argument("--batches", default="1,32", help="reference batch sizes (default 1,32)")
    e.add_argument("--ref-device", default="auto", choices=["auto", "cuda", "cpu"],
                   help="where PyTorch computes the reference (auto: cuda if available)")
    e.add_argument("--json", help="also write the results as a JSON list here")
    a = p.parse_args(argv)

    names = [canonical(n) for n in a.models.split(",") if n]
    batches = [int(b) for b in a.batches.split(",") if b]
    if a.ref_device == "auto":
        a.ref_device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(a.ref_device)
    os.makedirs(a.out, exist_ok=True)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, references on "
          f"{dev}" + (f" ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else ""),
          file=sys.stderr, flush=True)
    results, failed = [], 0
    for n in names:
        try:
            r = export(n, a.out, batches, dev)
        except Exception as ex:  # report and go on with the next model
            first = (str(ex).strip().splitlines() or [type(ex).__name__])[0]
            r = {"model": n, "error": f"{type(ex).__name__}: {first}"[:500]}
            failed += 1
        results.append(r)
        print(json.dumps(r), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
