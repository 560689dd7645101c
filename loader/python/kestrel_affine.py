"""torchao's affine quantization ops (``torch.ops.torchao.quantize_affine``,
``dequantize_affine``, ``choose_qparams_affine``), which ``convert_pt2e`` emits for
torchao's ``AffineQuantized*Observer``s. A mixin of kestrel_graph's converter (it uses its
``act``, ``fail``, ``number``, ``qdq`` and ``val``), and ``fix_affine_blocks``, which
kestrel_export runs on a converted model before tracing it.

Kestrel runs two of the schemes these ops express, with the arithmetic of the
``quantized_decomposed`` ops it already takes:
  * an activation quantized per tensor (one float32 scale and one zero point, block_size
    the whole tensor) to int8 or uint8: a ``fake_quant`` node. torchao computes
    ``clamp(round(x * (1 / scale)) + zero_point)`` with the reciprocal in float32, where
    ``quantize_per_tensor`` takes 1 / scale in float64 and rounds it to float32; for a
    float32 scale the two agree (a quotient rounded to 53 bits and then to 24 is the
    quotient rounded to 24), so the node is the same. A float64 scale would make torchao
    compute in float64, and a bfloat16 one round the reciprocal to bfloat16: refused.
  * an int8 constant dequantized per output channel (block_size (1, rest)), or per
    tensor: an I8 weight with .scale and .zero_point (GRAPH_FORMAT.md).
Everything else (per-channel or group-wise blocks on activations, group-wise weights,
other dtypes, scales computed at run time by choose_qparams_affine) is an ExportError
naming the node and the scheme.
"""
import copy
import math

import torch

from kestrel_ir import ExportError, _bind, _shape

_OPS = {"torchao::quantize_affine", "torchao::dequantize_affine",
        "torchao::choose_qparams_affine"}
_DTYPES = {torch.int8: "int8", torch.uint8: "uint8"}
_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
_DYNAMIC = ("dynamic quantization (choose_qparams_affine computes the scale and zero point of "
            "each input at run time) is not supported: an activation needs a constant scale "
            "and zero point")
_PER_TENSOR = ("only per-tensor quantization of activations is supported (one scale and zero "
               "point, block_size the whole tensor, -1 for the batch)")


def affine_name(target):
    """'quantize_affine', 'dequantize_affine' or 'choose_qparams_affine' for torchao's op
    (an overload, as torch.export writes it, or a packet, as convert_pt2e does), else None."""
    schema = getattr(target, "_schema", None)
    name = schema.name if schema is not None else getattr(target, "_qualified_op_name", None)
    return name.split("::")[1] if name in _OPS else None


def fix_affine_blocks(model):
    """``model``, or a copy of it in which every torchao affine op on an activation with one
    scale has block_size (-1, ...): the whole tensor, whatever its shape.

    torchao 0.18's observers keep block_size as the shape they last saw (pytorch/ao#2112,
    unfixed): the calibration batch, so the converted model runs at that batch only and
    cannot be traced with a dynamic one; and for an observer two tensors share (a max
    pool's input and output) the later shape, so the model may not run at all. One scale
    for the whole tensor is the same arithmetic at any shape, and -1 is how torchao's
    proposed fix (pytorch/ao#2177) writes it. Other activation schemes, which Kestrel does
    not run and could not be traced, are an ExportError here."""
    if not isinstance(model, torch.fx.GraphModule):
        return model
    blocks = {}
    for n in model.graph.nodes:
        block = _activation_block(model, n)
        if block:
            blocks[n.name] = block
    if not blocks:
        return model
    model = copy.deepcopy(model)  # the caller's model keeps its own graph
    for n in model.graph.nodes:
        if n.name in blocks:
            n.update_arg(1, blocks[n.name])
    model.recompile()
    return model


