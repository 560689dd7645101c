#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus: small valid files that reach deep into the loader and
the engine, and broken variants of them next to the checks they should trip.

The fixtures in tests/fixtures are up to several MB; libFuzzer mutates small inputs far
faster, so these seeds are built by hand (stdlib only) with a few channels per layer.
Run from anywhere: python3 fuzz/make_seeds.py (rewrites fuzz/seeds/)."""

import json
import math
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")

# dtype -> (struct code, bytes per value); None: stored as raw bytes.
PACK = {"F32": ("<f", 4), "F64": ("<d", 8), "F16": ("<e", 2), "I64": ("<q", 8),
        "I32": ("<i", 4), "U8": ("<B", 1), "BOOL": ("<?", 1)}


def encode(dtype, values):
    if dtype == "BF16":  # the top half of an f32, truncated
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    if dtype == "F8_E4M3":
        return bytes((i * 37) & 0x7E for i in range(len(values)))
    code, _ = PACK[dtype]
    if dtype in ("I64", "I32", "U8"):
        values = [int(abs(v) * 10) % 100 for v in values]
    if dtype == "BOOL":
        values = [v > 0 for v in values]
    return b"".join(struct.pack(code, v) for v in values)


def values(n, seed):
    """Deterministic values of order 0.1."""
    return [((i * 7919 + seed * 31) % 23 - 11) / 50.0 for i in range(n)]


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape)], data made up; laid out in order, no padding."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for i, (name, dtype, shape) in enumerate(tensors):
        v = values(math.prod(shape), i)
        if name.endswith("running_var"):  # a variance is positive
            v = [abs(x) + 0.5 for x in v]
        blob = encode(dtype, v)
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data


def model(graph, tensors):
    return safetensors(tensors, {"kestrel.graph": json.dumps(graph, separators=(",", ":"))})


def node(name, op, inputs, weights=None, attrs=None):
    n = {"name": name, "op": op, "inputs": inputs}
    if weights:
        n["weights"] = weights
    if attrs:
        n["attrs"] = attrs
    return n


def conv(name, x, bias=True, **attrs):
    w = {"weight": f"{name}.weight"}
    if bias:
        w["bias"] = f"{name}.bias"
    return node(name, "conv2d", [x], w, attrs)


def bn(name, x, affine=True, eps=1e-5):
    roles = ["running_mean", "running_var"] + (["weight", "bias"] if affine else [])
    return node(name, "batch_norm", [x], {r: f"{name}.{r}" for r in roles}, {"eps": eps})


def tiny():
    """tests/common's tiny model: conv 2→4 3×3 → relu → flatten → linear 100 → 3."""
    graph = {"version": 1, "inputs": [{"name": "input", "shape": [-1, 2, 5, 5]}],
             "nodes": [conv("conv", "input", stride=[1, 1], padding=[1, 1]),
                       node("relu", "relu", ["conv"]),
                       node("flatten", "flatten", ["relu"], attrs={"start_dim": 1, "end_dim": -1}),
                       node("fc", "linear", ["flatten"], {"weight": "fc.weight", "bias": "fc.bias"})],
             "outputs": ["fc"]}
    tensors = [("conv.weight", "F32", [4, 2, 3, 3]), ("conv.bias", "F32", [4]),
               ("fc.weight", "F32", [3, 100]), ("fc.bias", "F32", [3])]
    return graph, tensors


