"""Prints pytorch_values.rs, the PyTorch values quantize/tests.rs checks against.

PyTorch's `quantized_decomposed.quantize_per_tensor` and `dequantize_per_tensor` (the ops a
PT2E-converted model is made of) on values chosen for their corners: ties at powers-of-two
scales, ±0, ±Inf, NaN, the edges of the range and past them, then seeded random values,
for int8 and uint8 and for scales a calibrated ResNet gave. Floats are printed as their
bits, so that the table is exact.
"""
import struct

import torch
import torch.ao.quantization.fx._decomposed  # noqa: F401  registers quantized_decomposed

Q = torch.ops.quantized_decomposed
# (scale, zero point, qmin, qmax, dtype)
PARAMS = [
    (1.0, 0, -128, 127, torch.int8),
    (0.25, 3, -128, 127, torch.int8),
    (0.0625, -128, -128, 127, torch.int8),
    (0.028521504253149033, 3, -128, 127, torch.int8),
    (0.008381065912544727, -128, -128, 127, torch.int8),
    (0.004252331797033548, 71, -127, 127, torch.int8),
    (1.0, 128, 0, 255, torch.uint8),
    (0.1, 0, 0, 255, torch.uint8),
]


def bits(v):
    return struct.unpack("<I", struct.pack("<f", v))[0]


def values(scale, zp, qmin, qmax):
    inf, nan = float("inf"), float("nan")
    ties = [k + 0.5 for k in range(-4, 4)]
    edges = [(qmin - zp) * scale, (qmax - zp) * scale, (qmin - zp - 0.5) * scale,
             (qmax - zp + 0.5) * scale, (qmax - zp + 1) * scale, (qmin - zp - 3) * scale]
    special = [0.0, -0.0, inf, -inf, nan, 1e30, -1e30, 1e-40, -1e-40]
    fixed = torch.tensor([t * scale for t in ties] + edges + special, dtype=torch.float32)
    g = torch.Generator().manual_seed(7)
    span = (qmax - qmin) * scale * 0.6
    rand = (torch.rand(64, generator=g) * 2 - 1) * span
    return torch.cat([fixed, rand.float()])


print(f"//! PyTorch's numbers for tests.rs: the output of pytorch_values.py (torch {torch.__version__},")
print("//! CPU). Per case: (scale, zero point, qmin, qmax, uint8) and (x bits, q, y bits) rows.")
print()
print("/// (scale, zero point, qmin, qmax, uint8): the params as the PT2E graph gives them.")
print("pub(super) type Params = (f64, i64, i64, i64, bool);")
print("/// (x bits, quantized x, dequantized bits).")
print("pub(super) type Row = (u32, i32, u32);")
print()
print("#[rustfmt::skip]")
print("pub(super) const CASES: &[(Params, &[Row])] = &[")
for scale, zp, qmin, qmax, dtype in PARAMS:
    x = values(scale, zp, qmin, qmax)
    q = Q.quantize_per_tensor(x, scale, zp, qmin, qmax, dtype)
    y = Q.dequantize_per_tensor(q, scale, zp, qmin, qmax, dtype)
    rows = ", ".join(f"({bits(a)}, {int(b)}, {bits(c)})"
                     for a, b, c in zip(x.tolist(), q.tolist(), y.tolist()))
    print(f"    (({scale!r}, {zp}, {qmin}, {qmax}, {str(dtype == torch.uint8).lower()}), &[{rows}]),")
print("];")
