"""The Mesos scheduler driver (berth.mesos): how fast offers are built, and how long a launch
takes to run.

1. Offers for 1,000 container instances (simulated: registered through the API, no agents).
   One offer round is what the driver does every offer interval: ListContainerInstances and
   DescribeContainerInstances through the API (100 at a time), then one offer per instance.
   Measured against berth and against moto's server (same calls, same client, same run), and
   the building alone from descriptions already read. Offers/s = offers made / round time.
2. Offer -> launch -> TASK_RUNNING for the N-copies example framework (examples/
   mesos_copies.py) on `berth up` with its local agent on the runc driver: per copy, from the
   resourceOffers call that launched it to the statusUpdate saying TASK_RUNNING. The floor in
   the same run: berth's own scheduler, RunTask of the same task definition until DescribeTasks
   (read at the driver's status interval) says RUNNING.

    .venv/bin/python bench/mesos_driver.py [--runs 3] [--copies 5] [--instances 1000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "tests", ROOT / "examples"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from bench.placement_api import CLUSTER, REGION, Server, setup, start_berth, start_moto  # noqa: E402
from berth.mesos.offer_book import OfferBook  # noqa: E402
from berth.mesos.offers import DEFAULT_PORT_RANGE, instance  # noqa: E402

COPY_COMMAND = "trap 'exit 0' TERM; sleep 600 & wait"
WAIT = 120.0


def _client(server: Server) -> Any:
    import boto3
    from botocore.config import Config
    return boto3.client("ecs", endpoint_url=f"http://{server.host}:{server.port}",
                        region_name=REGION, aws_access_key_id=server.keys[0],
                        aws_secret_access_key=server.keys[1],
                        config=Config(retries={"max_attempts": 1}))


def offer_round(ecs: Any) -> tuple[int, float]:
    """One driver offer round from scratch: (offers made, seconds)."""
    from berth.mesos.instances import read_instances
    t0 = time.perf_counter()
    instances = read_instances(ecs, CLUSTER, DEFAULT_PORT_RANGE)
    _, made = OfferBook("bench").refresh(instances, 0.0)
    return len(made), time.perf_counter() - t0


def build_only(descriptions: list[dict[str, Any]]) -> tuple[int, float]:
    t0 = time.perf_counter()
    instances = {}
    for d in descriptions:
        inst = instance(d, DEFAULT_PORT_RANGE)
        instances[inst.arn] = inst
    _, made = OfferBook("bench").refresh(instances, 0.0)
    return len(made), time.perf_counter() - t0


def bench_offers(n_instances: int, rounds: int) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-mesos-"))
    rows: list[dict[str, Any]] = []
    servers = [start_berth(workdir), start_moto(workdir)]
    try:
        clients = {}
        for s in servers:
            setup(s, n_instances)
            clients[s.name] = _client(s)
        timings: dict[str, list[float]] = {s.name: [] for s in servers}
        counts: dict[str, int] = {}
        for _ in range(rounds):          # interleaved, so drift hits both
            for s in servers:
                made, seconds = offer_round(clients[s.name])
                counts[s.name] = made
                timings[s.name].append(seconds)
        descriptions: list[dict[str, Any]] = []
        token = None
        while True:
            page = clients["berth"].list_container_instances(
                cluster=CLUSTER, maxResults=100, **({"nextToken": token} if token else {}))
            descriptions += clients["berth"].describe_container_instances(
                cluster=CLUSTER, containerInstances=page["containerInstanceArns"])[
                "containerInstances"]
            token = page.get("nextToken")
            if not token:
                break
        build = [build_only(descriptions)[1] for _ in range(rounds)]
    finally:
        for s in servers:
            s.stop()
    for name, seconds in timings.items():
        if counts[name] != n_instances:
            raise RuntimeError(f"{name}: {counts[name]} offers for {n_instances} instances")
        med = statistics.median(seconds)
        rows.append({"what": f"offer round via {name} (list+describe+build)",
                     "median_s": med, "offers_s": n_instances / med, "runs": seconds})
    med = statistics.median(build)
    rows.append({"what": "building offers from descriptions (no API)", "median_s": med,
                 "offers_s": n_instances / med, "runs": build})
    b = next(r for r in rows if "berth" in r["what"])
    m = next(r for r in rows if "moto" in r["what"])
    rows.append({"what": "berth/moto offer rounds", "ratio": b["offers_s"] / m["offers_s"]})
    return rows


def bench_latency(copies: int, rounds: int) -> list[dict[str, Any]]:
    from agent_process import remove_task_containers
    from berth_process import BerthProcess
    from mesos.recorder import EventLog
    from mesos_copies import Copies

    from berth.mesos import ECSSchedulerDriver
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-mesos-up-"))
    with mock.patch.dict(os.environ, {"BERTH_AGENT_DRIVER": "runc"}):
        up = BerthProcess(workdir / "data", command="up").start()
    driver_ms: list[float] = []
    start_ms: list[float] = []
    floor_ms: list[float] = []
    try:
        ecs = up.client("ecs")
        deadline = time.monotonic() + WAIT
        while not _instances(ecs):
            if time.monotonic() > deadline:
                raise RuntimeError("berth up's agent never registered")
            time.sleep(0.1)
        family = ""
        for _ in range(rounds):
            events = EventLog()
            sched = Copies(copies, COPY_COMMAND, cpus=0.05, mem=16, on_event=events)
            driver = ECSSchedulerDriver(sched, {"name": "bench"}, "default", ecs)
            driver.start()
            running = events.wait(lambda lg: lg.of("status", state="TASK_RUNNING") if len(
                lg.of("status", state="TASK_RUNNING")) >= copies else None, WAIT,
                "every copy running")
            offers = {e["offer"]: e["t"] for e in events.of("offer")}
            launched = {task: offers[e["offer"]] for e in events.of("launch")
                        for task in e["tasks"]}
            staged = {e["task"]: e["t"] for e in events.of("status", state="TASK_STAGING")}
            for e in running:
                driver_ms.append((e["t"] - launched[e["task"]]) * 1000)
                start_ms.append((staged[e["task"]] - launched[e["task"]]) * 1000)
            arns = [e["arn"] for e in running]
            family = ecs.describe_tasks(tasks=arns[:1])["tasks"][0]["taskDefinitionArn"]
            driver.stop()           # tears the framework down: its tasks stop
            _wait_stopped(ecs, arns)
        for _ in range(rounds):
            # As the framework launches: one call per copy, back to back, then every copy
            # read at the driver's status interval until it runs.
            t0 = time.monotonic()
            arns = [ecs.run_task(taskDefinition=family)["tasks"][0]["taskArn"]
                    for _ in range(copies)]
            waiting = set(arns)
            while waiting:
                if time.monotonic() - t0 > WAIT:
                    raise RuntimeError("RunTask never ran")
                time.sleep(0.1)
                for t in ecs.describe_tasks(tasks=list(waiting))["tasks"]:
                    if t["lastStatus"] == "RUNNING":
                        waiting.discard(t["taskArn"])
                        floor_ms.append((time.monotonic() - t0) * 1000)
            for arn in arns:
                ecs.stop_task(task=arn)
            _wait_stopped(ecs, arns)
    finally:
        up.stop()
        remove_task_containers(up.data_dir)
    return [{"what": f"offer -> launch -> TASK_RUNNING ({copies} copies x {rounds})",
             **_pcts(driver_ms)},
            {"what": "  of which offer -> TASK_STAGING (StartTask)", **_pcts(start_ms)},
            {"what": "floor: RunTask -> RUNNING, as many copies (read every 0.1 s)",
             **_pcts(floor_ms)}]


def _instances(ecs: Any) -> list[str]:
    try:
        return list(ecs.list_container_instances()["containerInstanceArns"])
    except Exception:       # `default` appears with the agent's registration
        return []


def _wait_stopped(ecs: Any, arns: list[str]) -> None:
    deadline = time.monotonic() + WAIT
    while any(t["lastStatus"] != "STOPPED" for t in ecs.describe_tasks(tasks=arns)["tasks"]):
        if time.monotonic() > deadline:
            raise RuntimeError("tasks never stopped")
        time.sleep(0.1)


def _pcts(ms: list[float]) -> dict[str, Any]:
    ordered = sorted(ms)
    return {"p50_ms": statistics.median(ordered),
            "p90_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], "n": len(ms)}


def run(print_table: bool = True, runs: int = 3, copies: int = 5, instances: int = 1000,
        **_ignored: Any) -> list[dict[str, Any]]:
    rows = bench_offers(instances, max(runs, 3)) + bench_latency(copies, max(runs, 3))
    if print_table:
        _print(rows, instances)
    return rows


def _print(rows: list[dict[str, Any]], instances: int) -> None:
    from importlib.metadata import version

    from rich.table import Table

    from bench.api import make_console
    table = Table(title=f"Mesos driver: offers for {instances:,} instances (vs moto "
                        f"{version('moto')}), launch latency on runc")
    for col in ("measure", "median", "offers/s", "p50 ms", "p90 ms", "n / runs"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for r in rows:
        if "ratio" in r:
            table.add_row(r["what"], "", f"{r['ratio']:.1f}x", "", "", "")
        elif "offers_s" in r:
            table.add_row(r["what"], f"{r['median_s'] * 1000:.1f} ms", f"{r['offers_s']:,.0f}",
                          "", "", " ".join(f"{x * 1000:.0f}" for x in r["runs"]))
        else:
            table.add_row(r["what"], "", "", f"{r['p50_ms']:.0f}", f"{r['p90_ms']:.0f}",
                          str(r["n"]))
    make_console().print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--instances", type=int, default=1000)
    args = parser.parse_args()
    run(runs=args.runs, copies=args.copies, instances=args.instances)
