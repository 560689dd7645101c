"""Serve a Kestrel model on NVIDIA's Triton Inference Server, through PyTriton.

    python -m kestrel.serve MODEL [--name NAME] [--max-batch 8] [--max-queue-delay-us 500]
        [--instances 2] [--threads 1] [--device cpu] [--http-port 8000] [--grpc-port 8001]
        [--metrics-port 8002]

The model's inputs and outputs are declared to Triton from the file (float32, batch first).
Triton's dynamic batcher gathers requests into batches of up to --max-batch, waiting at
most --max-queue-delay-us for more; each batch goes to one of --instances model instances,
and each instance runs it on its own kestrel.BatchedSession: a session per batch size (1,
2, 4, ... and the maximum), a batch of 5 run as 4 + 1 with no padding, in one release of
the GIL, so instances run in parallel, each on --threads threads. Triton serves HTTP
(/v2/models/NAME/infer), gRPC, health (/v2/health/ready) and Prometheus metrics; a request
of the wrong shape or dtype gets an error response and the server keeps serving.

Needs the ``serve`` extra (``pip install "./bindings/python[serve]"``): PyTriton 0.7,
whose Python backend stub runs on Python 3.12 and finds that interpreter's
libpython3.12.so through LD_LIBRARY_PATH, which this module sets before it starts the
server (docs/serving.md).
"""

import argparse
import logging
import os
import sysconfig
from typing import Callable, List, Sequence, Tuple

import numpy as np

import kestrel

# A runner takes a batch (one array per input, batch first) and returns one array per output.
Runner = Callable[[List[np.ndarray]], List[np.ndarray]]
Spec = Tuple[str, Tuple[int, ...]]  # a tensor's name and its shape without the batch

log = logging.getLogger("kestrel.serve")


class KestrelRunner:
    """One model instance: a ``kestrel.BatchedSession`` (a warmed session per batch size),
    which runs a batch of any size up to ``max_batch`` in one call, without padding."""

    def __init__(self, model: kestrel.Model, max_batch: int, threads: int = 1,
                 device: str = "cpu", precision: str = "fp32"):
        self.session = model.batched_session(max_batch=max_batch, threads=threads,
                                             device=device, precision=precision)
        self.session.warm_up(2)

    def __call__(self, inputs: List[np.ndarray]) -> List[np.ndarray]:
        return self.session.run(inputs)


def specs(session: kestrel.BatchedSession) -> Tuple[List[Spec], List[Spec]]:
    """The model's inputs and outputs as Triton declares them: shapes without the batch."""
    inputs = [(name, tuple(shape[1:])) for name, shape in session.inputs]
    outputs = [(name, tuple(shape[1:])) for name, shape in session.outputs]
    return inputs, outputs


def bind(triton, name: str, inputs: Sequence[Spec], outputs: Sequence[Spec],
         runners: Sequence[Runner], max_batch: int, max_queue_delay_us: int) -> None:
    """Binds ``runners`` (one per model instance) to ``triton`` as model ``name`` with
    dynamic batching. Any runner serves: the load test binds ONNX Runtime the same way."""
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    input_names = [n for n, _ in inputs]
    output_names = [n for n, _ in outputs]

    def infer_func(runner: Runner):
        @batch
        def infer(**arrays):
            results = runner([arrays[n] for n in input_names])
            return dict(zip(output_names, results))

        return infer

    triton.bind(
        model_name=name,
        infer_func=[infer_func(r) for r in runners],
        inputs=[Tensor(name=n, dtype=np.float32, shape=s) for n, s in inputs],
        outputs=[Tensor(name=n, dtype=np.float32, shape=s) for n, s in outputs],
        config=ModelConfig(
            max_batch_size=max_batch,
            batcher=DynamicBatcher(max_queue_delay_microseconds=max_queue_delay_us),
        ),
        strict=True,
    )


def libpython_on_path() -> None:
    """Puts this interpreter's libpython on LD_LIBRARY_PATH, where the Triton server that
    PyTriton starts (and its Python backend stub) look for it: without it the stub fails."""
    libdir = sysconfig.get_config_var("LIBDIR")
    paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    if libdir and libdir not in paths:
        os.environ["LD_LIBRARY_PATH"] = ":".join([libdir] + paths)


def run_server(args, bind_model: Callable, attempts: int = 3) -> None:
    """Starts Triton with ``args``' ports, binds the model with ``bind_model(triton)`` and
    serves until interrupted. PyTriton 0.7 initialises a model's instances at once, and an
    instance may try the first one's handshake socket before it listens (a
    ConnectionRefusedError in Triton's log): the model then fails to load, so the server
    is started again, up to ``attempts`` times."""
    from pytriton.triton import Triton

    libpython_on_path()
    for attempt in range(1, attempts + 1):
        with Triton(config=triton_config(args)) as triton:
            try:
                bind_model(triton)
            except Exception as e:  # noqa: BLE001 (PyTriton raises several kinds)
                if attempt == attempts:
                    raise
                log.warning("the model failed to load (%s); starting the server again",
                            str(e).splitlines()[0])
                continue
            triton.serve()
            return


def triton_config(args):
    from pytriton.triton import TritonConfig

    return TritonConfig(http_port=args.http_port, grpc_port=args.grpc_port,
                        metrics_port=args.metrics_port, http_address=args.address,
                        grpc_address=args.address)


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """The options every server here takes (the load test's ONNX Runtime one too)."""
    parser.add_argument("--name", help="the model's name on the server (default: the file's stem)")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-queue-delay-us", type=int, default=500)
    parser.add_argument("--instances", type=int, default=2, help="model instances, each with its own sessions")
    parser.add_argument("--threads", type=int, default=1, help="threads per session run")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kestrel.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a Kestrel .safetensors model")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", help="fp32, or on CUDA tf32 or fp16")
    add_server_args(parser)
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error(f"--instances must be at least 1, got {args.instances}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from pathlib import Path

    model = kestrel.Model(args.model)
    name = args.name or Path(args.model).stem
    runners = [KestrelRunner(model, args.max_batch, args.threads, args.device, args.precision)
               for _ in range(args.instances)]
    inputs, outputs = specs(runners[0].session)
    log.info("serving %s as %r: inputs %s, outputs %s, %d instance(s), batch up to %d",
             args.model, name, inputs, outputs, args.instances, args.max_batch)
    run_server(args, lambda triton: bind(triton, name, inputs, outputs, runners, args.max_batch,
                                         args.max_queue_delay_us))


if __name__ == "__main__":
    main()
