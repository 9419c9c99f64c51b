"""ECS placement through the API: berth against moto's server, same calls, same client, same run.

Both servers get one cluster of 1,000 container instances registered through the API (moto needs
an EC2 instance behind each registration, so its instances are made with EC2 RunInstances first)
and one task definition (1 CPU unit, 6 MiB: a million tasks' room, so capacity never runs out
while measuring). Then, per server:

- RunTask count=10: placements/s (tasks placed per second) and requests/s, from 1 and 4 clients;
- DescribeTasks of 10 tasks: requests/s, from 1 and 4 clients;
- then berth alone with 10,000 instances (`--large`): RunTask count=10 again, from 1 and 4
  clients, which should not be slower than with 1,000.

A client is deliberately thin, the same for both servers: per request it signs with botocore's
SigV4Auth and sends over one keep-alive http.client connection, in its own spawned process
(closed loop). Every answer is checked: a RunTask must place all 10 (no failures), a DescribeTasks
must describe all 10.

    .venv/bin/python bench/placement_api.py [--duration 3] [--instances 1000] [--large 10000]
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
CONTENT_TYPE = "application/x-amz-json-1.1"
CLUSTER, FAMILY = "bench", "bench-task"
CLIENT_COUNTS = (1, 4)
TARGET_RATIO = 5.0
MOTO_KEYS = ("AKIABENCHMOTO0000001", "bench-moto-secret-0000000000000000000000")


# -- the client (runs in spawned processes) --------------------------------------------------

class Client:
    """Signs and sends ECS JSON requests over one keep-alive connection."""

    def __init__(self, host: str, port: int, keys: tuple[str, str]) -> None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        self._request = AWSRequest
        self.auth = SigV4Auth(Credentials(*keys), "ecs", REGION)
        self.netloc = f"{host}:{port}"
        self.conn = http.client.HTTPConnection(host, port, timeout=30)

    def call(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode()
        req = self._request("POST", f"http://{self.netloc}/", data=data, headers={
            "X-Amz-Target": TARGET_PREFIX + operation, "Content-Type": CONTENT_TYPE,
            "Host": self.netloc})
        self.auth.add_auth(req)
        try:
            self.conn.request("POST", "/", data, dict(req.headers.items()))
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            return 0, {"error": repr(exc)}
        try:
            return resp.status, json.loads(raw or b"{}")
        except ValueError:
            return resp.status, {"error": raw[:200].decode("utf-8", "replace")}


def _check(operation: str, status: int, body: dict[str, Any]) -> tuple[bool, int]:
    """(ok, placements) for one answer."""
    if status != 200:
        return False, 0
    if operation == "RunTask":
        placed = len(body.get("tasks", []))
        return placed == 10 and not body.get("failures"), placed
    return len(body.get("tasks", [])) == 10, 0


def client_loop(job: dict[str, Any]) -> dict[str, Any]:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    client = Client(job["host"], job["port"], tuple(job["keys"]))
    op, body = job["operation"], job["body"]
    while time.monotonic() < job["start"]:
        time.sleep(0.001)
    t_measure = job["start"] + job["warmup"]
    t_end = t_measure + job["duration"]
    latencies: list[float] = []
    placements = errors = 0
    sample = None
    while True:
        t0 = time.monotonic()
        status, answer = client.call(op, body)
        t1 = time.monotonic()
        if t1 >= t_end:
            break
        if t1 < t_measure:
            continue
        ok, placed = _check(op, status, answer)
        if ok:
            latencies.append(t1 - t0)
            placements += placed
        else:
            errors += 1
            sample = sample or f"{status}: {json.dumps(answer)[:300]}"
    return {"latencies": latencies, "placements": placements, "errors": errors,
            "sample": sample}


# -- the servers -----------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    host: str
    port: int
    keys: tuple[str, str]
    stop: Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen")


def start_berth(workdir: Path) -> Server:
    sys.path.insert(0, str(ROOT / "tests"))
    from berth_process import ACCESS_KEY, SECRET_KEY, BerthProcess
    # Instances registered through the API have no agent heartbeating for them: keep them
    # connected for the whole run.
    with mock.patch.dict(os.environ, {"BERTH_ECS_AGENT_TIMEOUT": "86400"}):
        proc = BerthProcess(workdir / "berth-data").start()
    return Server("berth", "127.0.0.1", proc.port, (ACCESS_KEY, SECRET_KEY), proc.stop)


def start_moto(workdir: Path) -> Server:
    port = _free_port()
    log = open(workdir / "moto.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()

    _wait_listening(port, proc)
    return Server("moto", "127.0.0.1", port, MOTO_KEYS, stop)


def setup(server: Server, n_instances: int) -> list[str]:
    """One cluster of `n_instances` registered through the API, one task definition; returns
    10 task ARNs for DescribeTasks."""
    client = Client(server.host, server.port, server.keys)

    def call(op: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = client.call(op, body)
        if status != 200:
            raise RuntimeError(f"{server.name} {op}: {status} {answer}")
        return answer

    call("CreateCluster", {"clusterName": CLUSTER})
    ec2_ids: list[str] = []
    if server.name == "moto":
        # moto registers a container instance only for an EC2 instance it knows.
        import boto3
        ec2 = boto3.client("ec2", endpoint_url=f"http://{server.host}:{server.port}",
                           region_name=REGION, aws_access_key_id=server.keys[0],
                           aws_secret_access_key=server.keys[1])
        image = ec2.describe_images()["Images"][0]["ImageId"]
        while len(ec2_ids) < n_instances:
            n = min(100, n_instances - len(ec2_ids))
            out = ec2.run_instances(ImageId=image, MinCount=n, MaxCount=n,
                                    InstanceType="m5.xlarge")
            ec2_ids += [i["InstanceId"] for i in out["Instances"]]
    for i in range(n_instances):
        doc = {"instanceId": ec2_ids[i] if ec2_ids else f"i-{uuid.uuid4().hex[:17]}",
               "availabilityZone": f"us-east-1{'abc'[i % 3]}", "region": REGION,
               "instanceType": "m5.xlarge"}
        call("RegisterContainerInstance", {
            "cluster": CLUSTER, "instanceIdentityDocument": json.dumps(doc),
            "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 7482},
                {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22"]}]})
    call("RegisterTaskDefinition", {"family": FAMILY, "containerDefinitions": [
        {"name": "a", "image": "busybox", "cpu": 1, "memory": 6, "essential": True}]})
    out = call("RunTask", {"cluster": CLUSTER, "taskDefinition": FAMILY, "count": 10})
    if len(out.get("tasks", [])) != 10:
        raise RuntimeError(f"{server.name}: setup RunTask placed {len(out.get('tasks', []))}")
    client.conn.close()
    return [t["taskArn"] for t in out["tasks"]]


# -- measuring -------------------------------------------------------------------------------

def measure(pool: Any, server: Server, operation: str, body: dict[str, Any], clients: int,
            warmup: float, duration: float) -> dict[str, Any]:
    job = {"host": server.host, "port": server.port, "keys": list(server.keys),
           "operation": operation, "body": body, "warmup": warmup, "duration": duration,
           "start": time.monotonic() + 0.1}
    results = pool.map(client_loop, [job] * clients)
    latencies = sorted(x for r in results for x in r["latencies"])
    n = len(latencies)
    return {"server": server.name, "operation": operation, "clients": clients,
            "req_s": n / duration, "placements_s": sum(r["placements"] for r in results)
            / duration,
            "p50_ms": latencies[n // 2] * 1000 if n else float("nan"),
            "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
            "errors": sum(r["errors"] for r in results),
            "error_sample": next((r["sample"] for r in results if r["sample"]), None)}


def run(print_table: bool = True, duration: float = 3.0, warmup: float = 0.5,
        instances: int = 1000, large: int = 10_000, **_ignored: Any) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-placement-"))
    ctx = mp.get_context("spawn")
    rows: list[dict[str, Any]] = []
    servers: list[Server] = []
    started = time.monotonic()
    with ctx.Pool(max(CLIENT_COUNTS)) as pool:
        try:
            servers = [start_berth(workdir), start_moto(workdir)]
            described = {}
            setup_s = {}
            for s in servers:
                t0 = time.monotonic()
                described[s.name] = setup(s, instances)
                setup_s[s.name] = time.monotonic() - t0
            for operation in ("RunTask", "DescribeTasks"):
                for clients in CLIENT_COUNTS:
                    for s in servers:
                        body = ({"cluster": CLUSTER, "taskDefinition": FAMILY, "count": 10}
                                if operation == "RunTask" else
                                {"cluster": CLUSTER, "tasks": described[s.name]})
                        rows.append(measure(pool, s, operation, body, clients, warmup,
                                            duration))
        finally:
            for s in servers:
                s.stop()
        if large:
            # berth alone on a cluster ten times the size: placement must not slow with it.
            big = start_berth(workdir / "large")
            try:
                t0 = time.monotonic()
                setup(big, large)
                setup_s[f"berth ({large:,})"] = time.monotonic() - t0
                body = {"cluster": CLUSTER, "taskDefinition": FAMILY, "count": 10}
                for clients in CLIENT_COUNTS:
                    row = measure(pool, big, "RunTask", body, clients, warmup, duration)
                    rows.append({**row, "server": f"berth, {large:,} instances"})
            finally:
                big.stop()
    for operation in ("RunTask", "DescribeTasks"):
        for clients in CLIENT_COUNTS:
            b = next(r for r in rows if r["server"] == "berth" and r["operation"] == operation
                     and r["clients"] == clients)
            m = next(r for r in rows if r["server"] == "moto" and r["operation"] == operation
                     and r["clients"] == clients)
            ratio = b["req_s"] / m["req_s"] if m["req_s"] else float("inf")
            rows.append({"server": "berth/moto", "operation": operation, "clients": clients,
                         "ratio": ratio, "target_met": ratio >= TARGET_RATIO})
    if print_table:
        _print(rows, instances, setup_s, time.monotonic() - started, duration)
    return rows


def _print(rows: list[dict[str, Any]], instances: int, setup_s: dict[str, float],
           elapsed: float, duration: float) -> None:
    from importlib.metadata import version

    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"ECS placement API: berth vs moto {version('moto')}, {instances:,} "
                        f"instances registered via the API ({duration:g} s per row)",
                  title_justify="left")
    for col in ("server", "operation", "clients", "req/s", "placements/s", "p50 ms", "p99 ms",
                "errors", "target"):
        table.add_column(col, justify="left" if col in ("server", "operation", "target")
                         else "right")
    for r in rows:
        if "ratio" in r:
            table.add_row(f"[bold]{r['server']}[/]", r["operation"], str(r["clients"]),
                          f"[bold]{r['ratio']:.1f}×[/]", "", "", "", "",
                          f"≥{TARGET_RATIO:g}× {'✓' if r['target_met'] else '✗'}",
                          end_section=True)
            continue
        table.add_row(r["server"], r["operation"] + (" (count=10)" if r["operation"] ==
                                                     "RunTask" else " (10 tasks)"),
                      str(r["clients"]), f"{r['req_s']:,.0f}",
                      f"{r['placements_s']:,.0f}" if r["operation"] == "RunTask" else "",
                      f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", str(r["errors"]), "")
    console = Console() if sys.stdout.isatty() else Console(width=140)
    console.print(table)
    console.print(f"[dim]setup (registering {instances:,} instances through the API): "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in setup_s.items())
                  + f"; whole bench {elapsed:.0f} s; {os.cpu_count()} CPUs shared by "
                    "clients and servers.[/]")
    for r in rows:
        if r.get("errors"):
            console.print(f"[red]{r['server']} {r['operation']} ×{r['clients']}: "
                          f"{r['errors']} errors, e.g. {r['error_sample']}[/]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10_000,
                        help="instances of the berth-only RunTask rows (0: skip them)")
    args = parser.parse_args()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    run(duration=args.duration, warmup=args.warmup, instances=args.instances, large=args.large)