def allops():
    """Every op and attribute of GRAPH_FORMAT.md at a few channels, weights in every float
    dtype, the shapes of tests/fixtures/allops shrunk: input (3, 9, 7)."""
    nodes = [
        conv("stem", "input", stride=[2, 2], padding=[1, 1], dilation=[1, 1], groups=1),
        bn("stem_bn", "stem"),
        node("relu", "relu", ["stem_bn"]),
        conv("grouped", "relu", padding=[1, 1], groups=2),
        node("relu_1", "relu", ["grouped"]),
        conv("depthwise", "relu", bias=False, padding=1, groups=8),
        node("relu6", "relu6", ["depthwise"]),
        conv("pw", "relu"),
        node("relu6_1", "relu6", ["pw"]),
        node("cat", "concat", ["relu_1", "relu6", "relu6_1"], attrs={"dim": 1}),
        bn("cat_bn", "cat", affine=False),
        node("relu_2", "relu", ["cat_bn"]),
        conv("nonsquare", "relu_2", stride=[2, 1], padding=[1, 0]),
        node("relu_3", "relu", ["nonsquare"]),
        conv("res_conv", "relu_3", bias=False, padding=[1, 1]),
        bn("res_bn", "res_conv"),
        node("add", "add", ["nonsquare", "res_bn"]),
        bn("add_bn", "add", eps=1e-3),
        node("relu6_2", "relu6", ["add_bn"]),
        conv("dw_bias", "relu6_2", padding=[1, 1], groups=8),
        node("add_", "add", ["dw_bias", "relu6_2"]),
        node("ident", "identity", ["add_"]),
        node("drop", "dropout", ["ident"], attrs={"p": 0.5}),
        node("maxpool", "max_pool2d", ["drop"],
             attrs={"kernel_size": [2, 2], "stride": [2, 2], "padding": [1, 1],
                    "dilation": [1, 1], "ceil_mode": True}),
        node("adapt_small", "adaptive_avg_pool2d", ["maxpool"], attrs={"output_size": [3, 2]}),
        node("flatten", "flatten", ["adapt_small"], attrs={"start_dim": 1, "end_dim": 2}),
        node("flatten_1", "flatten", ["flatten"]),
        node("avg_incl", "avg_pool2d", ["add_"],
             attrs={"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1],
                    "ceil_mode": True, "count_include_pad": True}),
        node("adapt_large", "adaptive_avg_pool2d", ["avg_incl"], attrs={"output_size": [5, 3]}),
        node("view", "flatten", ["adapt_large"], attrs={"start_dim": 1, "end_dim": -1}),
        node("avg_excl", "avg_pool2d", ["add_"],
             attrs={"kernel_size": [2, 3], "stride": [2, 2], "padding": [0, 1],
                    "ceil_mode": True, "count_include_pad": False}),
        node("mean", "mean", ["avg_excl"], attrs={"dims": [2, 3], "keepdim": True}),
        conv("squeeze", "mean"),
        node("reshape", "flatten", ["squeeze"], attrs={"start_dim": 1, "end_dim": -1}),
        node("mean_1", "mean", ["add_"], attrs={"dims": [-1, -2], "keepdim": False}),
        node("cat_1", "concat", ["flatten_1", "view", "reshape", "mean_1"], attrs={"dim": -1}),
        node("fc1", "linear", ["cat_1"], {"weight": "fc1.weight", "bias": "fc1.bias"}),
        node("relu_4", "relu", ["fc1"]),
        node("fc2", "linear", ["relu_4"], {"weight": "fc2.weight"}),
        node("softmax", "softmax", ["fc2"], attrs={"dim": 1}),
    ]
    graph = {"version": 1, "inputs": [{"name": "input", "shape": [-1, 3, 9, 7]}],
             "nodes": nodes, "outputs": ["softmax", "mean_1"]}
    shapes = {
        "stem.weight": [8, 3, 3, 3], "stem.bias": [8],
        "grouped.weight": [8, 4, 3, 3], "grouped.bias": [8],
        "depthwise.weight": [8, 1, 3, 3],
        "pw.weight": [4, 8, 1, 1], "pw.bias": [4],
        "nonsquare.weight": [8, 20, 3, 1], "nonsquare.bias": [8],
        "res_conv.weight": [8, 8, 3, 3],
        "dw_bias.weight": [8, 1, 3, 3], "dw_bias.bias": [8],
        "squeeze.weight": [4, 8, 1, 1], "squeeze.bias": [4],
        "fc1.weight": [16, 180], "fc1.bias": [16],
        "fc2.weight": [5, 16],
    }
    for name, c in [("stem_bn", 8), ("cat_bn", 20), ("res_bn", 8), ("add_bn", 8)]:
        for role in ["running_mean", "running_var", "weight", "bias"]:
            if name != "cat_bn" or role.startswith("running"):
                shapes[f"{name}.{role}"] = [c]
    dtypes = ["F16", "BF16", "F32", "F64"]
    tensors = [(n, dtypes[i % 4], s) for i, (n, s) in enumerate(sorted(shapes.items()))]
    # A state_dict's counter: loads, never used as a weight.
    tensors.append(("stem_bn.num_batches_tracked", "I64", []))
    return graph, tensors


