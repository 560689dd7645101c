#!/usr/bin/env python3
"""Export a PyTorch CNN to a Kestrel model file (see loader/GRAPH_FORMAT.md).

    from kestrel_export import export, save_reference
    export(model, example_input, "net.safetensors")                  # graph + weights
    save_reference(model, example_input, "net.ref.safetensors", intermediates=True)

The model is traced with ``torch.export`` (dynamic batch) and the ATen graph is mapped onto
Kestrel's op set by ``kestrel_graph.convert``.  References are computed by running that same
traced graph, so reference layer names and the exported node set always agree.
Command line: ``python3 kestrel_export.py --help``.
"""
import argparse
import copy
import importlib
import json
import os
import sys
import warnings

import torch
import torch.nn as nn
import torch.utils._pytree as pytree
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kestrel_affine import fix_affine_blocks  # noqa: E402
from kestrel_graph import ExportError, convert, run_traced  # noqa: E402

GRAPH_KEY = "kestrel.graph"
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
__all__ = ["export", "save_reference", "quantize_pt2e", "round_weights", "randomize_bn", "trace",
           "TracedModel", "ExportError", "GRAPH_KEY"]


def _tf32_off():
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def _export_dynamic(model, example_input):
    """``torch.export`` of ``model`` on ``example_input`` with a dynamic batch (the
    ExportedProgram); its failure is an ExportError with the first line of the reason."""
    x = example_input.detach().float()
    if x.shape[0] < 2:  # torch.export specialises a batch of 1: trace with a batch of 2
        x = torch.cat([x, x], 0)
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():  # torch.nn.utils.prune sets module.weight in a hook
        warnings.filterwarnings("ignore", message=".*was assigned during export.*")
        try:
            return torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
        except Exception as e:  # e.g. data-dependent control flow, a fixed batch size
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"torch.export failed: {first}") from e


