"""The committed fixtures through the Python module, against their PyTorch references:
by kestrel.compare, and by running a session on the reference's input and comparing its
arrays here, in every form an input may take."""

import json
from pathlib import Path

import numpy as np
import pytest

import kestrel

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures"


def fixture(name):
    return FIXTURES / f"{name}.safetensors"


def reference(name, batch):
    return FIXTURES / f"{name}.b{batch}.ref.safetensors"


def read_safetensors(path):
    """The float32 tensors of a safetensors file: an 8-byte header length, a JSON header
    of dtype, shape and byte offsets, then the data."""
    raw = Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    tensors = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        start, end = t["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], np.float32).reshape(t["shape"])
    return tensors


def assert_close(out, ref, rtol=1e-4, atol=1e-6):
    """kestrel compare's fp32 rule: max|out - ref| <= rtol * max|ref| + atol."""
    assert out.shape == ref.shape
    assert out.dtype == np.float32
    err = float(np.max(np.abs(out.astype(np.float64) - ref)))
    assert err <= rtol * float(np.max(np.abs(ref))) + atol, err


@pytest.mark.parametrize(
    "name,batch",
    [("cifarnet", 1), ("cifarnet", 3), ("allops", 3), ("mobilenetv2", 1), ("yolo", 1),
     ("cifarnet_int8", 3), ("mobilenetv3_int8", 1)],
)
def test_compare_passes_on_fixtures(name, batch):
    model = kestrel.Model(fixture(name))
    errors = kestrel.compare(model, reference(name, batch))
    assert list(errors) == model.outputs
    for out, e in errors.items():
        assert e.name == out and e.ok, e
        assert e.shape[0] == batch
        assert e.max_abs <= e.tolerance
        assert (e.steps is not None) == name.endswith("_int8")


def test_compare_fails_an_output_over_tolerance():
    # A tolerance of nothing at all: the summation order alone puts cifarnet over it.
    errors = kestrel.compare(fixture("cifarnet"), reference("cifarnet", 3), rtol=0.0)
    (e,) = errors.values()
    assert e.max_abs > 0 and not e.ok


@pytest.mark.parametrize("name,batch", [("cifarnet", 3), ("yolo", 1), ("convnext", 1)])
def test_run_matches_the_reference(name, batch):
    model = kestrel.Model(fixture(name))
    ref = read_safetensors(reference(name, batch))
    session = model.session(batch=batch)
    outputs = session.run(ref["input"])
    keys = ["output"] if len(outputs) == 1 else [f"output.{i}" for i in range(len(outputs))]
    for out, key in zip(outputs, keys):
        assert_close(out, ref[key])
    by_name = session.run_dict(ref["input"])
    assert list(by_name) == model.outputs
    for a, b in zip(by_name.values(), outputs):
        assert np.array_equal(a, b)


class ArrayLike:
    """Has __array__ only, as a CPU torch tensor has."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a


class DLPackOnly:
    """Has __dlpack__ only."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, **kwargs):
        return self.a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def test_every_input_form_gives_the_same_outputs():
    ref = read_safetensors(reference("cifarnet", 3))
    x = ref["input"].copy()  # writeable: NumPy 1 exports no read-only array by DLPack
    session = kestrel.Model(fixture("cifarnet")).session(batch=3)
    (want,) = session.run(x)
    assert_close(want, ref["output"])
    readonly = x.copy()
    readonly.flags.writeable = False
    # The same values laid out channels-last and viewed back as NCHW: not contiguous.
    strided = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert not strided.flags.c_contiguous
    for given in [[x], (x,), {"input": x}, ArrayLike(x), DLPackOnly(x), readonly, strided]:
        (got,) = session.run(given)
        assert np.array_equal(got, want), type(given)
    # Outputs are new arrays each run, not views of the session's memory.
    (again,) = session.run(x)
    again[:] = 0
    (third,) = session.run(x)
    assert np.array_equal(third, want)


def test_a_contiguous_float32_input_is_read_in_place():
    import tracemalloc

    session = kestrel.Model(fixture("cifarnet")).session(batch=64)
    x = np.zeros((64, 3, 32, 32), np.float32)  # 786 KB; the output is 2.5 KB
    session.run(x)

    def traced_peak(given):
        """The most memory NumPy (and Python) held during a run, above what it held before."""
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        session.run(given)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return peak

    assert traced_peak(x) < x.nbytes / 8
    # The same values laid out otherwise are copied once, and the copy shows.
    strided = np.zeros((64, 32, 32, 3), np.float32).transpose(0, 3, 1, 2)
    assert traced_peak(strided) >= x.nbytes
