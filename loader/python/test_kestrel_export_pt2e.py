#!/usr/bin/env python3
"""Tests of the export of PyTorch's PT2E-quantized models (graph version 4): a model
quantized by torchao's flow exports with every quantize_per_tensor/dequantize_per_tensor
pair as one `fake_quant` node and each dequantize_per_channel of int8 weights folded into
the float32 weight PyTorch computes, and its JSON re-run (kestrel_check) matches PyTorch's
converted model exactly; Q/DQ a Kestrel graph cannot carry are export errors. Needs
torchao (requirements.txt). Run by test_kestrel_export.py (or pytest, or alone):

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


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print(f"ok   {name}")
