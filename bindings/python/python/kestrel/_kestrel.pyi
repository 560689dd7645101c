# Type stubs for the native module (bindings/python/src). Keep in step with it: the
# tests check that every name here exists there and the other way round.
from os import PathLike
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

ArrayLike = Any  # a NumPy array, or anything with __array__ or __dlpack__
Inputs = Union[ArrayLike, Sequence[ArrayLike], Mapping[str, ArrayLike]]
Path = Union[str, "PathLike[str]"]

class KestrelError(Exception): ...
class LoadError(KestrelError): ...
class InputError(KestrelError): ...
class OptionError(KestrelError): ...
class CudaError(KestrelError): ...

class Model:
    """A model loaded from a Kestrel ``.safetensors`` file; share it between threads."""

    def __init__(self, path: Path) -> None: ...
    @property
    def inputs(self) -> list[tuple[str, list[Optional[int]]]]:
        """``(name, shape)`` per input, in run order; the batch is ``None``."""
    @property
    def outputs(self) -> list[str]:
        """The outputs' names, in order."""
    @property
    def path(self) -> str: ...
    def session(
        self,
        batch: int = 1,
        threads: int = 1,
        device: str = "cpu",
        precision: str = "fp32",
    ) -> Session:
        """A session for one batch size. ``device``: "cpu", "cuda" or "cuda:N";
        ``precision`` (CUDA): "fp32", "tf32" or "fp16"."""

    def batched_session(
        self,
        max_batch: int = 8,
        threads: int = 1,
        device: str = "cpu",
        precision: str = "fp32",
    ) -> BatchedSession:
        """Sessions for every batch from 1 to ``max_batch`` (one per power of two below
        it, and one for it), as a server's batcher needs."""

class Session:
    """A model prepared for one batch size and device; one per thread."""

    def run(self, inputs: Inputs) -> list[npt.NDArray[np.float32]]:
        """One array (one-input model), a sequence in input order, or a dict by name;
        float32 of the session's shapes. Returns one new array per output."""
    def run_dict(self, inputs: Inputs) -> dict[str, npt.NDArray[np.float32]]:
        """Like ``run``, with the outputs by name."""
    def warm_up(self, runs: int = 3) -> None: ...
    def time_rust_loop(self, inputs: Inputs, iters: int) -> float:
        """Seconds per run over ``iters`` runs looped in Rust (no Python per run)."""
    @property
    def inputs(self) -> list[tuple[str, list[int]]]: ...
    @property
    def outputs(self) -> list[tuple[str, list[int]]]: ...
    @property
    def batch(self) -> int: ...
    @property
    def kernels(self) -> str: ...
    @property
    def threads(self) -> int: ...

class BatchedSession:
    """Any batch from 1 to ``max_batch``, run as a sum of its sessions' batch sizes."""

    def run(self, inputs: Inputs) -> list[npt.NDArray[np.float32]]:
        """Like ``Session.run``, for any batch from 1 to ``max_batch`` (the same for
        every input); the outputs have that batch."""
    def warm_up(self, runs: int = 3) -> None: ...
    @property
    def max_batch(self) -> int: ...
    @property
    def batch_sizes(self) -> list[int]: ...
    @property
    def inputs(self) -> list[tuple[str, list[int]]]:
        """At the largest batch."""
    @property
    def outputs(self) -> list[tuple[str, list[int]]]: ...

class OutputError:
    """One output of ``compare`` against its PyTorch reference."""

    name: str
    shape: list[int]
    max_abs: float
    max_ref: float
    max_rel: float
    tolerance: float
    ok: bool
    steps: Optional[tuple[float, int, int, int, float]]

def compare(
    model: Union[Model, Path],
    reference: Path,
    device: str = "cpu",
    threads: int = 1,
    precision: str = "fp32",
    rtol: Optional[float] = None,
    steps: float = 1.0,
) -> dict[str, OutputError]:
    """Runs the model on a reference file's inputs; each output's error by name."""
