#!/usr/bin/env python3
"""Tests of graph version 3's lowerings (layer_norm, permute, reshape, slice, the
upsamplings, conv_transpose2d, linear over the last dim, several outputs) and of
kestrel_check's version-3 reader. Run by test_kestrel_export.py (or pytest, or alone):

    /work/pyenv/bin/python loader/python/test_kestrel_export_v3.py
"""
import itertools
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kestrel_check  # noqa: E402
import kestrel_check_v3  # noqa: E402
from kestrel_export import ExportError, TracedModel  # noqa: E402
from kestrel_graph import convert  # noqa: E402
from test_kestrel_export import TMP, Lambda, expect_error, ops, roundtrip  # noqa: E402

aten = torch.ops.aten


def attrs(graph, op):
    return [n.get("attrs") for n in graph["nodes"] if n["op"] == op]


def test_layer_norm():
    def fwd(s, x):
        y = s.conv(x)                                              # (N, 4, 12, 10)
        a = s.ln(y)                                                # over W
        b = s.ln2(y)                                               # over (H, W), no bias
        c = F.layer_norm(y, [10], eps=1e-3)                        # no weight, no bias
        d = s.ln4(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)       # ConvNeXt's LayerNorm2d
        return a, b, c, d
    m = Lambda(fwd, conv=nn.Conv2d(3, 4, 3, padding=1), ln=nn.LayerNorm(10),
               ln2=nn.LayerNorm([12, 10], bias=False), ln4=nn.LayerNorm(4))
    with torch.no_grad():  # non-trivial affine parameters
        for p in (m.ln.weight, m.ln.bias, m.ln2.weight, m.ln4.weight, m.ln4.bias):
            p.copy_(torch.randn(p.shape))
    g, keys = roundtrip(m)
    assert g["version"] == 3
    assert ops(g) == ["conv2d", "layer_norm", "layer_norm", "layer_norm", "permute",
                      "layer_norm", "permute"], ops(g)
    want = [{"normalized_shape": [10], "eps": 1e-5}, {"normalized_shape": [12, 10], "eps": 1e-5},
            {"normalized_shape": [10], "eps": 1e-3}, {"normalized_shape": [4], "eps": 1e-5}]
    assert attrs(g, "layer_norm") == want, attrs(g, "layer_norm")
    roles = [set(n.get("weights", {})) for n in g["nodes"] if n["op"] == "layer_norm"]
    assert roles == [{"weight", "bias"}, {"weight"}, set(), {"weight", "bias"}], roles
    assert attrs(g, "permute") == [{"dims": [0, 2, 3, 1]}, {"dims": [0, 3, 1, 2]}]


def test_layout_ops():
    def fwd(s, x):
        y = s.conv(x)                                              # (N, 6, 12, 10)
        a = y.view(y.size(0), 2, 3, 12, 10).transpose(1, 2).contiguous().view(-1, 6, 12, 10)
        b = y.unsqueeze(2).squeeze(2)                              # reshape, then flatten
        c = y.unflatten(1, (3, 2)).movedim(1, -1).swapaxes(2, 3)   # reshape, permute x2
        d = y.reshape(y.shape[0], 6, 120).clone()                  # a v1 flatten
        e = torch.flatten(y, 2).permute(0, 2, 1)                   # (N, 120, 6)
        f = y.permute(0, 1, 2, 3).transpose(2, 2)                  # identities: no node
        return a, b, c, d, e, f
    g, _ = roundtrip(Lambda(fwd, conv=nn.Conv2d(3, 6, 3, padding=1)))
    assert g["version"] == 3
    assert ops(g) == ["conv2d", "reshape", "permute", "flatten", "reshape", "flatten", "reshape",
                      "permute", "permute", "flatten", "flatten", "permute"], ops(g)
    assert attrs(g, "reshape") == [{"shape": [2, 3, 12, 10]}, {"shape": [6, 1, 12, 10]},
                                   {"shape": [3, 2, 12, 10]}]
    assert attrs(g, "permute") == [{"dims": [0, 2, 1, 3, 4]}, {"dims": [0, 2, 3, 4, 1]},
                                   {"dims": [0, 1, 3, 2, 4]}, {"dims": [0, 2, 1]}]
    assert g["outputs"][-1] == g["nodes"][0]["name"]  # f is the conv itself
    # reshapes that merge dims after the batch stay the version-1 flatten
    g, _ = roundtrip(Lambda(lambda s, x: (x.view(x.size(0), -1), torch.flatten(x, 2),
                                          x.squeeze().reshape(x.shape[0], 36, 10))))
    assert g["version"] == 1 and ops(g) == ["flatten"] * 3, (g["version"], ops(g))


