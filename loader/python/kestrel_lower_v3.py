"""The lowerings graph version 3 added (loader/GRAPH_FORMAT.md): layer_norm, the layout ops
(reshape, permute, slice, and chunk/split as one slice per piece used), nearest and
bilinear upsampling, and transposed convolution. A mixin of kestrel_graph's converter: it
uses its ``act``, ``const``, ``emit``, ``fail`` and ``number``.

Every layout op keeps the batch as dim 0: the graph input's batch is dynamic, so a value
whose batch moved (``view(-1)``, a permute of dim 0, a slice of the batch) has no fixed
shape to write, and the exporter refuses it naming the node and its source line.
"""
import math
import re

import torch

from kestrel_ir import Pieces, _bind, _pair, _rank, _shape, aten

_RESHAPE = {aten.view.default, aten.reshape.default, aten._unsafe_view.default,
            aten.unsqueeze.default, aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default,
            aten.unflatten.int}
_PERMUTE = {aten.permute.default, aten.transpose.int, aten.swapaxes.default,
            aten.swapdims.default, aten.movedim.int, aten.movedim.intlist}
_SLICE = {aten.slice.Tensor, aten.narrow.default}
# ops returning a list of consecutive pieces of one dim; each getitem used -> one slice
_SPLIT = {aten.chunk.default, aten.split.Tensor, aten.split_with_sizes.default,
          aten.tensor_split.sections, aten.tensor_split.indices}
_NEAREST = {aten.upsample_nearest2d.vec, aten.upsample_nearest2d.default}
_BILINEAR = {aten.upsample_bilinear2d.vec, aten.upsample_bilinear2d.default}
_ANTIALIAS = {aten._upsample_bilinear2d_aa.vec, aten._upsample_bilinear2d_aa.default}
_LAYER_NORM = {aten.layer_norm.default, aten.native_layer_norm.default}
# results that share their input's storage (an in-place op on one changes the other)
VIEW_OPS = _RESHAPE | _PERMUTE | _SLICE | _SPLIT
MAX_RANK = 8  # GRAPH_FORMAT.md: values have 2 to 8 dims (the batch first)


def _show(shape, batch):
    """'[N, 3, 12, 10]': a traced shape with the batch's symbol written N."""
    dims = [re.sub(rf"\b{re.escape(batch)}\b", "N", d) if isinstance(d, str) else str(d)
            for d in shape]
    return "[" + ", ".join(dims) + "]"


def _permutation(n):
    """The dims an ATen permute-like call (permute, transpose, movedim, ...) picks, found by
    running it on an empty tensor whose dims all differ in size."""
    sizes = list(range(2, _rank(n.args[0]) + 2))
    out = n.target(torch.empty(sizes), *n.args[1:], **n.kwargs)
    return [sizes.index(s) for s in out.shape]


