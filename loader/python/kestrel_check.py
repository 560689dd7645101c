#!/usr/bin/env python3
"""Run a Kestrel model file from its graph JSON alone, with plain torch.nn.functional ops,
and compare every output and layer with a reference file.

This is an independent oracle for the exporter: it reads only what the Rust engine reads
(the safetensors weights and the ``kestrel.graph`` JSON, with GRAPH_FORMAT.md's defaults), so
a wrong attribute in the JSON shows up as a mismatch.  It does not import kestrel_export.
The version-2 activations are computed from GRAPH_FORMAT.md's formulas in float64 (not with
the torch function of the same name), so the check also tests the documented formulas; the
version-2 binary ops (add, sub, mul, div with broadcasting, a weight or a scalar) run in
float32 with torch's broadcasting, the scalar rounded to float32 first, as the format says.
The version-3 ops run from the format's definitions too (kestrel_check_v3.py), and every
attribute is validated as a reader validates it (required attributes, weight roles, the
batch kept at dim 0, a version-3 op or form refused in an older file).

    python3 kestrel_check.py MODEL.safetensors REF.safetensors [--rtol 1e-5] [--local]

By default the graph runs end to end from the reference input, so rounding differences
(e.g. float64 activations vs PyTorch's float32) accumulate along the chain; a deep net with
random weights can amplify them past 1e-5 (EfficientNet's squeeze-excite sigmoids see
inputs in the thousands). ``--local`` instead feeds every node the reference values of its
inputs, so each node's own error is measured and 1e-5 holds at any depth; it needs a
reference with every layer.
"""
import argparse
import json
import math
import sys

import torch
import torch.nn.functional as F
from safetensors import safe_open

import kestrel_check_v3

# op -> its attributes, per graph version (GRAPH_FORMAT.md); version 2 adds activations
# and binary ops, version 3 layer_norm, the layout ops, upsampling and conv_transpose2d
OPS_V1 = {"conv2d": {"stride", "padding", "dilation", "groups"}, "batch_norm": {"eps"},
          "relu": set(), "relu6": set(),
          "max_pool2d": {"kernel_size", "stride", "padding", "dilation", "ceil_mode"},
          "avg_pool2d": {"kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"},
          "adaptive_avg_pool2d": {"output_size"}, "mean": {"dims", "keepdim"}, "linear": set(),
          "flatten": {"start_dim", "end_dim"}, "add": set(), "concat": {"dim"},
          "softmax": {"dim"}, "identity": set(), "dropout": set()}
OPS_V2 = dict(OPS_V1, sigmoid=set(), silu=set(), hardsigmoid=set(), hardswish=set(),
              tanh=set(), gelu={"approximate"}, leaky_relu={"negative_slope"}, elu={"alpha"},
              clamp={"min", "max"}, add={"scalar", "reverse"}, sub={"scalar", "reverse"},
              mul={"scalar", "reverse"}, div={"scalar", "reverse"})
CONV_ATTRS = {"stride", "padding", "dilation", "groups"}
OPS_V3 = dict(OPS_V2, layer_norm={"normalized_shape", "eps"}, permute={"dims"},
              reshape={"shape"}, slice={"dim", "start", "end", "step"},
              upsample_nearest2d={"size", "scales"},
              upsample_bilinear2d={"size", "scales", "align_corners"},
              conv_transpose2d=CONV_ATTRS | {"output_padding"})
QUANT_ATTRS = {"scale", "zero_point", "quant_min", "quant_max", "dtype"}
OPS_V4 = dict(OPS_V3, fake_quant=QUANT_ATTRS)
OPS = {1: OPS_V1, 2: OPS_V2, 3: OPS_V3, 4: OPS_V4}
# each op's weight roles: (required, optional); ops not listed take none
ROLES = {"conv2d": ({"weight"}, {"bias"}), "conv_transpose2d": ({"weight"}, {"bias"}),
         "linear": ({"weight"}, {"bias"}), "layer_norm": (set(), {"weight", "bias"}),
         "batch_norm": ({"running_mean", "running_var"}, {"weight", "bias"}),
         **{op: (set(), {"other"}) for op in ("add", "sub", "mul", "div")}}