def _activation_block(gm, n):
    """The whole-tensor block_size for a torchao quantize/dequantize_affine of an activation
    with one constant scale; None for other nodes and for weights; an ExportError for an
    activation quantized any other way."""
    name = affine_name(n.target) if n.op == "call_function" else None
    data = n.args[0] if name and n.args else None
    if name == "dequantize_affine" and isinstance(data, torch.fx.Node) and \
            data.op == "call_function" and affine_name(data.target) == "quantize_affine":
        data = data.args[0]
    if not isinstance(data, torch.fx.Node) or data.op == "get_attr":
        return None  # not an affine op, or a weight's: a weight has no batch
    where = f"(node {n.name}: {n.target}, on {data.name})"
    if name == "choose_qparams_affine":
        raise ExportError(f"{_DYNAMIC} {where}")
    scales = _numel(gm, n.args[2])
    if scales is None:
        raise ExportError(f"{name} whose scale is not a constant tensor {where}")
    if scales != 1:
        raise ExportError(f"{name} with {_scheme(n.args[1], scales)} on an activation: "
                          f"{_PER_TENSOR} {where}")
    val = data.meta.get("val")
    return (-1,) * (val.dim() if isinstance(val, torch.Tensor) else len(n.args[1]))


def _scheme(block, scales):
    return f"block_size {_dims(block)} and {scales} scale(s)"


def _dims(dims):
    return "[" + ", ".join(map(str, dims)) + "]"


def _numel(gm, node):
    """Element count of a get_attr tensor, else None."""
    if not isinstance(node, torch.fx.Node) or node.op != "get_attr":
        return None
    value = gm
    for part in node.target.split("."):
        value = getattr(value, part)
    return value.numel() if isinstance(value, torch.Tensor) else None


