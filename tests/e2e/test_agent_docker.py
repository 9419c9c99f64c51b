"""A real `berth agent` on the docker driver (a private Docker Engine, found through
DOCKER_HOST) runs ECS tasks: exit codes, static and dynamic host ports in bridge mode, and a
missing image's CannotPullContainerError."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from agent_process import (AgentProcess, check_pid1_sleep_stops, container, docker_agent,
                           http_get, run_task, running, stopped, wait_task)
from berth_process import BerthProcess, free_port
from images import TEST_IMAGE

CLUSTER = "docker"


@pytest.fixture(scope="module")
def agent(berth: BerthProcess, docker_host: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[AgentProcess]:
    with docker_agent(berth, docker_host, tmp_path_factory.mktemp("docker-agent"), CLUSTER,
                      env={"BERTH_AGENT_AVAILABILITY_ZONE": "us-east-1c"}) as proc:
        yield proc


def test_registers_as_a_docker_instance(agent: AgentProcess, ecs: Any) -> None:
    inst = ecs.describe_container_instances(
        cluster=CLUSTER, containerInstances=[agent.instance_arn])["containerInstances"][0]
    attrs = {a["name"]: a.get("value") for a in inst["attributes"]}
    assert attrs["berth.driver"] == "docker" and inst["agentConnected"] is True
    assert attrs["ecs.availability-zone"] == "us-east-1c"      # as the agent was told


def test_task_runs_to_its_exit_code(agent: AgentProcess, ecs: Any) -> None:
    arn = run_task(ecs, CLUSTER, "d-exit", [{
        "name": "main", "image": TEST_IMAGE, "memory": 32,
        "command": ["sh", "-c", "sleep 0.6; exit 5"]}])
    first = wait_task(ecs, CLUSTER, arn, lambda t: t["lastStatus"] in ("RUNNING", "STOPPED"),
                      agent=agent)
    assert first["lastStatus"] == "RUNNING"
    task = wait_task(ecs, CLUSTER, arn, stopped, agent=agent)
    assert container(task, "main")["exitCode"] == 5
    assert task["stoppedReason"] == "Essential container in task exited"


def test_static_and_dynamic_host_ports_answer_on_the_reported_port(agent: AgentProcess,
                                                                   ecs: Any) -> None:
    static = free_port()
    arn = run_task(ecs, CLUSTER, "d-web", [
        {"name": "fixed", "image": TEST_IMAGE, "memory": 16, "stopTimeout": 1,
         "portMappings": [{"containerPort": 8080, "hostPort": static}],
         "command": ["httpd", "-f", "-p", "8080", "-h", "/etc"]},
        {"name": "dynamic", "image": TEST_IMAGE, "memory": 16, "stopTimeout": 1,
         "portMappings": [{"containerPort": 8080}],
         "command": ["httpd", "-f", "-p", "8080", "-h", "/etc"]},
    ])
    task = wait_task(ecs, CLUSTER, arn, running, agent=agent)
    fixed = container(task, "fixed")["networkBindings"]
    dynamic = container(task, "dynamic")["networkBindings"]
    assert [(b["containerPort"], b["hostPort"]) for b in fixed] == [(8080, static)]
    assert len(dynamic) == 1 and dynamic[0]["containerPort"] == 8080
    chosen = dynamic[0]["hostPort"]
    assert 49153 <= chosen <= 65535 and chosen != static
    for port in (static, chosen):
        assert http_get(f"http://127.0.0.1:{port}/passwd").startswith("root:")
    ecs.stop_task(cluster=CLUSTER, task=arn)
    wait_task(ecs, CLUSTER, arn, stopped, agent=agent)


def test_missing_image_is_cannot_pull(agent: AgentProcess, ecs: Any) -> None:
    arn = run_task(ecs, CLUSTER, "d-missing", [{
        "name": "c", "image": "berth-test/not-there:1", "memory": 16, "command": ["true"]}])
    task = wait_task(ecs, CLUSTER, arn, stopped, timeout=60, agent=agent)
    assert task["stoppedReason"].startswith("CannotPullContainerError: ")
    assert task["stopCode"] == "TaskFailedToStart"
    # What the engine has, and berth's built-in image, are what it can run instead.
    for runnable in (TEST_IMAGE, "busybox:latest"):
        assert runnable in task["stoppedReason"], task["stoppedReason"]


def test_the_built_in_busybox_image_is_loaded_when_a_task_names_it(agent: AgentProcess,
                                                                    ecs: Any) -> None:
    arn = run_task(ecs, CLUSTER, "d-builtin", [{
        "name": "bb", "image": "busybox", "memory": 16, "command": ["sh", "-c", "exit 6"]}])
    task = wait_task(ecs, CLUSTER, arn, stopped, timeout=60, agent=agent)
    assert container(task, "bb")["exitCode"] == 6, task


def test_init_process_lets_a_pid_1_sleep_stop_on_sigterm(agent: AgentProcess, ecs: Any) -> None:
    check_pid1_sleep_stops(ecs, CLUSTER, TEST_IMAGE, "d-pid1", agent)
