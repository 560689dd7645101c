"""Prints pytorch_values.rs, the PyTorch values upsample/tests.rs checks against.

Each case resizes one axis; the other axis goes from 1 to 200, so that oh + ow > 128 and
PyTorch runs its generic NCHW kernel (see upsample/mod.rs). Nearest: the source index of
each output, read off an input holding its own indices. Bilinear: the weight of each
input on each output, read off one-hot inputs (exact: products with 1 and 0, sums of
one or two nonzero terms), as (output, input, weight) for every nonzero weight.
"""
import numpy as np
import torch
import torch.nn.functional as F

# (input length, output length or None, scale factor or None, align_corners)
NEAREST = [(10, None, 2.05, None), (7, 12, None, None), (13, 5, None, None),
           (7, None, 1.5, None), (13, None, 0.6, None), (5, None, 3.0, None),
           (2, None, 1.1, None), (9, 7, None, None)]
BILINEAR = [(7, 12, None, False), (7, 12, None, True), (13, 5, None, False),
            (17, 6, None, True), (7, None, 1.5, False), (13, None, 0.6, False),
            (5, None, 2.0, False), (5, None, 3.0, True), (1, 9, None, False),
            (4, 4, None, False), (2, None, 1.1, False)]


def option(scale):
    return "None" if scale is None else f"Some({scale!r})"


def resize(x, out, scale, **kw):
    # x: (batch, 1, 1, len) resized along w; h goes 1 -> 200.
    if scale is None:
        return F.interpolate(x, size=(200, out), **kw)[:, :, 0, :]
    return F.interpolate(x, scale_factor=(200.0, scale), **kw)[:, :, 0, :]


print(f"//! PyTorch's numbers for tests.rs: the output of pytorch_values.py (torch {torch.__version__},")
print("//! CPU). One line per case: rustfmt leaves the tables as printed.")
print()
print("#[rustfmt::skip]")
print("pub(super) const NEAREST: &[(usize, usize, Option<f64>, &[usize])] = &[")
for n, out, scale, _ in NEAREST:
    x = torch.arange(n, dtype=torch.float32).reshape(1, 1, 1, n)
    y = resize(x, out, scale, mode="nearest").flatten()
    idx = ", ".join(str(int(v)) for v in y)
    print(f"    ({n}, {len(y)}, {option(scale)}, &[{idx}]),")
print("];")

print("/// Input length, output length, scale factor, align_corners, and (output, input, weight)")
print("/// for every nonzero weight.")
print("pub(super) type Weights = (usize, usize, Option<f64>, bool, &'static [(usize, usize, f32)]);")
print()
print("#[rustfmt::skip]")
print("pub(super) const BILINEAR: &[Weights] = &[")
for n, out, scale, ac in BILINEAR:
    x = torch.eye(n, dtype=torch.float32).reshape(n, 1, 1, n)
    w = resize(x, out, scale, mode="bilinear", align_corners=ac)[:, 0, :]  # (input, output)
    terms = [(o, j, w[j, o].item()) for o in range(w.shape[1]) for j in range(n) if w[j, o] != 0]
    # str of an np.float32: the shortest decimal that reads back as the same f32.
    body = ", ".join(f"({o}, {j}, {str(np.float32(v))})" for o, j, v in terms)
    print(f"    ({n}, {w.shape[1]}, {option(scale)}, {str(ac).lower()}, &[{body}]),")
print("];")

# Whole planes: x (1, 2, 3, 4) with x[i] = (i * 37 % 23) / 7 - 1.5 (flat index i), and the
# same 3x4 plane holding 0..12 with +inf at (1, 1). PyTorch runs its channels-last kernel
# on outputs this small (oh + ow <= 128), whose sums round in another order: compared
# within a few ulp, NaN and Inf exactly.
PLANES = [((5, 7), "bilinear", False), ((5, 7), "bilinear", True), ((2, 3), "bilinear", False),
          ((7, 9), "nearest", None)]


def fmt(v):
    v = float(v)
    if v != v:
        return "f32::NAN"
    if v in (float("inf"), float("-inf")):
        return "f32::INFINITY" if v > 0 else "f32::NEG_INFINITY"
    return str(np.float32(v))


def planes(name, x):
    print("#[rustfmt::skip]")
    print(f"pub(super) const {name}: &[([usize; 2], Option<bool>, &[f32])] = &[")
    for size, mode, ac in PLANES:
        kw = {} if mode == "nearest" else {"align_corners": ac}
        y = F.interpolate(x, size=size, mode=mode, **kw).flatten()
        ac = "None" if ac is None else f"Some({str(ac).lower()})"
        print(f"    ({list(size)}, {ac}, &[{', '.join(fmt(v) for v in y)}]),")
    print("];")


planes("PLANES", torch.tensor([(i * 37 % 23) / 7 - 1.5 for i in range(24)]).reshape(1, 2, 3, 4))
x = torch.arange(12, dtype=torch.float32).reshape(1, 1, 3, 4)
x[0, 0, 1, 1] = float("inf")
planes("INF_PLANES", x)
