"""Services whose tasks keep failing behave as ECS's do, on `berth up` with real containers: the
service throttle backs restarts off and says the service "is unable to consistently start
tasks successfully", no steady state or completed deployment is reported while they fail, a
new task definition starts unthrottled, and the deployment circuit breaker fails a deployment
and rolls back to the last completed one.

The throttle's timing is shrunk through configuration (first wait 1 s, at most 4 s; a task
counts as started once up 2 s); tests/ecs/test_throttle.py checks the real schedule."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from agent_process import remove_task_containers
from berth_process import BerthProcess
from ecs.simagent import wait_for

from berth.ecs.throttle import Backoff

BASE, CAP, STABLE = 1.0, 4.0, 2.0
CRASH = {"name": "app", "image": "busybox", "memory": 16, "command": ["sh", "-c", "sleep 1; exit 3"]}
STAY = {"name": "app", "image": "busybox", "memory": 16, "command": ["sleep", "3600"],
        "linuxParameters": {"initProcessEnabled": True}}
IMPAIRED = "is unable to consistently start tasks successfully."


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthProcess]:
    with mock.patch.dict(os.environ, {
            "BERTH_ECS_RECONCILE_INTERVAL": "0.2", "BERTH_ECS_RESTART_DELAY": str(BASE),
            "BERTH_ECS_RESTART_DELAY_MAX": str(CAP), "BERTH_ECS_TASK_STABLE_AFTER": str(STABLE),
            "BERTH_AGENT_CLEANUP_WAIT": "1"}):
        proc = BerthProcess(tmp_path_factory.mktemp("berth-up") / "data", command="up").start()
    ecs = proc.client("ecs")
    wait_for(lambda: _instances(ecs), timeout=30)
    yield proc
    proc.stop()
    remove_task_containers(proc.data_dir)       # every container of this berth's agent


def _instances(ecs: Any) -> list[str]:
    try:
        return ecs.list_container_instances()["containerInstanceArns"]
    except Exception:       # `default` appears with the local agent's registration
        return []


def describe(ecs: Any, name: str) -> dict[str, Any]:
    return ecs.describe_services(services=[name])["services"][0]


def messages(ecs: Any, name: str) -> list[str]:
    return [e["message"] for e in reversed(describe(ecs, name)["events"])]   # oldest first


def starts(ecs: Any, name: str) -> list[float]:
    """When each of the service's tasks started (RUNNING), oldest first."""
    arns: list[str] = []
    for status in ("RUNNING", "STOPPED"):
        arns += ecs.list_tasks(serviceName=name, desiredStatus=status)["taskArns"]
    found = [t for i in range(0, len(arns), 100)
             for t in ecs.describe_tasks(tasks=arns[i:i + 100])["tasks"]]
    return sorted(t["startedAt"].timestamp() for t in found if t.get("startedAt"))


def test_a_crash_looping_service_backs_off_and_says_so(up: BerthProcess) -> None:
    ecs = up.client("ecs")
    ecs.register_task_definition(family="crash", containerDefinitions=[CRASH])
    ecs.create_service(serviceName="crash", taskDefinition="crash", desiredCount=1)
    began = time.monotonic()
    seen = wait_for(lambda: s if len(s := starts(ecs, "crash")) >= 5 else None, timeout=60)
    # Each wait is at least the throttle's delay for the failures so far (plus the task's
    # 1 s run): replaced at once after the first failure, then 1, 2, 4, 4 s.
    gaps = [b - a for a, b in zip(seen, seen[1:])]
    backoff = Backoff(BASE, CAP)
    for failures, gap in enumerate(gaps, start=1):
        assert gap >= 1 + backoff.delay(failures) - 0.2, (failures, gaps)
    assert time.monotonic() - began >= sum(backoff.delay(f) for f in range(1, 5))

    said = messages(ecs, "crash")
    assert said.count(f"(service crash) {IMPAIRED}") == 1, said
    assert not any("steady state" in m or "deployment completed" in m for m in said), said
    svc = describe(ecs, "crash")
    deployment = svc["deployments"][0]
    assert deployment["rolloutState"] == "IN_PROGRESS" and deployment["failedTasks"] >= 3
    stopped = ecs.describe_tasks(tasks=ecs.list_tasks(serviceName="crash",
                                                      desiredStatus="STOPPED")["taskArns"][:1])
    assert stopped["tasks"][0]["stopCode"] == "EssentialContainerExited"
    assert stopped["tasks"][0]["containers"][0]["exitCode"] == 3

    # A new task definition starts at once, unthrottled, and then reaches a steady state.
    ecs.register_task_definition(family="crash", containerDefinitions=[STAY])
    updated = time.monotonic()
    ecs.update_service(service="crash", taskDefinition="crash:2")
    wait_for(lambda: any(t["lastStatus"] == "RUNNING" and t["taskDefinitionArn"].endswith(":2")
                         for t in ecs.describe_tasks(tasks=ecs.list_tasks(
                             serviceName="crash")["taskArns"] or ["none"])["tasks"]),
             timeout=30)
    assert time.monotonic() - updated < CAP + 1
    wait_for(lambda: "(service crash) has reached a steady state." in messages(ecs, "crash"),
             timeout=30)
    svc = describe(ecs, "crash")
    assert svc["deployments"][0]["rolloutState"] == "COMPLETED"
    assert svc["deployments"][0]["failedTasks"] == 0


