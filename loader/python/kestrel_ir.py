"""What the exporter's passes share: the error type, the values a traced node maps to
(``Rec``, ``Const``, ``Sym``, ``Unusable``, ``Pieces``), the graph versions of the ops, and
small readers of ATen call nodes (arguments by name, shapes, the user's source line)."""
import re

import torch

aten = torch.ops.aten
INPUT_NAME = "input"


class ExportError(RuntimeError):
    pass


class Const:
    """A tensor known at export time. ``name`` is its state_dict name (None when folded).
    ``quant``: for the float weight a PT2E ``dequantize_per_channel`` of int8 values along
    dim 0 makes, (int8 values, f32 scales, int32 zero points), which the file stores
    instead of the floats (GRAPH_FORMAT.md, version 4)."""
    def __init__(self, value, name=None, transpose_of=None, quant=None):
        self.value, self.name, self.transpose_of = value, name, transpose_of
        self.quant = quant


class Unusable:
    """A value the graph cannot carry (e.g. max_pool2d's indices); an error when used."""
    def __init__(self, why):
        self.why = why


class Quantized:
    """The integer tensor of a PT2E ``quantize_per_tensor`` (or torchao ``quantize_affine``,
    ``op``) of ``src`` (Rec) with ``params`` (scale, zero point, qmin, qmax, dtype name):
    only the matching dequantize with the same params may read it, the pair becoming one
    ``fake_quant`` node."""
    def __init__(self, src, params, op="quantize_per_tensor"):
        self.src, self.params, self.op = src, params, op


class Sym:
    """A symbolic size (e.g. ``x.size(0)``): allowed only as a view/reshape argument."""


class Rec:
    """One Kestrel node (or the graph input when ``op`` is None)."""
    def __init__(self, fx, op, inputs=(), weights=None, attrs=None):
        self.fx, self.out_fx, self.op = fx, fx, op
        self.inputs, self.weights, self.attrs = list(inputs), weights or {}, attrs or {}
        self.name = None
        self.stack = []  # [(call key, module path)] outermost first, root excluded
        # the graph version the node needs beyond its op's own (`add` of two broadcast
        # values is version 2, `linear` over the last dim of a rank > 2 value version 3)
        self.form_version = 1

    def version(self):
        return max(OP_VERSION.get(self.op, 1), self.form_version)


class Pieces:
    """The list a chunk/split returns: ``src`` (Rec) cut along ``dim`` at ``bounds``
    [(start, end)]; each ``getitem`` used becomes one ``slice`` node."""
    def __init__(self, src, dim, bounds):
        self.src, self.dim, self.bounds = src, dim, bounds


# The graph version that added each op (GRAPH_FORMAT.md); ops not listed are version 1. A
# graph says the largest version among its nodes, so one that older readers can run keeps
# their version. `add`'s version-1 form is two values of one shape (Rec.form_version).
V2_OPS = {"sigmoid", "silu", "hardsigmoid", "hardswish", "tanh", "gelu", "leaky_relu", "elu",
          "clamp", "sub", "mul", "div"}
V3_OPS = {"layer_norm", "permute", "reshape", "slice", "upsample_nearest2d",
          "upsample_bilinear2d", "conv_transpose2d"}
V4_OPS = {"fake_quant"}
OP_VERSION = {**{op: 2 for op in V2_OPS}, **{op: 3 for op in V3_OPS}, **{op: 4 for op in V4_OPS}}


def source_line(node):
    """'file:line: code' of the innermost frame outside torch itself (or the innermost)."""
    trace = node.meta.get("stack_trace") or ""
    frames = []
    for line in trace.splitlines():
        m = re.match(r'\s*File "([^"]+)", line (\d+)', line)
        if m:
            frames.append([m.group(1), m.group(2), ""])
        elif frames and line.strip() and not frames[-1][2]:
            frames[-1][2] = line
    if not frames:
        return "unknown source line"
    user = [f for f in frames if "/torch/" not in f[0]]
    f, line, code = (user or frames)[-1]
    return f"{f}:{line}: {code.strip()}"


def _bind(n):
    """Arguments of an ATen call node by schema name, defaults filled in."""
    out = {}
    for i, a in enumerate(n.target._schema.arguments):
        if i < len(n.args):
            out[a.name] = n.args[i]
        elif a.name in n.kwargs:
            out[a.name] = n.kwargs[a.name]
        else:
            out[a.name] = a.default_value if a.has_default_value() else None
    return out


def _pair(v, what):
    v = [v] if isinstance(v, int) else list(v)
    if len(v) == 1:
        v = v * 2
    if len(v) != 2 or not all(isinstance(i, int) for i in v):
        raise ExportError(f"{what} must be two ints, got {v}")
    return [int(i) for i in v]


def _shape(n):
    """Shape from the trace; symbolic dims (the batch) as strings."""
    v = n.meta.get("val") if isinstance(n, torch.fx.Node) else None
    if not isinstance(v, torch.Tensor):
        return None
    return [d if isinstance(d, int) else str(d) for d in v.shape]


def _rank(n):
    s = _shape(n)
    return len(s) if s is not None else None

