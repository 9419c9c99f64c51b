"""Rival schedulers on one cluster: berth's RunTask and external StartTask schedulers, in threads
and in processes, against one server on SQLite and two servers sharing PostgreSQL.

Demand equals capacity exactly, so the claims must fill every instance to the last CPU unit and
MiB without over-committing one: RunTask may never fail (there was always room for it), every
task is placed in the end, and one more task then fails for want of resources. Host ports get
the same treatment on a second cluster: one static port, one task per instance."""
from __future__ import annotations

import multiprocessing as mp
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from berth_process import BerthProcess
from ecs.rival import place_quota
from ecs.simagent import resources

INSTANCES = 10
CPU, MEMORY = 1024, 2048
TASK_CPU, TASK_MEMORY = 256, 512          # exactly 4 per instance
PORT_INSTANCES = 4


@pytest.fixture(params=["sqlite", "postgres"])
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[BerthProcess]]:
    if request.param == "sqlite":
        procs = [BerthProcess(tmp_path / "data").start()]
    else:
        url = request.getfixturevalue("postgres_url")
        procs = [BerthProcess(tmp_path / f"data{i}", database_url=url).start()
                 for i in range(2)]
    yield procs
    for p in procs:
        p.stop()


def _instances(ecs: Any, cluster: str) -> list[dict[str, Any]]:
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    return ecs.describe_container_instances(cluster=cluster,
                                            containerInstances=arns)["containerInstances"]


def _live_tasks(ecs: Any, cluster: str) -> list[dict[str, Any]]:
    arns: list[str] = []
    token = None
    for _ in range(100):
        page = ecs.list_tasks(cluster=cluster, **({"nextToken": token} if token else {}))
        arns += page["taskArns"]
        token = page.get("nextToken")
        if not token:
            break
    out: list[dict[str, Any]] = []
    for i in range(0, len(arns), 100):
        out += ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])["tasks"]
    return out


def _value(resources_: list[dict[str, Any]], name: str) -> Any:
    r = next(x for x in resources_ if x["name"] == name)
    return r.get("stringSetValue", r["integerValue"])


def _rivals(jobs: list[dict[str, Any]], in_process: list[bool]) -> list[dict[str, Any]]:
    """Run each job in a thread or in a spawned process, all at once."""
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    ctx = mp.get_context("spawn")
    with ctx.Pool(sum(in_process)) as pool:
        async_results = [pool.apply_async(place_quota, (job,))
                         for job, proc in zip(jobs, in_process) if proc]

        def run(job: dict[str, Any]) -> None:
            r = place_quota(job)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=run, args=(job,))
                   for job, proc in zip(jobs, in_process) if not proc]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        results += [r.get(90) for r in async_results]
    return results


