#!/usr/bin/env python3
"""What the Python module adds to a run: one session timed in a Python loop of
``session.run`` and in a Rust loop (``session.time_rust_loop``), in short blocks that
alternate, many of them; the overhead per call (argument checks, the output arrays, the
GIL released and taken back) is the difference of the two loops' medians, and of their
fastest blocks (on a shared machine, noise only ever adds time).

    python benches/python/overhead.py [--model tests/fixtures/cifarnet.safetensors]
        [--batch 1] [--threads 1] [--iters 1000] [--blocks 60]
"""
import argparse
import os
import platform
import statistics
import time

import numpy as np

import kestrel

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=os.path.join(ROOT, "tests", "fixtures", "cifarnet.safetensors"))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=1000)
    p.add_argument("--blocks", type=int, default=60)
    a = p.parse_args()
    session = kestrel.Model(a.model).session(batch=a.batch, threads=a.threads)
    (_, shape), = session.inputs
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    session.warm_up(100)
    python, rust = [], []
    for _ in range(a.blocks):
        start = time.perf_counter()
        for _ in range(a.iters):
            session.run(x)
        python.append((time.perf_counter() - start) / a.iters)
        rust.append(session.time_rust_loop(x, a.iters))
    med = statistics.median(python) - statistics.median(rust)
    best = min(python) - min(rust)
    print(f"Python loop: median {statistics.median(python) * 1e6:.2f} us/run, fastest block {min(python) * 1e6:.2f}")
    print(f"Rust loop:   median {statistics.median(rust) * 1e6:.2f} us/run, fastest block {min(rust) * 1e6:.2f}")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    print(f"overhead per call: {med * 1e6:.2f} us (medians), {best * 1e6:.2f} us (fastest blocks) "
          f"({os.path.basename(a.model)}, batch {a.batch}, {a.threads} thread(s), {session.kernels}, "
          f"{cpu}, Python {platform.python_version()}, NumPy {np.__version__})")


if __name__ == "__main__":
    main()
