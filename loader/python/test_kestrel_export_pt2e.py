#!/usr/bin/env python3
"""Tests of the export of PyTorch's PT2E-quantized models (graph version 4): a model
quantized by torchao's flow exports with every quantize_per_tensor/dequantize_per_tensor
pair as one `fake_quant` node and each dequantize_per_channel of int8 weights folded into
the float32 weight PyTorch computes, and its JSON re-run (kestrel_check) matches PyTorch's
converted model exactly; Q/DQ a Kestrel graph cannot carry are export errors. The same
for torchao's affine ops (quantize_affine / dequantize_affine, from its AffineQuantized
observers): per-tensor activations and per-channel int8 weights export as above, other
schemes are export errors. Needs torchao (requirements.txt). Run by
test_kestrel_export.py (or pytest, or alone):

    /work/pyenv/bin/python loader/python/test_kestrel_export_pt2e.py
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kestrel_check  # noqa: E402
from kestrel_export import ExportError, TracedModel, export, quantize_pt2e  # noqa: E402
from test_kestrel_export import TMP  # noqa: E402


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 3 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def pt2e(model, shape):
    """``model`` through ``quantize_pt2e``, calibrated on 4 seeded batches."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn((2,) + shape, generator=g)
    return quantize_pt2e(model, x, [torch.randn((2,) + shape, generator=g) for _ in range(4)])


def test_pt2e_model_exports_fake_quant_and_float_weights():
    torch.manual_seed(0)
    shape = (3, 12, 8)
    q = pt2e(Small(), shape)
    tm = TracedModel(q, torch.randn((1,) + shape))
    graph = tm.graph_json()
    assert graph["version"] == 4, graph["version"]
    fq = [n for n in graph["nodes"] if n["op"] == "fake_quant"]
    # The input, each conv's and linear's output, each pool's output, the flatten's.
    assert len(fq) >= 5, [n["op"] for n in graph["nodes"]]
    for n in fq:
        a = n["attrs"]
        assert a["dtype"] == "int8" and (a["quant_min"], a["quant_max"]) == (-128, 127), a
        assert a["scale"] > 0 and -128 <= a["zero_point"] <= 127, a
    # The weights are what PyTorch's dequantize_per_channel gives: float32, and per output
    # channel at most 255 distinct multiples of one scale.
    conv = next(n for n in graph["nodes"] if n["op"] == "conv2d")
    w = tm.graph.weights[conv["weights"]["weight"]]
    assert w.dtype == torch.float32
    for row in w.reshape(w.shape[0], -1):
        steps = row / row.abs().max() * 127
        assert torch.allclose(steps, steps.round(), atol=1e-3), steps
    path = os.path.join(TMP, "pt2e.safetensors")
    tm.save(path)
    # The file keeps each int8 weight as int8 with its scales and zero points; read back
    # as GRAPH_FORMAT.md says, it is the float32 weight PyTorch computes.
    from safetensors import safe_open
    name = conv["weights"]["weight"]
    with safe_open(path, framework="pt") as f:
        qw, scale = f.get_tensor(name), f.get_tensor(f"{name}.scale")
        zp = f.get_tensor(f"{name}.zero_point")
    assert (qw.dtype, scale.dtype, zp.dtype) == (torch.int8, torch.float32, torch.int32)
    assert scale.shape == (qw.shape[0],) and zp.shape == (qw.shape[0],)
    back = (qw.float() - zp.float().reshape(-1, 1, 1, 1)) * scale.reshape(-1, 1, 1, 1)
    assert torch.equal(back, w), "dequantized as PyTorch does"
    for b in (1, 3):
        ref = os.path.join(TMP, f"pt2e.b{b}.ref.safetensors")
        x = torch.randn((b,) + shape)
        out = tm.reference(x, ref, intermediates=True)[0]
        assert torch.equal(out, q(x)), "the reference is the converted model's output"
        ok, worst, lines = kestrel_check.compare(path, ref, rtol=1e-5)
        assert ok and worst == 0.0, "\n".join(lines)


