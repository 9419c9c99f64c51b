"""The failure detector end to end: an agent that stops heartbeating is marked disconnected,
then its tasks are stopped with a reason and the service places replacements elsewhere."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from berth_process import BerthProcess
from ecs.simagent import SimAgent, wait_for


@pytest.fixture
def berth(tmp_path: Path) -> Iterator[BerthProcess]:
    with mock.patch.dict(os.environ, {"BERTH_ECS_AGENT_TIMEOUT": "1",
                                      "BERTH_ECS_AGENT_GRACE": "1",
                                      "BERTH_ECS_RECONCILE_INTERVAL": "0.2"}):
        proc = BerthProcess(tmp_path / "data").start()
    yield proc
    proc.stop()


def connected(ecs, arn: str) -> bool:
    return ecs.describe_container_instances(cluster="fd", containerInstances=[arn])[
        "containerInstances"][0]["agentConnected"]


def test_silent_agent_is_disconnected_and_its_tasks_replaced(berth: BerthProcess) -> None:
    ecs = berth.client("ecs")
    ecs.create_cluster(clusterName="fd")
    ecs.register_task_definition(family="w", containerDefinitions=[
        {"name": "a", "image": "x", "cpu": 10, "memory": 10}])
    doomed = SimAgent(ecs, "fd").start(every=0.1)
    healthy = SimAgent(ecs, "fd").start(every=0.1)
    try:
        ecs.create_service(cluster="fd", serviceName="s", taskDefinition="w", desiredCount=2)
        loner = ecs.start_task(cluster="fd", taskDefinition="w",
                               containerInstances=[doomed.arn])["tasks"][0]

        def placed() -> list[dict]:
            arns = ecs.list_tasks(cluster="fd", serviceName="s")["taskArns"]
            tasks = ecs.describe_tasks(cluster="fd", tasks=arns)["tasks"] if arns else []
            return tasks if len(tasks) == 2 and all(
                t["lastStatus"] == "RUNNING" for t in tasks) else []

        before = wait_for(placed)
        on_doomed = [t["taskArn"] for t in before if t["containerInstanceArn"] == doomed.arn]
        assert len(on_doomed) == 1    # spread over the two instances
        assert connected(ecs, doomed.arn)

        doomed.stop()   # the agent goes silent
        wait_for(lambda: not connected(ecs, doomed.arn), timeout=5)
        assert connected(ecs, healthy.arn)
        # A disconnected agent takes no new work.
        refused = ecs.start_task(cluster="fd", taskDefinition="w",
                                 containerInstances=[doomed.arn])
        assert refused["failures"][0]["reason"] == "AGENT"

        # After the grace period its tasks are stopped, and the service replaces its task.
        def lost() -> dict:
            t = ecs.describe_tasks(cluster="fd", tasks=[loner["taskArn"], *on_doomed])["tasks"]
            return t if all(x["lastStatus"] == "STOPPED" for x in t) else None

        stopped = wait_for(lost, timeout=6)
        assert all("stopped responding" in t["stoppedReason"] for t in stopped)
        after = wait_for(placed, timeout=6)
        assert {t["containerInstanceArn"] for t in after} == {healthy.arn}

        # The agent coming back is connected again, with nothing left to run.
        doomed.heartbeat()
        assert connected(ecs, doomed.arn)
        assert ecs.list_tasks(cluster="fd", containerInstance=doomed.arn)["taskArns"] == []
    finally:
        doomed.stop()
        healthy.stop()
