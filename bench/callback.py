"""Calling back: what role credentials in every sandbox cost, and STS's speed.

Two `berth up` processes in the same run: this tree, whose sandboxes get their execution
role's credentials, and the previous main (the tree before STS arrived, from git), whose
sandboxes get none. Rounds alternate between them so the machine's drift hits both: cold
starts (a new function per sample, Python and Node.js) and warm invokes (one client, closed
loop). Then GetCallerIdentity requests per second, berth against moto's server, 1 and 4
clients; and the cost of issuing and resolving one set of credentials in process.

Target: cold start and warm invoke within noise of the previous main (p50 ratio ≤ 1.10).

    .venv/bin/python bench/callback.py [--duration 2] [--cold 10] [--runs 3]
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import invoke  # noqa: E402
from bench.api import start_moto  # noqa: E402

TARGET_RATIO = 1.10
STS_BODY = b"Action=GetCallerIdentity&Version=2011-06-15"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path

    def lambda_client(self) -> Any:
        import boto3
        from botocore.config import Config
        return boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{self.port}",
                            region_name=invoke.REGION, aws_access_key_id=invoke.ACCESS_KEY,
                            aws_secret_access_key=invoke.SECRET_KEY,
                            config=Config(retries={"max_attempts": 1}))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def previous_main(workdir: Path) -> Path | None:
    """The source tree of main just before STS arrived (the parent of the commit that added
    src/berth/sts/service.py), unpacked from git; None without git or that history."""
    try:
        added = subprocess.run(
            ["git", "-C", str(ROOT), "log", "--diff-filter=A", "--format=%H", "--",
             "src/berth/sts/service.py"], capture_output=True, text=True, check=True,
            timeout=60).stdout.split()
        if not added:
            return None
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", f"{added[-1]}^", "src"],
                                 capture_output=True, check=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    target = workdir / "previous-main"
    target.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


def start_up(name: str, workdir: Path, source: Path | None) -> Server:
    """`berth up` from this tree, or from `source` (another tree's src, first on the path)."""
    port = invoke._free_port()
    data = workdir / name
    data.mkdir()
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    log = open(workdir / f"{name}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "berth.cli", "up", "--port", str(port), "--data-dir",
         str(data / "data"), "--access-key", invoke.ACCESS_KEY, "--secret-key",
         invoke.SECRET_KEY], stdout=log, stderr=subprocess.STDOUT, env=env,
        start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Server(name, port, proc, workdir)
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError((workdir / f"{name}.log").read_text()) from None
            time.sleep(0.05)


def sts_rate(port: int, key: str, secret: str, clients: int, duration: float,
             warmup: float) -> tuple[float, float, int]:
    """(requests/s, p50 ms, errors) of GetCallerIdentity from `clients` processes."""
    call = invoke.Call(port, "sts", "/", STS_BODY, FORM, b"<Arn>", key, secret)
    latencies, errors = invoke.closed_loop(call, clients, duration, warmup)
    return len(latencies) / duration, invoke._percentile(latencies, 0.5) * 1e3, errors


def issuing_cost_us(n: int = 2000) -> tuple[float, float]:
    """Microseconds to issue one set of role credentials, and to resolve a new token."""
    from berth.state.store import Store
    from berth.sts import schema  # noqa: F401
    from berth.sts.principals import assumed_role, parse_role
    from berth.sts.sessions import Sessions
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-sts-"))
    store = Store(f"sqlite:///{workdir / 'sts.db'}")
    try:
        store.create_all()
        sessions = Sessions(store)
        sessions.load()
        principal = assumed_role(parse_role("arn:aws:iam::000000000000:role/bench"), "fn")
        t0 = time.perf_counter()
        issued = [sessions.issue(principal, 43200) for _ in range(n)]
        issue = (time.perf_counter() - t0) / n * 1e6
        t0 = time.perf_counter()
        for creds in issued:
            sessions.resolve(creds.access_key_id, creds.session_token)
        resolve = (time.perf_counter() - t0) / n * 1e6
    finally:
        store.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    return issue, resolve


def run(duration: float = 2.0, warmup: float = 0.5, runs: int = 3, cold_samples: int = 10,
        print_table: bool = True, **_: Any) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-callback-"))
    py_zip = invoke._zip("app.py", invoke.PY_CODE)
    node_zip = invoke._zip("index.js", invoke.NODE_CODE)
    samples: dict[str, dict[str, list[float]]] = {}
    servers: list[Server] = []
    moto = None
    try:
        source = previous_main(workdir)
        servers.append(start_up("this tree", workdir, None))
        if source is not None:
            servers.append(start_up("previous main", workdir, source))
        clients = {s.name: s.lambda_client() for s in servers}
        for s in servers:
            lam = clients[s.name]
            lam.create_function(FunctionName="warm", Runtime="python3.11", Role=invoke.ROLE,
                                Handler="app.handler", Code={"ZipFile": py_zip})
            lam.invoke(FunctionName="warm", Payload=b'{"n": 0}')
            invoke.cold(lam, "nodejs20.x", "index.handler", node_zip, 1, "node-w")
            samples[s.name] = {"cold python3.11": [], "cold nodejs20.x": [],
                               "warm invokes/s": [], "warm p50": []}
        for r in range(runs):
            order = servers if r % 2 == 0 else list(reversed(servers))
            for s in order:
                lam, got = clients[s.name], samples[s.name]
                got["cold python3.11"] += invoke.cold(lam, "python3.11", "app.handler",
                                                      py_zip, cold_samples, f"py{r}")
                got["cold nodejs20.x"] += invoke.cold(lam, "nodejs20.x", "index.handler",
                                                      node_zip, cold_samples, f"node{r}")
                warm = invoke.warm(s.port, "warm", 1, duration, warmup)
                got["warm invokes/s"].append(warm["invokes_per_s"])
                got["warm p50"].append(warm["p50_ms"] / 1e3)
        from bench.api import MOTO_ACCESS_KEY, MOTO_SECRET_KEY
        moto = start_moto(workdir)
        sts_rows = []
        for n in (1, 4):
            berth_runs, moto_runs = [], []
            for _ in range(runs):
                berth_runs.append(sts_rate(servers[0].port, invoke.ACCESS_KEY,
                                           invoke.SECRET_KEY, n, duration, warmup))
                moto_runs.append(sts_rate(moto.port, MOTO_ACCESS_KEY, MOTO_SECRET_KEY, n,
                                          duration, warmup))
            sts_rows.append((n, berth_runs, moto_runs))
        issue_us, resolve_us = issuing_cost_us()
    finally:
        for s in servers:
            s.stop()
        if moto is not None:
            moto.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    result = {"samples": samples, "sts": sts_rows, "issue_us": issue_us,
              "resolve_us": resolve_us}
    if print_table:
        _print(result)
    return result


def _ms(values: list[float]) -> float:
    return median(values) * 1e3 if values else float("nan")


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    samples = result["samples"]
    now, before = samples.get("this tree", {}), samples.get("previous main")
    table = Table(title="Calling back: role credentials in every sandbox vs the previous main "
                        "(medians, same run)")
    for col in ("case", "this tree", "previous main", "ratio", "target", "met"):
        table.add_column(col, justify="left" if col in ("case", "target") else "right")
    for case in ("cold python3.11", "cold nodejs20.x", "warm p50"):
        mine = _ms(now.get(case, []))
        theirs = _ms(before.get(case, [])) if before else float("nan")
        ratio = mine / theirs if before else float("nan")
        table.add_row(f"{case} (ms)", f"{mine:.2f}", f"{theirs:.2f}", f"{ratio:.2f}",
                      f"<= {TARGET_RATIO:.2f}", "yes" if ratio <= TARGET_RATIO else "NO")
    mine = median(now.get("warm invokes/s", [float("nan")]))
    theirs = median(before["warm invokes/s"]) if before else float("nan")
    table.add_row("warm invokes/s, 1 client", f"{mine:.0f}", f"{theirs:.0f}",
                  f"{mine / theirs:.2f}", f">= {1 / TARGET_RATIO:.2f}",
                  "yes" if mine / theirs >= 1 / TARGET_RATIO else "NO")
    Console().print(table)
    sts = Table(title="STS GetCallerIdentity: berth vs moto (medians of runs, same run)")
    for col in ("clients", "berth req/s", "berth p50 ms", "moto req/s", "moto p50 ms",
                "berth/moto", "errors"):
        sts.add_column(col, justify="right")
    for n, berth_runs, moto_runs in result["sts"]:
        b = median(r[0] for r in berth_runs)
        m = median(r[0] for r in moto_runs)
        sts.add_row(str(n), f"{b:.0f}", f"{median(r[1] for r in berth_runs):.2f}", f"{m:.0f}",
                    f"{median(r[1] for r in moto_runs):.2f}", f"{b / m:.1f}x",
                    str(sum(r[2] for r in berth_runs + moto_runs)))
    Console().print(sts)
    Console().print(f"issuing one set of role credentials: {result['issue_us']:.1f} µs; "
                    f"resolving a new token: {result['resolve_us']:.1f} µs (in process)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    run(duration=args.duration, runs=args.runs, cold_samples=args.cold)
