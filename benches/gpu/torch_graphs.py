#!/usr/bin/env python3
"""PyTorch with CUDA graphs on the GPU check's models: the peer Kestrel's GPU timings face.

Same models and weights as models.py (what Kestrel benches), cuDNN autotuning on (PyTorch
at its best), in each precision, as docs/anchors/torch_gpu_anchors.py measured them:

- fp32: float32 model and input, TF32 off (cudnn.allow_tf32 = cuda.matmul.allow_tf32 = False).
- tf32: float32 model and input, TF32 allowed for cuDNN and cuBLAS (PyTorch's default for
        convolutions).
- fp16: model.to(cuda, float16), float16 input, TF32 flags off (the anchors' fp16 rows).

Per model, batch and precision, one CUDA graph of model(x) is captured and timed as in the
anchors' wall_fn: host wall clock per replay including torch.cuda.synchronize(), what a
real-time caller sees.

- graph:        g.replay(); sync.  The input already sits on the GPU (the anchors' figure).
- graph+copies: pinned host input -> GPU, g.replay(), output -> pinned host; sync. What
                Kestrel's Session::run does: host slices in, host slices out. Measured for
                the precisions in --copies only (default fp32, where PyTorch's input and
                output are float32 as Kestrel's are in every precision).

    python3 torch_graphs.py [--models seednet,resnet50] [--batches 1,32]
        [--precisions fp32,tf32,fp16] [--copies fp32] [--iters 200] [--warmup 30]
        [--out torch_graphs.json]

Percentiles are nearest rank over the sorted samples, as in `kestrel bench`. The JSON is
rewritten after every measurement, so a timeout keeps what was measured; each result names
its model, batch and precision (and dtype, tf32), or holds "error".
"""
import argparse
import copy
import json
import math
import sys
import time

import torch

from models import MODELS, build, canonical, example_input

PRECISIONS = ("fp32", "tf32", "fp16")


def nearest_rank(sorted_us, q):
    return sorted_us[min(max(math.ceil(q * len(sorted_us)), 1), len(sorted_us)) - 1]


def stats(us):
    us = sorted(us)
    return {"median_us": round(nearest_rank(us, 0.5), 2), "p90_us": round(nearest_rank(us, 0.9), 2),
            "p99_us": round(nearest_rank(us, 0.99), 2), "min_us": round(us[0], 2),
            "max_us": round(us[-1], 2), "iters": len(us)}


def wall(fn, iters, warmup):
    """Host wall clock per call, synchronised each time (anchors' wall_fn), in µs."""
    for _ in range(warmup):
        fn()
        torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t) * 1e6)
    return stats(ts)


def set_precision(precision):
    """The anchors' switches: TF32 for cuDNN and cuBLAS only in tf32; fp16 is a dtype."""
    tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    return torch.float16 if precision == "fp16" else torch.float32


def one(name, model, batch, precision, iters, warmup, copies):
    """One CUDA graph of `model` (already on the GPU in its dtype) at `batch`, timed."""
    dtype = set_precision(precision)
    dev = torch.device("cuda")
    x = example_input(name, batch).to(dev, dtype)
    with torch.inference_mode():
        # Warm up (and let cuDNN autotune) on a side stream, then capture: the anchors' recipe.
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                model(x)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            y = model(x)
        r = {"model": name, "batch": batch, "precision": precision,
             "dtype": str(dtype).split(".")[-1], "tf32": precision == "tf32",
             "graph": wall(g.replay, iters, warmup)}
        if copies:
            host_in = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
            host_in.copy_(example_input(name, batch, seed=3))
            host_out = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)

            def with_copies():
                x.copy_(host_in, non_blocking=True)
                g.replay()
                host_out.copy_(y, non_blocking=True)
            r["graph_copies"] = wall(with_copies, iters, warmup)
    del g, y, x
    torch.cuda.empty_cache()
    return r


def error_of(ex):
    first = (str(ex).strip().splitlines() or [type(ex).__name__])[0]
    return f"{type(ex).__name__}: {first}"[:500]


def comma_list(text, allowed=None):
    items = [t for t in text.replace(" ", ",").split(",") if t]
    bad = [t for t in items if allowed is not None and t not in allowed and t != "none"]
    if bad:
        raise SystemExit(f"unknown {', '.join(bad)}; expected some of {', '.join(allowed)}")
    return [t for t in items if t != "none"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma list of: " + ",".join(MODELS))
    p.add_argument("--batches", default="1,32")
    p.add_argument("--precisions", default=",".join(PRECISIONS),
                   help="comma list of: fp32, tf32, fp16 (default all)")
    p.add_argument("--copies", default="fp32",
                   help="precisions to time graph+copies in too (comma list, or none)")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--out", help="write the results as JSON here")
    a = p.parse_args(argv)
    precisions = comma_list(a.precisions, PRECISIONS)
    copies = comma_list(a.copies, PRECISIONS)
    if not torch.cuda.is_available():
        print(f"error: torch {torch.__version__} sees no CUDA device "
              f"(torch.version.cuda={torch.version.cuda})", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    info = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
            "gpu": torch.cuda.get_device_name(0), "iters": a.iters, "warmup": a.warmup,
            "precisions": precisions, "copies": copies, "results": []}
    print(f"torch {info['torch']}, cuDNN {info['cudnn']}, {info['gpu']}", flush=True)
    failed = 0
    for name in (canonical(n) for n in a.models.split(",") if n):
        try:
            base = build(name)  # on the CPU, float32; one copy per precision goes to the GPU
        except Exception as ex:
            base, build_error = None, error_of(ex)
        on_gpu = {}
        for b in (int(b) for b in a.batches.split(",") if b):
            for prec in precisions:
                try:
                    if base is None:
                        raise RuntimeError(f"build failed: {build_error}")
                    if prec not in on_gpu:
                        on_gpu[prec] = copy.deepcopy(base).to(torch.device("cuda"),
                                                              set_precision(prec)).eval()
                    r = one(name, on_gpu[prec], b, prec, a.iters, a.warmup, prec in copies)
                except Exception as ex:  # report and go on (e.g. out of memory)
                    r = {"model": name, "batch": b, "precision": prec, "error": error_of(ex)}
                    failed += 1
                    torch.cuda.empty_cache()
                info["results"].append(r)
                print(json.dumps(r), flush=True)
                if a.out:  # rewritten after each: a timeout still leaves what was measured
                    with open(a.out, "w") as f:
                        json.dump(info, f, indent=1)
        del on_gpu
        torch.cuda.empty_cache()
    if a.out and not info["results"]:
        with open(a.out, "w") as f:
            json.dump(info, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
