#!/usr/bin/env python3
"""Load test: Kestrel and ONNX Runtime served on Triton Inference Server by the same
harness (kestrel.serve's bind: same dynamic batching, instances and threads), driven by
closed-loop gRPC clients on 127.0.0.1 at 1, 4 and 16 concurrent clients. Every response
is checked against PyTorch's output for its input, so a lost, failed or misrouted request
counts; bounded by --seconds per level and --max-requests.

    python benches/serving/export_models.py --work W          # (the torch venv) models
    python benches/serving/load_test.py --work W [--models cifarnet,resnet50]
        [--clients 1,4,16] [--seconds 10] [--rounds 2] [--instances 2] [--threads 1] [--max-batch 8]
        [--max-queue-delay-us 500] [--out results.json]

Needs kestrel with its serve extra, onnxruntime and tritonclient[grpc] on Python 3.12
(benches/serving/requirements.txt).
"""
import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import tritonclient.grpc as grpcclient

HERE = os.path.dirname(os.path.abspath(__file__))
BACKENDS = ("kestrel", "ort")
LABEL = {"kestrel": "Kestrel", "ort": "ONNX Runtime"}
# A response is right when within this of PyTorch's output (relative to its largest
# magnitude): loose next to `compare`'s 1e-4, tight next to another input's answer.
RTOL = 1e-3


def server_command(backend, model, work, ports, a):
    common = ["--name", model, "--instances", str(a.instances), "--threads", str(a.threads),
              "--max-batch", str(a.max_batch), "--max-queue-delay-us", str(a.max_queue_delay_us),
              "--http-port", str(ports[0]), "--grpc-port", str(ports[1]),
              "--metrics-port", str(ports[2])]
    if backend == "kestrel":
        return [sys.executable, "-m", "kestrel.serve", os.path.join(work, f"{model}.safetensors")] + common
    return [sys.executable, os.path.join(HERE, "serve_ort.py"), os.path.join(work, f"{model}.onnx")] + common