def test_slices():
    def fwd(s, x):
        y = s.conv(x)                                              # (N, 8, 12, 10)
        a, b = y.chunk(2, dim=1)                                   # two slices
        c = torch.split(y, 3, dim=2)[3]                            # rows 9..12: one slice
        d = torch.split(y, [1, 4, 5], dim=-1)[1]                   # split_with_sizes
        e = torch.tensor_split(y, 3, dim=3)[2]
        f = y.narrow(2, -5, 3)                                     # rows 7..10
        h = y[:, 1:7:2, 3:100, -4:]                                # three slices, clamped
        i = y[:].chunk(1, dim=1)[0]                                # whole: no node
        return a, b * 2, c, d, e, f, h, i
    g, _ = roundtrip(Lambda(fwd, conv=nn.Conv2d(3, 8, 3, padding=1)))
    assert g["version"] == 3
    sl = [(a["dim"], a["start"], a["end"], a["step"]) for a in attrs(g, "slice")]
    assert sl == [(1, 0, 4, 1), (1, 4, 8, 1), (2, 9, 12, 1), (3, 1, 5, 1), (3, 7, 10, 1),
                  (2, 7, 10, 1), (1, 1, 7, 2), (2, 3, 12, 1), (3, 6, 10, 1)], sl
    assert g["outputs"][-1] == g["nodes"][0]["name"]


def test_upsample():
    def fwd(s, x):
        y = s.conv(x)                                              # (N, 4, 12, 10)
        return (F.interpolate(y, scale_factor=2, mode="nearest"), s.up(y),
                F.interpolate(y, size=(7, 23)), F.interpolate(y, scale_factor=0.5),
                aten.upsample_nearest2d(y, [17, 13], 1.7, 1.3),
                F.interpolate(y, size=(5, 31), mode="bilinear"),
                F.interpolate(y, size=(5, 31), mode="bilinear", align_corners=True),
                F.interpolate(y, scale_factor=(1.7, 0.6), mode="bilinear"),
                s.upb(y), F.interpolate(y, size=(1, 1), mode="bilinear"))
    m = Lambda(fwd, conv=nn.Conv2d(3, 4, 3, padding=1), up=nn.Upsample(scale_factor=1.5),
               upb=nn.Upsample(scale_factor=3, mode="bilinear", align_corners=True))
    g, _ = roundtrip(m)
    assert g["version"] == 3
    assert attrs(g, "upsample_nearest2d") == [
        {"size": [24, 20], "scales": [2.0, 2.0]}, {"size": [18, 15], "scales": [1.5, 1.5]},
        {"size": [7, 23]}, {"size": [6, 5], "scales": [0.5, 0.5]},
        {"size": [17, 13], "scales": [1.7, 1.3]}], attrs(g, "upsample_nearest2d")
    assert attrs(g, "upsample_bilinear2d") == [
        {"size": [5, 31], "align_corners": False}, {"size": [5, 31], "align_corners": True},
        {"size": [20, 6], "scales": [1.7, 0.6], "align_corners": False},
        {"size": [36, 30], "scales": [3.0, 3.0], "align_corners": True},
        {"size": [1, 1], "align_corners": False}], attrs(g, "upsample_bilinear2d")


