#!/usr/bin/env python3
"""Kestrel vs ONNX Runtime vs PyTorch on the CPU, same models, batch and threads, one run.

Each model is built seeded (random init, BatchNorm randomised), exported once to a Kestrel
.safetensors and to ONNX in --work, checked (ORT and Kestrel against PyTorch on one input),
then timed in --rounds alternating rounds: every engine gets a similar wall budget per
round, cycling several inputs (8; 32 for the CIFAR net). See README.md.

    python3 benches/side_by_side/side_by_side.py [--models cifarnet,resnet18] [--threads 1,2]
        [--batch 1] [--rounds 3] [--kestrel target/release/kestrel] [--quick] [--out r.json]
        [--int8]

--int8 times Kestrel int8 (PT2E), ONNX Runtime U8S8 and Kestrel fp32 instead (README.md).
"""
import argparse
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import safetensors
import torch
import torchvision
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from safetensors.numpy import load_file, save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "loader", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
from kestrel_export import TracedModel, export, quantize_pt2e, randomize_bn  # noqa: E402
from fixture_models import CifarNet, randomize_affine, yolov8n  # noqa: E402

MODELS = {"cifarnet": (32, 32), "resnet18": (224, 8), "mobilenet_v2": (224, 8),
          "resnet50": (224, 8),
          # graph version 2: hardswish, squeeze-excite, silu (run with --models to add them)
          "mobilenet_v3_large": (224, 8), "efficientnet_b0": (224, 8),
          # graph version 3: slice, upsample, permute, layer norm; yolo returns three outputs
          "yolo": (640, 8), "shufflenet_v2_x1_0": (224, 8), "convnext_tiny": (224, 8)}
DEFAULT_MODELS = ("cifarnet", "resnet18", "mobilenet_v2", "resnet50")
ENGINES = ("kestrel", "ort", "torch")
LABEL = {"kestrel": "Kestrel", "ort": "ONNX Runtime", "torch": "PyTorch"}
# randomize_bn's perturbation (1 unless listed): with all of it, YOLOv8n's perturbed batch
# norms compound until ~90% of its output sigmoids are 0 or 1, which no error can move.
BN_PERTURB = {"yolo": 0.25}
# --int8: the engines timed, and how many seeded images calibrate both quantizations.
INT8_ENGINES = ("kestrel_int8", "ort_int8", "kestrel")
INT8_LABEL = {"kestrel_int8": "Kestrel int8", "ort_int8": "ONNX Runtime U8S8", "kestrel": "Kestrel fp32"}
CALIBRATION_IMAGES = 8
# Kestrel int8 passes its check when its output is within this factor of the distance PyTorch's
# own output moves with oneDNN off (at least one step; see pt2e_floor).
INT8_TOL_FACTOR = 2


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def fmt(us):
    if us is None:
        return "n/a"
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.3g} ms" if us < 1e5 else f"{us / 1000:.0f} ms"


# ------------------------------------------------------------------ models and exports

def construct(name):
    """The model, randomly initialised from the current seed."""
    if name == "cifarnet":
        return CifarNet()
    if name == "yolo":
        return yolov8n()
    model = getattr(torchvision.models, name)(weights=None)
    # ConvNeXt's layer scales start at 1e-6, leaving every block all but the identity.
    return randomize_affine(model, 0) if name.startswith("convnext") else model


def build(name, batch):
    """Seeded model (eval, BN randomised and calibrated) and the inputs to cycle."""
    size, k = MODELS[name]
    torch.manual_seed(0)
    model = construct(name)
    calib = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1))
    randomize_bn(model.eval(), 0, calibrate=calib, perturb=BN_PERTURB.get(name, 1.0))
    gen = torch.Generator().manual_seed(2)
    return model.eval(), [torch.randn(batch, 3, size, size, generator=gen) for _ in range(k)]


def as_tuple(y):
    """A model's outputs as a tuple, of one for a single tensor."""
    return tuple(y) if isinstance(y, (tuple, list)) else (y,)


