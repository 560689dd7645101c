#!/usr/bin/env python3
"""ONNX Runtime served on Triton by the same harness as ``kestrel.serve`` (its ``bind``,
dynamic batching and options): the load test's baseline.

    python benches/serving/serve_ort.py MODEL.onnx [--instances 2] [--threads 1] [--max-batch 8] ...
"""
import argparse
import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from kestrel.serve import add_server_args, bind, run_server


class OrtRunner:
    """One model instance: an ONNX Runtime CPU session with `threads` intra-op threads."""

    def __init__(self, path, threads):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, arrays):
        return self.session.run(None, dict(zip(self.inputs, arrays)))


def specs(runner):
    """Inputs and outputs without the batch; the outputs' shapes from a run on zeros."""
    ins = [(i.name, tuple(i.shape[1:])) for i in runner.session.get_inputs()]
    zeros = [np.zeros((1,) + s, np.float32) for _, s in ins]
    outs = [(o.name, y.shape[1:]) for o, y in zip(runner.session.get_outputs(), runner(zeros))]
    return ins, outs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an ONNX file with a dynamic batch")
    add_server_args(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    runners = [OrtRunner(args.model, args.threads) for _ in range(args.instances)]
    inputs, outputs = specs(runners[0])
    name = args.name or Path(args.model).stem
    run_server(args, lambda triton: bind(triton, name, inputs, outputs, runners, args.max_batch,
                                         args.max_queue_delay_us))


if __name__ == "__main__":
    main()
