"""Map a ``torch.export`` ATen graph onto Kestrel's op set (loader/GRAPH_FORMAT.md).

``convert(ep, input_chw)`` walks the traced graph once, in order:
  * placeholders become the graph input or named constants (state_dict names);
  * a node whose inputs are only constants is evaluated now and becomes a constant
    (e.g. a pruned ``weight_orig * weight_mask``);
  * dropout / alias / clone / contiguous / detach are dropped and their users rewired;
  * every other node must map to one Kestrel op, else ``ExportError`` names the op and the
    source line it came from.
``run_traced`` executes the same traced graph on real tensors and records, for each Kestrel
node, the value of the ATen node it was made from, so references match the exported nodes.
"""
import math
import operator

import torch

from kestrel_affine import AffineLowering, affine_name
from kestrel_ir import (INPUT_NAME, Const, ExportError, Pieces, Quantized, Rec, Sym,  # noqa: F401
                        Unusable,
                        _bind, _pair, _rank, _shape, aten, source_line)
from kestrel_lower_v3 import VIEW_OPS, V3Lowering

def _quantized(name):
    """``torch.ops.quantized_decomposed.<name>.default`` (PT2E's ops), or None when no
    quantization library has registered them."""
    try:
        return getattr(torch.ops.quantized_decomposed, name).default
    except (AttributeError, RuntimeError):
        return None


# ops that produce nothing the graph needs
_IGNORED = {aten._assert_tensor_metadata.default, aten._assert_scalar.default,
            aten.sym_constrain_range_for_size.default, torch._C._set_grad_enabled}
# ops that return their input unchanged in eval mode; True = result shares storage
_ALIAS = {aten.alias.default: True, aten.detach.default: True, aten.detach_.default: True,
          aten.contiguous.default: True, aten.clone.default: False,
          aten.lift_fresh_copy.default: False}
_DROPOUT = {aten.dropout.default, aten.dropout_.default, aten.feature_dropout.default,
            aten.feature_dropout_.default, aten.alpha_dropout.default,
            aten.feature_alpha_dropout.default}
_SYM = {aten.sym_size.int, aten.sym_numel.default, aten.sym_stride.int}
_TRANSPOSE = {aten.t.default, aten.numpy_T.default}
_VIEW = {aten.view.default, aten.reshape.default, aten._unsafe_view.default}
_RELU6 = {aten.relu6.default} | ({aten.relu6_.default} if hasattr(aten, "relu6_") else set())
# attribute-free elementwise activations (both the out-of-place and the in-place overload)
_UNARY = {getattr(aten, f + s).default: f for f in ("sigmoid", "silu", "hardsigmoid",
                                                     "hardswish", "tanh") for s in ("", "_")}
_CLAMP = {aten.clamp.default, aten.clamp_.default, aten.clamp_min.default,
          aten.clamp_min_.default, aten.clamp_max.default, aten.clamp_max_.default}
_CLAMP_TENSOR = {aten.clamp.Tensor, aten.clamp_.Tensor, aten.clamp_min.Tensor,
                 aten.clamp_min_.Tensor, aten.clamp_max.Tensor, aten.clamp_max_.Tensor}
# element-wise binary ops: ATen overload -> (Kestrel op, operands swapped); rsub(a, b) = b - a
_BINARY = {getattr(getattr(aten, f + s), o): (f, False) for f in ("add", "sub", "mul", "div")
           for s in ("", "_") for o in ("Tensor", "Scalar")}
_BINARY.update({aten.rsub.Tensor: ("sub", True), aten.rsub.Scalar: ("sub", True)})
_DIV_MODE = {aten.div.Tensor_mode, aten.div_.Tensor_mode, aten.div.Scalar_mode,
             aten.div_.Scalar_mode}

