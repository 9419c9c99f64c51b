"""API throughput and latency: berth against moto's server, same calls, same client, same run.

Both servers get the same data (20 log groups under /bench/, one stream of 100 events in
/bench/g) and the same load: CloudWatch Logs DescribeLogGroups and GetLogEvents from 1 and from 4
client processes. A client is deliberately thin so that it costs both servers the same CPU on a
small machine: per request it signs with botocore's SigV4Auth (fresh X-Amz-Date, as real SDKs do)
and sends over one keep-alive http.client connection. Latency is the round trip (send to last
byte of the body), without the signing; req/s is completed 200s per second of the measured
window, summed over clients (closed loop: a client sends its next request when the last returns).
"srv CPU µs/req" is the server process's user+system CPU (all threads, from /proc) in the
window divided by the requests completed in it: the number least disturbed by a noisy machine.

Every config runs `--runs` times, interleaved berth/moto so drift on the machine hits both; the
table shows the median and every run's req/s so the noise is visible.

Targets: berth ≥ 5× moto's req/s on every row; berth p99 < 5 ms with one client.

    .venv/bin/python bench/api.py [--duration 2] [--warmup 0.5] [--runs 2]
"""
from __future__ import annotations

import argparse
import array
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

REGION = "us-east-1"
TARGET_PREFIX = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"
GROUP, STREAM = "/bench/g", "bench-stream"
N_GROUPS, N_EVENTS = 20, 100
CLIENT_COUNTS = (1, 4)
MAX_REQUESTS_PER_CLIENT = 1_000_000  # a bound on memory; far above what 2 cores can do

# operation -> (request body, (response list key, expected length))
OPERATIONS: dict[str, tuple[dict[str, Any], tuple[str, int]]] = {
    "DescribeLogGroups": ({"logGroupNamePrefix": "/bench/"}, ("logGroups", N_GROUPS)),
    "GetLogEvents": ({"logGroupName": GROUP, "logStreamName": STREAM, "startFromHead": True},
                     ("events", N_EVENTS)),
}

# Targets: berth at least this many times moto's req/s on every row; berth's p99 with one
# client under this many milliseconds.
TARGET_RATIO = 5.0
TARGET_P99_MS = 5.0

MOTO_ACCESS_KEY = "AKIABENCHMOTO0000001"  # moto does not check signatures; signed all the same
MOTO_SECRET_KEY = "bench-moto-secret-0000000000000000000000"


# ------------------------------------------------------------------------------------------
# The client: runs in worker processes (spawned), so it only imports what it needs.


class _Client:
    """Signs and sends one operation's request over one keep-alive connection.

    A job names the request as the wire carries it (`method`, `path` with its query,
    `headers`, `body`) and the service it is signed for, so one client serves JSON and
    REST-JSON services alike. `expect` is (member, length): the answer's member must hold a
    list of at least that length (a server may ignore a page size), or be present if the
    length is None; with no member, the answer must be a JSON object. A body holding the
    marker `@N@` gets a number unique to the request in its place (writes of distinct items).
    """

    def __init__(self, job: dict[str, Any]) -> None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        self._request_class = AWSRequest
        host, port = job["host"], job["port"]
        netloc = f"{host}:{port}"
        self.method: str = job.get("method", "POST")
        self.path: str = job.get("path", "/")
        self.url = f"http://{netloc}{self.path}"
        self.body: bytes = job["body"]
        self.numbered = b"@N@" in self.body
        self.sent = 0
        self.base = {**job["headers"], "Host": netloc}
        self.auth = SigV4Auth(Credentials(job["access_key"], job["secret_key"]),
                              job.get("service", "logs"), REGION)
        self.list_key, self.expected_len = job["expect"]
        self.conn = http.client.HTTPConnection(host, port, timeout=10)

    def call(self) -> tuple[int | None, bytes, float]:
        """(status or None, body or error, round-trip seconds without the signing)."""
        body = self.body
        if self.numbered:
            self.sent += 1
            body = body.replace(b"@N@", f"{os.getpid()}-{self.sent}".encode())
        req = self._request_class(self.method, self.url, data=body, headers=self.base)
        self.auth.add_auth(req)
        headers = dict(req.headers.items())
        t0 = time.monotonic()
        try:
            self.conn.request(self.method, self.path, body, headers)
            resp = self.conn.getresponse()
            data = resp.read()
            status: int | None = resp.status
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()  # the next request reconnects
            status, data = None, repr(exc).encode()
        return status, data, time.monotonic() - t0

    def check(self, data: bytes) -> str | None:
        """None if the response holds the data setup put there, else what is wrong."""
        try:
            answer = json.loads(data)
            if self.list_key is None:
                got = None if isinstance(answer, dict) else -1
            else:
                value = answer[self.list_key]
                got = len(value) if self.expected_len is not None else None
        except (ValueError, KeyError, TypeError):
            got = -1
        if got is None or (got >= 0 and self.expected_len is not None
                            and got >= self.expected_len):
            return None
        return f"expected {self.expected_len} {self.list_key}, got {got}: {data[:200]!r}"

    def close(self) -> None:
        self.conn.close()