class AffineLowering:
    def affine(self, n, b, name):
        """An activation's quantize_affine (held back) or dequantize_affine: with a
        per-tensor scheme the pair is one ``fake_quant``, as quantized_decomposed's."""
        if name == "choose_qparams_affine":
            self.fail(n, _DYNAMIC)
        dtype = b["output_dtype"] if name == "quantize_affine" else b["input_dtype"]
        if dtype not in _DTYPES:
            self.fail(n, f"quantization to {dtype} is not supported (int8 and uint8 are)")
        # from the trace: an omitted output_dtype binds as the schema's default, a number
        out = getattr(n.meta.get("val"), "dtype", None)
        if name == "dequantize_affine" and out != torch.float32:
            self.fail(n, f"dequantize_affine to {out} (only float32)")
        scale, zp = self.affine_const(n, b["scale"], "scale"), \
            self.affine_const(n, b["zero_point"], "zero point", optional=True)
        self.per_tensor(n, name, b, scale, zp)
        qmin, qmax = self.affine_range(n, b, _DTYPES[dtype])
        params = (self.affine_scale(n, scale), self.affine_zero_point(n, zp, qmin, qmax),
                  qmin, qmax, _DTYPES[dtype])
        return self.qdq(n, b["input"], params)

    def affine_const(self, n, a, what, optional=False):
        """A scale or zero point argument: a constant tensor (None for an absent zero point)."""
        if a is None and optional:
            return None
        v = self.val.get(a) if isinstance(a, torch.fx.Node) else None
        if v is None or not isinstance(getattr(v, "value", None), torch.Tensor):
            self.fail(n, f"the {what} must be a constant tensor")
        return v.value

    def per_tensor(self, n, name, b, scale, zp):
        """Refuse any block but the whole tensor: one scale (and zero point) for all of it."""
        shape = _shape(b["input"]) or []
        block = list(b["block_size"])
        whole = len(block) == len(shape) and all(
            _covers(e, d) for e, d in zip(block, shape))
        if not whole or scale.numel() != 1 or (zp is not None and zp.numel() != 1):
            # the batch is a symbol of the trace: written N
            shown = ["N" if isinstance(e, torch.fx.Node) else e for e in block]
            dims = ["N" if isinstance(d, str) else d for d in shape]
            self.fail(n, f"{name} with {_scheme(shown, scale.numel())} on an activation of "
                         f"shape {_dims(dims)}: {_PER_TENSOR}")

    def affine_range(self, n, b, dtype):
        """quant_min and quant_max as ints, inside the dtype (None: the dtype's bound)."""
        lo, hi = _RANGE[dtype]
        qmin = lo if b["quant_min"] is None else b["quant_min"]
        qmax = hi if b["quant_max"] is None else b["quant_max"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (qmin, qmax)) \
                or not lo <= qmin <= qmax <= hi:
            self.fail(n, f"quant_min {qmin!r}, quant_max {qmax!r}: integers inside {dtype}'s "
                         f"{lo} … {hi}")
        return qmin, qmax

    def affine_scale(self, n, scale):
        """The one scale as a float; only float32, the dtype of fake_quant's steps."""
        if scale.dtype != torch.float32:
            self.fail(n, f"a {scale.dtype} scale (only float32: torchao takes 1 / scale, and "
                         f"for float64 x * (1 / scale) too, in the scale's dtype; fake_quant's "
                         f"steps are float32)")
        s = self.number(n, scale.item(), "scale")
        if s <= 0:
            self.fail(n, f"scale {s} is not positive")
        return s

    def affine_zero_point(self, n, zp, qmin, qmax):
        """The one zero point as an int (None: 0): torchao adds it in float, so it must be a
        whole number, and inside quant_min … quant_max."""
        z = 0.0 if zp is None else zp.double().item()
        if not math.isfinite(z) or z != int(z) or not qmin <= z <= qmax:
            self.fail(n, f"zero point {z} is not an integer in {qmin} … {qmax}")
        return int(z)

    def affine_weight(self, n, out):
        """A dequantize_affine of constants: (int8 values, f32 scales, int32 zero points)
        per output channel, what the file stores for an I8 weight; ``out`` is PyTorch's
        result, which Kestrel's (q − zero_point[c]) · scale[c] must equal."""
        b = torch.fx.node.map_arg(_bind(n), lambda a: self.val[a].value)
        q, scale, zp, block = b["input"], b["scale"], b["zero_point"], list(b["block_size"])
        if b["input_dtype"] != torch.int8 or q.dtype != torch.int8:
            self.fail(n, f"dequantize_affine of a {b['input_dtype']} weight (only int8 "
                         f"weights are supported)")
        if out.dtype != torch.float32 or scale.dtype != torch.float32:
            self.fail(n, f"dequantize_affine of a weight to {out.dtype} with a {scale.dtype} "
                         f"scale (only float32)")
        shape, k = list(q.shape), scale.numel()
        rows = shape[0] if shape else 0
        # per channel: block_size[0] 1 and a scale per row; per tensor: one scale
        first = (block[:1] == [1] and k == rows) if k != 1 else _covers(block[0], rows)
        if not shape or len(block) != len(shape) or not first or not all(
                _covers(e, d) for e, d in zip(block[1:], shape[1:])) or \
                (zp is not None and zp.numel() != k):
            self.fail(n, f"dequantize_affine of a weight of shape {shape} with "
                         f"{_scheme(block, k)}: only per-channel along dim 0 "
                         f"(block_size [1, {', '.join(map(str, shape[1:]))}]) or per-tensor "
                         f"int8 weights are supported")
        scales = scale.reshape(-1).expand(rows).contiguous()
        zps = (torch.zeros(1) if zp is None else zp).reshape(-1).double().expand(rows)
        if not torch.equal(zps, zps.round()) or zps.min() < -128 or zps.max() > 127 or \
                not torch.all(torch.isfinite(scales) & (scales > 0)):
            self.fail(n, "a weight's zero points must be integers in -128 … 127 and its "
                         "scales finite and positive")
        zps = zps.to(torch.int32).contiguous()
        view = (-1,) + (1,) * (q.dim() - 1)
        if not torch.equal((q.float() - zps.reshape(view).float()) * scales.reshape(view), out):
            self.fail(n, "dequantize_affine's result differs from Kestrel's (q − zero_point) "
                         "· scale in float32")
        return q, scales, zps


def _covers(entry, dim):
    """Whether a block_size entry spans a whole dim: -1, the dim's size, or (a traced
    dynamic dim) the symbol of that size."""
    if isinstance(entry, torch.fx.Node):
        return str(entry.meta.get("val")) == dim
    return entry == -1 or entry == dim