def test_export_quantizes_with_the_documented_config():
    """``export(..., quantize=batches)`` runs the PT2E flow itself: the same model as
    ``quantize_pt2e``, exported; a bad calibration set is an export error."""
    torch.manual_seed(1)
    shape, model = (3, 12, 8), Small()
    g = torch.Generator().manual_seed(9)
    calib = [torch.randn((2,) + shape, generator=g) for _ in range(3)]
    x = torch.randn((1,) + shape)
    path = os.path.join(TMP, "pt2e-export.safetensors")
    graph, quantized = export(model, x, path, quantize=calib)
    assert graph["version"] == 4 and any(n["op"] == "fake_quant" for n in graph["nodes"])
    again = quantize_pt2e(model, x, calib)
    assert torch.equal(quantized(x), again(x)), "one config, one result"
    for bad in ([], [1.0]):
        try:
            export(model, x, path, quantize=bad)
        except ExportError as e:
            assert "calibration" in str(e), e
            continue
        raise AssertionError(f"{bad!r}: no ExportError")


class Bare(nn.Module):
    """Decomposed Q/DQ written out, for the forms the exporter refuses."""

    def __init__(self, form):
        super().__init__()
        import torch.ao.quantization.fx._decomposed  # noqa: F401  registers the ops
        self.form = form

    def forward(self, x):
        qd = torch.ops.quantized_decomposed
        q = qd.quantize_per_tensor(x, 0.1, 0, -128, 127, torch.int8)
        if self.form == "used":
            return q.float() + 1.0
        if self.form == "mismatch":
            return qd.dequantize_per_tensor(q, 0.2, 0, -128, 127, torch.int8)
        if self.form == "per-channel":
            s, z = torch.full((3,), 0.1), torch.zeros(3, dtype=torch.int64)
            qc = qd.quantize_per_channel(x, s, z, 1, -128, 127, torch.int8)
            return qd.dequantize_per_channel(qc, s, z, 1, -128, 127, torch.int8)
        q16 = qd.quantize_per_tensor(x, 0.1, 0, -32768, 32767, torch.int16)
        return qd.dequantize_per_tensor(q16, 0.1, 0, -32768, 32767, torch.int16)


def test_qdq_a_graph_cannot_carry_are_export_errors():
    x = torch.randn(2, 3, 4, 4)
    for form, words in [("used", "only its dequantize_per_tensor may read it"),
                        ("mismatch", "dequantize_per_tensor with (0.2"),
                        ("per-channel", "per-channel quantization of an activation"),
                        ("int16", "torch.int16 is not supported")]:
        try:
            TracedModel(Bare(form), x)
        except ExportError as e:
            assert words in str(e), f"{form}: {words!r} not in {e}"
            continue
        raise AssertionError(f"{form}: no ExportError")


# ---------------------------------------------------------------- torchao's affine ops

