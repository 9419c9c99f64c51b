"""Lambda Invoke: warm throughput and latency, and cold starts beside a fresh interpreter.

One `berth up` process; functions created with boto3. Warm: 1 and 4 client processes invoke
one Python function in a closed loop; a client signs each request with botocore's SigV4Auth
(fresh X-Amz-Date) and sends it over one keep-alive http.client connection, so the client
costs little of the 2 cores. Latency is the round trip without the signing. Cold: the first
invoke of a new function (a new function per sample), for Python and Node.js, beside the
start of a fresh `python3 -c pass` (the real binary, not a shim) and `node -e 0` measured in
the same run.

Targets: ≥ 1,000 warm invokes/s; cold start p50 below the fresh interpreter's p50.

    .venv/bin/python bench/invoke.py [--duration 3] [--cold 15]
"""
from __future__ import annotations

import argparse
import http.client
import io
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCESS_KEY = "AKIABENCHINVOKE00001"
SECRET_KEY = "bench-invoke-secret-00000000000000000000"
ROLE = "arn:aws:iam::000000000000:role/bench"
TARGET_WARM_RPS = 1000.0
PY_CODE = "def handler(event, context):\n    return {'ok': True, 'n': event.get('n')}\n"
NODE_CODE = "exports.handler = async (event) => ({ ok: true, n: event.n });\n"


def _zip(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, text)
    return buf.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass(frozen=True)
class Call:
    """One request a closed-loop client sends again and again: signed as `service` with the
    keys, answered 200 with `expect` in the body."""
    port: int
    service: str
    path: str
    body: bytes
    content_type: str
    expect: bytes
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY


class _Signer:
    def __init__(self, call: Call) -> None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        self.auth = SigV4Auth(Credentials(call.access_key, call.secret_key), call.service,
                              REGION)
        self.request_class = AWSRequest
        self.url = f"http://127.0.0.1:{call.port}{call.path}"
        self.content_type = call.content_type

    def headers(self, body: bytes) -> dict[str, str]:
        req = self.request_class(method="POST", url=self.url, data=body,
                                 headers={"Content-Type": self.content_type})
        self.auth.add_auth(req)
        return dict(req.headers.items())


def invoke_call(port: int, function: str) -> Call:
    return Call(port, "lambda", f"/2015-03-31/functions/{function}/invocations", b'{"n": 1}',
                "application/json", b'"ok"')


def _client(call: Call, duration: float, warmup: float, start_at: float, out: Any) -> None:
    signer = _Signer(call)
    conn = http.client.HTTPConnection("127.0.0.1", call.port)
    body = call.body
    latencies: list[float] = []
    errors = 0
    while time.time() < start_at:
        time.sleep(0.001)
    measure_from = time.perf_counter() + warmup
    stop = measure_from + duration
    count = 0
    while count < 2_000_000:
        headers = signer.headers(body)
        t0 = time.perf_counter()
        if t0 >= stop:
            break
        conn.request("POST", call.path, body, headers)
        resp = conn.getresponse()
        data = resp.read()
        t1 = time.perf_counter()
        count += 1
        if t0 >= measure_from:
            if resp.status != 200 or call.expect not in data:
                errors += 1
            else:
                latencies.append(t1 - t0)
    out.put((latencies, errors, duration))


