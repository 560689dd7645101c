#!/usr/bin/env python3
"""The load test's models, one seeded PyTorch model each (side_by_side's builds: random
init, batch norms randomised), written three ways into --work: a Kestrel .safetensors, an
ONNX file with a dynamic batch (for ONNX Runtime), and <name>.check.npz with a few inputs
and PyTorch's outputs for them, which the load test checks every response against.

    python3 benches/serving/export_models.py --work /tmp/kestrel-serving [--models cifarnet,resnet50]

Runs with side_by_side's pinned requirements (benches/side_by_side/requirements.txt).
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "side_by_side"))
from side_by_side import TracedModel, as_tuple, build  # noqa: E402

CHECK_INPUTS = 4


def export(name, work):
    model, _ = build(name, 1)
    size = 32 if name == "cifarnet" else 224
    gen = torch.Generator().manual_seed(3)
    xs = torch.randn(CHECK_INPUTS, 3, size, size, generator=gen)
    kpath = os.path.join(work, f"{name}.safetensors")
    TracedModel(model, xs[:1]).save(kpath)
    with torch.inference_mode():
        outs = as_tuple(model(xs))
    names = [f"output.{i}" for i in range(len(outs))] if len(outs) > 1 else ["output"]
    opath = os.path.join(work, f"{name}.onnx")
    batch = torch.export.Dim("batch", min=1, max=256)
    torch.onnx.export(model, (xs,), opath, opset_version=18, dynamo=True, external_data=False,
                      input_names=["input"], output_names=names,
                      dynamic_shapes=({0: batch},), verbose=False)
    np.savez(os.path.join(work, f"{name}.check.npz"), input=xs.numpy(),
             **{f"output{i}": o.numpy() for i, o in enumerate(outs)})
    print(f"{name}: {kpath}, {opath}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True)
    p.add_argument("--models", default="cifarnet,resnet50")
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    for name in a.models.split(","):
        export(name, a.work)


if __name__ == "__main__":
    main()