def affine_pt2e(model, shape, act=None, weight=None, dynamic=False):
    """``model`` through PT2E with torchao's affine observers, so that convert_pt2e emits
    torchao.quantize_affine / dequantize_affine: by default per-tensor asymmetric int8
    activations and symmetric int8 weights (-127..127) per output channel. ``act`` and
    ``weight`` are torchao granularities. Calibrated on 3 seeded batches of 2, so every
    activation's block_size holds the batch 2 (pytorch/ao#2112)."""
    import dataclasses
    from torchao.quantization.granularity import PerAxis, PerTensor
    from torchao.quantization.pt2e._affine_quantization import (
        AffineQuantizedMinMaxObserver, AffineQuantizedPlaceholderObserver)
    from torchao.quantization.pt2e.observer import MappingType
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import QuantizationSpec
    from torchao.testing.pt2e._xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from kestrel_export import _export_dynamic
    observer = AffineQuantizedPlaceholderObserver if dynamic else AffineQuantizedMinMaxObserver
    act_spec = QuantizationSpec(
        dtype=torch.int8, quant_min=-128, quant_max=127, qscheme=torch.per_tensor_affine,
        is_dynamic=dynamic, observer_or_fake_quant_ctr=observer.with_args(
            mapping_type=MappingType.ASYMMETRIC, target_dtype=torch.int8,
            granularity=act or PerTensor(), is_dynamic=dynamic, scale_dtype=torch.float32))
    weight_spec = QuantizationSpec(
        dtype=torch.int8, quant_min=-127, quant_max=127, qscheme=torch.per_channel_symmetric,
        ch_axis=0, observer_or_fake_quant_ctr=AffineQuantizedMinMaxObserver.with_args(
            mapping_type=MappingType.SYMMETRIC, target_dtype=torch.int8,
            granularity=weight or PerAxis(0), quant_min=-127, quant_max=127))
    config = dataclasses.replace(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic),
        input_activation=act_spec, output_activation=None if dynamic else act_spec,
        weight=weight_spec)
    g = torch.Generator().manual_seed(5)
    traced = _export_dynamic(model.eval(), torch.randn((2,) + shape, generator=g)).module()
    prepared = prepare_pt2e(traced, XNNPACKQuantizer().set_global(config))
    with torch.no_grad():
        for _ in range(3):
            prepared(torch.randn((2,) + shape, generator=g))
    return convert_pt2e(prepared)


def _targets(gm):
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]


def test_affine_pt2e_model_exports_fake_quant_and_int8_weights():
    """A model quantized with torchao's affine observers exports as the quantized_decomposed
    one does: each quantize_affine/dequantize_affine pair one fake_quant, each int8 weight
    an I8 tensor with .scale and .zero_point; its JSON re-run matches PyTorch exactly."""
    torch.manual_seed(2)
    shape = (3, 12, 8)
    q = affine_pt2e(Small(), shape)
    ops = _targets(q)
    assert "torchao.quantize_affine" in ops and "torchao.dequantize_affine" in ops, ops
    assert not any("quantized_decomposed" in t for t in ops), ops
    tm = TracedModel(q, torch.randn((1,) + shape))
    # torchao wrote each block_size as the shape its observer saw last: the calibration
    # batch, 2, and for the observer a max pool shares with its input the pooled shape, so
    # the converted model does not run (pytorch/ao#2112). The trace ran a copy with
    # block_size (-1, ...), the whole tensor; the converted model is left as it is.
    blocks = [n.args[1] for n in q.graph.nodes if str(n.target) == "torchao.quantize_affine"]
    assert all(b[0] == 2 for b in blocks) and (2, 8, 6, 4) in blocks, blocks
    copied = [n.args[1] for n in tm.model.graph.nodes
              if str(n.target) == "torchao.quantize_affine"]
    assert all(set(b) == {-1} for b in copied), copied
    graph = tm.graph_json()
    assert graph["version"] == 4, graph["version"]
    fq = [n for n in graph["nodes"] if n["op"] == "fake_quant"]
    assert len(fq) == len(blocks), (len(fq), len(blocks))
    for n in fq:
        a = n["attrs"]
        assert a["dtype"] == "int8" and (a["quant_min"], a["quant_max"]) == (-128, 127), a
        assert a["scale"] > 0 and type(a["zero_point"]) is int, a
        assert -128 <= a["zero_point"] <= 127, a
    path = os.path.join(TMP, "affine.safetensors")
    tm.save(path)
    from safetensors import safe_open
    layers = [n for n in graph["nodes"] if n["op"] in ("conv2d", "linear")]
    assert len(layers) == 3, [n["op"] for n in graph["nodes"]]
    with safe_open(path, framework="pt") as f:
        for n in layers:
            name = n["weights"]["weight"]
            qw, scale = f.get_tensor(name), f.get_tensor(f"{name}.scale")
            zp = f.get_tensor(f"{name}.zero_point")
            assert (qw.dtype, scale.dtype, zp.dtype) == (torch.int8, torch.float32, torch.int32)
            assert scale.shape == zp.shape == (qw.shape[0],), (scale.shape, zp.shape)
            assert qw.abs().max() <= 127 and not zp.any(), "symmetric -127..127"
            view = (-1,) + (1,) * (qw.dim() - 1)
            back = (qw.float() - zp.float().reshape(view)) * scale.reshape(view)
            assert torch.equal(back, tm.graph.weights[name]), "dequantized as torchao does"
    for b in (1, 3):
        ref = os.path.join(TMP, f"affine.b{b}.ref.safetensors")
        tm.reference(torch.randn((b,) + shape), ref, intermediates=True)
        ok, worst, lines = kestrel_check.compare(path, ref, rtol=1e-5)
        assert ok and worst == 0.0, "\n".join(lines)