def closed_loop(call: Call, clients: int, duration: float, warmup: float
                ) -> tuple[list[float], int]:
    """Round-trip seconds of every answered `call` from `clients` processes, and errors."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 1.5    # time for every spawned client to import botocore
    procs = [ctx.Process(target=_client, args=(call, duration, warmup, start_at, queue))
             for _ in range(clients)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=duration + warmup + 60) for _ in procs]
    for p in procs:
        p.join(10)
    return [x for r in results for x in r[0]], sum(r[1] for r in results)


def warm(port: int, function: str, clients: int, duration: float, warmup: float
         ) -> dict[str, Any]:
    latencies, errors = closed_loop(invoke_call(port, function), clients, duration, warmup)
    return {"case": f"warm, {clients} client{'s' if clients > 1 else ''}",
            "invokes_per_s": round(len(latencies) / duration, 1),
            "p50_ms": round(_percentile(latencies, 0.5) * 1e3, 3),
            "p99_ms": round(_percentile(latencies, 0.99) * 1e3, 3),
            "errors": errors, "target": f">= {TARGET_WARM_RPS:.0f}/s",
            "met": errors == 0 and len(latencies) / duration >= TARGET_WARM_RPS}


def _spawn_times(argv: list[str], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True)
        times.append(time.perf_counter() - t0)
    return times


def cold(lam: Any, runtime: str, handler: str, code: bytes, n: int, tag: str) -> list[float]:
    times = []
    for i in range(n):
        name = f"cold-{tag}-{i}"
        lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                            Code={"ZipFile": code})
        lam.invoke(FunctionName=name, InvocationType="DryRun")   # resolve + unpack, not timed
        t0 = time.perf_counter()
        resp = lam.invoke(FunctionName=name, Payload=b'{"n": 1}')
        times.append(time.perf_counter() - t0)
        assert resp["StatusCode"] == 200 and "FunctionError" not in resp, resp
        resp["Payload"].read()
    return times


def _row(case: str, times: list[float], target: str = "", met: bool | None = None
         ) -> dict[str, Any]:
    return {"case": case, "p50_ms": round(_percentile(times, 0.5) * 1e3, 2),
            "p99_ms": round(_percentile(times, 0.99) * 1e3, 2), "samples": len(times),
            "target": target, "met": met}


def run(print_table: bool = True, duration: float = 3.0, warmup: float = 0.5,
        cold_samples: int = 15, **_: Any) -> list[dict[str, Any]]:
    import boto3
    from botocore.config import Config

    data_dir = Path(tempfile.mkdtemp(prefix="berth-bench-invoke-"))
    port = _free_port()
    log = open(data_dir / "berth.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "berth.cli", "up", "--port", str(port), "--data-dir",
         str(data_dir / "data"), "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    rows: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError((data_dir / "berth.log").read_text())
                time.sleep(0.05)
        lam = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}",
                           region_name=REGION, aws_access_key_id=ACCESS_KEY,
                           aws_secret_access_key=SECRET_KEY,
                           config=Config(retries={"max_attempts": 1}))
        lam.create_function(FunctionName="warm", Runtime="python3.11", Role=ROLE,
                            Handler="app.handler", Code={"ZipFile": _zip("app.py", PY_CODE)})
        lam.invoke(FunctionName="warm", Payload=b'{"n": 0}')
        for clients in (1, 4):
            rows.append(warm(port, "warm", clients, duration, warmup))
        python = os.path.realpath(sys.executable)
        node = os.path.realpath(shutil.which("node") or "node")
        fresh_py = _spawn_times([python, "-c", "pass"], cold_samples)
        fresh_node = _spawn_times([node, "-e", "0"], cold_samples)
        # One throwaway Node.js function, so the samples measure functions, not the first
        # start of a runtime on this host (its files in the page cache).
        cold(lam, "nodejs20.x", "index.handler", _zip("index.js", NODE_CODE), 1, "node-w")
        cold_py = cold(lam, "python3.11", "app.handler", _zip("app.py", PY_CODE),
                       cold_samples, "py")
        cold_node = cold(lam, "nodejs20.x", "index.handler", _zip("index.js", NODE_CODE),
                         cold_samples, "node")
        py_floor = _percentile(fresh_py, 0.5)
        node_floor = _percentile(fresh_node, 0.5)
        rows.append(_row("fresh `python3 -c pass`", fresh_py))
        rows.append(_row("cold start, python3.11", cold_py, "< fresh python p50",
                         _percentile(cold_py, 0.5) < py_floor))
        rows.append(_row("fresh `node -e 0`", fresh_node))
        rows.append(_row("cold start, nodejs20.x", cold_node, "< fresh node p50",
                         _percentile(cold_node, 0.5) < node_floor))
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    if print_table:
        _print(rows)
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title="Lambda Invoke (berth up, 2 cores shared with the clients)")
    for col in ("case", "invokes/s", "p50 ms", "p99 ms", "samples", "target", "met"):
        table.add_column(col, justify="left" if col in ("case", "target") else "right")
    for r in rows:
        met = r.get("met")
        table.add_row(r["case"], str(r.get("invokes_per_s", "")), str(r["p50_ms"]),
                      str(r["p99_ms"]), str(r.get("samples", "")), r.get("target", ""),
                      "" if met is None else ("yes" if met else "NO"))
    Console().print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--cold", type=int, default=15)
    args = parser.parse_args()
    run(duration=args.duration, cold_samples=args.cold)
