"""Restarts: an agent killed with SIGKILL finds its running containers again and reports what
ended while it was down; a control plane restart does not disturb running tasks, and their
awslogs output arrives without a gap."""
from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from agent_process import AgentProcess, container, runc_agent, run_task, running, stopped, wait_task
from berth_process import BerthProcess
from images import TEST_IMAGE

from berth.agent.drivers.runc import RuncDriver

CLUSTER = "restarts"
GROUP = "/berth/restarts"
TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runc") is None,
                                reason="the runc driver needs root and runc")


@pytest.fixture(scope="module")
def agent(berth: BerthProcess, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[AgentProcess]:
    with runc_agent(berth, tmp_path_factory.mktemp("restart-agent") / "data", CLUSTER) as proc:
        yield proc


def ticker(name: str) -> dict[str, Any]:
    return {"name": name, "image": TEST_IMAGE, "memory": 16, "stopTimeout": 1,
            "command": ["sh", "-c", TICKER],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": GROUP, "awslogs-stream-prefix": "p",
                "awslogs-create-group": "true"}}}


def ticks(berth: BerthProcess, name: str, arn: str) -> list[int]:
    logs = berth.client("logs")
    stream = f"p/{name}/{arn.rsplit('/', 1)[-1]}"
    out, token = [], None
    for _ in range(20):
        kw = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=GROUP, logStreamName=stream,
                                   startFromHead=True, **kw)
        out += [int(re.fullmatch(r"tick (\d+)", e["message"]).group(1))  # type: ignore[union-attr]
                for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    return out


def test_agent_killed_and_restarted_finds_its_containers(berth: BerthProcess,
                                                         agent: AgentProcess) -> None:
    ecs = berth.client("ecs")
    arn = run_task(ecs, CLUSTER, "survivor", [
        {"name": "long", "image": TEST_IMAGE, "memory": 16, "stopTimeout": 1,
         "command": ["sleep", "120"]},
        {"name": "short", "image": TEST_IMAGE, "memory": 16, "essential": False,
         "command": ["sh", "-c", "sleep 1.5; exit 7"]}])
    before = wait_task(ecs, CLUSTER, arn, running, agent=agent)
    instance = agent.instance_arn
    agent.kill9()
    time.sleep(2.5)                         # `short` exits while no agent watches
    assert describe_status(ecs, arn) == "RUNNING"
    agent.start()
    assert agent.instance_arn == instance   # the same container instance again
    task = wait_task(ecs, CLUSTER, arn,
                     lambda t: container(t, "short")["lastStatus"] == "STOPPED", agent=agent)
    assert container(task, "short")["exitCode"] == 7
    assert task["lastStatus"] == "RUNNING"
    long = container(task, "long")
    assert long["lastStatus"] == "RUNNING"
    assert long["runtimeId"] == container(before, "long")["runtimeId"]
    inst = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[instance])
    assert inst["containerInstances"][0]["agentConnected"] is True
    ecs.stop_task(cluster=CLUSTER, task=arn)
    task = wait_task(ecs, CLUSTER, arn, stopped, agent=agent)
    assert container(task, "long")["exitCode"] == 137


def describe_status(ecs: Any, arn: str) -> str:
    return ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]["lastStatus"]


def test_server_restart_leaves_tasks_running_and_loses_no_log_line(
        berth: BerthProcess, agent: AgentProcess) -> None:
    ecs = berth.client("ecs")
    arn = run_task(ecs, CLUSTER, "ticker", [ticker("t")])
    task = wait_task(ecs, CLUSTER, arn, running, agent=agent)
    cid = container(task, "t")["runtimeId"]
    driver = RuncDriver(agent.data_dir)
    berth.kill9()
    time.sleep(1.5)                         # the agent finds nobody to talk to
    assert driver.state(cid).status == "running"
    berth.start()
    ecs = berth.client("ecs")
    task = wait_task(ecs, CLUSTER, arn, running, agent=agent)
    assert container(task, "t")["runtimeId"] == cid
    deadline = time.monotonic() + 20
    seen: list[int] = []
    while time.monotonic() < deadline and len(seen) < 40:
        seen = ticks(berth, "t", arn)
        time.sleep(0.2)
    # Everything written while the server was away arrived, in order, without a gap.
    assert len(seen) >= 40 and seen == list(range(len(seen))), seen
    ecs.stop_task(cluster=CLUSTER, task=arn)
    wait_task(ecs, CLUSTER, arn, stopped, agent=agent)
    assert driver.state(cid).status == "exited"
