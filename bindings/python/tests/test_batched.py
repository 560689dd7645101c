"""kestrel.BatchedSession: any batch up to its maximum, split over its sessions' batch
sizes with no padding, each image answered as a batch of one answers it; a batch out of
range, or inputs that disagree on it, is an InputError naming the input and the shapes."""

import re

import numpy as np
import pytest

import kestrel
from test_models import assert_close, fixture


@pytest.mark.parametrize("max_batch,sizes", [(1, [1]), (2, [1, 2]), (6, [1, 2, 4, 6]), (8, [1, 2, 4, 8])])
def test_it_keeps_a_session_per_power_of_two_and_the_maximum(max_batch, sizes):
    batched = kestrel.Model(fixture("cifarnet")).batched_session(max_batch=max_batch)
    assert batched.batch_sizes == sizes and batched.max_batch == max_batch
    assert batched.inputs == [("input", [max_batch, 3, 32, 32])]
    assert batched.outputs == [("fc", [max_batch, 10])]


def test_every_batch_size_answers_each_image_as_a_batch_of_one():
    model = kestrel.Model(fixture("yolo"))  # three outputs
    batched = model.batched_session(max_batch=6)
    one = model.session(batch=1)
    (_, shape), = model.inputs
    xs = np.random.default_rng(1).standard_normal((6, *shape[1:]), dtype=np.float32)
    want = [one.run(xs[i:i + 1]) for i in range(6)]
    for n in range(1, 7):  # 3 = 2 + 1, 5 = 4 + 1, 6 = 6
        outs = batched.run(xs[:n])
        assert len(outs) == 3
        for k, out in enumerate(outs):
            assert out.shape[0] == n and out.flags.c_contiguous
            for i in range(n):
                assert_close(out[i:i + 1], want[i][k], rtol=1e-5)


@pytest.mark.parametrize(
    "x,message",
    [
        (np.zeros((0, 3, 32, 32), np.float32), "expected shape [n, 3, 32, 32] (n from 1 to 4), got [0, 3, 32, 32]"),
        (np.zeros((5, 3, 32, 32), np.float32), "expected shape [n, 3, 32, 32] (n from 1 to 4), got [5, 3, 32, 32]"),
        (np.zeros((2, 3, 32, 31), np.float32), "expected shape [n, 3, 32, 32] (n from 1 to 4), got [2, 3, 32, 31]"),
        (np.zeros((3, 32, 32), np.float32), "expected shape [n, 3, 32, 32] (n from 1 to 4), got [3, 32, 32]"),
        (np.zeros((2, 3, 32, 32), np.float64), "expected float32 of shape [n, 3, 32, 32] (n from 1 to 4), got float64"),
    ],
)
def test_a_batch_out_of_range_is_an_input_error(x, message):
    batched = kestrel.Model(fixture("cifarnet")).batched_session(max_batch=4)
    with pytest.raises(kestrel.InputError, match=re.escape(f'input "input": {message}')):
        batched.run(x)
    (out,) = batched.run(np.zeros((3, 3, 32, 32), np.float32))
    assert out.shape == (3, 10)


def test_a_bad_maximum_is_an_option_error():
    with pytest.raises(kestrel.OptionError, match="max_batch: must be at least 1"):
        kestrel.Model(fixture("cifarnet")).batched_session(max_batch=0)