class Pair(nn.Module):
    """x quantized and dequantized per tensor by torchao's affine ops (block_size from
    x.shape, or -1 for the batch) or by quantized_decomposed's, around a conv."""

    def __init__(self, form, dtype, zero_point):
        super().__init__()
        import torch.ao.quantization.fx._decomposed  # noqa: F401  registers the ops
        import torchao.quantization.quant_primitives  # noqa: F401  registers torchao's
        self.form, self.dtype = form, dtype
        self.qmin, self.qmax = (-128, 127) if dtype == torch.int8 else (0, 255)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.register_buffer("scale", torch.tensor([0.0123, 0.0571]))  # float32
        self.register_buffer("zero_point", torch.tensor([zero_point, zero_point + 9.0]))
        # quantized_decomposed takes numbers: the same float32 values
        self.numbers = [(s.item(), int(z)) for s, z in zip(self.scale, self.zero_point)]

    def qdq(self, x, i):
        s, z = self.scale[i], self.zero_point[i]
        if self.form == "decomposed":
            qd, (s, z) = torch.ops.quantized_decomposed, self.numbers[i]
            q = qd.quantize_per_tensor(x, s, z, self.qmin, self.qmax, self.dtype)
            return qd.dequantize_per_tensor(q, s, z, self.qmin, self.qmax, self.dtype)
        block = list(x.shape) if self.form == "shape" else [-1] + list(x.shape[1:])
        ao = torch.ops.torchao
        q = ao.quantize_affine(x, block, s, z, self.dtype, self.qmin, self.qmax)
        return ao.dequantize_affine(q, block, s, z, self.dtype, self.qmin, self.qmax)

    def forward(self, x):
        return self.qdq(self.conv(self.qdq(x, 0)), 1)


def test_affine_pair_is_the_quantize_per_tensor_pair():
    """torchao takes x · (1 / scale) with the reciprocal in float32, quantize_per_tensor
    with it in float64 rounded to float32: for a float32 scale the same number, so the
    same fake_quant, and the same outputs, at and next to every rounding tie."""
    torch.manual_seed(4)
    for dtype, zp in ((torch.int8, -3.0), (torch.uint8, 120.0)):
        ref = Pair("decomposed", dtype, zp)
        x = torch.randn(2, 3, 6, 5) * 0.6
        k = torch.randint(-140, 140, (3, 6, 5)).float() + 0.5  # ties of the first quantize
        ties = k * ref.scale[0]
        x = torch.cat([x, ties[None], torch.nextafter(ties, ties + 1)[None]])
        want = TracedModel(ref, x[:1]).graph_json()["nodes"]
        for form in ("shape", "batch-1"):
            m = Pair(form, dtype, zp)
            m.load_state_dict(ref.state_dict())
            assert torch.equal(m(x), ref(x)), (form, dtype)
            tm = TracedModel(m, x[:1])
            got = tm.graph_json()["nodes"]
            assert [(n["op"], n.get("attrs")) for n in got] == \
                [(n["op"], n.get("attrs")) for n in want], (form, dtype, got)
            path = os.path.join(TMP, f"pair-{form}-{dtype}.safetensors")
            tm.save(path)
            tm.reference(x, path + ".ref", intermediates=True)
            ok, worst, lines = kestrel_check.compare(path, path + ".ref", rtol=1e-5)
            assert ok and worst == 0.0, "\n".join(lines)