def test_no_instance_is_ever_over_committed(servers: list[BerthProcess]) -> None:
    ecs = servers[0].client("ecs")
    cluster, ports_cluster = f"rival-{uuid.uuid4().hex[:8]}", f"ports-{uuid.uuid4().hex[:8]}"
    family, port_family = f"unit-{cluster}", f"port-{cluster}"
    for name in (cluster, ports_cluster):
        ecs.create_cluster(clusterName=name)
    for i in range(INSTANCES):
        ecs.register_container_instance(cluster=cluster, totalResources=resources(CPU, MEMORY))
    for i in range(PORT_INSTANCES):
        ecs.register_container_instance(cluster=ports_cluster,
                                        totalResources=resources(8192, 8192))
    ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": "a", "image": "x", "cpu": TASK_CPU, "memory": TASK_MEMORY}])
    ecs.register_task_definition(family=port_family, containerDefinitions=[
        {"name": "a", "image": "x", "cpu": 1, "memory": 8,
         "portMappings": [{"containerPort": 80, "hostPort": 9000}]}])

    capacity = INSTANCES * (CPU // TASK_CPU)
    endpoints = [s.endpoint for s in servers]
    # (mode, quota, strategy, in a process?) — quotas sum to the capacity.
    plan = [("run", 10, [], False), ("run", 8, [{"type": "binpack", "field": "memory"}], True),
            ("run", 6, [{"type": "random"}], False), ("start", 8, [], False),
            ("start", 8, [], True)]
    assert sum(q for _, q, _, _ in plan) == capacity
    jobs = [{"name": f"{mode}-{i}", "mode": mode, "quota": quota, "strategy": strategy,
             "endpoint": endpoints[i % len(endpoints)], "cluster": cluster,
             "task_definition": family, "cpu": TASK_CPU, "memory": TASK_MEMORY, "seed": i}
            for i, (mode, quota, strategy, _) in enumerate(plan)]
    # Port rivals: 2 tasks each from 3 schedulers, on 4 instances with one port 9000 each.
    port_jobs = [{"name": f"port-{i}", "mode": "run", "quota": 2, "strategy": [],
                  "endpoint": endpoints[i % len(endpoints)], "cluster": ports_cluster,
                  "task_definition": port_family, "cpu": 1, "memory": 8, "seed": 100 + i}
                 for i in range(3)]
    results = _rivals(jobs + port_jobs, [p for *_, p in plan] + [False, True, False])
    by_name = {r["name"]: r for r in results}

    # Every RunTask of the exact-fit cluster succeeded, and every quota was met.
    for job in jobs:
        r = by_name[job["name"]]
        assert r["run_failures"] == [], r
        assert len(r["placed"]) == job["quota"], r
    placed = [a for job in jobs for a in by_name[job["name"]]["placed"]]
    assert len(placed) == len(set(placed)) == capacity

    # The store agrees: per instance, claims never exceed what was registered; here they
    # match it exactly, and what the instances report remaining is what is left.
    tasks = _live_tasks(ecs, cluster)
    assert sorted(t["taskArn"] for t in tasks) == sorted(placed)
    per_instance: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for t in tasks:
        per_instance[t["containerInstanceArn"]][0] += int(t["cpu"])
        per_instance[t["containerInstanceArn"]][1] += int(t["memory"])
    for inst in _instances(ecs, cluster):
        cpu, mem = per_instance[inst["containerInstanceArn"]]
        assert (cpu, mem) == (CPU, MEMORY), inst["containerInstanceArn"]
        assert _value(inst["remainingResources"], "CPU") == 0
        assert _value(inst["remainingResources"], "MEMORY") == 0
    # Truly full now: one more fails with a resource reason.
    more = ecs.run_task(cluster=cluster, taskDefinition=family)
    assert more["tasks"] == [] and more["failures"][0]["reason"] in ("RESOURCE:CPU",
                                                                     "RESOURCE:MEMORY")

    # Ports: 6 asked, 4 instances with port 9000 free: 4 placed, each on its own instance.
    port_tasks = _live_tasks(ecs, ports_cluster)
    assert len(port_tasks) == PORT_INSTANCES
    assert Counter(t["containerInstanceArn"] for t in port_tasks).most_common(1)[0][1] == 1
    port_failures = [f for job in port_jobs for f in by_name[job["name"]]["run_failures"]]
    assert port_failures and all(f["reason"] == "RESOURCE:PORTS" for f in port_failures)
    for inst in _instances(ecs, ports_cluster):
        assert _value(inst["remainingResources"], "PORTS").count("9000") == 1


def test_what_one_server_changes_the_other_places_by(servers: list[BerthProcess]) -> None:
    """Each server keeps its own cached view of the cluster: a release or a deregistration
    made through the other server (on SQLite, the same one) shows in the next placement."""
    here, there = servers[0].client("ecs"), servers[-1].client("ecs")
    cluster = f"seen-{uuid.uuid4().hex[:8]}"
    here.create_cluster(clusterName=cluster)
    x, y = (here.register_container_instance(cluster=cluster, totalResources=resources(
        1024, 2048))["containerInstance"]["containerInstanceArn"] for _ in range(2))
    here.register_task_definition(family=cluster, containerDefinitions=[
        {"name": "a", "image": "x", "cpu": 512, "memory": 512}])
    first = here.run_task(cluster=cluster, taskDefinition=cluster, count=4)
    assert first["failures"] == [] and len(first["tasks"]) == 4
    assert here.run_task(cluster=cluster, taskDefinition=cluster)["failures"][0]["reason"] \
        == "RESOURCE:CPU"
    on_y = [t["taskArn"] for t in first["tasks"] if t["containerInstanceArn"] == y]
    there.stop_task(cluster=cluster, task=on_y[0])
    again = here.run_task(cluster=cluster, taskDefinition=cluster)
    assert again["failures"] == [] and again["tasks"][0]["containerInstanceArn"] == y
    # y deregistered there (its tasks stopped, its room released): never placed on here.
    there.deregister_container_instance(cluster=cluster, containerInstance=y, force=True)
    after = here.run_task(cluster=cluster, taskDefinition=cluster)
    assert after["tasks"] == [] and after["failures"][0]["reason"] == "RESOURCE:CPU"
    assert after["failures"][0]["arn"] == x
