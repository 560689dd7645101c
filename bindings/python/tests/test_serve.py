"""kestrel.serve on a real Triton Inference Server (through PyTriton) serving a fixture: right answers over HTTP and gRPC,
dynamic batching under concurrent clients, an error response for a request of the wrong
shape, dtype or batch while the server keeps serving, health and metrics."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import kestrel
from test_models import assert_close, fixture


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # A test requirement (tests/requirements.txt): missing, the import fails the tests.
    import pytriton  # noqa: F401

    http, grpc, metrics = free_ports(3)
    log = tmp_path_factory.mktemp("serve") / "server.log"
    cmd = [sys.executable, "-m", "kestrel.serve", str(fixture("cifarnet")), "--name", "cifar",
           "--max-batch", "4", "--max-queue-delay-us", "2000", "--instances", "2",
           "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 240
    url = f"http://127.0.0.1:{http}/v2/models/cifar/ready"
    while True:
        assert proc.poll() is None, f"server exited {proc.returncode}: {log.read_text()[-3000:]}"
        assert time.time() < deadline, f"server not ready: {log.read_text()[-3000:]}"
        try:
            if urllib.request.urlopen(url, timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    yield {"http": http, "grpc": grpc, "metrics": metrics, "log": log}
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def infer_http(server, x, datatype="FP32"):
    import tritonclient.http as http

    client = http.InferenceServerClient(f"127.0.0.1:{server['http']}")
    inp = http.InferInput("input", list(x.shape), datatype)
    inp.set_data_from_numpy(x)
    return client.infer("cifar", [inp]).as_numpy("fc")


def local(x):
    return kestrel.Model(fixture("cifarnet")).session(batch=x.shape[0]).run(x)[0]


def test_the_server_answers_as_the_library_does(server):
    import tritonclient.grpc as grpc

    xs = np.random.default_rng(2).standard_normal((3, 3, 32, 32), dtype=np.float32)
    for n in [1, 3]:
        assert_close(infer_http(server, xs[:n]), local(xs[:n]), rtol=1e-5)
    client = grpc.InferenceServerClient(f"127.0.0.1:{server['grpc']}")
    meta = client.get_model_metadata("cifar", as_json=True)
    assert [(i["name"], i["shape"]) for i in meta["inputs"]] == [("input", ["-1", "3", "32", "32"])]
    assert [(o["name"], o["shape"]) for o in meta["outputs"]] == [("fc", ["-1", "10"])]
    inp = grpc.InferInput("input", [1, 3, 32, 32], "FP32")
    inp.set_data_from_numpy(xs[:1])
    assert_close(client.infer("cifar", [inp]).as_numpy("fc"), local(xs[:1]), rtol=1e-5)


def test_concurrent_clients_are_batched_and_each_gets_its_own_answer(server):
    xs = np.random.default_rng(3).standard_normal((32, 1, 3, 32, 32), dtype=np.float32)
    want = [local(x) for x in xs]
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda x: infer_http(server, x), xs))
    for g, w in zip(got, want):
        assert_close(g, w, rtol=1e-5)
    text = urllib.request.urlopen(f"http://127.0.0.1:{server['metrics']}/metrics").read().decode()
    counts = {line.split("{")[0]: float(line.split()[-1]) for line in text.splitlines()
              if 'model="cifar"' in line and line.startswith(("nv_inference_count", "nv_inference_exec_count"))}
    # Triton ran fewer batches than it answered requests: the dynamic batcher joined some.
    assert counts["nv_inference_exec_count"] < counts["nv_inference_count"], counts


@pytest.mark.parametrize(
    "x,datatype,message",
    [
        (np.zeros((1, 3, 32, 31), np.float32), "FP32", "unexpected shape for input 'input'"),
        (np.zeros((1, 3, 32), np.float32), "FP32", "unexpected shape for input 'input'"),
        (np.zeros((1, 3, 32, 32), np.float64), "FP64", "data-type is 'FP64', but model 'cifar' expects 'FP32'"),
        (np.zeros((5, 3, 32, 32), np.float32), "FP32", "batch-size must be <= 4"),
    ],
)
def test_a_bad_request_gets_an_error_and_the_server_keeps_serving(server, x, datatype, message):
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match=message):
        infer_http(server, x, datatype)
    x = np.ones((1, 3, 32, 32), np.float32)
    assert_close(infer_http(server, x), local(x), rtol=1e-5)
    health = urllib.request.urlopen(f"http://127.0.0.1:{server['http']}/v2/health/live")
    assert health.status == 200
