"""Rival schedulers for the over-commit test: each places its quota of tasks on one cluster,
either through berth's RunTask or as an external scheduler that picks instances from its own
(soon stale) view and calls StartTask. Runs in threads and in spawned processes alike."""
from __future__ import annotations

import random
import time
from typing import Any

import boto3
from botocore.config import Config

ACCESS_KEY = "AKIATESTBERTH0000001"
SECRET_KEY = "test-secret-key-for-berth-e2e-0000000000"
MAX_SECONDS = 60
MAX_CALLS = 2000


def client(endpoint: str) -> Any:
    return boto3.client("ecs", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=Config(retries={"max_attempts": 1},
                                      max_pool_connections=4))


def _remaining(r: dict[str, Any], name: str) -> int:
    return next(x["integerValue"] for x in r["remainingResources"] if x["name"] == name)


def place_quota(job: dict[str, Any]) -> dict[str, Any]:
    """Place `job["quota"]` tasks; returns what was placed and every failure seen."""
    ecs = client(job["endpoint"])
    rng = random.Random(job["seed"])
    cluster, td, quota = job["cluster"], job["task_definition"], job["quota"]
    need_cpu, need_mem = job["cpu"], job["memory"]
    placed: list[str] = []
    run_failures: list[dict[str, str]] = []
    start_failures = 0
    deadline = time.monotonic() + MAX_SECONDS
    for _ in range(MAX_CALLS):
        if len(placed) >= quota or time.monotonic() > deadline:
            break
        if job["mode"] == "run":
            count = min(rng.randint(1, 3), quota - len(placed))
            out = ecs.run_task(cluster=cluster, taskDefinition=td, count=count,
                               startedBy=job["name"],
                               placementStrategy=job.get("strategy") or [])
            placed += [t["taskArn"] for t in out["tasks"]]
            run_failures += out["failures"]
            if out["failures"]:
                break    # with demand equal to capacity, a RunTask failure is a bug
        else:
            # An external scheduler: read the cluster, pick an instance with room, claim it.
            arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
            desc = ecs.describe_container_instances(cluster=cluster,
                                                    containerInstances=arns)
            roomy = [i["containerInstanceArn"] for i in desc["containerInstances"]
                     if _remaining(i, "CPU") >= need_cpu and _remaining(i, "MEMORY") >= need_mem]
            if not roomy:
                time.sleep(0.01)
                continue
            out = ecs.start_task(cluster=cluster, taskDefinition=td, startedBy=job["name"],
                                 containerInstances=[rng.choice(roomy)])
            placed += [t["taskArn"] for t in out["tasks"]]
            start_failures += len(out["failures"])
    return {"name": job["name"], "placed": placed, "run_failures": run_failures,
            "start_failures": start_failures}
