#!/usr/bin/env python3
"""The GPU check's summary: reads what check.sh left in OUT, prints a short table and writes
OUT/summary.md and OUT/summary.json. Standard library only (it must run when torch does not).

    python3 summary.py OUT [--elapsed S]

One timing row per (model, batch, precision): Kestrel's median and p99 (`kestrel bench`),
PyTorch's CUDA-graph median (torch_graphs.py), their ratio against the GPU target for the
row (docs/performance.md), and p99/median at batch 1; then the slowest steps of each
`--per-layer` run. A figure that is missing prints as "—" with the reason in a numbered
note. Exit status 0 when every step of the check passed, 1 otherwise (the targets are
reported, not part of the status).
"""
import argparse
import glob
import json
import math
import os
import re
import sys

ORDER = ["seednet", "resnet18", "mobilenet_v2", "resnet50"]
PRECISIONS = ["fp32", "tf32", "fp16"]
DASH = "—"

# The GPU targets of docs/performance.md: Kestrel / PyTorch-CUDA-graph wall time per run,
# same precision, H100.
TARGETS = {
    ("seednet", 1, "fp32"): 0.35, ("resnet18", 1, "fp32"): 0.35,
    ("mobilenet_v2", 1, "fp32"): 0.4, ("resnet50", 1, "fp32"): 0.4,
    ("resnet18", 1, "fp16"): 0.6, ("resnet50", 1, "fp16"): 0.7,
}
BATCHED_TARGET = (32, 1.0)  # batch 32: at most 1.0 in every precision
JITTER_MAX = 1.15  # p99 / median, every batch-1 row
TOP_STEPS = 10  # slowest steps shown per --per-layer run


def target_of(model, batch, precision):
    if (model, batch, precision) in TARGETS:
        return TARGETS[(model, batch, precision)]
    return BATCHED_TARGET[1] if batch == BATCHED_TARGET[0] else None


def tsv(path):
    """Rows of a TSV file with a header line, as dicts; [] when it is missing."""
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
    except OSError:
        return []
    head = lines[0].split("\t") if lines else []
    return [dict(zip(head, l.split("\t") + [""] * len(head))) for l in lines[1:]]


def load_json(path):
    """(object, None), or (None, why) when the file is missing or not JSON."""
    try:
        with open(path) as f:
            return json.load(f), None
    except OSError as e:
        return None, f"cannot read {os.path.basename(path)}: {e.strerror}"
    except ValueError as e:
        return None, f"{os.path.basename(path)} is not JSON ({str(e)[:80]})"


