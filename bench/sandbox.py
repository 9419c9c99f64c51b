"""Function sandboxes: cold starts, warm throughput, freeze+thaw cost and density, each beside
a floor measured in the same run.

Floors: a fresh `python3 -c pass` and `node -e 0` (real binaries), `fork()` from this loaded
interpreter until the child runs, and `runc run` of /bin/true in a busybox bundle. Over HTTP
against one `berth up` (boto3 for cold starts, bench.invoke's signing clients for warm
load): the first invoke of a new function (Python, Node.js; samples paced so the pre-warm
pool refills between them, as it does between real cold starts), and warm invokes with 4
and 1 client processes. In this process, with a FunctionWorker of its own: the freeze and
thaw writes on the invoke path (and without the frozen anchor cgroup, and SIGSTOP/SIGCONT
as the floor), the worker's invoke round trip with and without freezing, and up to 1,000
warm frozen Python sandboxes with their PSS (/proc/PID/smaps_rollup), then all removed.

Targets: Python cold start p50 <= 10 ms; warm >= 2,000 invokes/s with 4 clients and p50
overhead <= 1 ms; >= 1,000 warm frozen Python sandboxes on this host.

    .venv/bin/python bench/sandbox.py [--duration 3] [--cold 15] [--density 1000]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.invoke import (
    ACCESS_KEY,
    NODE_CODE,
    PY_CODE,
    REGION,
    ROLE,
    SECRET_KEY,
    _free_port,
    _percentile,
    _zip,
    warm,
)

COLD_PACE = 0.15          # seconds between cold-start samples: the pool refills meanwhile
DENSITY_DEADLINE = 90.0   # seconds the density run may spend creating sandboxes


def _row(case: str, times: list[float] | None = None, scale: float = 1e3, unit: str = "ms",
         value: str = "", target: str = "", met: bool | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"case": case, "value": value, "target": target, "met": met,
                           "unit": unit}
    if times:
        row.update(p50=round(_percentile(times, 0.5) * scale, 3),
                   p99=round(_percentile(times, 0.99) * scale, 3), samples=len(times))
    return row


# Floors.

def _spawn_times(argv: list[str], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return times


def _fork_times(n: int) -> list[float]:
    times = []
    for _ in range(n):
        r, w = os.pipe()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.write(w, b"x")
            os._exit(0)
        os.read(r, 1)
        times.append(time.perf_counter() - t0)
        os.waitpid(pid, 0)
        os.close(r)
        os.close(w)
    return times


def _runc_times(work: Path, n: int) -> list[float]:
    bundle = work / "runc-bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy2("/usr/bin/busybox", bundle / "rootfs" / "bin" / "busybox")
    (bundle / "rootfs" / "bin" / "true").symlink_to("busybox")
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=["/bin/true"])
    config["root"]["readonly"] = True
    (bundle / "config.json").write_text(json.dumps(config))
    root = work / "runc-root"
    # A container id is used once: a fresh one per run.
    return [_spawn_times(["runc", "--root", str(root), "run", "--bundle", str(bundle),
                          f"bench-{uuid.uuid4().hex[:8]}"], 1)[0] for _ in range(n)]


# Over HTTP, against `berth up`.

def _start_server(data: Path) -> tuple[subprocess.Popen[bytes], int, Any]:
    port = _free_port()
    log = open(data / "berth.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "berth.cli", "up", "--port", str(port), "--data-dir",
         str(data / "data"), "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, port, log
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError((data / "berth.log").read_text())
            time.sleep(0.05)


def _stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _cold(lam: Any, runtime: str, handler: str, code: bytes, n: int, tag: str
          ) -> list[float]:
    times = []
    for i in range(n):
        name = f"cold-{tag}-{i}-{uuid.uuid4().hex[:6]}"
        lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                            Code={"ZipFile": code})
        lam.invoke(FunctionName=name, InvocationType="DryRun")   # resolve + unpack, untimed
        time.sleep(COLD_PACE)
        t0 = time.perf_counter()
        resp = lam.invoke(FunctionName=name, Payload=b'{"n": 1}', LogType="Tail")
        times.append(time.perf_counter() - t0)
        body = resp["Payload"].read()
        assert resp["StatusCode"] == 200 and "FunctionError" not in resp, (
            body, base64.b64decode(resp.get("LogResult", "")).decode())
    return times


def _http_rows(work: Path, duration: float, warmup: float, cold_n: int) -> list[dict[str, Any]]:
    import boto3
    from botocore.config import Config
    server, port, log = _start_server(work)
    rows = []
    try:
        lam = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}",
                           region_name=REGION, aws_access_key_id=ACCESS_KEY,
                           aws_secret_access_key=SECRET_KEY,
                           config=Config(retries={"max_attempts": 1}))
        py = _cold(lam, "python3.11", "app.handler", _zip("app.py", PY_CODE), cold_n, "py")
        node = _cold(lam, "nodejs20.x", "index.handler", _zip("index.js", NODE_CODE),
                     cold_n, "node")
        rows.append(_row("cold start, python3.11 (first invoke, HTTP)", py,
                         target="p50 <= 10 ms", met=_percentile(py, 0.5) <= 0.010))
        rows.append(_row("cold start, nodejs20.x (first invoke, HTTP)", node))
        lam.create_function(FunctionName="warm", Runtime="python3.11", Role=ROLE,
                            Handler="app.handler", Code={"ZipFile": _zip("app.py", PY_CODE)})
        lam.invoke(FunctionName="warm", Payload=b'{"n": 0}')
        for clients in (4, 1):
            w = warm(port, "warm", clients, duration, warmup)
            row = _row(f"warm invokes, {clients} client{'s' if clients > 1 else ''} (HTTP)",
                       value=f"{w['invokes_per_s']:.0f}/s")
            row.update(p50=w["p50_ms"], p99=w["p99_ms"], samples="")
            if clients == 4:
                row.update(target=">= 2000/s", met=w["errors"] == 0
                           and w["invokes_per_s"] >= 2000)
            else:
                row.update(target="p50 <= 1 ms", met=w["errors"] == 0 and w["p50_ms"] <= 1.0)
            rows.append(row)
    finally:
        _stop_server(server)
        log.close()
    return rows


# In this process, with a worker of its own.

def _sink() -> Any:
    class Sink:
        def put(self, key: Any, events: list[dict[str, Any]]) -> None:
            pass
    return Sink()


def _config(name: str) -> Any:
    from berth.lambda_.model import FunctionConfig
    return FunctionConfig(REGION, "000000000000", name, "$LATEST",
                          f"arn:aws:lambda:{REGION}:000000000000:function:{name}",
                          "python3.11", "app.handler", 128, 3, "sha", "r1")


async def _invoke(worker: Any, cfg: Any, code: Path) -> None:
    from berth.agent.functions.invocation import Invocation
    result = await worker.invoke(cfg, code, Invocation(uuid.uuid4().hex, b'{"n": 1}',
                                                       cfg.function_arn))
    assert result.function_error is None, result.payload


async def _idle(env: Any) -> None:
    from berth.agent.functions.environment import State
    for _ in range(500):
        if env.state is State.IDLE:
            return
        await asyncio.sleep(0.002)
    raise RuntimeError("the sandbox did not go idle")


async def _freeze_rows(work: Path, code: Path, n: int) -> list[dict[str, Any]]:
    from berth.agent.functions import sandbox as sandbox_module
    from berth.agent.functions.cgroups import ANCHOR
    from berth.agent.functions.worker import FunctionWorker
    worker = FunctionWorker(work / "freeze" / "sandboxes", _sink(), prewarm_python=1,
                            prewarm_node=0)
    await worker.start()
    rows = []
    try:
        cfg = _config("freeze")
        await _invoke(worker, cfg, code)
        (env,) = worker.pools.environments()
        await _idle(env)
        sb = env.sandbox

        def pairs(freeze: Any, thaw: Any) -> tuple[list[float], list[float]]:
            f_times, t_times = [], []
            for _ in range(n):
                t0 = time.perf_counter()
                thaw()
                t1 = time.perf_counter()
                freeze()
                t2 = time.perf_counter()
                t_times.append(t1 - t0)
                f_times.append(t2 - t1)
            return f_times, t_times

        f, t = pairs(sb.freeze, sb.thaw)
        rows.append(_row("freeze (write FROZEN, no poll)", f, 1e6, "µs"))
        rows.append(_row("thaw (write THAWED)", t, 1e6, "µs"))
        both = [a + b for a, b in zip(f, t)]
        polls = []
        for _ in range(min(n, 300)):
            sb.thaw()
            sb.freeze()
            t0 = time.perf_counter()
            sb.wait_frozen()
            polls.append(time.perf_counter() - t0)
        rows.append(_row("wait until FROZEN (lazy, off the invoke path)", polls, 1e6, "µs"))
        anchor = worker.driver.hierarchies.get("freezer") / ANCHOR / "freezer.state"
        anchor.write_text("THAWED")
        try:
            f2, t2 = pairs(sb.freeze, sb.thaw)
        finally:
            anchor.write_text("FROZEN")
        rows.append(_row("freeze+thaw, no frozen anchor cgroup (kernel patches text)",
                         [a + b for a, b in zip(f2, t2)], 1e6, "µs"))
        pg = sb.pid
        f3, t3 = pairs(lambda: os.killpg(pg, signal.SIGSTOP),
                       lambda: os.killpg(pg, signal.SIGCONT))
        os.killpg(pg, signal.SIGCONT)       # the last call stopped it; the cgroup holds it
        rows.append(_row("floor: SIGSTOP+SIGCONT of the process group",
                         [a + b for a, b in zip(f3, t3)], 1e6, "µs"))
        rows.insert(0, _row("freeze+thaw on the invoke path (freezer cgroup)", both, 1e6,
                            "µs", target="cheap: << 1 ms overhead",
                            met=_percentile(both, 0.5) < 100e-6))
        # The worker's whole round trip (no HTTP), with and without freezing.
        rounds = []
        for freezing in (True, False):
            saved = (sandbox_module.ForkedSandbox.freeze, sandbox_module.ForkedSandbox.thaw)
            if not freezing:
                sb.thaw()
                sandbox_module.ForkedSandbox.freeze = lambda self: None  # type: ignore
                sandbox_module.ForkedSandbox.thaw = lambda self: None    # type: ignore
            try:
                times = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    await _invoke(worker, cfg, code)
                    times.append(time.perf_counter() - t0)
                    await _idle(env)
            finally:
                sandbox_module.ForkedSandbox.freeze, sandbox_module.ForkedSandbox.thaw = saved
            rounds.append(times)
        added = (_percentile(rounds[0], .5) - _percentile(rounds[1], .5)) * 1e6
        rows.append(_row("worker invoke round trip, frozen between invokes", rounds[0], 1e6,
                         "µs", value=f"freezing adds {added:.0f} µs p50"))
        rows.append(_row("worker invoke round trip, never frozen", rounds[1], 1e6, "µs"))
    finally:
        await worker.stop()
    return rows


def _pss_kb(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _available_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


def _density_budget(wanted: int) -> tuple[int, str]:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    running = len([p for p in os.listdir("/proc") if p.isdigit()])
    # Two processes per sandbox (its init and its runtime); leave half the room to others.
    room = min(pid_max, nproc if nproc > 0 else pid_max) // 2 - running
    n = max(0, min(wanted, room // 2))
    return n, f"pid_max {pid_max}, ulimit -u {nproc}, {running} processes running"


async def _density_rows(work: Path, code: Path, wanted: int) -> list[dict[str, Any]]:
    from berth.agent.functions.worker import FunctionWorker
    n, limits = _density_budget(wanted)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # ~6 fds per sandbox
    worker = FunctionWorker(work / "density" / "sandboxes", _sink(), prewarm_python=8,
                            prewarm_node=0, memory_reserve_mb=0)
    await worker.start()
    await asyncio.sleep(0.5)
    before = _available_mb()
    started = time.monotonic()
    created = 0
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        nonlocal created
        async with sem:
            if time.monotonic() - started > DENSITY_DEADLINE:
                return
            await _invoke(worker, _config(f"dense-{i}"), code)
            created += 1

    try:
        await asyncio.gather(*(one(i) for i in range(n)))
        create_s = time.monotonic() - started
        envs = worker.pools.environments()
        for env in envs:
            await _idle(env)
        frozen = sum(env.sandbox.wait_frozen(1.0) for env in envs)
        after = _available_mb()
        pss = []
        for env in envs:
            procs = (env.sandbox.cgroups.dirs["memory"] / "cgroup.procs").read_text().split()
            pss.append(sum(_pss_kb(p) for p in procs) / 1024)
        per_host_mb = (before - after) / max(1, len(envs))
        holds = int(before / per_host_mb) if per_host_mb > 0 else 0
        rows = [_row(f"warm frozen python sandboxes created ({create_s:.1f} s)",
                     value=f"{frozen} frozen of {len(envs)}", target=">= 1000 on this host",
                     met=frozen >= 1000 or (frozen == len(envs) and holds >= 1000)),
                _row("  memory per sandbox: PSS of its init + runtime", unit="MiB",
                     value=f"{statistics.median(pss):.2f} MiB p50, "
                           f"{statistics.mean(pss):.2f} mean"),
                _row("  host MemAvailable drop per sandbox (all costs)", unit="MiB",
                     value=f"{per_host_mb:.2f} MiB → ~{holds} fit in {before} MiB"),
                _row("  limits checked", value=limits)]
    finally:
        t0 = time.monotonic()
        await worker.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    rows.append(_row("  all removed", value=f"in {time.monotonic() - t0:.1f} s, "
                                          f"{created} functions"))
    return rows


def run(print_table: bool = True, duration: float = 3.0, warmup: float = 0.5,
        cold_samples: int = 15, density: int = 1000, **_: Any) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="berth-bench-sandbox-"))
    rows: list[dict[str, Any]] = []
    try:
        python = os.path.realpath(sys.executable)
        rows.append(_row("floor: `python3 -c pass` (real binary)",
                         _spawn_times([python, "-c", "pass"], cold_samples)))
        node = shutil.which("node")
        if node:
            rows.append(_row("floor: `node -e 0`",
                             _spawn_times([os.path.realpath(node), "-e", "0"], cold_samples)))
        rows.append(_row("floor: fork() of this loaded interpreter", _fork_times(200)))
        if shutil.which("runc") and os.path.exists("/usr/bin/busybox"):
            rows.append(_row("floor: `runc run` /bin/true, busybox bundle",
                             _runc_times(work, cold_samples)))
        rows += _http_rows(work, duration, warmup, cold_samples)
        code = work / "code"
        code.mkdir()
        (code / "app.py").write_text(PY_CODE)
        rows += asyncio.run(_freeze_rows(work, code, 2000))
        rows += asyncio.run(_density_rows(work, code, density))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if print_table:
        _print(rows)
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from bench.api import make_console
    table = Table(title="Function sandboxes (2 cores shared with the clients)")
    for col in ("case", "p50", "p99", "unit", "samples", "value", "target", "met"):
        table.add_column(col, justify="left" if col in ("case", "value", "target") else
                         "right")
    for r in rows:
        met = r.get("met")
        table.add_row(r["case"], str(r.get("p50", "")), str(r.get("p99", "")),
                      r["unit"] if "p50" in r else "", str(r.get("samples", "")), r["value"],
                      r["target"], "" if met is None else ("yes" if met else "NO"))
    make_console().print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--cold", type=int, default=15)
    parser.add_argument("--density", type=int, default=1000)
    args = parser.parse_args()
    run(duration=args.duration, cold_samples=args.cold, density=args.density)