def test_upsample_index_rules():
    """The checker's index rules (GRAPH_FORMAT.md) against PyTorch on every size pair up to
    13 -> 29, with and without scales: exact for nearest, 1e-6 for bilinear. These outputs
    are small, so PyTorch runs its small-output kernel, whose nearest shortcuts for out = in
    and out = 2 in ignore a scale the generic rule uses; those cases are left out of the
    nearest check (10 -> 20 at 2.05 is checked against the generic rule by the kernels'
    own tests, kernels/src/upsample/tests.rs)."""
    scales = [None, 0.5, 0.7, 1.3, 1.5, 1.7, 2.0, 2.1, 2.5, 3.0, 1 / 3]
    for i, o, s in itertools.product(range(1, 14), range(1, 30), scales):
        if s is not None and int(i * s) != o:  # F.interpolate's size from a scale
            continue
        x = torch.arange(float(i)).view(1, 1, 1, i)
        if s is None or o not in (i, 2 * i):
            got = kestrel_check_v3.nearest_index(i, o, s)
            want = aten.upsample_nearest2d(x, [1, o], None, s)[0, 0, 0].long()
            assert torch.equal(got, want), (i, o, s, got, want)
        for ac in (False, True):
            want = aten.upsample_bilinear2d(x, [1, o], ac, None, s)[0, 0, 0].double()
            i0, i1, l1 = kestrel_check_v3.linear_index(i, o, ac, s)
            got = (1 - torch.from_numpy(l1)) * i0.double() + torch.from_numpy(l1) * i1.double()
            assert (got - want).abs().max() <= 1e-6 * max(i, 1), (i, o, s, ac, got, want)


def test_conv_transpose():
    def fwd(s, x):
        y = s.up2(x)                                               # k2 s2: (N, 4, 24, 20)
        z = s.odd(y, output_size=[48, 40])                         # output_padding 1
        return s.grouped(z), F.conv_transpose2d(x, s.w, stride=(1, 2), padding=(0, 1))
    m = Lambda(fwd, up2=nn.ConvTranspose2d(3, 4, 2, stride=2),
               odd=nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1),
               grouped=nn.ConvTranspose2d(6, 4, (3, 2), stride=(1, 2), padding=(2, 0),
                                          dilation=2, groups=2, bias=False))
    m.w = nn.Parameter(torch.randn(3, 5, 3, 3))
    g, keys = roundtrip(m)
    assert g["version"] == 3 and ops(g) == ["conv_transpose2d"] * 4, ops(g)
    assert attrs(g, "conv_transpose2d") == [
        {"stride": [2, 2], "padding": [0, 0], "output_padding": [0, 0], "dilation": [1, 1],
         "groups": 1},
        {"stride": [2, 2], "padding": [1, 1], "output_padding": [1, 1], "dilation": [1, 1],
         "groups": 1},
        {"stride": [1, 2], "padding": [2, 0], "output_padding": [0, 0], "dilation": [2, 2],
         "groups": 2},
        {"stride": [1, 2], "padding": [0, 1], "output_padding": [0, 0], "dilation": [1, 1],
         "groups": 1}], attrs(g, "conv_transpose2d")
    assert "grouped.bias" not in keys and g["nodes"][3]["weights"] == {"weight": "w"}


def test_linear_over_last_dim():
    m = Lambda(lambda s, x: s.fc(F.gelu(s.fc0(x.permute(0, 2, 3, 1)))),
               fc0=nn.Linear(3, 8), fc=nn.Linear(8, 5, bias=False))
    g, _ = roundtrip(m)
    assert g["version"] == 3 and ops(g) == ["permute", "linear", "gelu", "linear"], ops(g)
    m = Lambda(lambda s, x: s.fc(s.conv(x).unsqueeze(1)), conv=nn.Conv2d(3, 4, 3),
               fc=nn.Linear(8, 2))
    g, _ = roundtrip(m)
    assert g["version"] == 3 and ops(g) == ["conv2d", "reshape", "linear"], ops(g)
    g, _ = roundtrip(nn.Sequential(nn.Flatten(), nn.Linear(360, 4)))
    assert g["version"] == 1 and ops(g) == ["flatten", "linear"], g