class Graph:
    """The converted graph: ``nodes`` (Rec, topological), ``weights`` (name -> tensor),
    ``outputs`` (names), ``input`` (Rec) and ``input_chw``."""

    def to_json(self):
        nodes = []
        for r in self.nodes:
            d = {"name": r.name, "op": r.op, "inputs": [i.name for i in r.inputs]}
            if r.weights:
                d["weights"] = {role: c.name for role, c in r.weights.items()}
            if r.attrs:
                d["attrs"] = r.attrs
            nodes.append(d)
        version = max([r.version() for r in self.nodes] + [1])
        return {"version": version,
                "inputs": [{"name": self.input.name, "shape": [-1] + list(self.input_chw)}],
                "nodes": nodes, "outputs": list(self.outputs)}


class _Converter(V3Lowering, AffineLowering):
    def __init__(self, ep):
        self.ep = ep
        self.val = {}       # fx node -> Rec | Const | Sym | None
        self.group = {}     # fx node -> storage group id (activations only)
        self.family = {}    # storage group -> storage family (a tensor and its reshapes)
        self.order = {n: i for i, n in enumerate(ep.graph.nodes)}
        self.recs = []

    # -- helpers
    def fail(self, n, why):
        raise ExportError(f"{why} (node {n.name}: {n.target}) at {source_line(n)}")

    def act(self, n, a, what="input"):
        v = self.val.get(a) if isinstance(a, torch.fx.Node) else None
        if isinstance(v, Unusable):
            self.fail(n, v.why)
        if isinstance(v, Quantized):
            self.fail(n, f"{what} is a {v.op} result: only its de{v.op} may read it")
        if not isinstance(v, Rec):
            self.fail(n, f"{what} must be a tensor computed from the model input")
        return v

    def const(self, n, a, what, optional=False):
        if a is None and optional:
            return None
        v = self.val.get(a) if isinstance(a, torch.fx.Node) else None
        if not isinstance(v, Const) or not isinstance(v.value, torch.Tensor):
            self.fail(n, f"{what} must be a parameter, buffer or constant tensor")
        if not v.value.is_floating_point():
            self.fail(n, f"{what} must be a floating-point tensor")
        return v

    def number(self, n, v, what):
        """A scalar attribute as a finite float (JSON has no inf or NaN)."""
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(n, f"{what} must be a number, got {v!r}")
        if not math.isfinite(v):
            self.fail(n, f"{what} must be finite, got {v}")
        return float(v)

    def new_group(self, view_of=None):
        g = len(self.family) + 1
        self.family[g] = self.family[view_of] if view_of else g
        return g

    def emit(self, n, op, inputs, weights=None, attrs=None, version=1):
        r = Rec(n, op, inputs, {k: w for k, w in (weights or {}).items() if w is not None},
                attrs)
        r.form_version = version
        self.recs.append(r)
        return r

    # -- the walk
    def run(self):
        sig = self.ep.graph_signature
        consts = dict(self.ep.state_dict)
        consts.update(getattr(self.ep, "constants", {}) or {})
        kinds = {s.arg.name: s for s in sig.input_specs}
        user = [s.arg.name for s in sig.input_specs if s.kind.name == "USER_INPUT"]
        if len(user) != 1:
            raise ExportError(f"the model must take exactly one tensor input, got {len(user)}")
        for n in self.ep.graph.nodes:
            if n.op == "placeholder":
                spec = kinds[n.name]
                if n.name == user[0]:
                    r = Rec(n, None)
                    r.name = INPUT_NAME
                    self.val[n], self.group[n] = r, self.new_group()
                    self.input = r
                elif spec.kind.name in ("PARAMETER", "BUFFER"):
                    self.val[n] = Const(consts[spec.target], spec.target)
                elif spec.kind.name == "CONSTANT_TENSOR":
                    self.val[n] = Const(consts[spec.target])  # lifted constant: name later
                else:
                    raise ExportError(f"unsupported graph input kind {spec.kind} ({n.name})")
            elif n.op == "call_function":
                self.call(n)
            elif n.op == "output":
                self.outputs = [self.act(n, a, "every model output") for a in n.args[0]]
            else:
                self.fail(n, f"unsupported fx node kind {n.op}")

    def call(self, n):
        t = n.target
        if t in _IGNORED:
            self.val[n] = None
            return
        ins = n.all_input_nodes
        if t in _SYM or (t is not operator.getitem and getattr(t, "__module__", "") == "_operator"
                         and ins and all(isinstance(self.val.get(a), Sym) for a in ins)):
            self.val[n] = Sym()  # a size, or arithmetic on sizes (x.size(0) * 3)
            return
        if all(isinstance(self.val.get(a), Const) for a in ins):
            self.fold(n)
            return
        if any(isinstance(self.val.get(a), Sym) for a in ins) and t not in _VIEW and \
                not affine_name(t):  # torchao's block_size may name the batch (x.shape)
            self.fail(n, "symbolic sizes may only be used to flatten with view/reshape")
        if t in _ALIAS or t in _DROPOUT or t in (aten.to.dtype, aten._to_copy.default) or \
                self.is_noop_view(n):
            self.alias(n)
            return
        if t is operator.getitem:
            self.getitem(n, *n.args)
            return
        r = self.map_op(n)
        if r is None:
            self.fail(n, "unsupported op")
        self.val[n] = r
        first = n.target._schema.arguments[0].alias_info
        if first is not None and first.is_write:  # in-place: self now holds the new value
            self.mutate(n, n.args[0], r)
        elif t in VIEW_OPS or (isinstance(r, Rec) and r.op == "flatten"):  # shares storage
            self.group[n] = self.new_group(view_of=self.group[n.args[0]])
        else:
            self.group[n] = self.new_group()

    def getitem(self, n, src, idx):
        """One result of a multi-result op: a piece of a split, or a first result."""
        v = self.val.get(src)
        if isinstance(v, Pieces):
            r = self.piece(n, v, idx)
            self.val[n] = r
            self.group[n] = self.group[src] if r is v.src else self.new_group(self.group[src])
            return
        if not (isinstance(v, Rec) and v.fx is src and idx == 0):
            self.val[n] = Unusable(f"only the first result of {src.target} can be used")
            return
        v.out_fx = n
        self.val[n], self.group[n] = v, self.group[src]

    def mutate(self, n, target, r):
        """Rebind every alias of ``target`` to ``r``; refuse when a reshaped view of the
        same storage is used after ``n`` (its new value is not expressible)."""
        g = self.group[target]
        old = self.val[target]
        for m, v in list(self.val.items()):
            h = self.group.get(m)
            if h == g and v is old:
                self.val[m] = r
            elif h is not None and h != g and self.family[h] == self.family[g] and \
                    any(self.order[u] > self.order[n] for u in m.users):
                self.fail(n, f"in-place op on a tensor whose reshaped view {m.name} is used later")
        self.group[n] = g

    def fold(self, n):
        def value(a):
            return self.val[a].value if isinstance(a, torch.fx.Node) else a
        args = torch.fx.node.map_arg(n.args, value)
        kwargs = torch.fx.node.map_arg(n.kwargs, value)
        with torch.no_grad():
            out = n.target(*args, **kwargs)
        tr = None
        src = self.val.get(n.args[0]) if n.args and isinstance(n.args[0], torch.fx.Node) else None
        if isinstance(src, Const) and src.name and isinstance(out, torch.Tensor) and out.dim() == 2:
            if n.target in _TRANSPOSE or (n.target == aten.transpose.int and
                                          sorted(a % 2 for a in n.args[1:3]) == [0, 1]) or \
                    (n.target == aten.permute.default and list(n.args[1]) == [1, 0]):
                tr = src
        quant = None
        if n.target == _quantized("dequantize_per_channel"):
            q, scales, zps, axis = args[0], args[1], args[2], args[3]
            if q.dtype == torch.int8 and axis == 0 and q.dim() >= 1:
                quant = (q, scales.float(), zps.to(torch.int32))
        elif affine_name(n.target) == "dequantize_affine":
            quant = self.affine_weight(n, out)
        self.val[n] = Const(out, None, tr, quant)

    def alias(self, n):
        t, b = n.target, _bind(n)
        src = n.args[0]
        if t in _DROPOUT and b.get("train"):
            self.fail(n, "dropout in training mode (call model.eval())")
        if t in (aten.to.dtype, aten._to_copy.default):
            v = n.meta.get("val")
            if not isinstance(v, torch.Tensor) or v.dtype != torch.float32:
                self.fail(n, "dtype conversions are not supported")
        self.val[n] = self.act(n, src)
        shares = _ALIAS.get(t, t in _DROPOUT or t in VIEW_OPS or (
            t == aten.to.dtype and not _bind(n).get("copy")))
        self.group[n] = self.group[src] if shares else self.new_group()

    # -- one ATen op -> one Kestrel node
    def map_op(self, n):
        t, b = n.target, _bind(n) if hasattr(n.target, "_schema") else {}
        if t in (_quantized("quantize_per_tensor"), _quantized("dequantize_per_tensor")):
            return self.quantized(n, b)
        if affine_name(t):
            return self.affine(n, b, affine_name(t))
        if t in (_quantized("quantize_per_channel"), _quantized("dequantize_per_channel")):
            self.fail(n, "per-channel quantization of an activation is not supported "
                         "(activations: per tensor; weights: per channel)")
        if t in (aten.conv2d.default, aten.conv2d.padding, aten.convolution.default):
            return self.conv(n, b)
        if t in (aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default,
                 aten._native_batch_norm_legit.default, aten.native_batch_norm.default):
            if b.get("training"):
                self.fail(n, "batch_norm in training mode (call model.eval())")
            if b["running_mean"] is None:
                self.fail(n, "batch_norm without running statistics")
            x = self.act(n, b["input"])
            w = {"running_mean": self.const(n, b["running_mean"], "running_mean"),
                 "running_var": self.const(n, b["running_var"], "running_var"),
                 "weight": self.const(n, b["weight"], "weight", True),
                 "bias": self.const(n, b["bias"], "bias", True)}
            return self.emit(n, "batch_norm", [x], w, {"eps": float(b["eps"])})
        if t in (aten.relu.default, aten.relu_.default):
            return self.emit(n, "relu", [self.act(n, b["self"])])
        if t in _RELU6:
            return self.emit(n, "relu6", [self.act(n, b["self"])])
        if t in (aten.hardtanh.default, aten.hardtanh_.default):
            if (float(b["min_val"]), float(b["max_val"])) == (0.0, 6.0):
                return self.emit(n, "relu6", [self.act(n, b["self"])])
            return self.clamp(n, b["self"], b["min_val"], b["max_val"])
        if t in _UNARY:
            return self.emit(n, _UNARY[t], [self.act(n, b["self"])])
        if t in (aten.gelu.default, aten.gelu_.default):
            if b["approximate"] not in ("none", "tanh"):
                self.fail(n, f"gelu approximate={b['approximate']!r} (only 'none' or 'tanh')")
            return self.emit(n, "gelu", [self.act(n, b["self"])],
                             attrs={"approximate": b["approximate"]})
        if t in (aten.leaky_relu.default, aten.leaky_relu_.default):
            slope = self.number(n, b["negative_slope"], "leaky_relu negative_slope")
            return self.emit(n, "leaky_relu", [self.act(n, b["self"])],
                             attrs={"negative_slope": slope})
        if t in (aten.elu.default, aten.elu_.default):
            if b["scale"] != 1 or b["input_scale"] != 1:
                self.fail(n, f"elu with scale={b['scale']}, input_scale={b['input_scale']} "
                             f"(only 1 and 1)")
            return self.emit(n, "elu", [self.act(n, b["self"])],
                             attrs={"alpha": self.number(n, b["alpha"], "elu alpha")})
        if t in _CLAMP:
            return self.clamp(n, b["self"], b.get("min"), b.get("max"))
        if t in _CLAMP_TENSOR:
            self.fail(n, "clamp with a tensor bound (only number bounds are supported)")
        if t in (aten.max_pool2d.default, aten.max_pool2d_with_indices.default,
                 aten.avg_pool2d.default):
            return self.pool(n, b)
        if t in (aten.adaptive_avg_pool2d.default, aten._adaptive_avg_pool2d.default):
            x = self.act(n, b["self"])
            return self.emit(n, "adaptive_avg_pool2d", [x],
                             attrs={"output_size": _pair(b["output_size"], "output_size")})
        if t == aten.mean.dim:
            x, dims = self.act(n, b["self"]), [int(d) for d in b["dim"] or []]
            if _rank(b["self"]) != 4 or sorted(d % 4 for d in dims) != [2, 3] \
                    or b["dtype"] is not None:
                self.fail(n, f"mean is supported over H and W of a 4-D tensor only (dim={dims})")
            if not (all(d >= 0 for d in dims) or all(d < 0 for d in dims)):
                dims = [d % 4 for d in dims]
            return self.emit(n, "mean", [x], attrs={"dims": dims, "keepdim": bool(b["keepdim"])})
        if t in _BINARY or t in _DIV_MODE:
            return self.binary(n, b)
        if t == aten.cat.default:
            xs = [self.act(n, a) for a in b["tensors"]]
            dim, rank = int(b["dim"]), _rank(n)
            if rank is None or dim % rank == 0:
                self.fail(n, "concat along the batch dimension")
            return self.emit(n, "concat", xs, attrs={"dim": dim})
        if t == aten.flatten.using_ints:
            x, rank = self.act(n, b["self"]), _rank(b["self"])
            s, e = int(b["start_dim"]), int(b["end_dim"])
            if not rank or s % rank == 0:
                self.fail(n, "flatten of the batch dimension")
            return self.emit(n, "flatten", [x], attrs={"start_dim": s, "end_dim": e})
        if t == aten.linear.default:
            return self.linear(n, b["input"], self.const(n, b["weight"], "weight"),
                               self.const(n, b["bias"], "bias", True))
        if t in (aten.addmm.default, aten.mm.default):
            if b.get("beta", 1) != 1 or b.get("alpha", 1) != 1:
                self.fail(n, "addmm with alpha/beta != 1")
            m2 = self.const(n, b["mat2"], "mat2")
            w = m2.transpose_of or Const(m2.value.t().contiguous())
            if t == aten.mm.default:
                return self.linear(n, b["self"], w, None)
            bias = self.const(n, b["self"], "bias")
            if bias.value.dim() != 1:
                self.fail(n, "addmm bias must be a vector")
            return self.linear(n, b["mat1"], w, bias)
        if t in (aten.softmax.int, aten._softmax.default):
            if b.get("dtype") is not None or b.get("half_to_float"):
                self.fail(n, "softmax with a dtype change")
            return self.emit(n, "softmax", [self.act(n, b["self"])], attrs={"dim": int(b["dim"])})
        return self.map_v3(n, t, b)

    def quantized(self, n, b):
        """A PT2E quantize_per_tensor (held back) and the dequantize_per_tensor reading it
        with the same params: one ``fake_quant`` node (GRAPH_FORMAT.md, version 4)."""
        dtype = {torch.int8: "int8", torch.uint8: "uint8"}.get(b["dtype"])
        if dtype is None:
            self.fail(n, f"quantization to {b['dtype']} is not supported (int8 and uint8 are)")
        if not all(isinstance(b[k], int) and not isinstance(b[k], bool)
                   for k in ("zero_point", "quant_min", "quant_max")):
            self.fail(n, "the zero point and range must be integer literals")
        params = (self.number(n, b["scale"], "scale"), b["zero_point"], b["quant_min"],
                  b["quant_max"], dtype)
        return self.qdq(n, b["input"], params)

    def qdq(self, n, x, params):
        """A quantize op of ``x`` (held back as ``Quantized``), or the dequantize of the same
        family reading it with the same params: the pair is one ``fake_quant`` node."""
        op = n.target._schema.name.split("::")[1]  # e.g. quantize_per_tensor
        if op.startswith("quantize"):
            return Quantized(self.act(n, x), params, op)
        q = self.val.get(x)
        if not isinstance(q, Quantized) or "de" + q.op != op:
            self.fail(n, f"{op} of a tensor no {op[2:]} made")
        if q.params != params:
            self.fail(n, f"{op} with {params}, its {q.op} with {q.params}")
        attrs = dict(zip(("scale", "zero_point", "quant_min", "quant_max", "dtype"), params))
        return self.emit(n, "fake_quant", [q.src], attrs=attrs, version=4)

    def binary(self, n, b):
        """add/sub/mul/div with PyTorch broadcasting: two values; a value and a constant
        tensor (weight `other`); or a value and a number (attr `scalar`). `reverse` says the
        constant comes first. Two values of one shape added (alpha 1) stay version 1 `add`."""
        t = n.target
        op, swap = _BINARY.get(t, ("div", False))
        if t in _DIV_MODE and b["rounding_mode"] is not None:
            self.fail(n, f"div with rounding_mode={b['rounding_mode']!r} (only true division)")
        out = n.meta.get("val")
        if not isinstance(out, torch.Tensor) or out.dtype != torch.float32:
            self.fail(n, f"{op} with a {getattr(out, 'dtype', type(out).__name__)} result "
                         f"(only float32)")
        first, second = (b["other"], b["self"]) if swap else (b["self"], b["other"])
        x, y = self.operand(n, op, first), self.operand(n, op, second)
        if t._schema.arguments[0].alias_info is not None and not isinstance(
                self.val.get(b["self"]), Rec):
            self.fail(n, f"in-place {op} on a parameter or constant")
        alpha = b.get("alpha", 1)  # add/sub: first + alpha * second (after the swap)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or \
                not math.isfinite(alpha):
            self.fail(n, f"{op} with alpha={alpha!r}")
        if alpha != 1:  # folded into a constant second operand; refused on a value
            if isinstance(y, Rec):
                self.fail(n, f"{op} with alpha={alpha} on a value computed from the input "
                             f"(only alpha 1, or a constant second operand)")
            y = y * alpha if isinstance(y, float) else Const(y.value * alpha)
            if isinstance(y, float) and not math.isfinite(y):
                self.fail(n, f"{op}: alpha * other = {y} is not finite")
        so = _shape(n)
        vals = [v for v in (first, second) if isinstance(self.val.get(v), Rec)]
        for v in vals:  # each value keeps its batch at dim 0 and the output's rank
            sv = _shape(v)
            if sv is None or so is None or len(sv) != len(so) or not isinstance(so[0], str) \
                    or sv[0] != so[0]:
                self.fail(n, f"{op} of shapes {_shape(first)} and {_shape(second)} -> {so}: "
                             f"the output's batch (dim 0) must be the input's batch on every "
                             f"value operand")
        if isinstance(x, Rec) and isinstance(y, Rec):
            if op == "add" and _shape(first) == _shape(second) == so:
                return self.emit(n, "add", [x, y])  # the version-1 residual add
            return self.emit(n, op, [x, y], version=2)
        value, c = (x, y) if isinstance(x, Rec) else (y, x)
        reverse = op in ("sub", "div") and c is x  # add and mul commute: always a op c
        if isinstance(c, float):
            return self.emit(n, op, [value], attrs={"scalar": c, "reverse": reverse}, version=2)
        if c.value.dim() > len(so) or (c.value.dim() == len(so) and c.value.shape[0] != 1):
            self.fail(n, f"{op}: the constant operand of shape {list(c.value.shape)} would "
                         f"supply the batch dimension of the output {so}")
        return self.emit(n, op, [value], {"other": c}, {"reverse": reverse}, version=2)

    def operand(self, n, op, a):
        """One operand of a binary op: Rec (value), Const (floating tensor) or float."""
        if isinstance(a, torch.fx.Node):
            v = self.val.get(a)
            if isinstance(v, Unusable):
                self.fail(n, v.why)
            if isinstance(v, Rec):
                return v
            if isinstance(v, Const) and isinstance(v.value, torch.Tensor):
                if not v.value.is_floating_point():
                    self.fail(n, f"{op} operand {a.name} is a {v.value.dtype} tensor "
                                 f"(only floating point)")
                return v
            self.fail(n, f"{op} operand {a.name} must be a tensor computed from the model "
                         f"input, or a parameter, buffer or constant tensor")
        if isinstance(a, bool) or not isinstance(a, (int, float)):
            self.fail(n, f"{op} with a {type(a).__name__} operand {a!r} (only float numbers)")
        return self.number(n, a, f"{op} operand")

    def clamp(self, n, x, lo, hi):
        """``clamp`` with the bounds the call gives (None: no bound), as floats."""
        attrs = {}
        if lo is not None:
            attrs["min"] = self.number(n, lo, "clamp min")
        if hi is not None:
            attrs["max"] = self.number(n, hi, "clamp max")
        if not attrs:
            self.fail(n, "clamp without a bound")
        if len(attrs) == 2 and attrs["min"] > attrs["max"]:
            self.fail(n, f"clamp min {attrs['min']} > max {attrs['max']}")
        return self.emit(n, "clamp", [self.act(n, x)], attrs=attrs)

    def conv(self, n, b):
        x, w = self.act(n, b["input"]), self.const(n, b["weight"], "weight")
        if b.get("transposed"):
            return self.conv_transpose(n, b)
        if w.value.dim() != 4 or _rank(b["input"]) != 4:
            self.fail(n, "only 2-D convolution is supported")
        pad, dil = b["padding"], _pair(b["dilation"], "dilation")
        if isinstance(pad, str):
            if pad == "valid":
                pad = [0, 0]
            else:
                tot = [d * (k - 1) for d, k in zip(dil, w.value.shape[2:])]
                if any(v % 2 for v in tot):
                    self.fail(n, "padding='same' that is not symmetric")
                pad = [v // 2 for v in tot]
        attrs = {"stride": _pair(b["stride"], "stride"), "padding": _pair(pad, "padding"),
                 "dilation": dil, "groups": int(b["groups"])}
        return self.emit(n, "conv2d", [x], {"weight": w,
                                            "bias": self.const(n, b["bias"], "bias", True)}, attrs)

    def pool(self, n, b):
        x = self.act(n, b["self"])
        if _rank(b["self"]) != 4:
            self.fail(n, "pooling needs a 4-D input")
        k = _pair(b["kernel_size"], "kernel_size")
        attrs = {"kernel_size": k, "stride": _pair(b["stride"], "stride") if b["stride"] else k,
                 "padding": _pair(b["padding"], "padding")}
        if n.target == aten.avg_pool2d.default:
            if b["divisor_override"] is not None:
                self.fail(n, "avg_pool2d with divisor_override")
            attrs.update(ceil_mode=bool(b["ceil_mode"]),
                         count_include_pad=bool(b["count_include_pad"]))
            return self.emit(n, "avg_pool2d", [x], attrs=attrs)
        attrs.update(dilation=_pair(b["dilation"], "dilation"), ceil_mode=bool(b["ceil_mode"]))
        return self.emit(n, "max_pool2d", [x], attrs=attrs)

    def linear(self, n, inp, w, bias):
        x = self.act(n, inp)
        if (_rank(inp) or 0) < 2 or w.value.dim() != 2:
            self.fail(n, "linear needs a weight matrix and an input of rank 2 or more")
        # over the last dim of a rank > 2 value (ConvNeXt's channels-last MLP): version 3
        return self.emit(n, "linear", [x], {"weight": w, "bias": bias},
                         version=3 if _rank(inp) > 2 else 1)


def _name_nodes(recs, taken):
    """Innermost module path when that module call holds exactly one node, else
    '<module path>.<fx name>'; top-level functional ops keep their fx name."""
    count = {}
    for r in recs:
        stack = r.fx.meta.get("nn_module_stack") or {}
        r.stack = [(k, v[0]) for k, v in stack.items()
                   if v and v[0] and "_empty_nn_module_stack" not in k]
        for k, _ in r.stack:
            count[k] = count.get(k, 0) + 1
    cand = []
    for r in recs:
        if not r.stack:
            cand.append((r.fx.name, False))
        else:
            key, path = r.stack[-1]
            cand.append((path, True) if count[key] == 1 else (f"{path}.{r.fx.name}", False))
    seen = {}
    for c, _ in cand:
        seen[c] = seen.get(c, 0) + 1
    names = [f"{c}.{r.fx.name}" if bare and seen[c] > 1 else c
             for r, (c, bare) in zip(recs, cand)]
    used = set(taken)
    for r, nm in zip(recs, names):
        base, i = nm, 1
        while nm in used:
            nm, i = f"{base}_{i}", i + 1
        used.add(nm)
        r.name = nm


def convert(ep, input_chw):
    """Convert an ``ExportedProgram`` to a ``Graph``; see the module docstring."""
    c = _Converter(ep)
    c.run()
    outs = c.outputs
    live, stack = set(), list(outs)  # keep only nodes the outputs depend on
    while stack:
        r = stack.pop()
        if id(r) not in live:
            live.add(id(r))
            stack.extend(r.inputs)
    recs = [r for r in c.recs if id(r) in live]
    _name_nodes(recs, {INPUT_NAME})
    weights, named, quant = {}, {}, {}
    for r in recs:
        for role, k in r.weights.items():
            if k.name is None and id(k) not in named:  # folded or lifted constant
                base, nm, i = f"{r.name}.{role}", f"{r.name}.{role}", 1
                while nm in weights or nm in ep.state_dict:
                    nm, i = f"{base}_{i}", i + 1
                named[id(k)] = nm
            nm = k.name or named[id(k)]
            if nm in weights and weights[nm] is not k.value:
                raise ExportError(f"two different tensors named {nm}")
            weights[nm] = k.value
            if k.quant is not None:
                quant[nm] = k.quant
            if k.name is None:
                k.name = nm
    g = Graph()
    g.nodes, g.weights, g.input, g.input_chw = recs, weights, c.input, list(input_chw)
    g.quant = quant
    g.outputs = [o.name for o in outs]
    return g


def run_traced(graph, ep, x, record=False):
    """Execute the traced ATen graph on ``x``; return (outputs, {node name: value})."""
    want = {r.out_fx: r.name for r in graph.nodes} if record else {}
    consts = dict(ep.state_dict)
    consts.update(getattr(ep, "constants", {}) or {})
    specs = {s.arg.name: s for s in ep.graph_signature.input_specs}
    env, layers = {}, {}
    for n in ep.graph.nodes:
        if n.op == "placeholder":
            s = specs[n.name]
            env[n] = x if s.kind.name == "USER_INPUT" else consts[s.target]
        elif n.op == "call_function":
            args = torch.fx.node.map_arg(n.args, lambda a: env[a])
            kwargs = torch.fx.node.map_arg(n.kwargs, lambda a: env[a])
            env[n] = n.target(*args, **kwargs)
            if n in want:  # clone now: a later in-place op may overwrite the value
                layers[want[n]] = env[n].clone()
        elif n.op == "output":
            return [env[a] for a in n.args[0]], {r.name: layers[r.name] for r in graph.nodes
                                                 if r.name in layers}