def _client_run(job: dict[str, Any]) -> dict[str, Any]:
    """One client's share of one config: warm up, then measure until the window closes."""
    client = _Client(job)
    latencies = array.array("d")
    errors, error_sample, checked = 0, None, False
    clock = time.monotonic
    t_measure = job["start"] + job["warmup"]
    t_end = t_measure + job["duration"]
    while clock() < job["start"]:
        time.sleep(0.001)
    last, finished = t_measure, False
    while True:
        status, data, elapsed = client.call()
        t1 = clock()
        ok = status is not None and 200 <= status < 300
        if ok and not checked:  # once per run: the data is what setup put there
            checked = True
            problem = client.check(data)
            if problem:
                ok, data = False, problem.encode()
        if t1 >= t_end:
            finished = True
            break
        if t1 >= t_measure:
            last = t1
            if ok:
                latencies.append(elapsed)
            else:
                errors += 1
                if error_sample is None:
                    error_sample = f"{status}: {data[:300].decode('utf-8', 'replace')}"
            if len(latencies) >= MAX_REQUESTS_PER_CLIENT:
                break
    client.close()
    window = job["duration"] if finished else max(last - t_measure, 1e-9)
    return {"latencies": latencies.tobytes(), "errors": errors, "error_sample": error_sample,
            "window": window}


