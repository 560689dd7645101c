"""Prints pytorch_values.rs, the PyTorch outputs conv_transpose2d/tests.rs checks against.

Inputs are a formula both sides compute: element i of a tensor is ((i * a) % 17) / 8 - 1
for a = 5 (x), 7 (weight), 3 (bias), so only the attributes and PyTorch's output travel.
"""
import numpy as np
import torch
import torch.nn.functional as F

# (n, c_in, h, w, c_out, kh, kw, stride, pad, output_padding, dilation, groups)
CASES = [
    (1, 2, 2, 3, 2, 3, 3, (2, 2), (1, 1), (1, 1), (1, 1), 1),
    (1, 4, 3, 2, 2, 2, 3, (2, 1), (0, 1), (1, 0), (1, 2), 2),
    (2, 1, 2, 2, 1, 2, 2, (2, 2), (0, 0), (0, 0), (1, 1), 1),
]


def fill(shape, a):
    n = int(np.prod(shape))
    return torch.tensor([((i * a) % 17) / 8 - 1 for i in range(n)], dtype=torch.float32).reshape(shape)


print(f"//! PyTorch's numbers for tests.rs: the output of pytorch_values.py (torch {torch.__version__},")
print("//! CPU). One line per case: rustfmt leaves the table as printed.")
print()
print("/// n, c_in, h, w, c_out, kh, kw, stride, pad, output_padding, dilation, groups, and y.")
print("pub(super) type Case = ([usize; 7], [[usize; 2]; 4], usize, &'static [f32]);")
print()
print("#[rustfmt::skip]")
print("pub(super) const CASES: &[Case] = &[")
for n, c_in, h, w, c_out, kh, kw, s, p, op, d, g in CASES:
    x = fill((n, c_in, h, w), 5)
    wt = fill((c_in, c_out // g, kh, kw), 7)
    b = fill((c_out,), 3)
    y = F.conv_transpose2d(x, wt, b, stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    vals = ", ".join(str(np.float32(v)) for v in y.flatten().tolist())
    attrs = ", ".join(f"[{a[0]}, {a[1]}]" for a in (s, p, op, d))
    print(f"    ([{n}, {c_in}, {h}, {w}, {c_out}, {kh}, {kw}], [{attrs}], {g}, &[{vals}]),")
print("];")
