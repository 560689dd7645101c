#!/usr/bin/env python3
"""PyTorch with CUDA graphs on the GPU check's models: the peer Kestrel's GPU timings face.

Same models and weights as models.py (what Kestrel benches), fp32 with TF32 off, cuDNN
autotuning on (PyTorch at its best). Per model and batch, one CUDA graph of model(x) is
captured and timed as in shared/anchors/torch_gpu_anchors.py's wall_fn: host wall clock
per replay including torch.cuda.synchronize(), what a real-time caller sees.

- graph:        g.replay(); sync.  The input already sits on the GPU (the anchors' figure).
- graph+copies: pinned host input -> GPU, g.replay(), output -> pinned host; sync. What
                Kestrel's Session::run does: host slices in, host slices out.

    python3 torch_graphs.py [--models seednet,resnet50] [--batches 1,32] [--iters 200]
        [--warmup 30] [--out torch_graphs.json]

Percentiles are nearest rank over the sorted samples, as in `kestrel bench`.
"""
import argparse
import json
import math
import sys
import time

import torch

from models import MODELS, build, canonical, example_input, tf32_off


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


def one(name, batch, iters, warmup):
    dev = torch.device("cuda")
    model = build(name).to(dev).eval()
    x = example_input(name, batch).to(dev)
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
        graph = wall(g.replay, iters, warmup)

        host_in = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
        host_in.copy_(example_input(name, batch, seed=3))
        host_out = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)

        def with_copies():
            x.copy_(host_in, non_blocking=True)
            g.replay()
            host_out.copy_(y, non_blocking=True)
        io = wall(with_copies, iters, warmup)
    r = {"model": name, "batch": batch, "dtype": "float32", "tf32": False,
         "graph": graph, "graph_copies": io}
    del g, y, model, x
    torch.cuda.empty_cache()
    return r


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma list of: " + ",".join(MODELS))
    p.add_argument("--batches", default="1,32")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--out", help="write the results as JSON here")
    a = p.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"error: torch {torch.__version__} sees no CUDA device "
              f"(torch.version.cuda={torch.version.cuda})", file=sys.stderr)
        return 2
    tf32_off()
    torch.backends.cudnn.benchmark = True
    info = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
            "gpu": torch.cuda.get_device_name(0), "iters": a.iters, "warmup": a.warmup,
            "results": []}
    print(f"torch {info['torch']}, cuDNN {info['cudnn']}, {info['gpu']}", flush=True)
    failed = 0
    for name in (canonical(n) for n in a.models.split(",") if n):
        for b in (int(b) for b in a.batches.split(",") if b):
            try:
                r = one(name, b, a.iters, a.warmup)
            except Exception as ex:  # report and go on (e.g. out of memory)
                first = (str(ex).strip().splitlines() or [type(ex).__name__])[0]
                r = {"model": name, "batch": b, "error": f"{type(ex).__name__}: {first}"[:500]}
                failed += 1
                torch.cuda.empty_cache()
            info["results"].append(r)
            print(json.dumps(r), flush=True)
            if a.out:  # rewritten after each model: a timeout still leaves what was measured
                with open(a.out, "w") as f:
                    json.dump(info, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