def wait_ready(proc, http_port, model, log_path, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited ({proc.returncode}); its log: {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/models/{model}/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"server not ready in {timeout} s; its log: {log_path}")


class Level:
    """Closed-loop clients: each sends a request, waits for its answer, checks it, repeats."""

    def __init__(self, url, model, output_names, check, clients, seconds, max_requests):
        self.url, self.model, self.outputs = url, model, output_names
        self.xs, self.refs = check
        self.clients, self.seconds, self.max_requests = clients, seconds, max_requests
        self.lock = threading.Lock()
        self.sent = 0
        self.latencies, self.errors, self.wrong = [], [], 0

    def take(self):
        with self.lock:
            if self.sent >= self.max_requests or time.perf_counter() >= self.deadline:
                return None
            self.sent += 1
            return self.sent

    def client(self):
        c = grpcclient.InferenceServerClient(self.url)
        latencies = []
        while (k := self.take()) is not None:
            i = k % len(self.xs)
            x = self.xs[i:i + 1]
            inp = grpcclient.InferInput("input", x.shape, "FP32")
            inp.set_data_from_numpy(x)
            t = time.perf_counter()
            try:
                r = c.infer(self.model, [inp])
            except Exception as e:  # an error response: counted, never retried
                with self.lock:
                    self.errors.append(str(e)[:200])
                continue
            latencies.append(time.perf_counter() - t)
            ok = all(right(r.as_numpy(name), ref[i:i + 1]) for name, ref in zip(self.outputs, self.refs))
            if not ok:
                with self.lock:
                    self.wrong += 1
        with self.lock:
            self.latencies += latencies

    def run(self):
        self.deadline = time.perf_counter() + self.seconds
        start = time.perf_counter()
        threads = [threading.Thread(target=self.client) for _ in range(self.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        lat = np.array(self.latencies) * 1e3
        answered = len(self.latencies)
        return {"clients": self.clients, "sent": self.sent, "answered": answered,
                "errors": len(self.errors), "wrong": self.wrong, "seconds": elapsed,
                "throughput": answered / elapsed,
                "p50_ms": float(np.percentile(lat, 50)) if answered else None,
                "p99_ms": float(np.percentile(lat, 99)) if answered else None,
                "first_error": self.errors[0] if self.errors else None}


def right(got, ref):
    return got is not None and got.shape == ref.shape and \
        float(np.max(np.abs(got - ref))) <= RTOL * float(np.max(np.abs(ref))) + 1e-6


def group_cpu_seconds(pgid):
    """CPU time (user + system) of every process in the server's process group: its Python
    process, the Triton server, the backend stubs and PyTriton's proxies."""
    ticks = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def batches_seen(metrics_port, model):
    """Triton's counts of inferences and of batch executions: their ratio is the mean batch."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    counts = {}
    for line in text.splitlines():
        for key in ("nv_inference_count", "nv_inference_exec_count"):
            if line.startswith(key + "{") and f'model="{model}"' in line:
                counts[key] = float(line.split()[-1])
    return counts


def start(backend, model, a, ports):
    log_path = os.path.join(a.work, f"server-{backend}-{model}.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(server_command(backend, model, a.work, ports, a), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    wait_ready(proc, ports[0], model, log_path)
    return proc


def stop(proc):
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def output_names(model, ports):
    """The model's outputs as the server names them."""
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{ports[1]}")
    return [o["name"] for o in client.get_model_metadata(model, as_json=True)["outputs"]]


def load(backend, model, a, ports, outputs, check, clients, pgid):
    """One level against one server: its row, with the mean batch Triton formed and the
    server's CPU time per answered request (noise on a shared machine moves throughput
    more than it moves this)."""
    url = f"127.0.0.1:{ports[1]}"
    before, cpu = batches_seen(ports[2], model), group_cpu_seconds(pgid)
    row = Level(url, model, outputs, check, clients, a.seconds, a.max_requests).run()
    after, cpu = batches_seen(ports[2], model), group_cpu_seconds(pgid) - cpu
    row["server_cpu_ms_per_request"] = 1e3 * cpu / max(row["answered"], 1)
    execs = after["nv_inference_exec_count"] - before["nv_inference_exec_count"]
    row["mean_batch"] = (after["nv_inference_count"] - before["nv_inference_count"]) / max(execs, 1)
    row.update(backend=backend, model=model)
    print(f"{model:9} {LABEL[backend]:13} {clients:>3} clients: {row['throughput']:8.1f} req/s  "
          f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  mean batch {row['mean_batch']:.2f}  "
          f"server CPU {row['server_cpu_ms_per_request']:.2f} ms/req  sent {row['sent']} answered {row['answered']} errors {row['errors']} wrong {row['wrong']}",
          flush=True)
    return row


def serve_and_load(model, a):
    """Both backends' servers up at once (an idle one costs next to nothing), loaded in
    turn, level by level, the first backend alternating by round: both see the same noise."""
    check = np.load(os.path.join(a.work, f"{model}.check.npz"))
    xs = check["input"]
    refs = [check[k] for k in sorted(check.files) if k.startswith("output")]
    ports = {b: (a.base_port + 10 * i, a.base_port + 10 * i + 1, a.base_port + 10 * i + 2)
             for i, b in enumerate(a.backends)}
    procs = {}
    try:
        for b in a.backends:
            procs[b] = start(b, model, a, ports[b])
        outputs = {b: output_names(model, ports[b]) for b in a.backends}
        for b in a.backends:  # warm-up
            load(b, model, a, ports[b], outputs[b], (xs, refs), 1, procs[b].pid)
        rows = []
        for r in range(a.rounds):
            for clients in a.clients:
                order = a.backends if r % 2 == 0 else a.backends[::-1]
                for b in order:
                    row = load(b, model, a, ports[b], outputs[b], (xs, refs), clients, procs[b].pid)
                    rows.append(dict(row, round=r))
        return rows
    finally:
        for proc in procs.values():
            stop(proc)


def summary(rows):
    """Per model, backend and level: the median over rounds of each figure."""
    keys = sorted({(r["model"], r["backend"], r["clients"]) for r in rows})
    out = []
    for m, b, c in keys:
        rs = [r for r in rows if (r["model"], r["backend"], r["clients"]) == (m, b, c)]
        med = {k: float(np.median([r[k] for r in rs])) for k in ("throughput", "p50_ms", "p99_ms", "mean_batch",
                                                         "server_cpu_ms_per_request")}
        out.append(dict(med, model=m, backend=b, clients=c, rounds=len(rs),
                        sent=sum(r["sent"] for r in rs), answered=sum(r["answered"] for r in rs),
                        errors=sum(r["errors"] for r in rs), wrong=sum(r["wrong"] for r in rs)))
    return out


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True)
    p.add_argument("--models", default="cifarnet,resnet50")
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--clients", default="1,4,16")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-requests", type=int, default=100000)
    p.add_argument("--instances", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--max-queue-delay-us", type=int, default=500)
    p.add_argument("--base-port", type=int, default=18100)
    p.add_argument("--out")
    a = p.parse_args()
    a.clients = [int(c) for c in a.clients.split(",")]
    a.backends = a.backends.split(",")
    rows = []
    for model in a.models.split(","):
        rows += serve_and_load(model, a)
    table = summary(rows)
    print("\nmedian over rounds:")
    for t in table:
        print(f"{t['model']:9} {LABEL[t['backend']]:13} {t['clients']:>3} clients: {t['throughput']:8.1f} req/s  "
              f"p50 {t['p50_ms']:7.2f} ms  p99 {t['p99_ms']:7.2f} ms  mean batch {t['mean_batch']:.2f}  "
              f"server CPU {t['server_cpu_ms_per_request']:.2f} ms/req")
    lost = sum(r["sent"] - r["answered"] + r["wrong"] for r in rows)
    result = {"machine": machine(), "config": {k: v for k, v in vars(a).items() if k != "out"},
              "summary": table, "rows": rows}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    print(f"requests lost, failed or wrong: {lost}")
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    main()