def kernels():
    """One conv per CPU kernel the planner picks from: direct (c_in <= 4), Winograd F(4x4)
    and F(2x2) (3x3 stride 1, 32+ channels), the GEMM at stride 2, 1x1 read in place,
    depthwise, dilated. Mutating the input's 16x16 moves each across its tile edges."""
    nodes = [
        conv("direct", "input", padding=[1, 1]),
        node("relu", "relu", ["direct"]),
        conv("wino4", "relu", padding=[1, 1]),
        node("pool", "max_pool2d", ["wino4"], attrs={"kernel_size": [2, 2]}),
        conv("wino2", "pool", bias=False, padding=[1, 1]),
        bn("wino2_bn", "wino2"),
        node("relu6", "relu6", ["wino2_bn"]),
        conv("gemm_s2", "relu6", stride=[2, 2], padding=[1, 1]),
        conv("pw", "gemm_s2", bias=False),
        node("res", "add", ["pw", "gemm_s2"]),
        conv("dw", "res", padding=[1, 1], groups=16),
        conv("dilated", "dw", padding=[4, 4], dilation=[2, 2]),
        node("gap", "adaptive_avg_pool2d", ["dilated"], attrs={"output_size": [1, 1]}),
        node("flat", "flatten", ["gap"]),
        node("fc", "linear", ["flat"], {"weight": "fc.weight", "bias": "fc.bias"}),
    ]
    graph = {"version": 1, "inputs": [{"name": "input", "shape": [-1, 3, 16, 16]}],
             "nodes": nodes, "outputs": ["fc"]}
    shapes = {
        "direct.weight": [32, 3, 3, 3], "direct.bias": [32],
        "wino4.weight": [32, 32, 3, 3], "wino4.bias": [32],
        "wino2.weight": [32, 32, 3, 3],
        "gemm_s2.weight": [16, 32, 3, 3], "gemm_s2.bias": [16],
        "pw.weight": [16, 16, 1, 1],
        "dw.weight": [16, 1, 3, 3], "dw.bias": [16],
        "dilated.weight": [8, 16, 5, 5], "dilated.bias": [8],
        "fc.weight": [4, 8], "fc.bias": [4],
    }
    shapes.update({f"wino2_bn.{r}": [32] for r in ["running_mean", "running_var", "weight", "bias"]})
    return graph, [(n, "F16", s) for n, s in sorted(shapes.items())]


def two_inputs():
    """A fixed batch of 2, two inputs, an input returned as an output, rank-2 linear."""
    graph = {"version": 1,
             "inputs": [{"name": "a", "shape": [2, 4, 3, 3]}, {"name": "b", "shape": [2, 4, 3, 3]}],
             "nodes": [node("sum", "add", ["a", "b"]),
                       node("r", "relu6", ["sum"]),
                       node("flat", "flatten", ["r"]),
                       node("fc", "linear", ["flat"], {"weight": "fc.weight"}),
                       node("sm", "softmax", ["fc"], attrs={"dim": -1})],
             "outputs": ["sm", "a"]}
    return graph, [("fc.weight", "BF16", [3, 36])]


def vector_input():
    """A rank-2 input straight into linear layers."""
    graph = {"version": 1, "inputs": [{"name": "x", "shape": [-1, 10]}],
             "nodes": [node("fc", "linear", ["x"], {"weight": "fc.weight", "bias": "fc.bias"}),
                       node("relu", "relu", ["fc"]),
                       node("out", "linear", ["relu"], {"weight": "out.weight"})],
             "outputs": ["out"]}
    return graph, [("fc.weight", "F32", [6, 10]), ("fc.bias", "F32", [6]),
                   ("out.weight", "F16", [2, 6])]


