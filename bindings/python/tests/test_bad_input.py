"""Bad input from Python: an exception of Kestrel's classes whose message names the
input, file or option and both shapes; never a crash, and the session still runs after."""

import re
from pathlib import Path

import numpy as np
import pytest

import kestrel
from test_models import fixture, reference


@pytest.fixture(scope="module")
def session():
    return kestrel.Model(fixture("cifarnet")).session(batch=2)


X = np.zeros((2, 3, 32, 32), np.float32)


@pytest.mark.parametrize(
    "given,message",
    [
        (X.astype(np.float64), 'input "input": expected float32 of shape [2, 3, 32, 32], got float64 of shape [2, 3, 32, 32]'),
        (X.astype(np.float16), "got float16 of shape [2, 3, 32, 32]"),
        (X.astype(np.int32), "got int32"),
        (X[:1], 'input "input": expected shape [2, 3, 32, 32], got [1, 3, 32, 32]'),
        (X[:, :, :, :31], "expected shape [2, 3, 32, 32], got [2, 3, 32, 31]"),
        (X[0], "expected shape [2, 3, 32, 32], got [3, 32, 32]"),
        (X[None], "expected shape [2, 3, 32, 32], got [1, 2, 3, 32, 32]"),
        (np.float32(1.0), "got []"),
        ([X, X], "expected 1 input(s) (input), got 2"),
        ([], "expected 1 input(s) (input), got 0"),
        ({"image": X}, 'input "image": the model has no such input (its inputs: input)'),
        ({}, 'input "input": not given'),
        ("not an array", 'input "input": expected a NumPy array (or an object with __array__ or __dlpack__), got str'),
    ],
)
def test_a_bad_input_names_itself_and_both_shapes(session, given, message):
    with pytest.raises(kestrel.InputError, match=re.escape(message)):
        session.run(given)
    # Nothing lost: the session runs as before.
    (out,) = session.run(X)
    assert out.shape == (2, 10) and np.isfinite(out).all()


def test_input_errors_are_kestrel_errors():
    assert issubclass(kestrel.InputError, kestrel.KestrelError)
    assert issubclass(kestrel.KestrelError, Exception)


def test_a_missing_or_broken_model_file_is_a_load_error(tmp_path):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(kestrel.LoadError, match=re.escape(str(missing))):
        kestrel.Model(missing)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 100)
    with pytest.raises(kestrel.LoadError, match=re.escape(str(garbage))):
        kestrel.Model(garbage)
    # A reference file is no model: it has no graph.
    with pytest.raises(kestrel.LoadError, match="no graph"):
        kestrel.Model(reference("cifarnet", 1))


def test_a_reference_that_does_not_fit_is_a_load_error():
    with pytest.raises(kestrel.LoadError, match=r'no tensor "input" for model input'):
        kestrel.compare(fixture("cifarnet"), fixture("cifarnet"))
    with pytest.raises(kestrel.LoadError, match=r"tensor \"input\""):
        kestrel.compare(fixture("allops"), reference("cifarnet", 1))


@pytest.mark.parametrize(
    "options,error,message",
    [
        ({"device": "gpu"}, kestrel.OptionError, 'unknown device "gpu"'),
        ({"precision": "int4"}, kestrel.OptionError, "unknown precision 'int4': expected fp32, tf32 or fp16"),
        ({"precision": "fp16"}, kestrel.OptionError, "runs on CUDA only"),
        ({"batch": 0}, kestrel.OptionError, "batch"),
        ({"threads": 0}, kestrel.OptionError, "threads"),
        ({"device": "cuda:99"}, kestrel.CudaError, "CUDA"),
    ],
)
def test_bad_session_options_raise(options, error, message):
    model = kestrel.Model(fixture("cifarnet"))
    with pytest.raises(error, match=re.escape(message)):
        model.session(**options)


def test_negative_numbers_are_type_errors_not_crashes():
    with pytest.raises(OverflowError):
        kestrel.Model(fixture("cifarnet")).session(batch=-1)
    with pytest.raises(TypeError):
        kestrel.Model(fixture("cifarnet")).session(batch="1")


def test_stubs_name_what_the_module_has():
    import kestrel._kestrel as native

    stub = (Path(kestrel.__file__).parent / "_kestrel.pyi").read_text()
    declared = set(re.findall(r"^(?:class|def) (\w+)", stub, re.M)) | {"__version__"}
    public = {n for n in dir(native) if not n.startswith("_")} | {"__version__"}
    assert declared == public
    assert set(kestrel.__all__) == public