REQUIRED = {"layer_norm": {"normalized_shape"}, "permute": {"dims"}, "reshape": {"shape"},
            "slice": {"dim", "end"}, "upsample_nearest2d": {"size"},
            "upsample_bilinear2d": {"size"}, "max_pool2d": {"kernel_size"},
            "avg_pool2d": {"kernel_size"}, "adaptive_avg_pool2d": {"output_size"},
            "mean": {"dims"}, "fake_quant": QUANT_ATTRS}
FLOAT_ATTRS = {"eps", "negative_slope", "alpha", "min", "max", "scalar", "scale"}
QUANT_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
MAX_RANK = 8
BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}


def load(path):
    """(graph dict, {name: float32 tensor}) from a Kestrel model file."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        if "kestrel.graph" not in meta:
            raise ValueError(f"{path}: no kestrel.graph in the metadata")
        graph = json.loads(meta["kestrel.graph"])
        weights = {k: f.get_tensor(k) for k in f.keys()}
    # int8 weights (version 4): (q - zero_point[c]) * scale[c] in float32, as PyTorch's
    # dequantize_per_channel along dim 0.
    for k in [k for k, t in weights.items() if t.dtype == torch.int8]:
        scale = weights[f"{k}.scale"]
        zp = weights.get(f"{k}.zero_point", torch.zeros_like(scale, dtype=torch.int32))
        shape = (-1,) + (1,) * (weights[k].dim() - 1)
        weights[k] = (weights[k].float() - zp.reshape(shape).float()) * scale.reshape(shape)
    return graph, weights


def validate(graph, weights):
    version = graph.get("version")
    assert type(version) is int and version in OPS, f"unknown version {version!r}"
    ops = OPS[version]
    names = [i["name"] for i in graph["inputs"]]
    for i in graph["inputs"]:
        s = i["shape"]
        assert all(isinstance(d, int) and (d > 0 or (d == -1 and k == 0))
                   for k, d in enumerate(s)), f"bad input shape {s}"
    seen = set(names)
    for n in graph["nodes"]:
        assert n["op"] in ops, f"unknown op {n['op']} in a version {version} graph"
        assert n["name"] not in seen, f"duplicate name {n['name']}"
        for i in n["inputs"]:
            assert i in seen, f"{n['name']}: input {i} not defined before use"
        need, may = ROLES.get(n["op"], (set(), set()))
        roles = set(n.get("weights", {}))
        assert need <= roles <= need | may, f"{n['name']}: weights {sorted(roles)}"
        missing = REQUIRED.get(n["op"], set()) - set(n.get("attrs", {}))
        assert not missing, f"{n['name']}: {n['op']} without {sorted(missing)}"
        for role, w in n.get("weights", {}).items():
            assert w in weights, f"{n['name']}: weight {w} missing"
            assert weights[w].dtype in (torch.float32, torch.float16, torch.bfloat16), \
                f"{w}: dtype {weights[w].dtype}"
        for k, v in n.get("attrs", {}).items():
            assert k in ops[n["op"]], f"{n['name']}: unknown attribute {k}"
            assert not isinstance(v, float) or k in FLOAT_ATTRS, f"{n['name']}.{k} is a float"
            if k in FLOAT_ATTRS:
                assert type(v) in (int, float) and math.isfinite(v), f"{n['name']}.{k} = {v!r}"
        a = n.get("attrs", {})
        if n["op"] == "gelu":
            assert a.get("approximate", "none") in ("none", "tanh"), f"{n['name']}: {a}"
        if n["op"] == "clamp":
            assert "min" in a or "max" in a, f"{n['name']}: clamp without a bound"
            assert a.get("min", -math.inf) <= a.get("max", math.inf), f"{n['name']}: min > max"
        if n["op"] in BINARY:  # two values; or one value and either weight other or scalar
            ws = n.get("weights", {})
            assert set(ws) <= {"other"}, f"{n['name']}: weights {sorted(ws)}"
            assert type(a.get("reverse", False)) is bool, f"{n['name']}: reverse {a['reverse']!r}"
            assert version > 1 or len(n["inputs"]) == 2, f"{n['name']}: version-1 add form"
            if len(n["inputs"]) == 2:
                assert not ws and not a, f"{n['name']}: two inputs take no weight or attribute"
            else:
                assert len(n["inputs"]) == 1, f"{n['name']}: {len(n['inputs'])} inputs"
                assert ("other" in ws) != ("scalar" in a), \
                    f"{n['name']}: one input needs exactly one of weight other, attr scalar"
        if n["op"] in OPS_V3 and n["op"] not in OPS_V2:
            _validate_v3(n, a, {r: weights[w] for r, w in n.get("weights", {}).items()})
        if n["op"] == "fake_quant":
            lo, hi = QUANT_RANGE.get(a["dtype"], (1, 0))
            ints = [a[k] for k in ("zero_point", "quant_min", "quant_max")]
            assert all(type(v) is int for v in ints) and a["scale"] > 0, f"{n['name']}: {a}"
            assert lo <= a["quant_min"] <= a["zero_point"] <= a["quant_max"] <= hi, \
                f"{n['name']}: {a}"
        seen.add(n["name"])
    for o in graph["outputs"]:
        assert o in seen, f"output {o} undefined"


def _ints(v, n=None, lo=None):
    """Is ``v`` a list of ints (of length ``n``, each >= ``lo``)?"""
    return (isinstance(v, list) and all(type(i) is int for i in v) and
            (n is None or len(v) == n) and (lo is None or all(i >= lo for i in v)))


def _validate_v3(n, a, w):
    """The attributes of a version-3 op, as a reader checks them before it sees shapes."""
    name, op = n["name"], n["op"]
    if op == "layer_norm":
        ns = a["normalized_shape"]
        assert _ints(ns, lo=1) and 1 <= len(ns) < MAX_RANK, f"{name}: normalized_shape {ns}"
        assert a.get("eps", 1e-5) >= 0, f"{name}: eps {a['eps']}"
        for role, t in w.items():
            assert list(t.shape) == ns, f"{name}: {role} of shape {list(t.shape)} != {ns}"
    elif op == "permute":
        d = a["dims"]
        assert _ints(d) and 2 <= len(d) <= MAX_RANK and sorted(d) == list(range(len(d))), \
            f"{name}: dims {d} is not a permutation of 0..rank-1"
        assert d[0] == 0, f"{name}: dims {d} moves the batch"
    elif op == "reshape":
        sh = a["shape"]
        assert _ints(sh) and 1 <= len(sh) < MAX_RANK, f"{name}: shape {sh}"
        assert all(i > 0 or i == -1 for i in sh) and sh.count(-1) <= 1, f"{name}: shape {sh}"
    elif op == "slice":
        dim, start, end, step = a["dim"], a.get("start", 0), a["end"], a.get("step", 1)
        assert all(type(v) is int for v in (dim, start, end, step)), f"{name}: {a}"
        assert dim >= 1, f"{name}: dim {dim} (never the batch, never negative)"
        assert 0 <= start <= end and step >= 1, f"{name}: {start}:{end}:{step}"
    elif op.startswith("upsample_"):
        assert _ints(a["size"], 2, 1), f"{name}: size {a['size']}"
        if "scales" in a:
            sc = a["scales"]
            assert isinstance(sc, list) and len(sc) == 2 and all(
                type(v) in (int, float) and math.isfinite(v) and v > 0 for v in sc), \
                f"{name}: scales {sc}"
        assert type(a.get("align_corners", False)) is bool, f"{name}: {a}"
    elif op == "conv_transpose2d":
        st, pad = a.get("stride", [1, 1]), a.get("padding", [0, 0])
        op_, dil = a.get("output_padding", [0, 0]), a.get("dilation", [1, 1])
        assert _ints(st, 2, 1) and _ints(pad, 2, 0) and _ints(op_, 2, 0) and _ints(dil, 2, 1), \
            f"{name}: {a}"
        assert type(a.get("groups", 1)) is int and a.get("groups", 1) >= 1, f"{name}: {a}"
        assert all(o < s or o < d for o, s, d in zip(op_, st, dil)), \
            f"{name}: output_padding {op_} must be smaller than the stride or the dilation"
        assert w["weight"].dim() == 4, f"{name}: weight of shape {list(w['weight'].shape)}"


def _op(node, xs, w, version=2):
    op, a = node["op"], node.get("attrs", {})
    x = xs[0]
    if op == "conv2d":
        return F.conv2d(x, w["weight"], w.get("bias"), a.get("stride", [1, 1]),
                        a.get("padding", [0, 0]), a.get("dilation", [1, 1]), a.get("groups", 1))
    if op == "batch_norm":
        return F.batch_norm(x, w["running_mean"], w["running_var"], w.get("weight"),
                            w.get("bias"), False, 0.0, a.get("eps", 1e-5))
    if op == "relu":
        return torch.clamp(x, min=0)
    if op == "relu6":
        return torch.clamp(x, 0, 6)
    if op == "max_pool2d":
        k = a["kernel_size"]
        return F.max_pool2d(x, k, a.get("stride", k), a.get("padding", [0, 0]),
                            a.get("dilation", [1, 1]), a.get("ceil_mode", False))
    if op == "avg_pool2d":
        k = a["kernel_size"]
        return F.avg_pool2d(x, k, a.get("stride", k), a.get("padding", [0, 0]),
                            a.get("ceil_mode", False), a.get("count_include_pad", True))
    if op == "adaptive_avg_pool2d":
        return F.adaptive_avg_pool2d(x, a["output_size"])
    if op == "mean":
        assert sorted(d % 4 for d in a["dims"]) == [2, 3] and x.dim() == 4
        return x.mean(a["dims"], keepdim=a.get("keepdim", False))
    if op == "linear":
        if x.dim() == 2:
            return F.linear(x, w["weight"], w.get("bias"))
        # version 3: over the last dim of a rank > 2 value, in float64 from the definition
        assert version >= 3 and x.dim() > 2, f"linear of a rank-{x.dim()} value in v{version}"
        assert x.shape[-1] == w["weight"].shape[1], \
            f"{node['name']}: linear of {list(x.shape)} by {list(w['weight'].shape)}"
        y = x.double() @ w["weight"].double().t()
        return (y if "bias" not in w else y + w["bias"].double()).float()
    if op == "flatten":
        s, e = a.get("start_dim", 1), a.get("end_dim", -1)
        assert s % x.dim() != 0, "flatten of the batch dimension"
        return torch.flatten(x, s, e)
    if op in BINARY:
        return _binary(node, xs, w, version)
    if op == "concat":
        d = a.get("dim", 1)
        assert d % x.dim() != 0, "concat along batch"
        return torch.cat(xs, d)
    if op == "softmax":
        return torch.softmax(x, a.get("dim", -1))
    if op in ("identity", "dropout"):
        return x
    if op in OPS_V2:
        return _activation(op, a, x.double()).float()
    if op in OPS_V3:
        return kestrel_check_v3.run_op(node, x, w)
    if op == "fake_quant":
        return fake_quant(a, x)
    raise ValueError(op)


def fake_quant(a, x):
    """GRAPH_FORMAT.md's quantize-dequantize pair, written out in float32 steps: the inverse
    scale from float64, round half to even, the clamp, a NaN made 0."""
    inv = torch.tensor(1.0 / a["scale"], dtype=torch.float32)
    q = torch.round(x.float() * inv) + a["zero_point"]
    q = torch.where(q.isnan(), 0.0, q.clamp(a["quant_min"], a["quant_max"]))
    return (q - a["zero_point"]) * torch.tensor(a["scale"], dtype=torch.float32)


def _binary(node, xs, w, version):
    """add/sub/mul/div: two values broadcast against each other, or one value with the
    weight `other` or the number `scalar` (rounded to float32), `reverse` putting it first."""
    op, a, x = node["op"], node.get("attrs", {}), xs[0]
    if len(xs) == 2:
        y = xs[1]
        if version == 1:
            assert x.shape == y.shape, f"{node['name']}: add shapes differ in a version-1 graph"
    elif "other" in w:
        y = w["other"]
        assert y.dim() < x.dim() or y.shape[0] == 1, \
            f"{node['name']}: weight of shape {list(y.shape)} supplies the batch dimension"
    else:
        y = torch.tensor(a["scalar"], dtype=torch.float32)
    out = BINARY[op](*((y, x) if a.get("reverse", False) else (x, y)))
    for v in xs:  # the batch comes from the values, never from a weight or a broadcast
        assert v.dim() == out.dim() and v.shape[0] == out.shape[0], \
            f"{node['name']}: {[list(v.shape) for v in xs]} -> {list(out.shape)} moves the batch"
    return out


def _activation(op, a, x):
    """The version-2 activations from GRAPH_FORMAT.md's formulas, on float64 ``x``, written
    out from elementwise primitives rather than calling the matching torch function."""
    if op == "sigmoid":
        return 1 / (1 + torch.exp(-x))
    if op == "silu":
        return x / (1 + torch.exp(-x))
    if op == "hardsigmoid":
        return torch.clamp(x + 3, 0, 6) / 6
    if op == "hardswish":
        return x * torch.clamp(x + 3, 0, 6) / 6
    if op == "tanh":
        return torch.tanh(x)
    if op == "gelu":
        if a.get("approximate", "none") == "tanh":
            return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    if op == "leaky_relu":
        return torch.where(x > 0, x, a.get("negative_slope", 0.01) * x)
    if op == "elu":
        return torch.where(x > 0, x, a.get("alpha", 1.0) * torch.expm1(x))
    if op == "clamp":
        return torch.clamp(x, a.get("min"), a.get("max"))
    raise ValueError(op)


def run(graph, weights, x, layers=None):
    """Every node's output (dict name -> tensor) for input ``x`` (float32). With ``layers``
    (name -> tensor), each node reads its inputs from there instead (local check)."""
    w32 = {k: v.float() for k, v in weights.items()}
    inp = graph["inputs"][0]
    assert list(x.shape[1:]) == inp["shape"][1:], f"input {list(x.shape)} vs {inp['shape']}"
    env = {inp["name"]: x}
    with torch.no_grad():
        for n in graph["nodes"]:
            ws = {role: w32[name] for role, name in n.get("weights", {}).items()}
            xs = [layers[i] if layers is not None else env[i] for i in n["inputs"]]
            env[n["name"]] = _op(n, xs, ws, graph["version"])
    return env


def compare(model_path, ref_path, rtol=1e-5, atol=1e-7, per_layer=True, local=False):
    """Compare outputs (and layers present in the reference). Returns (ok, worst rel err,
    lines). The error measure matches Kestrel: max|out-ref| <= rtol*max|ref| + atol.
    ``local``: each node runs on the reference values of its inputs (see the module doc)."""
    graph, weights = load(model_path)
    validate(graph, weights)
    with safe_open(ref_path, framework="pt") as f:
        ref = {k: f.get_tensor(k) for k in f.keys()}
    layers = None
    if local:
        missing = [n["name"] for n in graph["nodes"] if f"layer.{n['name']}" not in ref]
        if missing:
            return False, math.inf, [f"--local needs every layer; the reference lacks "
                                     f"{missing[:5]}"]
        layers = {n["name"]: ref[f"layer.{n['name']}"].float() for n in graph["nodes"]}
        layers[graph["inputs"][0]["name"]] = ref["input"].float()
    env = run(graph, weights, ref["input"].float(), layers)
    outs = graph["outputs"]
    pairs = [("output" if len(outs) == 1 else f"output.{i}", o) for i, o in enumerate(outs)]
    if per_layer:
        pairs += [(f"layer.{n['name']}", n["name"]) for n in graph["nodes"]
                  if f"layer.{n['name']}" in ref]
    ok, worst, lines = True, 0.0, []
    for key, name in pairs:
        r, o = ref[key].float(), env[name]
        if r.shape != o.shape:
            ok = False
            lines.append(f"{key}: shape {tuple(o.shape)} != reference {tuple(r.shape)}")
            continue
        scale = r.abs().max().item() if r.numel() else 0.0
        err = (o - r).abs().max().item() if r.numel() else 0.0
        rel = err / scale if scale > 0 else err
        good = err <= rtol * scale + atol
        ok &= good
        worst = max(worst, rel)
        if not good or not key.startswith("layer."):
            lines.append(f"{key}: max abs err {err:.3e} max rel err {rel:.3e} "
                         f"tol {rtol * scale + atol:.3e} {'ok' if good else 'OVER'}")
    missing = [n["name"] for n in graph["nodes"] if per_layer and f"layer.{n['name']}" not in ref]
    if per_layer and any(k.startswith("layer.") for k in ref) and missing:
        ok = False
        lines.append(f"layers missing from the reference: {missing[:5]}")
    return ok, worst, lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("ref")
    p.add_argument("--rtol", type=float, default=1e-5)
    p.add_argument("--local", action="store_true",
                   help="run each node on the reference values of its inputs")
    a = p.parse_args(argv)
    ok, worst, lines = compare(a.model, a.ref, a.rtol, local=a.local)
    print("\n".join(lines))
    print(f"{'OK' if ok else 'FAIL'}: worst relative error {worst:.3e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