def num(v):
    """A finite number, else None (JSON null, strings, NaN)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def as_int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def gpu_line(out):
    """'NVIDIA H100 80GB HBM3, driver 580.159.04' from nvidia-smi.log's CSV query, or None."""
    try:
        with open(os.path.join(out, "nvidia-smi.log"), errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for i, l in enumerate(lines[:-1]):
        if l.startswith("index, name"):
            cols = [c.strip() for c in lines[i + 1].split(",")]
            if len(cols) >= 4:
                return f"{cols[1]}, driver {cols[2]}, {cols[3]}"
    return None


def stack_lines(out):
    """What cuda-stack.log says the check ran with: Kestrel's `cuda:` line (device, driver,
    NVRTC version and path, module kind) when a session was built, else cuda_stack.py's
    driver, device and NVRTC lines; [] when the log is missing."""
    try:
        with open(os.path.join(out, "cuda-stack.log"), errors="replace") as f:
            lines = [l.strip() for l in f]
    except OSError:
        return []
    kestrel = [l for l in lines if l.startswith("cuda: ")]
    if kestrel:
        return ["CUDA stack: " + kestrel[0][len("cuda: "):]]
    keys = ("driver: ", "device: ", "nvrtc: ", "incompatible: ")
    return ["CUDA stack: " + l for l in lines if l.startswith(keys)]


def us(v):
    v = num(v)
    if v is None:
        return DASH
    return f"{v:.1f}" if v < 1e4 else f"{v:.0f}"


def fmt(v, spec, none=DASH):
    v = num(v)
    return none if v is None else format(v, spec)


def row_key(key):
    """Sort key of a (model, batch, precision): the models in ORDER, then precisions in order."""
    model, batch, prec = key
    return (ORDER.index(model) if model in ORDER else len(ORDER), model, batch,
            PRECISIONS.index(prec) if prec in PRECISIONS else len(PRECISIONS), prec)


def step_reason(steps, name, what):
    """Why a step left no figure, from its line in steps.tsv."""
    s = steps.get(name)
    if s is None:
        return f"no {name} step (the check stopped before it?)"
    st, note = s.get("status", ""), s.get("note", "").strip()
    if st == "skipped":
        return f"{what} skipped: {note or 'the time budget was spent'}"
    if st == "timeout":
        return f"{what} timed out after {s.get('seconds', '?')} s"
    if st == "ok":
        return f"{what} passed but left no figure for this row"
    return f"{what} {'failed' if st in ('fail', '') else st}" + (f": {note}" if note else "")


def run_reason(steps, name, model):
    """Why a kestrel run (bench or per-layer step NAME of MODEL) left no figure; when it had
    no export to run, why the export is missing."""
    s = steps.get(name) or {}
    if s.get("status") == "skipped" and s.get("note", "").startswith("no export"):
        e = steps.get(f"export-{model}") or {}
        if e.get("status") == "ok":
            return "no export, though export-{model} passed".format(model=model)
        return "no export: " + step_reason(steps, f"export-{model}", f"export-{model}")
    return step_reason(steps, name, name)


def precision_of_torch(r):
    p = r.get("precision")
    if p:
        return p
    # torch_graphs.py before precisions: fp32 (TF32 off) unless it says otherwise.
    return "fp16" if r.get("dtype") == "float16" else "tf32" if r.get("tf32") else "fp32"


def bench_files(out, prefix):
    """{(model, batch, precision): path} for PREFIX-M-bB-P.json (and legacy bench-M-bB.json)."""
    found = {}
    for path in glob.glob(os.path.join(out, f"{prefix}-*-b*.json")):
        base = os.path.basename(path)
        m = re.match(rf"{prefix}-(.+)-b(\d+)-(\w+)\.json$", base)
        if m and m.group(3) in PRECISIONS:
            found[(m.group(1), int(m.group(2)), m.group(3))] = path
            continue
        m = re.match(rf"{prefix}-(.+)-b(\d+)\.json$", base)
        if m:  # before precisions, every bench was fp32
            found.setdefault((m.group(1), int(m.group(2)), "fp32"), path)
    return found


def kestrel_figures(path):
    """(figures, None) from one `kestrel bench --json` file, or (None, why)."""
    j, why = load_json(path)
    if j is None:
        return None, why
    if not isinstance(j, dict):
        return None, f"{os.path.basename(path)} holds no JSON object"
    k = {key: j.get(key) for key in ("median_us", "p90_us", "p99_us", "min_us", "throughput_per_s",
                                     "kernel_calls", "iters", "isa", "precision")}
    if num(k["median_us"]) is None:
        return None, f"{os.path.basename(path)} has no median_us"
    return k, None


def torch_results(out):
    """{(model, batch, precision): result} from every torch_graphs*.json, torch's info, and
    {file name: why} for the files that could not be read."""
    results, info, unreadable = {}, {}, {}
    for path in sorted(glob.glob(os.path.join(out, "torch_graphs*.json"))):
        tg, why = load_json(path)
        if not isinstance(tg, dict):
            unreadable[os.path.basename(path)] = why or f"{os.path.basename(path)} holds no JSON object"
            continue
        for k in ("torch", "cudnn", "gpu"):
            info.setdefault(k, tg.get(k))
        for r in tg.get("results") or []:
            if not isinstance(r, dict) or as_int(r.get("batch")) is None or not r.get("model"):
                continue
            results[(r["model"], as_int(r["batch"]), precision_of_torch(r))] = r
    return results, info, unreadable


def timings(out, steps, plan):
    """One row per (model, batch, precision) planned, benched or timed by PyTorch."""
    bench = bench_files(out, "bench")
    torch, torch_info, unreadable = torch_results(out)
    keys = set(bench) | set(torch) | set(plan)
    for name in steps:
        m = re.match(r"bench-(.+)-b(\d+)-(\w+)$", name)
        if m and m.group(3) in PRECISIONS:
            keys.add((m.group(1), int(m.group(2)), m.group(3)))
    rows = []
    for key in sorted(keys, key=row_key):
        model, batch, prec = key
        row = {"model": model, "batch": batch, "precision": prec, "notes": []}
        k, why = (kestrel_figures(bench[key]) if key in bench else
                  (None, run_reason(steps, f"bench-{model}-b{batch}-{prec}", model)))
        row["kestrel"] = k
        if why:
            row["notes"].append(f"Kestrel: {why}")
        elif k.get("precision") not in (None, prec):
            row["notes"].append(f"Kestrel: the bench JSON says precision {k['precision']}")
        t = torch.get(key)
        if t is not None and "error" not in t and isinstance(t.get("graph"), dict):
            row["torch_graph"] = t["graph"]
            if isinstance(t.get("graph_copies"), dict):
                row["torch_graph_copies"] = t["graph_copies"]
        else:
            if t is not None:
                why = f"PyTorch: {t.get('error') or 'no graph figure'}"
                row["torch_error"] = t.get("error")
            else:
                name = f"torch-graphs-{model}"
                if name not in steps and "torch-graphs" in steps:  # before per-model steps
                    name = "torch-graphs"
                why = "PyTorch: " + unreadable.get(f"torch_graphs-{model}.json", step_reason(
                    steps, name, "torch_graphs.py"))
            row["notes"].append(why)
        km = num((k or {}).get("median_us"))
        tm = num((row.get("torch_graph") or {}).get("median_us"))
        ratio = km / tm if km and tm else None
        row["ratio_median"] = round(ratio, 3) if ratio else None
        row["target"] = target_of(model, batch, prec)
        row["target_met"] = (ratio <= row["target"]) if ratio and row["target"] else None
        kp = num((k or {}).get("p99_us"))
        row["p99_over_median"] = round(kp / km, 3) if kp and km else None
        row["p99_ok"] = (row["p99_over_median"] <= JITTER_MAX
                         if batch == 1 and row["p99_over_median"] else None)
        rows.append(row)
    return rows, torch_info


def per_layer_runs(out, steps):
    """Every --per-layer run: its slowest steps, or why it has none."""
    files = bench_files(out, "perlayer")
    keys = set(files)
    for name in steps:
        m = re.match(r"perlayer-(.+)-b(\d+)-(\w+)$", name)
        if m and m.group(3) in PRECISIONS:
            keys.add((m.group(1), int(m.group(2)), m.group(3)))
    runs = []
    for key in sorted(keys, key=row_key):
        model, batch, prec = key
        run = {"model": model, "batch": batch, "precision": prec}
        name = f"perlayer-{model}-b{batch}-{prec}"
        j, why = load_json(files[key]) if key in files else (None, run_reason(steps, name, model))
        layers = j.get("per_layer") if isinstance(j, dict) else None
        if j is not None and not isinstance(layers, list):
            why = "its JSON has no per_layer list"
        if why:
            run["missing"] = why
            runs.append(run)
            continue
        rows = [l for l in layers if isinstance(l, dict) and num(l.get("us")) is not None]
        total = sum(num(l["us"]) for l in rows)
        rows.sort(key=lambda l: -num(l["us"]))
        run.update(median_us=num(j.get("median_us")), steps=len(rows), total_us=round(total, 2),
                   slowest=[{k: l.get(k) for k in ("name", "kernel", "us", "flops", "bytes")}
                            for l in rows[:TOP_STEPS]])
        runs.append(run)
    return runs


LAYER_HEAD = ("step", "kernel", "µs", "%time", "MFLOP", "TFLOP/s", "GB/s")


def per_layer_table(run):
    """(heading, rows of cells) of one per-layer run; no rows when it is missing."""
    label = f"{run['model']} batch {run['batch']} {run['precision']}"
    if "missing" in run:
        return f"per step, {label}: {DASH} ({run['missing']})", []
    total = run["total_us"]
    heading = (f"per step, {label}: {run['steps']} steps, {total:.1f} µs of GPU time per run "
               f"(CUDA events); bench median {us(run['median_us'])} µs wall; slowest "
               f"{len(run['slowest'])}:")
    rows = []
    for l in run["slowest"]:
        t = num(l.get("us")) or 0.0
        fl, by = num(l.get("flops")), num(l.get("bytes"))
        rows.append((str(l.get("name")), str(l.get("kernel")), f"{t:.1f}",
                     f"{100 * t / total:.1f}" if total else DASH,
                     fmt(fl / 1e6 if fl is not None else None, ".3f"),
                     fmt(fl / t / 1e6 if fl is not None and t else None, ".2f"),
                     fmt(by / t / 1e3 if by is not None and t else None, ".1f")))
    return heading, rows


def per_layer_lines(run):
    """Text lines for one per-layer run: a heading and its slowest steps."""
    heading, rows = per_layer_table(run)
    if not rows:
        return [heading]
    line = lambda c: (f"  {c[0][:36]:<36} {c[1][:22]:<22} {c[2]:>8} {c[3]:>6} {c[4]:>9} "  # noqa: E731
                      f"{c[5]:>8} {c[6]:>7}")
    return [heading, line(LAYER_HEAD)] + [line(c) for c in rows]


def cells(r):
    """The table's cells of one timing row, as strings."""
    k, t = r.get("kestrel") or {}, r.get("torch_graph") or {}
    c = r.get("torch_graph_copies") or {}
    ratio = fmt(r.get("ratio_median"), ".3f")
    target = f"≤{r['target']:.2f}" if r.get("target") else ""
    met = {True: "met", False: "MISSED", None: DASH if target else ""}[r.get("target_met")]
    jit = fmt(r.get("p99_over_median"), ".2f")
    jit_ok = {True: "ok", False: "OVER", None: ""}[r.get("p99_ok")]
    return {"model": r["model"], "batch": str(r["batch"]), "prec": r["precision"],
            "kmed": us(k.get("median_us")), "kp99": us(k.get("p99_us")), "jit": jit,
            "jit_ok": jit_ok, "calls": str(k.get("kernel_calls") or ""),
            "tmed": us(t.get("median_us")), "ratio": ratio, "target": target, "met": met,
            "copies": us(c.get("median_us"))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--elapsed", type=int)
    a = p.parse_args(argv)
    out = a.out
    steps = tsv(os.path.join(out, "steps.tsv"))
    by_step = {s.get("step", ""): s for s in steps}
    tests = tsv(os.path.join(out, "tests.tsv"))
    compares = tsv(os.path.join(out, "compare.tsv"))
    for c in compares:  # compare.tsv before precisions: fp32 only
        c["precision"] = c.get("precision") or "fp32"
    plan = set()
    for r in tsv(os.path.join(out, "plan.tsv")):
        if as_int(r.get("batch")) is not None and r.get("model") and r.get("precision"):
            plan.add((r["model"], as_int(r["batch"]), r["precision"]))
    rows, torch_info = timings(out, by_step, plan)
    layer_runs = per_layer_runs(out, by_step)
    exports = []
    for path in sorted(glob.glob(os.path.join(out, "export-*.log"))):
        with open(path, errors="replace") as f:
            for l in f:
                if l.startswith('{"model"'):
                    try:
                        exports.append(json.loads(l))
                    except ValueError:
                        pass
    gpu = gpu_line(out) or torch_info.get("gpu") or "no GPU found"
    pack = ""
    try:
        with open(os.path.join(out, "env.log"), errors="replace") as f:
            pack = next((l.strip() for l in f if l.startswith("pack:")), "")
    except OSError:
        pass

    count = {k: sum(as_int(t.get(k)) or 0 for t in tests) for k in ("passed", "failed", "ignored")}
    bad_runs = [t["id"] for t in tests if t.get("status") != "ok"]
    failed_tests = [f"{t['id']}: {t['failures']}" for t in tests if t.get("failures")]
    by_kind = {}
    for c in compares:
        by_kind.setdefault(c.get("kind"), []).append(c)
    not_ok = [s for s in steps if s.get("status") != "ok"]
    ok = bool(steps) and not not_ok

    # Notes: one number per distinct reason, shared by the rows it explains.
    note_ids = {}
    for r in rows:
        r["note_ids"] = [note_ids.setdefault(n, len(note_ids) + 1) for n in r["notes"]]

    stack = stack_lines(out)
    lines = [f"Kestrel GPU check: {gpu}"]
    if pack:
        lines.append(pack + (f"; {a.elapsed} s" if a.elapsed is not None else ""))
    lines += stack
    lines.append("")
    head = (f"{'model':<12} {'batch':>5} {'prec':<4} | {'Kestrel med':>11} {'p99':>8} "
            f"{'p99/med':>9} {'calls':>5} | {'PT graph med':>12} | {'K/PT':>6} {'target':>6} "
            f"{'':<6} | {'PT+copies':>9} | notes")
    lines += [head, "-" * len(head)]
    for r in rows:
        c = cells(r)
        lines.append(
            f"{c['model']:<12} {c['batch']:>5} {c['prec']:<4} | {c['kmed']:>11} {c['kp99']:>8} "
            f"{c['jit']:>5} {c['jit_ok']:<4} {c['calls']:>4} | {c['tmed']:>12} | {c['ratio']:>6} "
            f"{c['target']:>6} {c['met']:<6} | {c['copies']:>9} | "
            + " ".join(f"[{i}]" for i in r["note_ids"]))
    if not rows:
        lines.append("(no timings: neither kestrel bench nor torch_graphs.py produced any)")
    table_end = len(lines)
    lines += ["µs per run, host wall clock incl. sync; the same precision on both sides (fp32: TF32 "
              "off; tf32: TF32 allowed;",
              "fp16: Kestrel's tensor cores, PyTorch's model.half()). K/PT < 1: Kestrel faster; "
              "target: the GPU targets' bound on K/PT (docs/performance.md); "
              f"p99/med: ≤ {JITTER_MAX} at batch 1.",
              "PT+copies (measured in fp32 only unless torch_graphs.py --copies says more): graph "
              "replay plus pinned host<->GPU copies of input and output, as Session::run does."]
    lines += [f"  [{i}] {n}" for n, i in note_ids.items()]

    lines.append("")
    with_target = [r for r in rows if r.get("target")]
    met = [r for r in with_target if r.get("target_met")]
    missed = [r for r in with_target if r.get("target_met") is False]
    unmeasured = [r for r in with_target if r.get("target_met") is None]
    name = lambda r: f"{r['model']} b{r['batch']} {r['precision']}"  # noqa: E731
    missed_text = ", ".join("%s (%.3f > %.2f)" % (name(r), r["ratio_median"], r["target"])
                            for r in missed)
    lines.append(f"targets (docs/performance.md, K/PT): {len(met)}/{len(with_target)} met"
                 + (f"; missed: {missed_text}" if missed else "")
                 + ("; not measured: " + ", ".join(name(r) for r in unmeasured) if unmeasured else ""))
    b1 = [r for r in rows if r["batch"] == 1]
    jit_ok = [r for r in b1 if r.get("p99_ok")]
    jit_over = [r for r in b1 if r.get("p99_ok") is False]
    lines.append(f"p99/median ≤ {JITTER_MAX} at batch 1: {len(jit_ok)}/{len(b1)}"
                 + ("; over: " + ", ".join("%s (%.2f)" % (name(r), r["p99_over_median"])
                                            for r in jit_over) if jit_over else "")
                 + (f"; not measured: {len(b1) - len(jit_ok) - len(jit_over)}"
                    if len(b1) > len(jit_ok) + len(jit_over) else ""))
    lines.append("")
    lines.append(f"tests (REQUIRE_CUDA=1 KESTREL_REQUIRE_NVRTC=1): {count['passed']} passed, "
                 f"{count['failed']} failed, {count['ignored']} ignored in {len(tests)} executables"
                 + (f"; not ok: {', '.join(bad_runs)}" if bad_runs else ""))
    skips = sum(as_int(t.get("skip_lines")) or 0 for t in tests)
    if skips:
        lines.append(f"  {skips} line(s) saying 'skipping' in the test logs (a skip that is "
                     "not a failure under REQUIRE_CUDA=1): see tests-*.log")
    lines += [f"  FAILED {f}" for f in failed_tests]
    for kind, label in (("fixture", "fixtures"), ("model", "exported models")):
        cs = by_kind.get(kind, [])
        n_ok = sum(c.get("verdict") == "MATCH" for c in cs)
        per_prec = ""
        precs = sorted({c["precision"] for c in cs}, key=lambda p: row_key(("", 0, p)))
        if len(precs) > 1:
            per_prec = " (" + ", ".join(
                f"{p} {sum(c.get('verdict') == 'MATCH' for c in cs if c['precision'] == p)}/"
                f"{sum(c['precision'] == p for c in cs)}" for p in precs) + ")"
        lines.append(f"compare --device cuda, {label}: {n_ok}/{len(cs)} MATCH{per_prec}")
        same = {}  # one line per distinct failure, naming every model, batch and precision it hit
        for c in cs:
            if c.get("verdict") != "MATCH":
                err = f"max abs {c['max_abs']} (tol {c.get('tolerance')})" if c.get("max_abs") else ""
                why = " ".join(w for w in (c.get("verdict"), err, c.get("note", "")) if w) or "?"
                where = f"{c.get('model')} b{c.get('batch')}" + (
                    f" {c['precision']}" if kind == "model" or c["precision"] != "fp32" else "")
                same.setdefault(why if not err else f"{why}\0{where}", []).append(where)
        for why, hit in same.items():
            lines.append(f"  {why.split(chr(0))[0]}: {', '.join(hit)}")
    for e in exports:
        if "error" in e:
            lines.append(f"export {e.get('model')}: {e['error']}")
    skipped = [s for s in not_ok if s.get("status") == "skipped"]
    bad = [s for s in not_ok if s.get("status") != "skipped"]
    lines.append(f"steps: {len(steps) - len(not_ok)}/{len(steps)} ok"
                 + (": not ok: " + ", ".join(f"{s.get('step')} ({s.get('status')})" for s in bad)
                    if bad else "")
                 + (f"{';' if bad else ':'} skipped {len(skipped)}: "
                    + ", ".join(s.get("step", "") for s in skipped[:6])
                    + (", … (every step in summary.md)" if len(skipped) > 6 else "")
                    if skipped else ""))
    lines.append("RESULT: " + ("PASS" if ok else "FAIL"))
    layer_lines = []
    for run in layer_runs:
        layer_lines += [""] + per_layer_lines(run)
    text = "\n".join(lines + layer_lines)
    print(text)

    md = [f"# Kestrel GPU check: {gpu}", ""]
    if pack:
        md += [pack + (f"; {a.elapsed} s" if a.elapsed is not None else ""), ""]
    if stack:
        md += [*stack, ""]
    md += ["| model | batch | precision | Kestrel median µs | Kestrel p99 µs | p99/median "
           "| kernel calls | PyTorch graph median µs | Kestrel / PyTorch | target | "
           "PyTorch graph+copies median µs | notes |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = cells(r)
        md.append(f"| {c['model']} | {c['batch']} | {c['prec']} | {c['kmed']} | {c['kp99']} "
                  f"| {c['jit']} {c['jit_ok']} | {c['calls']} | {c['tmed']} | {c['ratio']} "
                  f"| {c['target']} {c['met']} | {c['copies']} | "
                  + "; ".join(n.replace("|", "/") for n in r["notes"]) + " |")
    md += ["", "```", *lines[table_end:], "```"]
    for run in layer_runs:
        heading, layer_rows = per_layer_table(run)
        md += ["", heading]
        if layer_rows:
            md += ["", "| " + " | ".join(LAYER_HEAD) + " |", "|---" * len(LAYER_HEAD) + "|"]
            md += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in layer_rows]
    md += ["", "| step | status | s | note |", "|---|---|---|---|"]
    md += [f"| {s.get('step')} | {s.get('status')} | {s.get('seconds')} | "
           f"{s.get('note', '').replace('|', '/')} |" for s in steps]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    summary = {"ok": ok, "gpu": gpu, "pack": pack, "cuda_stack": stack,
               "elapsed_s": a.elapsed, "torch": torch_info,
               "timings": rows, "targets": {"met": [name(r) for r in met],
                                            "missed": [name(r) for r in missed],
                                            "not_measured": [name(r) for r in unmeasured]},
               "per_layer": layer_runs, "tests": tests, "test_counts": count,
               "compares": compares, "exports": exports, "steps": steps}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
