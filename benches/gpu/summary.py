#!/usr/bin/env python3
"""The GPU check's summary: reads what check.sh left in OUT, prints a short table and writes
OUT/summary.md and OUT/summary.json. Standard library only (it must run when torch does not).

    python3 summary.py OUT [--elapsed S]

Exit status 0 when every step of the check passed, 1 otherwise.
"""
import argparse
import glob
import json
import os
import re
import sys

ORDER = ["seednet", "resnet18", "mobilenet_v2", "resnet50"]


def tsv(path):
    """Rows of a TSV file with a header line, as dicts; [] when it is missing."""
    try:
        with open(path) as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
    except OSError:
        return []
    head = lines[0].split("\t") if lines else []
    return [dict(zip(head, l.split("\t") + [""] * len(head))) for l in lines[1:]]


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def gpu_line(out):
    """'NVIDIA H100 80GB HBM3, driver 580.159.04' from nvidia-smi.log's CSV query, or None."""
    try:
        with open(os.path.join(out, "nvidia-smi.log")) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for i, l in enumerate(lines[:-1]):
        if l.startswith("index, name"):
            cols = [c.strip() for c in lines[i + 1].split(",")]
            if len(cols) >= 4:
                return f"{cols[1]}, driver {cols[2]}, {cols[3]}"
    return None


def us(v):
    if v is None:
        return "n/a"
    return f"{v:.1f}" if v < 1e4 else f"{v:.0f}"