def test_several_outputs():
    conv = nn.Conv2d(3, 4, 3)
    for fn, n in [(lambda s, x: (s.c(x), F.relu(s.c(x)), x), 3),
                  (lambda s, x: [F.relu(x), s.c(x)], 2),
                  (lambda s, x: {"out": s.c(x), "aux": F.relu(x), "b": s.c(x) * 2}, 3)]:
        g, _ = roundtrip(Lambda(fn, c=conv))
        assert len(g["outputs"]) == n, g["outputs"]
    assert g["outputs"] == [g["nodes"][0]["name"], "relu", g["nodes"][-1]["name"]], g
    assert ops(g) == ["conv2d", "relu", "mul"] or ops(g)[1:] == ["relu", "conv2d", "mul"], ops(g)
    tm = TracedModel(Lambda(lambda s, x: {"out": F.relu(x), "aux": x.mean([2, 3])}).eval(),
                     torch.randn(2, 3, 4, 4))
    ref = os.path.join(TMP, "dict.ref.safetensors")
    eager = tm.reference(torch.randn(1, 3, 4, 4), ref)
    assert [list(e.shape) for e in eager] == [[1, 3, 4, 4], [1, 3]]  # insertion order


class AntiAliased(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", antialias=True)


class BatchView(nn.Module):
    def forward(self, x):
        return x.view(-1)


class Unbind(nn.Module):
    def forward(self, x):
        return x.unbind(1)[0]


class Bicubic(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="bicubic")


def test_v3_refusals():
    # each names the node, the value or the op, and the model's source line
    expect_error(AntiAliased(), "antialias=True", "node _upsample_bilinear2d_aa",
                 'test_kestrel_export_v3.py:', 'antialias=True)')
    expect_error(BatchView(), "a reshape that moves the batch: [N, 3, 12, 10] -> [360*N]", "node view",
                 "return x.view(-1)")
    expect_error(Unbind(), "unsupported op", "aten.unbind.int", "return x.unbind(1)[0]")
    expect_error(Bicubic(), "unsupported op", "aten.upsample_bicubic2d", 'mode="bicubic")')
    for fn, words in [
            (lambda s, x: x.unsqueeze(0), ["a reshape that moves the batch", "node unsqueeze"]),
            (lambda s, x: x.reshape(x.size(0) * 3, 12, 10), ["reshape that moves the batch"]),
            (lambda s, x: x.permute(1, 0, 2, 3), ["permute that moves the batch"]),
            (lambda s, x: F.interpolate(x, scale_factor=2, mode="nearest-exact"),
             ["unsupported op", "nearest_exact"])]:
        expect_error(Lambda(fn), *words)
    # torch.export cannot trace a slice of a dynamic batch: edit the dim of a traced one
    ep = torch.export.export(Lambda(lambda s, x: x[:, 1:]).eval(), (torch.randn(2, 3, 4, 4),),
                             dynamic_shapes=({0: torch.export.Dim("batch")},))
    sl = [n for n in ep.graph.nodes if n.target == aten.slice.Tensor][-1]
    sl.args = (sl.args[0], 0) + sl.args[2:]
    try:
        convert(ep, [3, 4, 4])
        raise AssertionError("no ExportError")
    except ExportError as e:
        assert "a slice of the batch dimension" in str(e) and f"node {sl.name}" in str(e), e

    def permuted_then_base(s, x):
        x = x.clone()
        y = x.permute(0, 2, 3, 1)
        y.relu_()                 # also changes x, used below
        return x.mean([2, 3])
    expect_error(Lambda(permuted_then_base), "reshaped view")

    def piece_then_whole(s, x):
        x = x.clone()
        a, _ = x.chunk(2, dim=3)
        a.relu_()
        return x
    expect_error(Lambda(piece_then_whole), "reshaped view")


def _refusal(graph, weights):
    try:
        kestrel_check.validate(graph, weights)
        kestrel_check.run(graph, weights, torch.randn(2, 3, 6, 6))
    except AssertionError as e:
        return str(e)
    raise AssertionError(f"accepted: {graph['nodes']}")


def test_v3_oracle():
    """kestrel_check reads version 3 like a reader: it refuses a v3 op or form in an older
    file and malformed attributes, and a wrong attribute changes its result."""
    def fwd(s, x):
        y = s.ct(x)                                                # (N, 4, 12, 12)
        y = s.ln(y.permute(0, 2, 3, 1)).reshape(y.size(0), 12, 48)
        y = y.view(y.size(0), 12, 12, 4)[:, :, 2:9:3].permute(0, 3, 1, 2)
        return (F.interpolate(y, scale_factor=1.7), s.fc(y),
                F.interpolate(y, size=(5, 7), mode="bilinear", align_corners=True))
    m = Lambda(fwd, ct=nn.ConvTranspose2d(3, 4, 2, 2), ln=nn.LayerNorm(4), fc=nn.Linear(3, 2))
    path = os.path.join(TMP, "v3.safetensors")
    tm = TracedModel(m.eval(), torch.randn(2, 3, 6, 6))
    g = tm.save(path)
    w = dict(tm.graph.weights)
    assert ops(g) == ["conv_transpose2d", "permute", "layer_norm", "flatten", "reshape", "slice",
                      "permute", "upsample_nearest2d", "linear", "upsample_bilinear2d"], ops(g)
    x = torch.randn(2, 3, 6, 6)
    good = kestrel_check.run(g, w, x)
    by_op = {n["op"]: i for i, n in enumerate(g["nodes"])}

    def edited(op, edit):
        bad = json.loads(json.dumps(g))
        edit(bad["nodes"][by_op[op]])
        return bad
    # a wrong attribute is a different result
    for op, edit in [("upsample_nearest2d", lambda n: n["attrs"].pop("scales")),
                     ("upsample_bilinear2d", lambda n: n["attrs"].update(align_corners=False)),
                     ("slice", lambda n: n["attrs"].update(step=1, end=5)),
                     ("conv_transpose2d", lambda n: n["attrs"].update(padding=[1, 1])),
                     ("permute", lambda n: n["attrs"].update(dims=[0, 2, 1, 3]))]:
        o = g["outputs"][0] if op != "upsample_bilinear2d" else g["outputs"][2]
        try:
            out = kestrel_check.run(edited(op, edit), w, x)[o]
        except AssertionError:  # a shape a later node refuses
            continue
        assert out.shape != good[o].shape or not torch.equal(out, good[o]), op
    # malformed files
    for op, edit, why in [
            ("permute", lambda n: n["attrs"].update(dims=[1, 0, 2, 3]), "moves the batch"),
            ("permute", lambda n: n["attrs"].update(dims=[0, 1, 1, 3]), "not a permutation"),
            ("reshape", lambda n: n["attrs"].update(shape=[-1, -1]), "shape"),
            ("reshape", lambda n: n["attrs"].update(shape=[12, 4, 13]), "cannot take shape"),
            ("slice", lambda n: n["attrs"].update(dim=0), "never the batch"),
            ("slice", lambda n: n["attrs"].update(start=5, end=2), "5:2:3"),
            ("slice", lambda n: n["attrs"].pop("end"), "without ['end']"),
            ("upsample_nearest2d", lambda n: n["attrs"].update(scales=[1.7, -1.0]), "scales"),
            ("upsample_bilinear2d", lambda n: n["attrs"].update(align_corners=1), "align"),
            ("conv_transpose2d", lambda n: n["attrs"].update(output_padding=[2, 0]),
             "output_padding"),
            ("conv_transpose2d", lambda n: n.pop("weights"), "weights"),
            ("layer_norm", lambda n: n["attrs"].update(normalized_shape=[2, 4]), "weight of shape"),
            ("layer_norm", lambda n: n.pop("weights") and n["attrs"].update(
                normalized_shape=[3, 4]), "not the trailing dims")]:
        assert why in _refusal(edited(op, edit), w), (op, why, _refusal(edited(op, edit), w))
    for version in (1, 2):
        old = json.loads(json.dumps(g))
        old["version"] = version
        assert f"unknown op conv_transpose2d in a version {version} graph" in _refusal(old, w)
    perm = {"version": 2, "inputs": g["inputs"], "outputs": ["p"], "nodes": [
        {"name": "p", "op": "permute", "inputs": ["input"], "attrs": {"dims": [0, 2, 3, 1]}}]}
    assert "unknown op permute in a version 2 graph" in _refusal(perm, w)
    # linear over the last dim of a rank-4 value is a version-3 form
    lin = {"version": 2, "inputs": g["inputs"], "outputs": ["fc"], "nodes": [
        {"name": "fc", "op": "linear", "inputs": ["input"],
         "weights": {"weight": "w"}}]}
    assert "linear of a rank-4 value in v2" in _refusal(lin, {"w": torch.randn(2, 6)})


if __name__ == "__main__":
    import test_kestrel_export
    sys.exit(test_kestrel_export.main())
