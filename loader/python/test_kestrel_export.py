#!/usr/bin/env python3
"""Tests of the exporter's corner cases: each model is exported, its reference written,
and the file re-run from its JSON alone by kestrel_check.py.  Plain python (no pytest
needed; pytest also collects the test_* functions):

    /work/pyenv/bin/python loader/python/test_kestrel_export.py

It also runs the tests of graph version 3's ops, in test_kestrel_export_v3.py, and of
PT2E-quantized models (graph version 4), in test_kestrel_export_pt2e.py.
"""
import json
import os
import subprocess
import sys
import tempfile
import traceback

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kestrel_check  # noqa: E402
from kestrel_graph import convert  # noqa: E402
from kestrel_export import (ExportError, TracedModel, export, randomize_bn,  # noqa: E402
                            round_weights, save_reference)

TMP = tempfile.mkdtemp(prefix="kestrel_test_")


def roundtrip(model, shape=(1, 3, 12, 10), dtype=torch.float32, batches=(1, 3)):
    """Export + reference at several batches + JSON re-run; returns (graph, weight names)."""
    torch.manual_seed(0)
    model = model.eval()
    if dtype != torch.float32:
        model = round_weights(model, dtype)
    path = os.path.join(TMP, "m.safetensors")
    tm = TracedModel(model, torch.randn(shape))
    graph = tm.save(path, dtype)
    for b in batches:
        ref = os.path.join(TMP, f"m.b{b}.ref.safetensors")
        tm.reference(torch.randn((b,) + tuple(shape[1:])), ref, intermediates=True)
        ok, worst, lines = kestrel_check.compare(path, ref)
        assert ok, "\n".join(lines)
    with safe_open(path, framework="pt") as f:
        keys = set(f.keys())
        assert all(f.get_tensor(k).dtype == dtype for k in keys)
    return graph, keys


def ops(graph):
    return [n["op"] for n in graph["nodes"]]


def expect_error(model, *words, shape=(2, 3, 12, 10)):
    try:
        TracedModel(model.eval(), torch.randn(shape))
    except ExportError as e:
        for w in words:
            assert w in str(e), f"{w!r} not in {e}"
        return str(e)
    raise AssertionError("no ExportError")


class Lambda(nn.Module):
    def __init__(self, fn, **mods):
        super().__init__()
        self.fn = fn
        for k, v in mods.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.fn(self, x)


def test_unsupported_op_names_op_and_line():
    msg = expect_error(Sine(), "aten.sin", "test_kestrel_export.py")
    assert "return torch.sin(x)" in msg, msg


def test_refusals():
    expect_error(Lambda(lambda s, x: torch.add(x, x, alpha=2)), "alpha")
    expect_error(Lambda(lambda s, x: x.mean([2, 3]).t()), "aten.t")
    expect_error(Lambda(lambda s, x: x.mean(1)), "mean")
    expect_error(Lambda(lambda s, x: x.view(x.size(0), 3, -1).transpose(0, 2)),
                 "permute that moves the batch")