def output_names(n):
    """`output` for one output, `output.0`, `output.1`, ... for several, as `kestrel run`."""
    return ["output"] if n == 1 else [f"output.{i}" for i in range(n)]


def export_files(name, model, x, work, fresh):
    """Kestrel file (dynamic batch) and ONNX file (fixed batch), reused when present."""
    kpath = os.path.join(work, f"{name}.safetensors")
    opath = os.path.join(work, f"{name}_b{x.shape[0]}.onnx")
    if fresh or not os.path.exists(kpath):
        log(f"exporting {name} -> {kpath}")
        TracedModel(model, x).save(kpath + ".tmp")
        os.replace(kpath + ".tmp", kpath)
    if fresh or not os.path.exists(opath):
        log(f"exporting {name} -> {opath}")
        with torch.inference_mode():
            names = output_names(len(as_tuple(model(x))))
        torch.onnx.export(model, (x,), opath + ".tmp", opset_version=18, dynamo=True,
                          external_data=False, verbose=False,
                          input_names=["input"], output_names=names)
        os.replace(opath + ".tmp", opath)
    return kpath, opath


def model_gflop(kestrel, kpath, model, x):
    """GFLOP per image: Kestrel's `info` total, else 2*MACs of conv and linear layers."""
    if kestrel:
        p = subprocess.run([kestrel, "info", kpath], capture_output=True, text=True)
        m = re.search(r"([0-9.]+) MFLOP at batch 1", p.stdout)
        if p.returncode == 0 and m:
            return float(m.group(1)) / 1e3, "kestrel info"
    flops = []

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            flops.append(2 * out.numel() * k)
        else:
            flops.append(2 * out.numel() * mod.in_features)
    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.inference_mode():
        model(x[:1])
    for h in hs:
        h.remove()
    return sum(flops) / 1e9, "conv+linear MACs"


def ort_session(opath, threads):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(opath, so, providers=["CPUExecutionProvider"])


def max_errs(got, refs):
    """max |got - ref| of each output; inf where the count or a shape differs."""
    if len(got) != len(refs):
        return [float("inf")] * len(refs)
    return [float(np.abs(g - r).max()) if g.shape == r.shape else float("inf")
            for g, r in zip(got, refs)]