def test_the_circuit_breaker_fails_the_deployment_and_rolls_back(up: BerthProcess) -> None:
    ecs = up.client("ecs")
    ecs.register_task_definition(family="cb", containerDefinitions=[STAY])
    ecs.register_task_definition(family="cb", containerDefinitions=[CRASH])
    svc = ecs.create_service(serviceName="cb", taskDefinition="cb:1", desiredCount=1,
                             deploymentConfiguration={"deploymentCircuitBreaker": {
                                 "enable": True, "rollback": True}})["service"]
    good = svc["deployments"][0]["id"]
    wait_for(lambda: describe(ecs, "cb")["deployments"][0]["rolloutState"] == "COMPLETED",
             timeout=30)
    bad = ecs.update_service(service="cb", taskDefinition="cb:2")["service"]["deployments"][0]
    failed = f"(service cb) (deployment {bad['id']}) deployment failed: tasks failed to start."
    back = f"(service cb) rolling back to deployment {good}."
    said = wait_for(lambda: m if back in (m := messages(ecs, "cb")) else None, timeout=60)
    assert said.index(failed) < said.index(back)
    svc = describe(ecs, "cb")
    assert svc["taskDefinition"].endswith(":1")
    assert svc["deployments"][0]["id"] == good and svc["deployments"][0]["status"] == "PRIMARY"
    for d in svc["deployments"][1:]:        # listed while its last task stops
        assert (d["id"], d["status"], d["rolloutState"]) == (bad["id"], "ACTIVE", "FAILED")
    wait_for(lambda: (d := describe(ecs, "cb")["deployments"]) and len(d) == 1
             and d[0]["rolloutState"] == "COMPLETED", timeout=30)


def test_without_rollback_a_failed_deployment_launches_no_more_tasks(up: BerthProcess) -> None:
    ecs = up.client("ecs")
    ecs.register_task_definition(family="stall", containerDefinitions=[CRASH])
    ecs.create_service(serviceName="stall", taskDefinition="stall", desiredCount=1,
                       deploymentConfiguration={"deploymentCircuitBreaker": {
                           "enable": True, "rollback": False}})
    deployment = wait_for(lambda: d if (d := describe(ecs, "stall")["deployments"][0])[
        "rolloutState"] == "FAILED" else None, timeout=60)
    assert deployment["rolloutStateReason"] == ("ECS deployment circuit breaker: tasks failed "
                                                "to start.")
    assert deployment["failedTasks"] == 3                # desiredCount 1: the minimum threshold
    count = len(starts(ecs, "stall"))
    # Nothing more is launched: watch for longer than the throttle would wait (bounded).
    deadline = time.monotonic() + CAP + 2
    while time.monotonic() < deadline:
        assert len(starts(ecs, "stall")) == count
        assert ecs.list_tasks(serviceName="stall")["taskArns"] == []
        time.sleep(0.5)