def test_functional_forms_and_aliases():
    w = nn.Parameter(torch.randn(4, 3, 3, 3))

    def fwd(s, x):
        y = F.conv2d(x, s.w, padding="same")
        y = torch.convolution(y, s.w2, s.b2, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
        y = F.max_pool2d(y, 2, return_indices=True)[0].contiguous().clone().detach()
        y = F.relu6(y) + F.relu(y)
        z = y.view(-1, y.shape[1] * y.shape[2] * y.shape[3])
        z = torch.addmm(s.b, z, s.fc.t())
        return F.softmax(torch.mm(z, s.fc2.t()), -1), y.mean((3, 2))
    m = Lambda(fwd)
    m.w, m.w2, m.b2 = w, nn.Parameter(torch.randn(5, 4, 1, 1)), nn.Parameter(torch.randn(5))
    m.fc, m.b = nn.Parameter(torch.randn(7, 5 * 6 * 5)), nn.Parameter(torch.randn(7))
    m.fc2 = nn.Parameter(torch.randn(3, 7))
    g, keys = roundtrip(m)
    assert ops(g) == ["conv2d", "conv2d", "max_pool2d", "relu6", "relu", "add", "flatten",
                      "linear", "linear", "softmax", "mean"], ops(g)
    assert g["nodes"][0]["attrs"]["padding"] == [1, 1]
    assert g["nodes"][7]["weights"] == {"weight": "fc", "bias": "b"}
    assert g["nodes"][8]["weights"] == {"weight": "fc2"}
    assert g["nodes"][-1]["attrs"] == {"dims": [3, 2], "keepdim": False}
    assert len(g["outputs"]) == 2 and keys == {"w", "w2", "b2", "fc", "b", "fc2"}


def test_folding_and_naming():
    import torch.nn.utils.prune as prune
    c = nn.Conv2d(3, 4, 3)
    prune.l1_unstructured(c, "weight", 0.5)
    shared = nn.Conv2d(4, 4, 1)

    def fwd(s, x):
        x = s.shared(s.shared(s.c(x)))  # one module called twice
        return F.conv2d(x, s.scale * s.w)  # parameter-only product: folded
    m = Lambda(fwd, c=c, shared=shared)
    m.w, m.scale = nn.Parameter(torch.randn(2, 4, 1, 1)), nn.Parameter(torch.tensor(2.0))
    g, keys = roundtrip(m)
    names = [n["name"] for n in g["nodes"]]
    assert names == ["c", "shared.conv2d_1", "shared.conv2d_2", "conv2d_3"], names
    assert keys == {"c.weight", "c.bias", "shared.weight", "shared.bias", "conv2d_3.weight"}
    g2, _ = roundtrip(m)
    assert g2 == g  # deterministic


def test_inplace_semantics():
    def fwd(s, x):
        y = x.clone()
        y.relu_()                 # y is a copy: x unchanged
        z = s.drop(x)             # eval dropout returns x itself
        z.add_(y)                 # ... so this also changes x
        return torch.cat([x, z, y], 1)
    m = Lambda(fwd, drop=nn.Dropout())
    g, _ = roundtrip(m)
    assert ops(g) == ["relu", "add", "concat"]
    assert g["nodes"][2]["inputs"] == [g["nodes"][1]["name"], g["nodes"][1]["name"],
                                       g["nodes"][0]["name"]]

    def flat_relu(s, x):
        y = torch.flatten(x, 1)
        y.relu_()
        return y
    g, _ = roundtrip(Lambda(flat_relu))
    assert ops(g) == ["flatten", "relu"]

    def flat_relu_then_base(s, x):
        y = torch.flatten(x, 1)
        y.relu_()                 # also changes x, which is used below
        return x.mean([2, 3])
    expect_error(Lambda(flat_relu_then_base), "reshaped view")


def test_batchnorm_variants_and_bf16():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False), nn.Identity(),
                      nn.BatchNorm2d(4, eps=1e-3), nn.AdaptiveAvgPool2d((None, 3)),
                      nn.Flatten(), nn.Dropout(), nn.Linear(4 * 10 * 3, 5), nn.Dropout())
    randomize_bn(m, 0, calibrate=torch.randn(4, 3, 12, 10))
    g, keys = roundtrip(m, dtype=torch.bfloat16)
    assert ops(g) == ["conv2d", "batch_norm", "batch_norm", "adaptive_avg_pool2d", "flatten",
                      "linear"]
    assert set(g["nodes"][1]["weights"]) == {"running_mean", "running_var"}
    assert g["nodes"][2]["attrs"] == {"eps": 1e-3}
    assert g["nodes"][3]["attrs"] == {"output_size": [10, 3]}
    assert g["outputs"] == ["7"] and not any("num_batches" in k for k in keys)