def _raises(build, words):
    try:
        build()
    except ExportError as e:
        for w in words:
            assert w in str(e), f"{w!r} not in {e}"
        return
    raise AssertionError(f"{words}: no ExportError")


class Lin(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(x)


def test_affine_schemes_kestrel_does_not_run_are_export_errors():
    """From PT2E: a scale per channel or per sample of an activation, scales computed at
    run time (choose_qparams_affine), group-wise weights; each names its node."""
    from torchao.quantization.granularity import PerAxis, PerGroup
    x = torch.randn(1, 16)
    for kw, words in [
            (dict(act=PerAxis(1)), ["block_size [2, 1] and 16 scale(s) on an activation",
                                    "only per-tensor quantization of activations", "(node "]),
            (dict(act=PerAxis(0)), ["block_size [1, 16] and 2 scale(s) on an activation",
                                    "only per-tensor quantization of activations", "(node "]),
            (dict(dynamic=True), ["dynamic quantization (choose_qparams_affine",
                                  "(node choose_qparams_affine"]),
            (dict(weight=PerGroup(4)), ["block_size [1, 4] and 16 scale(s)",
                                        "only per-channel along dim 0", "(node "])]:
        q = affine_pt2e(Lin(), (16,), **kw)
        _raises(lambda: TracedModel(q, x), words)


class BareAffine(nn.Module):
    """torchao's affine ops written out, in the forms the exporter refuses."""

    def __init__(self, form):
        super().__init__()
        import torch.ao.quantization.fx._decomposed  # noqa: F401  registers the ops
        import torchao.quantization.quant_primitives  # noqa: F401  registers torchao's
        self.form = form
        self.register_buffer("s", torch.tensor(0.1))
        self.register_buffer("z", torch.tensor(0))
        self.register_buffer("w", torch.randint(0, 255, (4, 3, 1, 1), dtype=torch.uint8))

    def forward(self, x):
        ao, block = torch.ops.torchao, [-1, 3, 4, 4]
        if self.form == "uint8-weight":
            w = ao.dequantize_affine(self.w, [1, 3, 1, 1], self.s.expand(4), self.z.expand(4),
                                     torch.uint8, 0, 255)
            return F.conv2d(x, w)
        s, z = (self.s.double() if self.form == "float64-scale" else self.s), self.z
        dtype = torch.int16 if self.form == "int16" else torch.int8
        if self.form == "per-channel":
            s, z, block = s.expand(3).contiguous(), z.expand(3).contiguous(), [-1, 1, 4, 4]
        q = ao.quantize_affine(x, block, s, z, dtype)
        if self.form == "used":
            return q.float() + 1.0
        if self.form == "mixed":
            return torch.ops.quantized_decomposed.dequantize_per_tensor(
                q, 0.1, 0, -128, 127, torch.int8)
        return ao.dequantize_affine(q, block, s, z, dtype)


def test_affine_forms_a_graph_cannot_carry_are_export_errors():
    x = torch.randn(2, 3, 4, 4)
    for form, words in [
            ("float64-scale", ["a torch.float64 scale (only float32"]),
            ("int16", ["quantization to torch.int16 is not supported"]),
            ("per-channel", ["block_size [-1, 1, 4, 4] and 3 scale(s)",
                             "only per-tensor quantization of activations"]),
            ("used", ["is a quantize_affine result: only its dequantize_affine may read it"]),
            ("mixed", ["dequantize_per_tensor of a tensor no quantize_per_tensor made"]),
            ("uint8-weight", ["dequantize_affine of a torch.uint8 weight (only int8"])]:
        _raises(lambda: TracedModel(BareAffine(form), x), words)


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print(f"ok   {name}")