class V3Lowering:
    def map_v3(self, n, t, b):
        """The Kestrel node for a version-3 op (or a v1 ``flatten`` a reshape amounts
        to); None when ``t`` is none of them."""
        if t in _LAYER_NORM:
            return self.layer_norm(n, b)
        if t in _RESHAPE:
            return self.reshape(n)
        if t in _PERMUTE:
            return self.permute(n)
        if t in _SLICE:
            return self.slice(n, b)
        if t in _SPLIT:
            return self.split(n)
        if t in _NEAREST or t in _BILINEAR:
            return self.upsample(n, b, "nearest" if t in _NEAREST else "bilinear")
        if t in _ANTIALIAS:
            self.fail(n, "bilinear upsampling with antialias=True (only antialias=False)")
        if t == aten.conv_transpose2d.input:
            return self.conv_transpose(n, b)
        return None

    def is_noop_view(self, n):
        """A reshape, slice or permute that leaves its input as it is (the value itself)."""
        t = n.target
        if t in _RESHAPE or t in _SLICE:
            return _shape(n) is not None and _shape(n) == _shape(n.args[0])
        if t in _PERMUTE:
            return _permutation(n) == list(range(_rank(n.args[0])))
        return False

    # -- layout
    def reshape(self, n):
        """view/reshape/unsqueeze/squeeze/unflatten: the v1 ``flatten`` when the new shape
        merges consecutive dims after the batch, else ``reshape`` to the dims after it."""
        src = n.args[0]
        x, si, so = self.act(n, src), _shape(src), _shape(n)
        if si is None or so is None:
            self.fail(n, "view/reshape with unknown shapes")
        if so[0] != si[0] or any(isinstance(d, str) for d in so[1:]):
            self.fail(n, f"a reshape that moves the batch: {_show(si, si[0])} -> "
                         f"{_show(so, si[0])} (the batch must stay dim 0)")
        for a in range(1, len(si)):
            for e in range(a + 1, len(si)):
                if si[:a] + [math.prod(si[a:e + 1])] + si[e + 1:] == so:
                    end = -1 if e == len(si) - 1 else e
                    return self.emit(n, "flatten", [x], attrs={"start_dim": a, "end_dim": end})
        if not 2 <= len(so) <= MAX_RANK:
            self.fail(n, f"reshape {si} -> {so}: values have 2 to {MAX_RANK} dims")
        return self.emit(n, "reshape", [x], attrs={"shape": so[1:]})

    def permute(self, n):
        x, perm = self.act(n, n.args[0]), _permutation(n)
        if perm[0] != 0:
            self.fail(n, f"a permute that moves the batch (dims {perm}; dim 0 must stay first)")
        return self.emit(n, "permute", [x], attrs={"dims": perm})

    def slice(self, n, b):
        """slice.Tensor (Python slicing, bounds clamped as PyTorch clamps them) and narrow."""
        src = b["self"]
        x, si = self.act(n, src), _shape(src)
        dim = int(b["dim"]) % len(si)
        if dim == 0:
            self.fail(n, "a slice of the batch dimension")
        size = si[dim]
        if n.target == aten.narrow.default:
            start = int(b["start"]) + (size if b["start"] < 0 else 0)
            start, end, step = start, start + int(b["length"]), 1
        else:
            step = b["step"]
            if not isinstance(step, int) or step < 1:
                self.fail(n, f"slice step {step!r} (only positive steps)")
            start, end = b["start"], b["end"]
            start = 0 if start is None else start + (size if start < 0 else 0)
            end = size if end is None else end + (size if end < 0 else 0)
            start = min(max(start, 0), size)
            end = min(max(end, start), size)
        if -(-(end - start) // step) != _shape(n)[dim]:  # what PyTorch's trace says
            self.fail(n, f"slice {start}:{end}:{step} of size {size} gives {_shape(n)[dim]}")
        return self.emit(n, "slice", [x], attrs={"dim": dim, "start": start, "end": end,
                                                 "step": step})

    def split(self, n):
        """chunk/split/tensor_split: the consecutive pieces the trace gives, as ``Pieces``."""
        src = n.args[0]
        x, rank = self.act(n, src), _rank(src)
        dim = int(_bind(n)["dim"]) % rank
        if dim == 0:
            self.fail(n, "a split of the batch dimension")
        bounds, start = [], 0
        for v in n.meta["val"]:
            bounds.append((start, start + int(v.shape[dim])))
            start += int(v.shape[dim])
        return Pieces(x, dim, bounds)

    def piece(self, n, p, idx):
        """``getitem`` of a split: one slice node (or the value itself when whole)."""
        if len(p.bounds) == 1:  # the pieces cover the dim: one piece is all of it
            return p.src
        start, end = p.bounds[idx]
        return self.emit(n, "slice", [p.src], attrs={"dim": p.dim, "start": start, "end": end,
                                                     "step": 1})

    # -- compute
    def layer_norm(self, n, b):
        x, si = self.act(n, b["input"]), _shape(b["input"])
        ns = [int(d) for d in b["normalized_shape"]]
        if not ns or len(ns) >= len(si) or si[-len(ns):] != ns:
            self.fail(n, f"layer_norm over {ns} of a {si} value (must be its trailing dims, "
                         f"never the batch)")
        w = {"weight": self.const(n, b["weight"], "weight", True),
             "bias": self.const(n, b["bias"], "bias", True)}
        for role, c in w.items():
            if c is not None and list(c.value.shape) != ns:
                self.fail(n, f"layer_norm {role} of shape {list(c.value.shape)} (not {ns})")
        eps = self.number(n, b["eps"], "layer_norm eps")
        return self.emit(n, "layer_norm", [x], w, {"normalized_shape": ns, "eps": eps})

    def upsample(self, n, b, mode):
        x = self.act(n, b["input"] if "input" in b else b["self"])
        if _rank(n) != 4:
            self.fail(n, f"{mode} upsampling of a {_rank(n)}-D value (only 4-D)")
        if "scale_factors" in b:  # the .vec overload (F.interpolate, nn.Upsample)
            scales = b["scale_factors"]
        else:
            scales = [b["scales_h"], b["scales_w"]]
            if (scales[0] is None) != (scales[1] is None):
                self.fail(n, f"{mode} upsampling with scales {scales} (give both or neither)")
            scales = None if scales[0] is None else scales
        attrs = {"size": [int(d) for d in _shape(n)[2:]]}
        if scales is not None:
            scales = [self.number(n, s, f"{mode} upsampling scale") for s in scales]
            if len(scales) != 2 or min(scales) <= 0:
                self.fail(n, f"{mode} upsampling scales {scales} (two positive numbers)")
            attrs["scales"] = scales
        if mode == "bilinear":
            attrs["align_corners"] = bool(b["align_corners"])
        return self.emit(n, f"upsample_{mode}2d", [x], attrs=attrs)

    def conv_transpose(self, n, b):
        """conv_transpose2d, or convolution(transposed=True); every attribute written."""
        x, w = self.act(n, b["input"]), self.const(n, b["weight"], "weight")
        if w.value.dim() != 4 or _rank(b["input"]) != 4:
            self.fail(n, "only 2-D transposed convolution is supported")
        attrs = {"stride": _pair(b["stride"], "stride"), "padding": _pair(b["padding"], "padding"),
                 "output_padding": _pair(b["output_padding"], "output_padding"),
                 "dilation": _pair(b["dilation"], "dilation"), "groups": int(b["groups"])}
        return self.emit(n, "conv_transpose2d", [x],
                         {"weight": w, "bias": self.const(n, b["bias"], "bias", True)}, attrs)
