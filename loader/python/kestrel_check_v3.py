"""kestrel_check's version-3 ops, from loader/GRAPH_FORMAT.md's definitions rather than
the torch function of the same name: layer_norm, conv_transpose2d and the upsamplings
in float64, the index rules of the upsamplings in float32 as the format gives them, and
the layout ops (permute, reshape, slice) with NumPy. Each checks the shapes a reader would
check once it knows its input's shape.
"""
import numpy as np
import torch


def run_op(node, x, w):
    """The output (float32) of version-3 ``node`` on float32 ``x`` with weights ``w``."""
    op, a, name = node["op"], node.get("attrs", {}), node["name"]
    if op == "layer_norm":
        return layer_norm(name, x, w, a["normalized_shape"], a.get("eps", 1e-5))
    if op == "permute":
        assert len(a["dims"]) == x.dim(), f"{name}: dims {a['dims']} of a rank-{x.dim()} value"
        return torch.from_numpy(np.ascontiguousarray(np.transpose(x.numpy(), a["dims"])))
    if op == "reshape":
        shape = [x.shape[0]] + a["shape"]
        known = int(np.prod([d for d in shape if d != -1]))
        assert x.numel() == known or (-1 in shape and known and x.numel() % known == 0), \
            f"{name}: {list(x.shape)} cannot take shape {a['shape']} after the batch"
        return torch.from_numpy(np.ascontiguousarray(np.reshape(x.numpy(), shape)))
    if op == "slice":
        dim, start, end, step = a["dim"], a.get("start", 0), a["end"], a.get("step", 1)
        assert dim < x.dim() and end <= x.shape[dim], f"{name}: {a} of {list(x.shape)}"
        index = (slice(None),) * dim + (slice(start, end, step),)
        return torch.from_numpy(np.ascontiguousarray(x.numpy()[index]))
    if op in ("upsample_nearest2d", "upsample_bilinear2d"):
        assert x.dim() == 4, f"{name}: {op} of a rank-{x.dim()} value"
        scales = a.get("scales", [None, None])
        if op == "upsample_nearest2d":
            ih, iw = (nearest_index(i, o, s) for i, o, s in zip(x.shape[2:], a["size"], scales))
            return x[:, :, ih][:, :, :, iw]
        ac = a.get("align_corners", False)
        (h0, h1, lh), (w0, w1, lw) = (linear_index(i, o, ac, s) for i, o, s in
                                      zip(x.shape[2:], a["size"], scales))
        x = x.double()
        lh, lw = torch.from_numpy(lh)[:, None], torch.from_numpy(lw)
        top = x[:, :, h0][:, :, :, w0] * (1 - lw) + x[:, :, h0][:, :, :, w1] * lw
        bot = x[:, :, h1][:, :, :, w0] * (1 - lw) + x[:, :, h1][:, :, :, w1] * lw
        return (top * (1 - lh) + bot * lh).float()
    if op == "conv_transpose2d":
        return conv_transpose2d(name, x, w, a)
    raise ValueError(op)


def layer_norm(name, x, w, ns, eps):
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing ``ns`` dims, with the
    biased variance, in float64."""
    k = len(ns)
    assert k < x.dim() and list(x.shape[-k:]) == ns, \
        f"{name}: normalized_shape {ns} is not the trailing dims of {list(x.shape)}"
    x, dims = x.double(), tuple(range(x.dim() - k, x.dim()))
    mean = x.mean(dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dims, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    if "weight" in w:
        y = y * w["weight"].double()
    if "bias" in w:
        y = y + w["bias"].double()
    return y.float()


def nearest_index(i, o, scale):
    """Source index of every output index along one axis (input size i, output size o), by
    PyTorch's generic float32 rule (GRAPH_FORMAT.md): min(floor(dst * s), i - 1), s and the
    product in float32, s = 1/scale (rounded from float64) when given, else i/o."""
    dst = np.arange(o)
    s = np.float32(1.0 / scale) if scale else np.float32(i) / np.float32(o)
    src = np.floor(dst.astype(np.float32) * s).astype(np.int64)
    return torch.from_numpy(np.minimum(src, i - 1))


def linear_index(i, o, align_corners, scale):
    """(i0, i1, lambda1) of every output index along one axis: out = (1 - l1)·x[i0] + l1·x[i1]."""
    dst = np.arange(o, dtype=np.float64)
    if o == i:
        return torch.from_numpy(dst.astype(np.int64)), torch.from_numpy(dst.astype(np.int64)), \
            np.zeros(o)
    if align_corners:
        ratio = np.float32(i - 1) / np.float32(o - 1) if o > 1 else np.float32(0)
        src = np.float32(ratio) * dst.astype(np.float32)
    else:
        ratio = np.float32(1.0 / scale) if scale else np.float32(i) / np.float32(o)
        src = np.maximum(np.float32(ratio) * (dst + 0.5) - 0.5, 0).astype(np.float32)
    i0 = np.minimum(np.floor(src).astype(np.int64), i - 1)
    l1 = np.clip(src.astype(np.float64) - i0, 0, 1)
    i1 = i0 + (i0 < i - 1)
    return torch.from_numpy(i0), torch.from_numpy(i1), l1


def conv_transpose2d(name, x, w, a):
    """Every input pixel (ih, iw) adds x · weight[:, :, ky, kx] to the output pixel
    (ih·s − p + ky·d, iw·s − p + kx·d), per group; float64, then the bias."""
    (sh, sw), (ph, pw) = a.get("stride", [1, 1]), a.get("padding", [0, 0])
    (oph, opw), (dh, dw) = a.get("output_padding", [0, 0]), a.get("dilation", [1, 1])
    g = a.get("groups", 1)
    wt = w["weight"].double()
    n, c_in, h, wd = x.shape
    _, cog, kh, kw = wt.shape
    assert wt.shape[0] == c_in and c_in % g == 0, \
        f"{name}: weight {list(wt.shape)} for {c_in} input channels in {g} groups"
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    assert oh > 0 and ow > 0, f"{name}: output {oh}x{ow}"
    cig = c_in // g
    # the uncropped output: index ih·s + ky·d, i.e. the output index + padding
    full = torch.zeros(n, g * cog, (h - 1) * sh + dh * (kh - 1) + 1 + oph,
                       (wd - 1) * sw + dw * (kw - 1) + 1 + opw, dtype=torch.float64)
    xd = x.double()
    for gi in range(g):
        xs = xd[:, gi * cig:(gi + 1) * cig]
        for ky in range(kh):
            for kx in range(kw):
                tap = torch.einsum("nchw,co->nohw", xs, wt[gi * cig:(gi + 1) * cig, :, ky, kx])
                full[:, gi * cog:(gi + 1) * cog, ky * dh:ky * dh + (h - 1) * sh + 1:sh,
                     kx * dw:kx * dw + (wd - 1) * sw + 1:sw] += tap
    y = full[:, :, ph:ph + oh, pw:pw + ow]
    if "bias" in w:
        y = y + w["bias"].double()[:, None, None]
    return y.float()