class TracedModel:
    """One ``torch.export`` trace of a model, converted to Kestrel's graph.

    ``export`` and ``save_reference`` are thin wrappers; use this directly to trace once and
    write a model file plus several references (e.g. batch 1 and batch 3).
    """

    def __init__(self, model, example_input):
        if not isinstance(example_input, torch.Tensor) or example_input.dim() < 1:
            raise ExportError("example_input must be one tensor with a batch dimension")
        try:
            self.model = model.eval()
        except NotImplementedError:  # a torch.export module (PT2E's convert_pt2e) is as is
            self.model = model
        # torchao's affine ops hold the calibration shape: traced and run, a copy without it
        self.model = fix_affine_blocks(self.model)
        self.ep = _export_dynamic(self.model, example_input)
        self.graph = convert(self.ep, list(example_input.shape[1:]))

    def graph_json(self):
        return self.graph.to_json()

    def aten_ops(self):
        """Sorted names of the ATen ops in the traced graph (for reports)."""
        return sorted({str(n.target) for n in self.ep.graph.nodes if n.op == "call_function"})

    def save(self, path, dtype=torch.float32):
        if dtype not in DTYPES.values():
            raise ExportError(f"dtype must be float32, float16 or bfloat16, not {dtype}")
        tensors = {name: t.detach().to(dtype).contiguous().clone()
                   for name, t in self.graph.weights.items()}
        # int8 weights (PT2E's): the int8 values, their scales and zero points.
        for name, (q, scales, zps) in getattr(self.graph, "quant", {}).items():
            tensors[name] = q.contiguous().clone()
            tensors[f"{name}.scale"] = scales.contiguous().clone()
            tensors[f"{name}.zero_point"] = zps.contiguous().clone()
        text = json.dumps(self.graph.to_json())
        _replace_file(path, lambda tmp: save_file(tensors, tmp, metadata={GRAPH_KEY: text}))
        return self.graph.to_json()

    def reference(self, x, path, intermediates=False, rtol=1e-5):
        """Run eager and traced graph on ``x``; write input, output(s) and, optionally,
        every graph node's output as ``layer.<node name>``."""
        _tf32_off()
        x = x.detach().float().contiguous()
        if list(x.shape[1:]) != list(self.graph.input_chw):
            raise ExportError(f"reference input {list(x.shape)} does not match the traced "
                              f"input [N, {', '.join(map(str, self.graph.input_chw))}]")
        with torch.inference_mode():
            eager = self.model(x.clone())
            outs, layers = run_traced(self.graph, self.ep, x.clone(), record=intermediates)
        # several outputs: a tuple, list or dict (in insertion order, as torch.export
        # flattens it; torchvision's segmenters return {"out": ..., "aux": ...})
        eager = pytree.tree_leaves(eager)
        if len(eager) != len(outs):
            raise ExportError(f"model returned {len(eager)} outputs, graph {len(outs)}")
        for i, (e, o) in enumerate(zip(eager, outs)):
            err = (e.float() - o.float()).abs().max().item() if e.numel() else 0.0
            scale = e.abs().max().item() if e.numel() else 0.0
            if not (err <= rtol * scale + 1e-7):
                raise ExportError(f"output {i}: traced graph differs from eager model "
                                  f"(max abs err {err:.3g}, max |ref| {scale:.3g})")
        tensors = {"input": x}
        if len(eager) == 1:
            tensors["output"] = eager[0]
        else:
            tensors.update({f"output.{i}": e for i, e in enumerate(eager)})
        for name, t in layers.items():
            tensors["layer." + name] = t
        tensors = {k: v.detach().float().contiguous().clone() for k, v in tensors.items()}
        # one metadata key: safetensors writes a map, so several keys come out in any order
        info = {"version": 1, "outputs": self.graph.outputs, "torch": torch.__version__}
        meta = {"kestrel.reference": json.dumps(info)}
        _replace_file(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
        return eager


def _replace_file(path, write):
    """``write(tmp)`` a file beside ``path``, then rename it over ``path``: Kestrel maps
    model files, and a file rewritten in place under a running process's map (safetensors'
    ``save_file`` truncates it first) would kill that process with SIGBUS; a rename leaves
    the old file's bytes to the map that holds them."""
    path = os.fspath(path)
    tmp = os.path.join(os.path.dirname(path) or ".",
                       f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def trace(model, example_input):
    return TracedModel(model, example_input)


def export(model, example_input, path, dtype=torch.float32, quantize=None):
    """Trace ``model`` and write weights (converted to ``dtype``) plus the graph JSON.

    With ``quantize`` (calibration input batches), the model is first quantized by
    ``quantize_pt2e`` and the quantized model is written; the quantized model is returned
    with the graph, ``(graph, quantized)``, for ``save_reference``."""
    if quantize is None:
        return TracedModel(model, example_input).save(path, dtype)
    quantized = quantize_pt2e(model, example_input, quantize)
    return TracedModel(quantized, example_input).save(path, dtype), quantized


def quantize_pt2e(model, example_input, calibration):
    """``model`` quantized with PyTorch's PT2E flow (torchao, pinned in requirements.txt)
    in Kestrel's documented configuration: the XNNPACK-style quantizer's symmetric config
    with per-channel weights (int8 weights, range -127..127, one scale per output channel;
    int8 activations, one scale and zero point per tensor, from min/max observers), traced
    with a dynamic batch and calibrated on each batch of ``calibration`` (an iterable of
    input tensors, or one tensor). The result is what ``convert_pt2e`` returns: pass it to
    ``export`` or ``TracedModel`` as it is."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.testing.pt2e._xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    if isinstance(calibration, torch.Tensor):
        calibration = [calibration]
    calibration = list(calibration)
    if not calibration or not all(isinstance(c, torch.Tensor) for c in calibration):
        raise ExportError("quantize: give one or more calibration input tensors")
    traced = _export_dynamic(model.eval(), example_input).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(traced, quantizer)
    with torch.no_grad():
        for c in calibration:
            prepared(c.detach().float())
    return convert_pt2e(prepared)


def save_reference(model, example_input, path, intermediates=False):
    """Write PyTorch float32 reference outputs (TF32 off) for ``example_input``.

    For a model exported with dtype f16/bf16 pass ``round_weights(model, dtype)``."""
    return TracedModel(model, example_input).reference(example_input, path, intermediates)


def round_weights(model, dtype):
    """A copy of ``model`` whose float parameters and buffers are rounded through ``dtype``
    (still stored as float32), matching what ``export(..., dtype=dtype)`` writes."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(dtype).to(t.dtype))
    return model


def randomize_bn(model, seed=0, calibrate=None, perturb=1.0):
    """Give every BatchNorm non-trivial statistics and affine parameters (deterministic):
    weight ~ U(0.5,1.5), bias ~ 0.1·N(0,1), running_mean ~ 0.1·N(0,1), running_var ~
    U(0.5,1.5).  With ``calibrate`` (an input batch of >= 2), the running statistics are
    first measured on that batch (train-mode pass), then perturbed: mean += 0.1·N(0,1)·std,
    var *= U(0.5,1.5).  Calibrating keeps randomly initialised deep nets (MobileNetV2) from
    losing all dependence on their input. ``perturb`` scales that perturbation (mean +=
    perturb·0.1·N(0,1)·std, var *= 1 + perturb·(U(0.5,1.5) − 1)): each perturbed BN scales
    its output by up to 1.4, which compounds over depth (a random EfficientNet-B0's logits
    reach hundreds with perturb 1)."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in bns:
            if m.affine:
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
        if calibrate is not None:
            was_training, momenta = model.training, [m.momentum for m in bns]
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average: stats of exactly this batch
            model.train()
            model(calibrate)
            model.train(was_training)
            for m, mom in zip(bns, momenta):
                m.momentum = mom
        for m in bns:
            if m.running_mean is None:
                continue
            c = m.num_features
            if calibrate is None:
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
            else:
                std = m.running_var.sqrt()
                shift, scale = 0.1 * torch.randn(c, generator=g), 0.5 + torch.rand(c, generator=g)
                if perturb != 1.0:  # (1.0: the same floats as before the option existed)
                    shift, scale = perturb * shift, 1 + perturb * (scale - 1)
                m.running_mean.add_(shift * std)
                m.running_var.mul_(scale)
    return model


# ---------------------------------------------------------------- command line

def build_model(spec, num_classes=None, kwargs=None):
    """``torchvision:NAME`` or ``package.module:callable``; called with no arguments, or
    with ``num_classes`` and extra keyword arguments when given."""
    if ":" not in spec:
        raise SystemExit(f"model spec must be 'module.path:callable' or 'torchvision:name': {spec}")
    mod, name = spec.split(":", 1)
    if mod == "torchvision":
        import torchvision
        fn = getattr(torchvision.models, name)
    else:
        fn = importlib.import_module(mod)
        for part in name.split("."):
            fn = getattr(fn, part)
    kw = dict(kwargs or {})
    if num_classes is not None:
        kw["num_classes"] = num_classes
    return fn(**kw)


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Export a PyTorch CNN to a Kestrel .safetensors model (graph + weights).",
        epilog="example: kestrel_export.py torchvision:resnet18 --input-shape 1,3,224,224 "
               "-o net.safetensors --reference ref.safetensors --intermediates")
    p.add_argument("model", help="'torchvision:NAME' or 'package.module:callable'")
    p.add_argument("--input-shape", required=True, help="N,C,H,W of the example input")
    p.add_argument("-o", "--output", required=True, help="model file to write")
    p.add_argument("--reference", help="also write a reference file (input, output, ...)")
    p.add_argument("--intermediates", action="store_true",
                   help="store every node's output in the reference as layer.<name>")
    p.add_argument("--seed", type=int, default=0, help="seed for init and input (default 0)")
    p.add_argument("--randomize-bn", action="store_true",
                   help="random BatchNorm affine parameters; statistics calibrated on a random "
                        "batch, then perturbed (see randomize_bn)")
    p.add_argument("--num-classes", type=int, help="pass num_classes=N to the constructor")
    p.add_argument("--kwargs", default="{}", help="JSON dict of extra constructor arguments")
    p.add_argument("--state-dict", help="load weights from this torch.save'd state_dict")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="f32", help="weight dtype")
    a = p.parse_args(argv)

    torch.manual_seed(a.seed)
    shape = [int(s) for s in a.input_shape.split(",")]
    model = build_model(a.model, a.num_classes, json.loads(a.kwargs)).eval()
    if a.state_dict:
        model.load_state_dict(torch.load(a.state_dict, map_location="cpu"))
    if a.randomize_bn:
        calib = torch.randn([max(2, shape[0])] + shape[1:],
                            generator=torch.Generator().manual_seed(a.seed + 2))
        randomize_bn(model, a.seed, calib)
    dtype = DTYPES[a.dtype]
    if dtype != torch.float32:
        model = round_weights(model, dtype)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(a.seed + 1))
    try:
        tm = TracedModel(model, x)
        graph = tm.save(a.output, dtype)
        print(f"wrote {a.output}: {len(graph['nodes'])} nodes, {len(tm.graph.weights)} weights")
        if a.reference:
            tm.reference(x, a.reference, a.intermediates)
            print(f"wrote {a.reference}")
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