def reference(outputs, tensors):
    meta = {"kestrel.reference": json.dumps({"version": 1, "outputs": outputs, "torch": "2.5.0"})}
    return safetensors(tensors, meta)


def broken_variants(good):
    """Byte-level breakage every safetensors reader must survive."""
    n = struct.unpack("<Q", good[:8])[0]
    header = good[8:8 + n]
    yield "truncated-header", good[: 8 + n // 2]
    yield "truncated-data", good[: 8 + n + (len(good) - 8 - n) // 2]
    yield "trailing-bytes", good + b"\0" * 4
    yield "length-too-long", struct.pack("<Q", n + 1000) + good[8:]
    yield "not-json", struct.pack("<Q", n) + header.replace(b'{"', b"{ ", 1) + good[8 + n:]
    yield "three-bytes", good[:3]
    offsets = header.replace(b'"data_offsets":[0,', b'"data_offsets":[4,', 1)
    yield "gap", struct.pack("<Q", len(offsets)) + offsets + good[8 + n:]


def write(target, name, data):
    folder = os.path.join(SEEDS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    models = {"tiny": tiny(), "allops": allops(), "kernels": kernels(), "two-inputs": two_inputs(),
              "vector": vector_input()}
    for name, (graph, tensors) in models.items():
        write("fuzz_model", f"{name}.safetensors", model(graph, tensors))
    graph, tensors = tiny()
    write("fuzz_model", "weights-only.safetensors", safetensors(tensors))
    for what, data in broken_variants(model(graph, tensors)):
        write("fuzz_model", f"tiny-{what}.safetensors", data)

    # Graphs that parse but are not models, one check each.
    def edited(edit):
        g = json.loads(json.dumps(graph))
        edit(g)
        return model(g, tensors)
    bad_graphs = {
        "unknown-op": lambda g: g["nodes"][1].update(op="gelu"),
        "cycle": lambda g: g["nodes"][0].update(inputs=["fc"]),
        "fc-too-small": lambda g: g["nodes"][0]["attrs"].update(padding=[2, 2]),
        "missing-weight": lambda g: g["nodes"][3]["weights"].update(weight="nope"),
        "version-2": lambda g: g.update(version=2),
        "big-input": lambda g: g["inputs"][0].update(shape=[-1, 2, 50000, 50000]),
    }
    for what, edit in bad_graphs.items():
        write("fuzz_model", f"tiny-{what}.safetensors", edited(edit))
    g = json.dumps(graph)
    write("fuzz_model", "tiny-graph-not-json.safetensors",
          safetensors(tensors, {"kestrel.graph": g[:-3]}))

    ref = reference(["fc"], [("input", "F32", [1, 2, 5, 5]), ("output", "F32", [1, 3]),
                             ("layer.conv", "F32", [1, 4, 5, 5]), ("layer.fc", "F32", [1, 3])])
    write("fuzz_reference", "tiny.b1.ref.safetensors", ref)
    every_dtype = [(f"t.{d}", d, [2, 3]) for d in
                   ["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3"]]
    write("fuzz_reference", "dtypes.safetensors",
          reference(["output.0", "output.1"], every_dtype + [
              ("output.0", "F32", [0, 3]), ("output.1", "F16", []), ("empty", "BF16", [4, 0])]))
    write("fuzz_reference", "no-metadata.safetensors", safetensors([("x", "F32", [3])]))
    write("fuzz_reference", "empty-header.safetensors", struct.pack("<Q", 2) + b"{}")
    for what, data in broken_variants(ref):
        write("fuzz_reference", f"tiny-{what}.safetensors", data)
    dup = b'{"__metadata__":{"a":"1","a":"2"}}'
    write("fuzz_reference", "duplicate-key.safetensors", struct.pack("<Q", len(dup)) + dup)
    overlap = ('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
               '"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}').encode()
    write("fuzz_reference", "overlap.safetensors",
          struct.pack("<Q", len(overlap)) + overlap + b"\0" * 8)
    huge = '{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'.encode()
    write("fuzz_reference", "shape-overflow.safetensors", struct.pack("<Q", len(huge)) + huge)


if __name__ == "__main__":
    main()