def timings(out):
    """One row per (model, batch) that Kestrel or PyTorch has a figure for."""
    rows = {}
    for path in glob.glob(os.path.join(out, "bench-*-b*.json")):
        m = re.match(r"bench-(.+)-b(\d+)\.json$", os.path.basename(path))
        j = load_json(path)
        if m and j:
            rows.setdefault((m.group(1), int(m.group(2))), {})["kestrel"] = {
                k: j.get(k) for k in ("median_us", "p90_us", "p99_us", "min_us",
                                      "throughput_per_s", "kernel_calls", "iters", "isa")}
    tg = load_json(os.path.join(out, "torch_graphs.json")) or {}
    for r in tg.get("results", []):
        row = rows.setdefault((r["model"], r["batch"]), {})
        if "error" in r:
            row["torch_error"] = r["error"]
        else:
            row["torch_graph"], row["torch_graph_copies"] = r["graph"], r["graph_copies"]
    out_rows = []
    for (model, batch), r in sorted(rows.items(), key=lambda kv: (
            ORDER.index(kv[0][0]) if kv[0][0] in ORDER else len(ORDER), kv[0][0], kv[0][1])):
        k, t = r.get("kestrel"), r.get("torch_graph")
        ratio = k["median_us"] / t["median_us"] if k and t and k.get("median_us") else None
        out_rows.append({"model": model, "batch": batch, **r,
                         "ratio_median": round(ratio, 3) if ratio else None})
    return out_rows, {k: tg.get(k) for k in ("torch", "cudnn", "gpu")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--elapsed", type=int)
    a = p.parse_args(argv)
    out = a.out
    steps = tsv(os.path.join(out, "steps.tsv"))
    tests = tsv(os.path.join(out, "tests.tsv"))
    compares = tsv(os.path.join(out, "compare.tsv"))
    rows, torch_info = timings(out)
    exports = []
    for path in sorted(glob.glob(os.path.join(out, "export-*.log"))):
        with open(path) as f:
            for l in f:
                if l.startswith('{"model"'):
                    try:
                        exports.append(json.loads(l))
                    except ValueError:
                        pass
    gpu = gpu_line(out) or torch_info.get("gpu") or "no GPU found"
    pack = ""
    try:
        with open(os.path.join(out, "env.log")) as f:
            pack = next((l.strip() for l in f if l.startswith("pack:")), "")
    except OSError:
        pass

    count = {k: sum(int(t.get(k) or 0) for t in tests) for k in ("passed", "failed", "ignored")}
    bad_runs = [t["id"] for t in tests if t["status"] != "ok"]
    failed_tests = [f"{t['id']}: {t['failures']}" for t in tests if t.get("failures")]
    by_kind = {}
    for c in compares:
        by_kind.setdefault(c["kind"], []).append(c)
    not_ok = [s for s in steps if s["status"] != "ok"]
    ok = bool(steps) and not not_ok

    lines = [f"Kestrel GPU check: {gpu}"]
    if pack:
        lines.append(pack + (f"; {a.elapsed} s" if a.elapsed is not None else ""))
    lines.append("")
    head = (f"{'model':<13} {'batch':>5} | {'Kestrel med':>11} {'p99':>9} {'calls':>5} | "
            f"{'PT graph med':>12} {'p99':>9} | {'K/PT':>6} | {'PT+copies med':>13}")
    lines += [head, "-" * len(head)]
    for r in rows:
        k, t, c = r.get("kestrel") or {}, r.get("torch_graph") or {}, r.get("torch_graph_copies") or {}
        ratio = f"{r['ratio_median']:.2f}" if r.get("ratio_median") else "n/a"
        lines.append(f"{r['model']:<13} {r['batch']:>5} | {us(k.get('median_us')):>11} "
                     f"{us(k.get('p99_us')):>9} {k.get('kernel_calls') or '':>5} | "
                     f"{us(t.get('median_us')):>12} {us(t.get('p99_us')):>9} | {ratio:>6} | "
                     f"{us(c.get('median_us')):>13}")
    if not rows:
        lines.append("(no timings: neither kestrel bench nor torch_graphs.py produced any)")
    lines.append("µs per run, host wall clock incl. sync; K/PT < 1: Kestrel faster. PT+copies: "
                 "graph replay plus pinned host<->GPU copies of input and output, as Session::run does.")
    lines.append("")
    lines.append(f"tests (REQUIRE_CUDA=1 KESTREL_REQUIRE_NVRTC=1): {count['passed']} passed, "
                 f"{count['failed']} failed, {count['ignored']} ignored in {len(tests)} executables"
                 + (f"; not ok: {', '.join(bad_runs)}" if bad_runs else ""))
    skips = sum(int(t.get("skip_lines") or 0) for t in tests)
    if skips:
        lines.append(f"  {skips} line(s) saying 'skipping' in the test logs (a skip that is "
                     "not a failure under REQUIRE_CUDA=1): see tests-*.log")
    lines += [f"  FAILED {f}" for f in failed_tests]
    for kind, label in (("fixture", "fixtures"), ("model", "exported models")):
        cs = by_kind.get(kind, [])
        n_ok = sum(c["verdict"] == "MATCH" for c in cs)
        lines.append(f"compare --device cuda, {label}: {n_ok}/{len(cs)} MATCH")
        same = {}  # one line per distinct failure, naming every model and batch it hit
        for c in cs:
            if c["verdict"] != "MATCH":
                err = f"max abs {c['max_abs']} (tol {c['tolerance']})" if c.get("max_abs") else ""
                why = " ".join(w for w in (c["verdict"], err, c.get("note", "")) if w)
                same.setdefault(why if not err else f"{why}\0{c['model']}{c['batch']}", []).append(
                    f"{c['model']} b{c['batch']}")
        for why, hit in same.items():
            lines.append(f"  {why.split(chr(0))[0]}: {', '.join(hit)}")
    for e in exports:
        if "error" in e:
            lines.append(f"export {e['model']}: {e['error']}")
    lines.append(f"steps: {len(steps) - len(not_ok)}/{len(steps)} ok"
                 + (": not ok: " + ", ".join(f"{s['step']} ({s['status']})" for s in not_ok)
                    if not_ok else ""))
    lines.append("RESULT: " + ("PASS" if ok else "FAIL"))
    text = "\n".join(lines)
    print(text)

    md = [f"# Kestrel GPU check: {gpu}", ""]
    if pack:
        md += [pack + (f"; {a.elapsed} s" if a.elapsed is not None else ""), ""]
    md += ["| model | batch | Kestrel median µs | Kestrel p99 µs | kernel calls | PyTorch graph median µs "
           "| PyTorch graph p99 µs | Kestrel / PyTorch | PyTorch graph+copies median µs |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        k, t, c = r.get("kestrel") or {}, r.get("torch_graph") or {}, r.get("torch_graph_copies") or {}
        ratio = f"{r['ratio_median']:.2f}" if r.get("ratio_median") else "n/a"
        md.append(f"| {r['model']} | {r['batch']} | {us(k.get('median_us'))} | {us(k.get('p99_us'))} "
                  f"| {k.get('kernel_calls') or ''} | {us(t.get('median_us'))} | {us(t.get('p99_us'))} "
                  f"| {ratio} | {us(c.get('median_us'))} |")
    md += ["", "```", *lines[lines.index(head) + len(rows) + 2:], "```", "",
           "| step | status | s | note |", "|---|---|---|---|"]
    md += [f"| {s['step']} | {s['status']} | {s['seconds']} | {s['note'].replace('|', '/')} |"
           for s in steps]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    summary = {"ok": ok, "gpu": gpu, "pack": pack, "elapsed_s": a.elapsed, "torch": torch_info,
               "timings": rows, "tests": tests, "test_counts": count, "compares": compares,
               "exports": exports, "steps": steps}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
