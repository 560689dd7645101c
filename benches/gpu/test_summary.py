#!/usr/bin/env python3
"""summary.py against made-up check outputs, shaped as check.sh, `kestrel bench --json` and
torch_graphs.py write them: complete rows, missing files, failed and skipped steps, garbage.
Standard library only, no GPU:

    python3 benches/gpu/test_summary.py
"""
import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summary  # noqa: E402

STEPS_HEAD = "step\tstatus\tseconds\tnote"
COMPARE_HEAD = "kind\tmodel\tbatch\tprecision\tverdict\tmax_abs\ttolerance\tnote"


def bench_json(model, batch, median, p99, per_layer=None):
    """What `kestrel bench --json` writes (engine/bin/kestrel/bench.rs), samples shortened."""
    j = {"model": f"/tmp/kestrel-gpu-work/{model}.safetensors", "device": "cuda:0",
         "isa": "NVIDIA H100 80GB HBM3", "batch": batch, "threads": 1, "iters": 300,
         "warmup": 30, "inputs": 8, "median_us": median, "p90_us": median * 1.02,
         "p99_us": p99, "p999_us": p99 * 1.1, "min_us": median * 0.97, "max_us": p99 * 1.2,
         "mean_us": median * 1.01, "throughput_per_s": batch * 1e6 / median,
         "arena_bytes": 1 << 20, "kernel_calls": 57, "pinned_cores": None,
         "samples_us": [median] * 5}
    if per_layer is not None:
        j["per_layer"] = per_layer
    return j


def torch_result(model, batch, precision, median, copies=None):
    st = lambda v: {"median_us": v, "p90_us": v * 1.01, "p99_us": v * 1.03,  # noqa: E731
                    "min_us": v * 0.99, "max_us": v * 1.2, "iters": 200}
    r = {"model": model, "batch": batch, "precision": precision,
         "dtype": "float16" if precision == "fp16" else "float32", "tf32": precision == "tf32",
         "graph": st(median)}
    if copies:
        r["graph_copies"] = st(copies)
    return r


class Out:
    """A fake OUT folder, removed when the test ends."""

    def __init__(self, test):
        tmp = tempfile.TemporaryDirectory()
        test.addCleanup(tmp.cleanup)
        self.dir = tmp.name

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def json(self, name, obj):
        self.write(name, json.dumps(obj, indent=1) + "\n")

    def tsv(self, name, head, rows):
        self.write(name, "\n".join([head] + ["\t".join(map(str, r)) for r in rows]) + "\n")

    def run(self):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = summary.main([self.dir, "--elapsed", "401"])
        with open(os.path.join(self.dir, "summary.json")) as f:
            js = json.load(f)
        with open(os.path.join(self.dir, "summary.md")) as f:
            md = f.read()
        return rc, buf.getvalue(), js, md


def row(js, model, batch, precision):
    return next(r for r in js["timings"]
                if (r["model"], r["batch"], r["precision"]) == (model, batch, precision))


def table_line(text, model, batch, precision):
    return next(l for l in text.splitlines()
                if l.split()[:3] == [model, str(batch), precision])


