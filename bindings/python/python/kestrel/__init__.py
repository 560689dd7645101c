"""Kestrel from Python: run PyTorch-trained CNNs exported to Kestrel's ``.safetensors``
format on Kestrel's own CPU (and CUDA) kernels, and check them against PyTorch.

    import kestrel, numpy as np
    model = kestrel.Model("net.safetensors")
    session = model.session(batch=1, threads=1)
    (logits,) = session.run(np.zeros((1, 3, 32, 32), np.float32))

``python -m kestrel.serve MODEL`` serves a model on Triton Inference Server
(``kestrel.serve``; needs the ``serve`` extra).
"""

from ._kestrel import (
    BatchedSession,
    CudaError,
    InputError,
    KestrelError,
    LoadError,
    Model,
    OptionError,
    OutputError,
    Session,
    __version__,
    compare,
)

__all__ = [
    "BatchedSession",
    "CudaError",
    "InputError",
    "KestrelError",
    "LoadError",
    "Model",
    "OptionError",
    "OutputError",
    "Session",
    "__version__",
    "compare",
]