def test_public_api_and_cli():
    m = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(inplace=True)).eval()
    x = torch.randn(1, 3, 9, 9)
    p, r = os.path.join(TMP, "api.safetensors"), os.path.join(TMP, "api.ref.safetensors")
    export(m, x, p, dtype=torch.float16)
    save_reference(round_weights(m, torch.float16), x, r, intermediates=True)
    assert kestrel_check.compare(p, r)[0]
    with safe_open(r, framework="pt") as f:
        assert set(f.keys()) == {"input", "output", "layer.0", "layer.1"}
    cli = [sys.executable, os.path.join(HERE, "kestrel_export.py")]
    assert "--input-shape" in subprocess.run(cli + ["--help"], capture_output=True,
                                             text=True).stdout
    out = subprocess.run(cli + ["torchvision:resnet18", "--input-shape", "1,3,40,56", "-o", p,
                                "--reference", r, "--intermediates", "--randomize-bn",
                                "--num-classes", "7", "--dtype", "f16"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    ok, _, lines = kestrel_check.compare(p, r)
    assert ok, lines
    with safe_open(p, framework="pt") as f:
        g = json.loads(f.metadata()["kestrel.graph"])
    assert g["inputs"] == [{"name": "input", "shape": [-1, 3, 40, 56]}]
    assert g["outputs"] == ["fc"] and g["nodes"][-1]["weights"]["weight"] == "fc.weight"
    bad = subprocess.run(cli + ["test_kestrel_export:Sine", "--input-shape", "1,3,4,4", "-o", p],
                         capture_output=True, text=True, cwd=HERE)
    assert bad.returncode == 2 and "aten.sin" in bad.stderr, bad.stderr


# (form, expected op, expected attrs): every way a model spells each activation, applied
# to a conv output of std ~3 so that every formula's branches (e.g. hardsigmoid's +-3) occur
ACTIVATIONS = [
    (nn.Sigmoid(), "sigmoid", None),
    (lambda y: y.clone().sigmoid_(), "sigmoid", None),
    (nn.SiLU(), "silu", None),
    (nn.SiLU(inplace=True), "silu", None),
    (F.silu, "silu", None),
    (nn.Hardsigmoid(), "hardsigmoid", None),
    (lambda y: F.hardsigmoid(y, inplace=True), "hardsigmoid", None),
    (nn.Hardswish(inplace=True), "hardswish", None),
    (F.hardswish, "hardswish", None),
    (nn.Tanh(), "tanh", None),
    (lambda y: y.clone().tanh_(), "tanh", None),
    (nn.GELU(), "gelu", {"approximate": "none"}),
    (lambda y: F.gelu(y, approximate="tanh"), "gelu", {"approximate": "tanh"}),
    (lambda y: torch.ops.aten.gelu_(y, approximate="tanh"), "gelu", {"approximate": "tanh"}),
    (nn.LeakyReLU(), "leaky_relu", {"negative_slope": 0.01}),
    (lambda y: F.leaky_relu(y, 0.2, inplace=True), "leaky_relu", {"negative_slope": 0.2}),
    (nn.ELU(), "elu", {"alpha": 1.0}),
    (nn.ELU(0.5, inplace=True), "elu", {"alpha": 0.5}),
    (lambda y: F.elu(y, alpha=2), "elu", {"alpha": 2.0}),
    (nn.Hardtanh(), "clamp", {"min": -1.0, "max": 1.0}),
    (lambda y: F.hardtanh(y, -2, 3, inplace=True), "clamp", {"min": -2.0, "max": 3.0}),
    (lambda y: y.clamp(-1, 2), "clamp", {"min": -1.0, "max": 2.0}),
    (lambda y: torch.clamp(y, min=0.5), "clamp", {"min": 0.5}),
    (lambda y: y.clamp_(max=1), "clamp", {"max": 1.0}),
    (lambda y: torch.clamp_min(y, -0.5), "clamp", {"min": -0.5}),
    (lambda y: torch.clamp_max_(y, 0.25), "clamp", {"max": 0.25}),
    (lambda y: y.clamp(0, 6), "clamp", {"min": 0.0, "max": 6.0}),
    (nn.Hardtanh(0, 6), "relu6", None),
    (lambda y: F.hardtanh(y, 0.0, 6.0, inplace=True), "relu6", None),
    (nn.ReLU6(inplace=True), "relu6", None),
    (F.relu6, "relu6", None),
]


def test_activations():
    def fwd(s, x):
        y = s.c(x)
        # an in-place form works on its own copy, so every branch sees the conv output
        return torch.cat([fn(y.clone()) for fn in s.fns], 1)
    m = Lambda(fwd, c=nn.Conv2d(3, 2, 3, padding=1))
    m.fns = [fn for fn, _, _ in ACTIVATIONS]
    for i, (fn, _, _) in enumerate(ACTIVATIONS):
        if isinstance(fn, nn.Module):
            setattr(m, f"a{i}", fn)
    with torch.no_grad():
        m.c.weight.mul_(15)
    g, _ = roundtrip(m)
    got = [(n["op"], n.get("attrs")) for n in g["nodes"][1:-1]]
    assert got == [(op, attrs) for _, op, attrs in ACTIVATIONS], got
    assert g["version"] == 2
    y = m.c(torch.randn(8, 3, 12, 10))
    assert (y < -3).any() and (y > 6).any(), "the conv output misses a formula's branch"


def test_activation_refusals():
    aten = torch.ops.aten
    msg = expect_error(Lambda(lambda s, x: x.clamp(min=torch.tensor(0.5))), "tensor bound",
                       "node clamp")
    assert "aten.clamp.Tensor" in msg, msg
    expect_error(Lambda(lambda s, x: torch.clamp_max(x, torch.tensor(0.5))), "tensor bound",
                 "node clamp_max")
    expect_error(Lambda(lambda s, x: x.clamp(2, 1)), "min 2.0 > max 1.0", "node clamp")
    expect_error(Lambda(lambda s, x: aten.hardtanh(x, 2.0, 1.0)), "min 2.0 > max 1.0",
                 "node hardtanh")
    expect_error(Lambda(lambda s, x: x.clamp(max=float("inf"))), "finite", "node clamp")
    expect_error(Lambda(lambda s, x: aten.elu(x, 1.0, 2.0)), "scale=2.0", "node elu")
    expect_error(Lambda(lambda s, x: aten.elu_(x.clone(), 1.0, 1, 0.5)), "input_scale=0.5",
                 "node elu_")
    expect_error(nn.SELU(), "aten.selu")  # elu with scale != 1 by another name: not lowered
    # torch itself refuses gelu's unknown `approximate` values, so edit a traced graph
    ep = torch.export.export(nn.GELU().eval(), (torch.randn(2, 3, 4, 4),),
                             dynamic_shapes=({0: torch.export.Dim("batch")},))
    gelu = [n for n in ep.graph.nodes if n.target == aten.gelu.default][0]
    gelu.kwargs = {"approximate": "erf"}
    try:
        convert(ep, [3, 4, 4])
        raise AssertionError("no ExportError")
    except ExportError as e:
        assert "approximate='erf'" in str(e) and "node gelu" in str(e), e


def test_graph_version():
    old = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.ReLU6(), nn.Hardtanh(0, 6))
    g, _ = roundtrip(old)
    assert g["version"] == 1 and ops(g) == ["conv2d", "relu", "relu6", "relu6"], g
    for act in (nn.SiLU(), nn.Hardtanh(-1, 1), nn.LeakyReLU()):
        g, _ = roundtrip(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), act))
        assert g["version"] == 2, g
    # the oracle reads like a reader: a version-1 graph may not use a version-2 op
    g["version"] = 1
    try:
        kestrel_check.validate(g, {k: torch.zeros(1) for k in ("0.weight", "0.bias")})
        raise AssertionError("a version-1 graph with leaky_relu validated")
    except AssertionError as e:
        assert "unknown op leaky_relu in a version 1 graph" in str(e), e