class SummaryTest(unittest.TestCase):
    def full_out(self):
        o = Out(self)
        o.write("nvidia-smi.log", "index, name, driver_version, memory.total [MiB]\n"
                "0, NVIDIA H100 80GB HBM3, 580.159.04, 81559 MiB, 1980 MHz\n")
        o.write("env.log", "date: x\npack: abc123 packed 2025-11-28T15:00:00Z with rustc 1.90\n")
        o.write("cuda-stack.log", "driver: CUDA 13.0\ndevice: NVIDIA H200 (sm_90)\n"
                "cuda: NVIDIA H200 (sm_90), CUDA driver 13.0, NVRTC 13.0 "
                "(/usr/local/cuda/lib64/libnvrtc.so.13), CUBIN\n")
        o.tsv("plan.tsv", "model\tbatch\tprecision",
              [(m, b, p) for m in ("resnet18", "resnet50") for b in (1, 32)
               for p in ("fp32", "tf32", "fp16")])
        steps = [("env", "ok", 1, "python 3.12"), ("nvidia-smi", "ok", 0, "")]
        for m in ("resnet18", "resnet50"):
            steps.append((f"export-{m}", "ok", 10, '"export_s": 3.1'))
            for b in (1, 32):
                for p in ("fp32", "tf32", "fp16"):
                    steps.append((f"compare-{m}-b{b}-{p}", "ok", 2, "MATCH 1e-5 1e-4"))
                    steps.append((f"bench-{m}-b{b}-{p}", "ok", 2, "median 1 µs"))
            steps.append((f"torch-graphs-{m}", "ok", 20, "torch 2.11"))
        # resnet50: its fp16 batch-32 bench failed, and its b32 tf32 bench timed out.
        changed = {"bench-resnet50-b32-fp16": ("fail", 1, "error: out of memory"),
                   "bench-resnet50-b32-tf32": ("timeout", 120, "")}
        steps = [(s[0], *changed[s[0]]) if s[0] in changed else s for s in steps]
        steps += [("perlayer-resnet50-b1-fp32", "ok", 3, "median 1 µs"),
                  ("perlayer-resnet50-b1-fp16", "fail", 1, "error: no fp16 kernel"),
                  ("perlayer-resnet18-b1-fp32", "skipped", 0, "")]
        o.tsv("steps.tsv", STEPS_HEAD, steps)
        o.tsv("tests.tsv", "id\tfilter\tstatus\tpassed\tfailed\tignored\tskip_lines\tfailures",
              [("kestrel-cli/test/cuda", "all", "ok", 40, 0, 0, 0, "")])
        o.tsv("compare.tsv", COMPARE_HEAD,
              [("fixture", "cifarnet", 1, "fp32", "MATCH", "1e-7", "1e-4", ""),
               ("model", "resnet50", 32, "fp16", "MISMATCH", "3.1e-01", "1.2e-01", ""),
               ("model", "resnet50", 1, "tf32", "ERROR", "", "", "error: illegal address"),
               ("model", "resnet18", 1, "fp16", "MATCH", "1e-3", "1e-2", "")])
        k = {("resnet18", 1, "fp32"): (400, 420), ("resnet18", 1, "tf32"): (300, 400),
             ("resnet18", 1, "fp16"): (288, 300), ("resnet18", 32, "fp32"): (4000, 4100),
             ("resnet18", 32, "tf32"): (1900, 2000), ("resnet18", 32, "fp16"): (1500, 1600),
             ("resnet50", 1, "fp32"): (915.6, 960), ("resnet50", 1, "tf32"): (700, 730),
             ("resnet50", 1, "fp16"): (800, 830), ("resnet50", 32, "fp32"): (10000, 10100)}
        for (m, b, p), (med, p99) in k.items():
            o.json(f"bench-{m}-b{b}-{p}.json", bench_json(m, b, med, p99))
        t = {("resnet18", 1): (1209, 498, 480), ("resnet18", 32): (4253, 1976, 1398),
             ("resnet50", 1): (2289, 951, 1052), ("resnet50", 32): (11312, 5722, 3919)}
        for m in ("resnet18", "resnet50"):
            res = []
            for b in (1, 32):
                for i, p in enumerate(("fp32", "tf32", "fp16")):
                    res.append(torch_result(m, b, p, t[(m, b)][i],
                                            copies=t[(m, b)][i] + 25 if p == "fp32" else None))
            if m == "resnet50":
                res[-1] = {"model": m, "batch": 32, "precision": "fp16",
                           "error": "OutOfMemoryError: CUDA out of memory"}
            o.json(f"torch_graphs-{m}.json", {"torch": "2.11.0", "cudnn": 91900,
                                              "gpu": "NVIDIA H100 80GB HBM3", "iters": 200,
                                              "warmup": 30, "precisions": ["fp32", "tf32", "fp16"],
                                              "copies": ["fp32"], "results": res})
        layers = [{"name": f"layer{i}.conv", "kernel": "conv3x3s1+relu", "us": float(i),
                   "flops": 1000000 * i, "bytes": 4096 * i} for i in range(25)]
        layers.append({"name": "input", "kernel": "alias", "us": 0.0, "flops": 0, "bytes": 0})
        o.json("perlayer-resnet50-b1-fp32.json", bench_json("resnet50", 1, 900, 950, layers))
        return o

    def test_complete_and_partial_rows(self):
        o = self.full_out()
        rc, text, js, md = o.run()
        self.assertEqual(rc, 1)  # steps failed
        self.assertIn("Kestrel GPU check: NVIDIA H100 80GB HBM3, driver 580.159.04", text)
        self.assertEqual(len(js["timings"]), 12)
        # ResNet-18 b1 fp32: 400 / 1209 = 0.331 <= 0.35, p99/med 1.05.
        r = row(js, "resnet18", 1, "fp32")
        self.assertEqual((r["ratio_median"], r["target"], r["target_met"]), (0.331, 0.35, True))
        self.assertTrue(r["p99_ok"])
        line = table_line(text, "resnet18", 1, "fp32")
        self.assertIn("0.331", line)
        self.assertIn("met", line)
        self.assertIn("1234.0", line)  # PT+copies
        # 300 / 498: no target for b1 tf32; p99/med 1.33 over 1.15.
        r = row(js, "resnet18", 1, "tf32")
        self.assertIsNone(r["target"])
        self.assertIsNone(r["target_met"])
        self.assertFalse(r["p99_ok"])
        self.assertIn("OVER", table_line(text, "resnet18", 1, "tf32"))
        # ResNet-18 b1 fp16: 288 / 480 = 0.6 exactly: met (the bound is inclusive).
        self.assertTrue(row(js, "resnet18", 1, "fp16")["target_met"])
        # ResNet-50 b1 fp32: 915.6 / 2289 = 0.4000 met; fp16 800 / 1052 = 0.76 > 0.7 missed.
        self.assertTrue(row(js, "resnet50", 1, "fp32")["target_met"])
        r = row(js, "resnet50", 1, "fp16")
        self.assertFalse(r["target_met"])
        self.assertIn("MISSED", table_line(text, "resnet50", 1, "fp16"))
        self.assertIn("resnet50 b1 fp16 (0.760 > 0.70)", text)
        # Batch 32: bound 1.0 in every precision; p99/median has no bound there.
        r = row(js, "resnet18", 32, "fp16")
        self.assertEqual((r["target"], r["target_met"], r["p99_ok"]), (1.0, False, None))
        self.assertTrue(row(js, "resnet50", 32, "fp32")["target_met"])
        # Missing figures: a dash and a numbered reason.
        line = table_line(text, "resnet50", 32, "tf32")
        self.assertIn(summary.DASH, line)
        self.assertIn("Kestrel: bench-resnet50-b32-tf32 timed out after 120 s", text)
        self.assertIn("Kestrel: bench-resnet50-b32-fp16 failed: error: out of memory", text)
        self.assertIn("PyTorch: OutOfMemoryError: CUDA out of memory", text)
        r = row(js, "resnet50", 32, "fp16")
        self.assertIsNone(r["kestrel"])
        self.assertNotIn("torch_graph", r)
        self.assertEqual(len(r["notes"]), 2)
        self.assertIn("not measured: resnet50 b32 tf32, resnet50 b32 fp16", text)
        self.assertIn("targets (docs/performance.md, K/PT): 6/10 met", text)
        # Compare rows keep their old lines and gain the precision.
        self.assertIn("compare --device cuda, fixtures: 1/1 MATCH", text)
        self.assertIn("exported models: 1/3 MATCH (tf32 0/1, fp16 1/2)", text)
        self.assertIn("MISMATCH max abs 3.1e-01 (tol 1.2e-01): resnet50 b32 fp16", text)
        self.assertIn("ERROR error: illegal address: resnet50 b1 tf32", text)
        self.assertIn("tests (REQUIRE_CUDA=1 KESTREL_REQUIRE_NVRTC=1): 40 passed", text)
        self.assertIn("RESULT: FAIL", text)
        # The CUDA stack the check ran with, as Kestrel saw it.
        stack = ("CUDA stack: NVIDIA H200 (sm_90), CUDA driver 13.0, NVRTC 13.0 "
                 "(/usr/local/cuda/lib64/libnvrtc.so.13), CUBIN")
        self.assertIn(stack, text)
        self.assertIn(stack, md)
        self.assertEqual(js["cuda_stack"], [stack])
        # Per-layer: the 10 slowest of the run, slowest first; the failed and skipped runs say why.
        pl = {(p["model"], p["precision"]): p for p in js["per_layer"]}
        slow = pl[("resnet50", "fp32")]["slowest"]
        self.assertEqual([s["us"] for s in slow], [float(i) for i in range(24, 14, -1)])
        self.assertEqual(pl[("resnet50", "fp32")]["total_us"], 300.0)
        self.assertIn("per step, resnet50 batch 1 fp32: 26 steps, 300.0 µs", text)
        self.assertIn("layer24.conv", text)
        self.assertNotIn("layer14.conv ", text)
        self.assertIn("per step, resnet50 batch 1 fp16: — (perlayer-resnet50-b1-fp16 failed: "
                      "error: no fp16 kernel)", text)
        self.assertIn("per step, resnet18 batch 1 fp32: — (perlayer-resnet18-b1-fp32 skipped: "
                      "the time budget was spent)", text)
        # The markdown holds the same rows and tables.
        self.assertIn("| resnet18 | 1 | fp32 | 400.0 | 420.0 | 1.05 ok | 57 | 1209.0 | 0.331 "
                      "| ≤0.35 met | 1234.0 |  |", md)
        self.assertIn("| layer24.conv | conv3x3s1+relu | 24.0 | 8.0 | 24.000 | 1.00 | 4.1 |", md)
        self.assertIn("RESULT: FAIL", md)

    def test_steps_that_never_ran(self):
        o = Out(self)
        o.tsv("plan.tsv", "model\tbatch\tprecision",
              [("resnet50", 1, "fp32"), ("mobilenet_v2", 1, "fp16")])
        o.tsv("steps.tsv", STEPS_HEAD, [
            ("export-resnet50", "skipped", 0, ""),
            ("bench-resnet50-b1-fp32", "skipped", 0, "no export to bench"),
            ("torch-graphs-resnet50", "timeout", 180, ""),
            ("interrupted", "fail", 0, "signal to check.sh")])
        rc, text, js, md = o.run()
        self.assertEqual(rc, 1)
        self.assertIn("Kestrel: no export: export-resnet50 skipped: the time budget was spent", text)
        self.assertIn("PyTorch: torch_graphs.py timed out after 180 s", text)
        self.assertIn("Kestrel: no bench-mobilenet_v2-b1-fp16 step (the check stopped before it?)",
                      text)
        self.assertIn("≤0.40 —", table_line(text, "resnet50", 1, "fp32"))

    def test_a_stop_at_the_cuda_stack_says_why(self):
        o = Out(self)
        o.write("cuda-stack.log", "$ python3 cuda_stack.py\ndriver: CUDA 13.0\n"
                "nvrtc_found: /x/libnvrtc.so.13 = NVRTC 13.2 (refused: ...)\n"
                "incompatible: no NVRTC found here works with this driver\nexit 3\n")
        o.tsv("steps.tsv", STEPS_HEAD, [("cuda-stack", "fail", 0, "STOP: incompatible")])
        rc, text, js, md = o.run()
        self.assertEqual(rc, 1)
        self.assertIn("CUDA stack: driver: CUDA 13.0", text)
        self.assertIn("CUDA stack: incompatible: no NVRTC found here works", text)
        self.assertNotIn("nvrtc_found", "\n".join(js["cuda_stack"]))

    def test_garbage_does_not_crash(self):
        o = Out(self)
        o.tsv("steps.tsv", STEPS_HEAD, [("bench-seednet-b1-fp32", "ok", 1, "")])
        with open(os.path.join(o.dir, "steps.tsv"), "a") as f:
            f.write("half a line\n")
        o.write("bench-seednet-b1-fp32.json", '{"median_us": 12.')  # cut short
        o.json("bench-seednet-b1-tf32.json", {"median_us": None})
        o.json("bench-seednet-b1-fp16.json", [1, 2])
        o.write("bench-seednet-b32-fp32.json", '{"median_us": 80, "p99_us": NaN}')
        o.json("torch_graphs-seednet.json", ["not", "an", "object"])
        o.json("torch_graphs-resnet18.json", {"results": [{"model": "resnet18"}, "x",
                                                          {"model": "resnet18", "batch": 1}]})
        o.json("perlayer-resnet50-b1-fp32.json", bench_json("resnet50", 1, 900, 950))
        o.write("perlayer-resnet50-b1-fp16.json", "")
        o.json("perlayer-resnet18-b1-fp32.json", bench_json("resnet18", 1, 400, 410, [
            {"name": "a"}, {"name": "b", "kernel": "conv", "us": "slow"},
            {"name": "c", "kernel": "conv", "us": 3.0, "flops": None, "bytes": 10}]))
        o.write("compare.tsv", COMPARE_HEAD + "\nmodel\tseednet\n")
        o.write("nvidia-smi.log", "index, name\n")
        rc, text, js, md = o.run()
        self.assertEqual(rc, 1)
        self.assertIn("bench-seednet-b1-fp32.json is not JSON", text)
        self.assertIn("bench-seednet-b1-tf32.json has no median_us", text)
        self.assertIn("bench-seednet-b1-fp16.json holds no JSON object", text)
        r = row(js, "seednet", 32, "fp32")
        self.assertEqual((r["kestrel"]["median_us"], r["p99_over_median"]), (80, None))
        self.assertIn("PyTorch: torch_graphs-seednet.json holds no JSON object", text)
        self.assertIn("PyTorch: no graph figure", text)  # resnet18: a result without "graph"
        self.assertIn("per step, resnet50 batch 1 fp32: — (its JSON has no per_layer list)", text)
        self.assertIn("perlayer-resnet50-b1-fp16.json is not JSON", text)
        self.assertIn("per step, resnet18 batch 1 fp32: 1 steps, 3.0 µs", text)
        self.assertIn("no GPU found", text)

    def test_empty_out(self):
        o = Out(self)
        rc, text, js, md = o.run()
        self.assertEqual(rc, 1)
        self.assertIn("(no timings: neither kestrel bench nor torch_graphs.py produced any)", text)
        self.assertEqual(js["timings"], [])
        self.assertIn("RESULT: FAIL", md)

    def test_before_precisions(self):
        """Outputs of the check before it had precisions: bench-M-bB.json, torch_graphs.json
        without a precision, compare.tsv without the column: all read as fp32."""
        o = Out(self)
        o.tsv("steps.tsv", STEPS_HEAD, [("bench-seednet-b1", "ok", 1, ""),
                                        ("torch-graphs", "ok", 9, "")])
        o.json("bench-seednet-b1.json", bench_json("seednet", 1, 13.0, 14.0))
        o.json("torch_graphs.json", {"torch": "2.11.0", "results": [
            {"model": "seednet", "batch": 1, "dtype": "float32", "tf32": False,
             "graph": {"median_us": 38.0, "p99_us": 40.0},
             "graph_copies": {"median_us": 60.0, "p99_us": 70.0}},
            {"model": "seednet", "batch": 32, "error": "RuntimeError: boom"}]})
        o.tsv("compare.tsv", "kind\tmodel\tbatch\tverdict\tmax_abs\ttolerance\tnote",
              [("model", "seednet", 1, "MATCH", "1e-7", "1e-4", "")])
        rc, text, js, md = o.run()
        self.assertEqual(rc, 0)
        r = row(js, "seednet", 1, "fp32")
        self.assertEqual((r["ratio_median"], r["target_met"]), (0.342, True))
        self.assertIn("PyTorch: RuntimeError: boom", text)
        self.assertIn("exported models: 1/1 MATCH", text)
        self.assertIn("RESULT: PASS", text)


if __name__ == "__main__":
    unittest.main()