def _worker(pipe: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers end
    while True:
        job = pipe.recv()
        if job is None:
            return
        try:
            pipe.send(_client_run(job))
        except Exception as exc:  # report, keep serving
            pipe.send({"latencies": b"", "errors": 1, "error_sample": f"client crashed: {exc!r}",
                       "window": job["duration"]})


def _sleep_until(deadline: float) -> None:
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(left)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process (all its threads) so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ClientPool:
    """Client processes started once (spawn) and reused by every config."""

    def __init__(self, size: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes, self.procs = [], []
        for _ in range(size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child,), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def run(self, clients: int, job: dict[str, Any], server_pid: int | None = None
            ) -> tuple[list[dict[str, Any]], float | None]:
        """Every client's result, and the server's CPU seconds in the measured window."""
        # Start together a little in the future, so every client's window is the same one.
        job = {**job, "start": time.monotonic() + 0.05}
        for pipe in self.pipes[:clients]:
            pipe.send(job)
        cpu = None
        if server_pid is not None:
            t_measure = job["start"] + job["warmup"]
            _sleep_until(t_measure)
            before = _cpu_seconds(server_pid)
            _sleep_until(t_measure + job["duration"])
            after = _cpu_seconds(server_pid)
            if before is not None and after is not None:
                cpu = after - before
        return [pipe.recv() for pipe in self.pipes[:clients]], cpu

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(None)
            except OSError:
                pass
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


# ------------------------------------------------------------------------------------------
# The servers.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    name: str
    host: str
    port: int
    access_key: str
    secret_key: str
    stop: Any
    log_path: Path
    pid: int
    unsupported: dict[str, str] = field(default_factory=dict)  # operation -> why

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"


def start_berth(workdir: Path) -> Target:
    sys.path.insert(0, str(ROOT / "tests"))
    from berth_process import ACCESS_KEY, SECRET_KEY, BerthProcess
    proc = BerthProcess(workdir / "berth-data").start()
    assert proc.proc is not None
    return Target("berth", "127.0.0.1", proc.port, ACCESS_KEY, SECRET_KEY, proc.stop,
                  proc.log_path, proc.proc.pid)


def start_moto(workdir: Path, timeout: float = 30) -> Target:
    port = _free_port()
    log_path = workdir / "moto.log"
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited early:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                stop()
                raise RuntimeError(f"moto_server did not listen in {timeout}s") from None
            time.sleep(0.05)
    return Target("moto", "127.0.0.1", port, MOTO_ACCESS_KEY, MOTO_SECRET_KEY, stop, log_path,
                  proc.pid)


def setup(target: Target) -> None:
    """The same data on every server; operations a server lacks are marked, not fatal."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    logs = boto3.client("logs", endpoint_url=target.endpoint, region_name=REGION,
                        aws_access_key_id=target.access_key,
                        aws_secret_access_key=target.secret_key,
                        config=Config(retries={"max_attempts": 1}))
    logs.create_log_group(logGroupName=GROUP)
    for i in range(1, N_GROUPS):
        logs.create_log_group(logGroupName=f"{GROUP}{i:02d}")
    try:
        logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        now_ms = int(time.time() * 1000)
        logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=[
            {"timestamp": now_ms - N_EVENTS + i,
             "message": f"bench event {i:03d} GET /api/items/{i} 200 {i * 7 % 97}ms"}
            for i in range(N_EVENTS)])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "UnknownOperationException":
            raise
        target.unsupported["GetLogEvents"] = (
            f"{exc.operation_name}: {exc.response['Error'].get('Message', '')}")
    for op in OPERATIONS:  # one raw signed request each, through the bench's own client
        if op in target.unsupported:
            continue
        client = _Client(_job(target, op, warmup=0.0, duration=0.0))
        status, data, _ = client.call()
        client.close()
        problem = client.check(data) if status == 200 else f"HTTP {status}: {data[:300]!r}"
        if problem:
            raise RuntimeError(f"{target.name} {op} check failed: {problem}")


def _job(target: Target, op: str, *, warmup: float, duration: float,
         start: float = 0.0) -> dict[str, Any]:
    body, expect = OPERATIONS[op]
    return {"host": target.host, "port": target.port, "access_key": target.access_key,
            "secret_key": target.secret_key, "service": "logs",
            "headers": {"X-Amz-Target": TARGET_PREFIX + op, "Content-Type": CONTENT_TYPE},
            "body": json.dumps(body).encode(), "expect": expect, "warmup": warmup,
            "duration": duration, "start": start}


# ------------------------------------------------------------------------------------------
# Measuring and reporting.


@dataclass
class Run:
    reqs: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_sample: str | None
    server_cpu_us: float  # server CPU time per completed request in the window


def median_run(runs: list[Run] | None) -> Run | None:
    """The median of several runs of one config (errors summed), or None if none ran."""
    if not runs:
        return None
    return Run(statistics.median(r.reqs for r in runs),
               statistics.median(r.p50_ms for r in runs),
               statistics.median(r.p99_ms for r in runs), sum(r.errors for r in runs),
               next((r.error_sample for r in runs if r.error_sample), None),
               statistics.median(r.server_cpu_us for r in runs))


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values), max(1, math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def measure(pool: ClientPool, target: Target, op: str, clients: int, warmup: float,
            duration: float) -> Run:
    return measure_job(pool, target, _job(target, op, warmup=warmup, duration=duration),
                       clients)


def measure_job(pool: ClientPool, target: Target, job: dict[str, Any], clients: int) -> Run:
    """Run one job (see `_Client`) from `clients` client processes; the median numbers."""
    results, cpu = pool.run(clients, job, target.pid)
    latencies: list[float] = []
    reqs = 0.0
    for r in results:
        lat = array.array("d")
        lat.frombytes(r["latencies"])
        latencies.extend(lat)
        reqs += len(lat) / r["window"]
    latencies.sort()
    errors = sum(r["errors"] for r in results)
    sample = next((r["error_sample"] for r in results if r["error_sample"]), None)
    cpu_us = cpu / len(latencies) * 1e6 if cpu is not None and latencies else float("nan")
    return Run(reqs, _percentile(latencies, 50) * 1000, _percentile(latencies, 99) * 1000,
               errors, sample, cpu_us)


def signing_cost_us(n: int = 2000) -> float:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    auth = SigV4Auth(Credentials("AKIAEXAMPLE", "secret"), "logs", REGION)
    headers = {"X-Amz-Target": "x", "Content-Type": CONTENT_TYPE, "Host": "127.0.0.1:1"}
    t = time.perf_counter()
    for _ in range(n):
        req = AWSRequest("POST", "http://127.0.0.1:1/", data=b"{}", headers=headers)
        auth.add_auth(req)
        dict(req.headers.items())
    return (time.perf_counter() - t) / n * 1e6


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


@dataclass
class Result:
    """What run.py prints: the renderables, and whether every target was met."""
    renderables: list[Any]
    targets_met: bool
    valid: bool


def run(duration: float = 2.0, warmup: float = 0.5, runs: int = 2) -> Result:
    from importlib.metadata import version

    from rich.table import Table
    from rich.text import Text

    started = time.monotonic()
    load_before = _loadavg()
    pool = ClientPool(max(CLIENT_COUNTS))  # spawns while the servers boot
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-"))
    targets: list[Target] = []
    try:
        for start in (start_berth, start_moto):
            targets.append(start(workdir))
        for target in targets:
            setup(target)
        sign_us = signing_cost_us()
        results: dict[tuple[str, str, int], list[Run]] = {}
        for rep in range(runs):
            order = targets if rep % 2 == 0 else targets[::-1]
            for op in OPERATIONS:
                for clients in CLIENT_COUNTS:
                    for target in order:
                        if op in target.unsupported:
                            continue
                        results.setdefault((target.name, op, clients), []).append(
                            measure(pool, target, op, clients, warmup, duration))
    except BaseException:
        print(f"bench api: servers' data and logs kept in {workdir}", file=sys.stderr)
        raise
    finally:
        pool.close()
        for target in targets:
            target.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    load_after = _loadavg()
    elapsed = time.monotonic() - started

    table = Table(title=f"API: CloudWatch Logs, berth vs moto {version('moto')} "
                        f"(median of {runs} runs × {duration:g} s, {warmup:g} s warm-up)",
                  title_justify="left")
    for name, justify in (("server", "left"), ("service", "left"), ("operation", "left"),
                          ("clients", "right"), ("req/s", "right"), ("runs req/s", "right"),
                          ("p50 ms", "right"), ("p99 ms", "right"),
                          ("srv CPU µs/req", "right"), ("errors", "right"),
                          ("target", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]

    targets_met, valid = True, True
    by_name = {t.name: t for t in targets}
    error_notes: list[str] = []

    def summary(key: tuple[str, str, int]) -> Run | None:
        return median_run(results.get(key))

    for op in OPERATIONS:
        for clients in CLIENT_COUNTS:
            med: dict[str, Run | None] = {}
            for name in ("berth", "moto"):
                key = (name, op, clients)
                m = med[name] = summary(key)
                if m is None:
                    why = by_name[name].unsupported.get(op, "not run")
                    table.add_row(name, "logs", op, str(clients), "—", "—", "—", "—", "—",
                                  "—", Text("not implemented", style="yellow"))
                    if clients == CLIENT_COUNTS[0]:
                        error_notes.append(f"{name} {op}: not run, {why}")
                    if name == "berth":
                        targets_met = False
                    continue
                check = ""
                if name == "berth" and clients == 1:
                    hit = m.p99_ms < TARGET_P99_MS
                    targets_met &= hit
                    check = f"p99<{TARGET_P99_MS:g}ms {'✓' if hit else '✗'}"
                if m.errors:
                    valid = False
                    error_notes.append(f"INVALID: {name} {op} ×{clients}: {m.errors} "
                                       f"errors, e.g. {m.error_sample}")
                table.add_row(name, "logs", op, str(clients), f"{m.reqs:,.0f}",
                              " / ".join(f"{r.reqs:,.0f}" for r in results[key]),
                              f"{m.p50_ms:.2f}", f"{m.p99_ms:.2f}", f"{m.server_cpu_us:,.0f}",
                              Text(str(m.errors), style="red" if m.errors else ""),
                              Text(check, style="green" if "✓" in check else "red"))
            b, mo = med["berth"], med["moto"]
            if b is not None and mo is not None and mo.reqs > 0:
                ratio = b.reqs / mo.reqs
                hit = ratio >= TARGET_RATIO
                targets_met &= hit
                table.add_row(Text("berth/moto", style="bold"), "", "", "",
                              Text(f"{ratio:.2f}×", style="bold"), "",
                              f"{b.p50_ms / mo.p50_ms:.2f}×", f"{b.p99_ms / mo.p99_ms:.2f}×",
                              f"{b.server_cpu_us / mo.server_cpu_us:.2f}×",
                              "", Text(f"≥{TARGET_RATIO:g}× {'✓' if hit else '✗'}",
                                       style="green" if hit else "red"),
                              end_section=True)
            else:
                table.add_row("berth/moto", "", "", "", "—", "", "", "", "", "", "",
                              end_section=True)

    context = Text(
        f"machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {platform.python_version()}, "
        f"load avg {load_before} before / {load_after} after; clients and servers share "
        f"these CPUs.\n"
        f"client: SigV4 signing {sign_us:.0f} µs/request (in the loop, not in latency), "
        f"one keep-alive http.client connection per client process; whole bench {elapsed:.0f} s.",
        style="dim")
    renderables: list[Any] = [table, context]
    for note in error_notes:
        renderables.append(Text(note, style="red" if "errors" in note else "yellow"))
    verdict = ("targets met" if targets_met and valid else
               "targets NOT met" if valid else "run had errors: numbers are not valid")
    renderables.append(Text(
        f"api: {verdict} (berth ≥ {TARGET_RATIO:g}× moto req/s on every row; berth p99 < "
        f"{TARGET_P99_MS:g} ms with 1 client)",
        style="bold green" if targets_met and valid else "bold red"))
    return Result(renderables, targets_met, valid)


def make_console() -> Any:
    """rich's console; wide enough for the table when the output is a file or a pipe."""
    from rich.console import Console
    return Console() if sys.stdout.isatty() else Console(width=140)


def main(argv: list[str] | None = None) -> int:
    return command_line(run, __doc__, argv)


def command_line(bench: Any, doc: str | None, argv: list[str] | None = None) -> int:
    """Run a bench module's `run` from the command line (--duration, --warmup, --runs) and
    print its tables; 1 if its numbers are not valid."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0,
                        help="measured seconds per config and run [2]")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds [0.5]")
    parser.add_argument("--runs", type=int, default=2, help="runs per config [2]")
    args = parser.parse_args(argv)
    result = bench(args.duration, args.warmup, args.runs)
    console = make_console()
    for r in result.renderables:
        console.print(r)
    return 0 if result.valid else 1


if __name__ == "__main__":
    sys.exit(main())