def test_binary_ops():
    def fwd(s, x):
        y = s.c(x)                                     # [N, 4, H, W]
        se = torch.sigmoid(y.mean([2, 3], keepdim=True))  # [N, 4, 1, 1]
        v = torch.flatten(se, 1)                       # [N, 4]
        z = y.clone()
        z.mul_(se)                                     # in place, broadcast
        z.add_(1.5)
        return (se * y, y * se, y * s.ls, s.ls * y, y * 2.0, 2 * y, y / 3, 1 - y, y - se,
                y / (se + 0.5), y + se, s.row - y, y - s.bias, s.ls / se, v * s.vec,
                torch.add(y, s.ls, alpha=0.5), torch.sub(y, 1.5, alpha=2), y * torch.tensor(0.5),
                y * (s.ls * 2), torch.rsub(y, s.ls), y * y, z)
    m = Lambda(fwd, c=nn.Conv2d(3, 4, 3, padding=1))
    m.ls, m.vec = nn.Parameter(torch.rand(4, 1, 1) + 0.5), nn.Parameter(torch.randn(4))
    m.row = nn.Parameter(torch.randn(10))              # rank 1: broadcast along W
    m.register_buffer("bias", torch.randn(1, 4, 1, 1))
    g, keys = roundtrip(m)
    assert g["version"] == 2
    nodes = {n["name"]: n for n in g["nodes"]}
    got = []
    for o in g["outputs"]:
        n = nodes[o]
        kinds = ["se" if nodes.get(i, {}).get("op") == "sigmoid" else
                 "y" if nodes.get(i, {}).get("op") == "conv2d" else nodes[i]["op"]
                 for i in n["inputs"]]
        w = n.get("weights", {}).get("other")
        if w is not None and w.startswith(n["name"] + "."):
            w = "<node>." + w[len(n["name"]) + 1:]    # a folded constant, named after its node
        got.append((n["op"], kinds, w, n.get("attrs")))
    no, f, t = None, False, True
    want = [("mul", ["se", "y"], no, no), ("mul", ["y", "se"], no, no),
            ("mul", ["y"], "ls", {"reverse": f}), ("mul", ["y"], "ls", {"reverse": f}),
            ("mul", ["y"], no, {"scalar": 2.0, "reverse": f}),
            ("mul", ["y"], no, {"scalar": 2.0, "reverse": f}),
            ("div", ["y"], no, {"scalar": 3.0, "reverse": f}),
            ("sub", ["y"], no, {"scalar": 1.0, "reverse": t}), ("sub", ["y", "se"], no, no),
            ("div", ["y", "add"], no, no), ("add", ["y", "se"], no, no),
            ("sub", ["y"], "row", {"reverse": t}), ("sub", ["y"], "bias", {"reverse": f}),
            ("div", ["se"], "ls", {"reverse": t}), ("mul", ["flatten"], "vec", {"reverse": f}),
            ("add", ["y"], "<node>.other", {"reverse": f}),
            ("sub", ["y"], no, {"scalar": 3.0, "reverse": f}),  # alpha folded: 1.5 * 2
            ("mul", ["y"], "<node>.other", {"reverse": f}),
            ("mul", ["y"], "<node>.other", {"reverse": f}),
            ("sub", ["y"], "ls", {"reverse": t}), ("mul", ["y", "y"], no, no),
            ("add", ["mul"], no, {"scalar": 1.5, "reverse": f})]
    assert got == want, "\n".join(f"{a}\n{b}\n" for a, b in zip(got, want) if a != b)
    assert [n["inputs"] for n in g["nodes"] if n["op"] == "add" and
            n.get("attrs") == {"scalar": 0.5, "reverse": False}] == [[g["nodes"][2]["name"]]]
    assert keys == {"c.weight", "c.bias", "ls", "vec", "row", "bias"} | {
        n["weights"]["other"] for n in g["nodes"]
        if n.get("weights", {}).get("other", "").endswith(".other")}
    with safe_open(os.path.join(TMP, "m.safetensors"), framework="pt") as f:
        folded = sorted(k for k in f.keys() if k.endswith(".other"))
        assert [list(f.get_tensor(k).shape) for k in folded] == [[4, 1, 1], [], [4, 1, 1]], \
            folded                                     # alpha*ls, tensor(0.5), ls*2
    g2, _ = roundtrip(m, batches=(2,))
    assert g2 == g  # deterministic, folded names included