def kestrel_outputs(kestrel, kpath, x, stem, work):
    """`kestrel run` of kpath on x: (its outputs in order, None), or (None, its error)."""
    fin, fout = os.path.join(work, f"{stem}.in.safetensors"), os.path.join(work, f"{stem}.out.safetensors")
    save_file({"input": np.ascontiguousarray(x.numpy())}, fin)
    p = subprocess.run([kestrel, "run", kpath, "--input", fin, "--output", fout],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None, (p.stderr or p.stdout).strip()[-300:]
    out = load_file(fout)
    return [out[k] for k in output_names(len(out)) if k in out], None


def check(name, model, x, sess, kestrel, kpath, work):
    """ORT and Kestrel outputs vs PyTorch on one input, each within 1e-4 * its max|ref|.
    The JSON holds numbers for a single output, lists (one per output) for several."""
    with torch.inference_mode():
        refs = [y.numpy() for y in as_tuple(model(x))]
    tols = [1e-4 * float(np.abs(r).max()) for r in refs]
    errs, res = {"ort": max_errs(sess.run(None, {"input": x.numpy()}), refs)}, {}
    if kestrel:
        outs, error = kestrel_outputs(kestrel, kpath, x, name, work)
        if error is None:
            errs["kestrel"] = max_errs(outs, refs)
        else:
            res["kestrel_error"] = error
    one = len(refs) == 1
    res.update({k: v[0] if one else v for k, v in (("tol", tols), *errs.items())})
    words = [f"{e} max|err| " + ", ".join(f"{v:.2e} ({'ok' if v <= t else 'OVER'})"
                                          for v, t in zip(errs[e], tols)) for e in errs]
    if "kestrel_error" in res:
        words.append(f"kestrel run failed: {res['kestrel_error']}")
    print(f"check {name}: tol {', '.join(f'{t:.2e}' for t in tols)}; " + "; ".join(words),
          flush=True)
    res["ok"] = all(v <= t for e in errs for v, t in zip(errs[e], tols))
    return res


# ------------------------------------------------------------------ int8 (--int8)

def calibration_images(name):
    """The seeded images both quantizations calibrate on, one per batch: the same for any
    --batch, so the Kestrel int8 file (dynamic batch) is one per model, like the fp32 one."""
    size = MODELS[name][0]
    gen = torch.Generator().manual_seed(3)
    return [torch.randn(1, 3, size, size, generator=gen) for _ in range(CALIBRATION_IMAGES)]


def kestrel_int8(name, model, x, images, work, fresh):
    """The Kestrel int8 file (the exporter's PT2E flow) and PT2E's converted model, the
    reference for its output; (None, None, error) when the flow or the export fails."""
    kpath = os.path.join(work, f"{name}_int8.safetensors")
    try:
        if fresh or not os.path.exists(kpath):
            log(f"exporting {name} int8 (PT2E) -> {kpath}")
            _, quantized = export(model, x, kpath, quantize=images)
        else:  # same model, images and observers: the cached file's quantized model
            quantized = quantize_pt2e(model, x, images)
    except Exception as e:  # torchao's or the exporter's refusal: report it, time the rest
        return None, None, f"{type(e).__name__}: {str(e).strip()[:1000]}"
    return kpath, quantized, None


class Calibration(CalibrationDataReader):
    """The calibration images for ONNX Runtime, each repeated to the ONNX file's fixed batch
    (a repeated image leaves min/max, and so the quantization, as PT2E sees it)."""

    def __init__(self, images, batch):
        self.feeds = iter([{"input": np.repeat(x.numpy(), batch, 0)} for x in images])

    def get_next(self):
        return next(self.feeds, None)


def ort_int8(opath, images, batch, fresh):
    """ONNX Runtime's U8S8 QDQ model (uint8 activations per tensor, int8 weights per channel,
    min/max calibration) of the fp32 ONNX file. No quant_pre_process: it leaves ResNet's and
    MobileNetV2's graphs as they are and splits MobileNetV3's HardSwish into HardSigmoid
    and Mul, which only adds quantize/dequantize pairs."""
    qpath = opath.removesuffix(".onnx") + "_u8s8.onnx"
    if fresh or not os.path.exists(qpath):
        log(f"quantizing {opath} -> {qpath}")
        quantize_static(opath, qpath + ".tmp", Calibration(images, batch),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        os.replace(qpath + ".tmp", qpath)
    return qpath


def output_steps(quantized):
    """Each output's quantization step in the PT2E model: the scale of the dequantize that
    makes it (None for an output that is not dequantized)."""
    out = next(n for n in quantized.graph.nodes if n.op == "output")
    return [a.args[1] if str(getattr(a, "target", "")) == "quantized_decomposed.dequantize_per_tensor.default"
            else None for a in as_tuple(out.args[0])]


def pt2e_floor(quantized, x):
    """The PT2E model's output with oneDNN off: PyTorch's native convs sum in another order,
    so a value within float rounding of a rounding tie lands a step apart, and on these random
    nets the flips compound over depth (here MobileNetV2's output moved 10 steps, V3's 26,
    as far as Kestrel's). It measures how far correct int8 arithmetic may stray on a model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mkldnn.flags warns about TF32 on Intel GPUs
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
            return [y.numpy() for y in as_tuple(quantized(x))]


def steps_off(outs, quantized, x):
    """Kestrel's int8 outputs and pt2e_floor's against the PT2E model's on x: max |err| per
    output, and in steps of the output's quantization (max |ref| / 127 where PT2E leaves an
    output float)."""
    with torch.no_grad():
        refs = [y.numpy() for y in as_tuple(quantized(x))]
    errs = max_errs(outs, refs)
    steps = [s or float(np.abs(r).max()) / 127 for s, r in zip(output_steps(quantized), refs)]
    floor = max_errs(pt2e_floor(quantized, x), refs)
    return {"kestrel_int8_vs_pt2e": errs, "output_step": steps,
            "kestrel_int8_steps": [e / s for e, s in zip(errs, steps)],
            "pytorch_no_onednn_steps": [e / s for e, s in zip(floor, steps)]}


def vs_fp32(model, quantized, x, qsess):
    """ONNX Runtime U8S8's and PT2E's max |err| against fp32 PyTorch, and as a share of
    max |ref| (informative: what each quantization costs this network)."""
    with torch.no_grad():
        fp32 = [y.numpy() for y in as_tuple(model(x))]
        got = {"ort_int8": qsess.run(None, {"input": x.numpy()})}
        if quantized:
            got["pt2e"] = [y.numpy() for y in as_tuple(quantized(x))]
    scale = [float(np.abs(r).max()) for r in fp32]
    res, words = {}, []
    for who, outs in got.items():
        errs = max_errs(outs, fp32)
        res[f"{who}_vs_fp32"] = errs
        words.append(f"{who} vs fp32 max|err| " + ", ".join(
            f"{e:.3g} ({e / m:.1%} of max|ref|)" for e, m in zip(errs, scale)))
    return res, "; ".join(words)


def check_int8(name, model, quantized, x, qsess, kestrel, kpath8, work, error):
    """Kestrel int8 against the PT2E model it was exported from, in output quantization steps
    (passes within INT8_TOL_FACTOR times pt2e_floor's, at least one step), and vs_fp32."""
    res, fp32_words = vs_fp32(model, quantized, x, qsess)
    res["ok"] = True
    if error is None and kestrel:
        outs, error = kestrel_outputs(kestrel, kpath8, x, f"{name}_int8", work)
    if error is not None:
        res.update(kestrel_int8_error=error, ok=False)
        words = f"kestrel int8 FAILED: {error}"
    elif kestrel:
        res.update(steps_off(outs, quantized, x))
        within = [n <= INT8_TOL_FACTOR * max(f, 1) for n, f in
                  zip(res["kestrel_int8_steps"], res["pytorch_no_onednn_steps"])]
        res["ok"] = all(within)
        words = "kestrel int8 vs pt2e max|err| " + ", ".join(
            f"{e:.3g} = {n:.2f} steps of {s:.3g} (pytorch without onednn: {f:.2f} steps; "
            f"{'ok' if w else 'OVER'})" for e, n, s, f, w in zip(
                res["kestrel_int8_vs_pt2e"], res["kestrel_int8_steps"], res["output_step"],
                res["pytorch_no_onednn_steps"], within))
    else:
        words = "kestrel int8 not run (no binary)"
    print(f"check {name} int8: {words}; {fp32_words}", flush=True)
    return res


# ------------------------------------------------------------------ timing

def time_python(run, inputs, budget):
    """Warm up for a tenth of the budget, then time single runs for the budget (µs)."""
    i, end = 0, time.perf_counter() + budget / 10
    while i < 3 or time.perf_counter() < end:
        run(inputs[i % len(inputs)])
        i += 1
    lat, end = [], time.perf_counter() + budget
    while len(lat) < 5 or time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        run(inputs[i % len(inputs)])
        lat.append((time.perf_counter_ns() - t0) / 1e3)
        i += 1
    return lat


def time_kestrel(kestrel, kpath, batch, threads, k, iters, work):
    jf = os.path.join(work, "bench.json")
    cmd = [kestrel, "bench", kpath, "--device", "cpu", "--batch", str(batch), "--threads",
           str(threads), "--iters", str(iters), "--warmup", str(max(1, iters // 10)),
           "--inputs", str(k), "--json", jf]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {(p.stderr or p.stdout).strip()[-300:]}")
    with open(jf) as f:
        return json.load(f)


def summarise(rounds):
    """rounds: per round either a list of latencies (µs) or Kestrel's JSON object."""
    if not rounds:
        return None
    lists = [r if isinstance(r, list) else r.get("samples_us") or r.get("latencies_us")
             for r in rounds]
    out = {"round_medians_us": [float(np.median(l)) if l else r["median_us"]
                                for l, r in zip(lists, rounds)]}
    if all(lists):  # pool every round's samples
        s = np.concatenate([np.asarray(l, float) for l in lists])
        out.update(median_us=float(np.median(s)), p99_us=float(np.percentile(s, 99)),
                   min_us=float(s.min()), runs=int(s.size), pooled=True)
    else:  # only summaries: median of round medians, worst p99, best min
        out.update(median_us=float(np.median(out["round_medians_us"])),
                   p99_us=max(r["p99_us"] for r in rounds), min_us=min(r["min_us"] for r in rounds),
                   runs=sum(int(r["iters"]) for r in rounds), pooled=False)
    if isinstance(rounds[-1], dict):  # Kestrel: keep what its bench reports about itself
        out.update({k: rounds[-1][k] for k in ("isa", "kernel_calls", "arena_bytes") if k in rounds[-1]})
    return out


def kestrel_timer(kestrel, kpath, batch, threads, k, a, name):
    """A function that times one round of `kestrel bench` on kpath, its --iters sized from
    the previous call to fill the budget; None (logged) when a first 1-run call fails."""
    try:
        est = time_kestrel(kestrel, kpath, batch, threads, k, 1, a.work)["median_us"]
    except (RuntimeError, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as e:
        log(f"kestrel bench failed on {name}: {e}")
        return None

    def one_round():
        nonlocal est
        iters = int(min(max(a.budget * 1e6 / est, 5), 200000))
        res = time_kestrel(kestrel, kpath, batch, threads, k, iters, a.work)
        est = res["median_us"]
        return res
    return one_round


def alternate(label, timers, rounds):
    """timers: engine -> function timing one round (None: not timed). Each round runs them
    in turn, rotating who goes first, so all see the same minutes of a shared machine."""
    names = list(timers)
    results = {e: [] for e in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for e in order:
            if timers[e] is None:
                continue
            results[e].append(timers[e]())
            time.sleep(0.2)  # let the last engine's spinning worker threads park
        log(f"{label} round {r + 1}/{rounds}: " + ", ".join(
            f"{e} {fmt(summarise(results[e][-1:])['median_us'])}" for e in order if results[e]))
    return {e: summarise(v) for e, v in results.items()}


def bench(name, threads, batch, model, inputs, sess, kestrel, kpath, a):
    np_inputs = [np.ascontiguousarray(x.numpy()) for x in inputs]
    torch.set_num_threads(threads)

    def run_torch(x):
        with torch.inference_mode():
            model(x)
    timers = {"kestrel": kestrel and kestrel_timer(kestrel, kpath, batch, threads, len(inputs), a, name),
              "ort": lambda: time_python(lambda x: sess.run(None, {"input": x}), np_inputs, a.budget),
              "torch": lambda: time_python(run_torch, inputs, a.budget)}
    return alternate(f"{name} t={threads} b={batch}", timers, a.rounds)


def bench_int8(name, threads, batch, inputs, qsess, kestrel, kpath8, kpath, a):
    """Kestrel int8, ONNX Runtime U8S8 and Kestrel fp32 in alternating rounds."""
    np_inputs = [np.ascontiguousarray(x.numpy()) for x in inputs]
    k = len(inputs)
    timers = {"kestrel_int8": kestrel and kpath8 and kestrel_timer(kestrel, kpath8, batch, threads, k, a, f"{name} int8"),
              "ort_int8": lambda: time_python(lambda x: qsess.run(None, {"input": x}), np_inputs, a.budget),
              "kestrel": kestrel and kestrel_timer(kestrel, kpath, batch, threads, k, a, name)}
    return alternate(f"{name} int8 t={threads} b={batch}", timers, a.rounds)


def run_int8(name, model, inputs, kpath, opath, threads, run_kestrel, kestrel, a, info):
    """--int8 for one model: the fp32 check, both int8 models, their check, the timed rows."""
    x = inputs[0]
    info["checks"][name] = check(name, model, x, ort_session(opath, threads[0]), run_kestrel,
                                 kpath, a.work)
    images = calibration_images(name)
    kpath8, quantized, error = kestrel_int8(name, model, x, images, a.work, a.fresh)
    sessions = {t: ort_session(ort_int8(opath, images, a.batch, a.fresh), t) for t in threads}
    info["checks"][f"{name} int8"] = check_int8(name, model, quantized, x, sessions[threads[0]],
                                                run_kestrel, kpath8, a.work, error)
    for t in threads:
        engines = bench_int8(name, t, a.batch, inputs, sessions[t], kestrel, kpath8, kpath, a)
        info["results"].append({"model": name, "threads": t, "batch": a.batch, "int8": True,
                                "inputs_cycled": len(inputs), "engines": engines})


# ------------------------------------------------------------------ report

def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "os": platform.platform(), "loadavg_at_start": os.getloadavg()}


def versions(kestrel):
    v = {"python": platform.python_version(), "torch": torch.__version__,
         "torchvision": torchvision.__version__, "onnxruntime": ort.__version__,
         "onnx": onnx.__version__, "numpy": np.__version__, "safetensors": safetensors.__version__}
    if kestrel:
        p = subprocess.run([kestrel, "--version"], capture_output=True, text=True)
        v["kestrel"] = p.stdout.strip().removeprefix("kestrel ") if p.returncode == 0 else "?"
    return v


def cells(s, engines):
    """Each engine's "median (p99)" table cell, n/a where it was not timed."""
    return {e: f"{fmt(s[e]['median_us'])} ({fmt(s[e]['p99_us'])})" if s[e] else "n/a"
            for e in engines}


def table(rows, peak):
    print("\n| model | threads | batch | Kestrel median (p99) | ONNX Runtime median (p99) | "
          "PyTorch median (p99) | Kestrel / best peer | GFLOP | Kestrel GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["engines"]
        cell = cells(s, ENGINES)
        ratio = gfs = pct = "n/a"
        if s["kestrel"]:
            best = min(s["ort"]["median_us"], s["torch"]["median_us"])
            ratio = f"{s['kestrel']['median_us'] / best:.2f}"
            g = r["gflop"] * r["batch"] / (s["kestrel"]["median_us"] / 1e6)
            gfs, pct = f"{g:.1f}", f"{100 * g / (peak * r['threads']):.0f}%"
        print(f"| {r['model']} | {r['threads']} | {r['batch']} | {cell['kestrel']} | {cell['ort']}"
              f" | {cell['torch']} | {ratio} | {r['gflop']:.3g} | {gfs} | {pct} |")
    per_round(rows, LABEL)


def per_round(rows, labels):
    print("\nPer-round medians (min over all runs):\n")
    for r in rows:
        for e, label in labels.items():
            s = r["engines"][e]
            if s:
                print(f"- {r['model']} t={r['threads']} {label}: "
                      + ", ".join(fmt(m) for m in s["round_medians_us"])
                      + f" (min {fmt(s['min_us'])}, {s['runs']} runs"
                      + ("" if s["pooled"] else ", summary stats only") + ")")


def ratio(s, num, den, suffix=""):
    """num's median over den's, or n/a when either was not timed."""
    return f"{s[num]['median_us'] / s[den]['median_us']:.2f}{suffix}" if s[num] and s[den] else "n/a"


def table_int8(rows):
    print("\n| model | threads | batch | Kestrel int8 median (p99) | ONNX Runtime U8S8 median (p99) | "
          "Kestrel int8 / ORT int8 | Kestrel fp32 median (p99) | Kestrel fp32 / int8 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["engines"]
        cell = cells(s, INT8_ENGINES)
        print(f"| {r['model']} | {r['threads']} | {r['batch']} | {cell['kestrel_int8']} | "
              f"{cell['ort_int8']} | {ratio(s, 'kestrel_int8', 'ort_int8')} | {cell['kestrel']} | "
              f"{ratio(s, 'kestrel', 'kestrel_int8', 'x')} |")
    per_round(rows, INT8_LABEL)


def kestrel_binary(path):
    """(binary or None, binary with `bench` or None); prints why Kestrel is not timed."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        print(f"note: no Kestrel binary at {path}: timing the peers only")
        return None, None
    if subprocess.run([path, "bench", "--help"], capture_output=True).returncode != 0:
        print(f"note: {path} has no `bench` subcommand: Kestrel is checked but not timed")
        return path, None
    return path, path


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma list of: " + ",".join(MODELS))
    p.add_argument("--threads", default="1,2", help="comma list of thread counts")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--budget", type=float, help="seconds per engine per round (default 3, --quick 0.5)")
    p.add_argument("--quick", action="store_true", help="short budget (0.5 s per engine per round)")
    p.add_argument("--kestrel", default=os.path.join(ROOT, "target", "release", "kestrel"))
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "kestrel-side-by-side"),
                   help="where exported models are kept and reused, keyed by model name")
    p.add_argument("--fresh", action="store_true", help="re-export even if the files exist")
    p.add_argument("--peak", type=float, default=116.9, help="peak GFLOP/s per core (default 116.9)")
    p.add_argument("--out", help="also write the results as JSON here")
    p.add_argument("--int8", action="store_true",
                   help="int8 table instead: Kestrel int8 (PT2E) vs ONNX Runtime U8S8, and Kestrel fp32")
    a = p.parse_args()
    a.budget = a.budget or (0.5 if a.quick else 3.0)
    names, threads = a.models.split(","), [int(t) for t in a.threads.split(",")]
    for n in names:
        if n not in MODELS:
            p.error(f"unknown model {n}; known: {', '.join(MODELS)}")
    os.makedirs(a.work, exist_ok=True)
    run_kestrel, kestrel = kestrel_binary(a.kestrel)
    info = {"machine": machine(), "versions": versions(run_kestrel),
            "config": vars(a), "checks": {}, "results": []}
    if a.int8:
        info["versions"]["torchao"] = importlib.metadata.version("torchao")
    m = info["machine"]
    print(f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable); "
          f"peak {a.peak} GFLOP/s per core; load average {m['loadavg_at_start'][0]:.2f} at start")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()), flush=True)
    for name in names:
        model, inputs = build(name, a.batch)
        kpath, opath = export_files(name, model, inputs[0], a.work, a.fresh)
        if a.int8:
            run_int8(name, model, inputs, kpath, opath, threads, run_kestrel, kestrel, a, info)
            continue
        gflop, src = model_gflop(run_kestrel, kpath, model, inputs[0])
        sessions = {t: ort_session(opath, t) for t in threads}
        info["checks"][name] = check(name, model, inputs[0], sessions[threads[0]], run_kestrel,
                                     kpath, a.work)
        for t in threads:
            engines = bench(name, t, a.batch, model, inputs, sessions[t], kestrel, kpath, a)
            info["results"].append({"model": name, "threads": t, "batch": a.batch, "gflop": gflop,
                                    "gflop_source": src, "inputs_cycled": len(inputs),
                                    "engines": engines})
        del sessions
    if a.int8:
        table_int8(info["results"])
    else:
        table(info["results"], a.peak)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(info, f, indent=1)
        print(f"\nwrote {a.out}")
    return 0 if all(c["ok"] for c in info["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