def test_binary_version():
    g, _ = roundtrip(Lambda(lambda s, x: s.c(x) + F.relu(s.c(x)), c=nn.Conv2d(3, 4, 3)))
    assert g["version"] == 1 and ops(g) == ["conv2d", "conv2d", "relu", "add"], g
    assert set(g["nodes"][-1]) == {"name", "op", "inputs"}, g["nodes"][-1]
    g, _ = roundtrip(Lambda(lambda s, x: F.relu(x).add_(x)))   # in place, equal shapes
    assert g["version"] == 1 and ops(g) == ["relu", "add"], g
    for fn in (lambda s, x: x + x.mean([2, 3], keepdim=True), lambda s, x: x + 1.0,
               lambda s, x: x - x, lambda s, x: x + s.p):
        m = Lambda(fn)
        m.p = nn.Parameter(torch.randn(3, 1, 1))
        g, _ = roundtrip(m)
        assert g["version"] == 2 and ops(g)[-1] in ("add", "sub"), g


def test_binary_oracle():
    """kestrel_check reads the binary forms like a reader: a wrong `reverse` is a mismatch,
    a malformed form is refused."""
    m = Lambda(lambda s, x: (1 - x, s.p / torch.sigmoid(x)))
    m.p = nn.Parameter(torch.randn(3, 1, 1))
    path, ref = os.path.join(TMP, "rev.safetensors"), os.path.join(TMP, "rev.ref.safetensors")
    tm = TracedModel(m.eval(), torch.randn(2, 3, 4, 4))
    g = tm.save(path)
    tm.reference(torch.randn(2, 3, 4, 4), ref, intermediates=True)
    assert kestrel_check.compare(path, ref)[0] and kestrel_check.compare(path, ref, local=True)[0]
    tm.reference(torch.randn(2, 3, 4, 4), ref)  # no layers: --local cannot run
    ok, _, lines = kestrel_check.compare(path, ref, local=True)
    assert not ok and "--local needs every layer" in lines[0], lines
    tm.reference(torch.randn(2, 3, 4, 4), ref, intermediates=True)
    w = dict(tm.graph.weights)
    for i in (0, 1):  # 1 - x (scalar) and p / sigmoid(x) (weight) with reverse dropped
        bad = json.loads(json.dumps(g))
        n = [n for n in bad["nodes"] if n["op"] in ("sub", "div")][i]
        assert n["attrs"]["reverse"] is True
        n["attrs"]["reverse"] = False
        env = kestrel_check.run(bad, w, torch.randn(2, 3, 4, 4))
        good = kestrel_check.run(g, w, env["input"])
        assert not torch.equal(env[n["name"]], good[n["name"]]), n

    def refusal(graph):
        try:
            kestrel_check.validate(graph, w)
        except AssertionError as e:
            return str(e)
        raise AssertionError(f"validated: {graph['nodes']}")
    for edit, why in [(lambda n: n["attrs"].update(reverse=1), "reverse"),
                      (lambda n: n.update(weights={"other": "p"}), "exactly one of"),
                      (lambda n: n.update(inputs=["input", "input"]), "no weight or attribute"),
                      (lambda n: n["attrs"].update(scalar=float("inf")), "scalar")]:
        bad = json.loads(json.dumps(g))
        edit(bad["nodes"][0])  # 1 - x: sub with a scalar
        assert why in refusal(bad), refusal(bad)
    v1 = {"version": 1, "inputs": g["inputs"], "outputs": ["a"],
          "nodes": [{"name": "a", "op": "add", "inputs": ["input"], "attrs": {"scalar": 1.0}}]}
    assert "unknown attribute scalar" in refusal(v1)


def test_binary_refusals():
    m = Lambda(lambda s, x: x * s.ib)
    m.register_buffer("ib", torch.ones(3, 1, 1, dtype=torch.long))
    expect_error(m, "torch.int64", "node mul")
    m = Lambda(lambda s, x: x * s.db)
    m.register_buffer("db", torch.ones(3, 1, 1, dtype=torch.float64))
    expect_error(m, "float64 result", "node mul")
    expect_error(Lambda(lambda s, x: x * True), "bool operand", "node mul")
    expect_error(Lambda(lambda s, x: x / float("nan")), "finite", "node div")
    expect_error(Lambda(lambda s, x: torch.add(x, x, alpha=2)), "alpha=2", "node add")
    expect_error(Lambda(lambda s, x: torch.sub(x, F.relu(x), alpha=0.5)), "alpha=0.5",
                 "node sub")
    expect_error(Lambda(lambda s, x: torch.rsub(x, 1.0, alpha=2)), "alpha=2", "node rsub")
    expect_error(Lambda(lambda s, x: torch.div(x, 2, rounding_mode="floor")),
                 "rounding_mode='floor'", "node div")
    expect_error(Lambda(lambda s, x: torch.div(x, F.relu(x) + 1, rounding_mode="trunc")),
                 "rounding_mode='trunc'", "node div")
    # a constant operand may not supply (or move) the batch dimension
    expect_error(Lambda(lambda s, x: x.mean([2, 3]) * torch.ones(5, 1, 3)), "batch",
                 "node mul")
    # operands that are neither a value of the graph nor a constant tensor
    expect_error(Lambda(lambda s, x: x * x.size(0)), "symbolic", "node mul")
    expect_error(Lambda(lambda s, x: (lambda y, i: y * i)(*F.max_pool2d(
        x, 2, return_indices=True))), "first result", "node mul")


class Sine(nn.Module):
    def forward(self, x):
        return torch.sin(x)


def main():
    import test_kestrel_export_pt2e  # PT2E-quantized models (graph version 4)
    import test_kestrel_export_v3  # the graph-version-3 lowerings, in their own file
    tests = [(k, v) for k, v in list(globals().items()) + list(vars(test_kestrel_export_v3).items())
             + list(vars(test_kestrel_export_pt2e).items())
             if k.startswith("test_") and callable(v)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
            passed += 1
            print(f"ok   {name}")
        except Exception:
            failed += 1
            print(f"FAIL {name}\n{traceback.format_exc()}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
