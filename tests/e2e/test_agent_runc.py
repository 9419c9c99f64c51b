"""A real `berth agent` on the runc driver joins a `berth server` and runs ECS tasks: exit codes,
essential containers, dependsOn, health checks, OOM kills, stopTimeout, host ports, awslogs, and
the ECS reasons for what cannot run. One server and one agent for the module."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_process import (AgentProcess, check_pid1_sleep_stops, container, http_get, run_task,
                           runc_agent, running, stopped, wait_task)
from berth_process import BERTH, BerthProcess, free_port
from images import TEST_IMAGE


CLUSTER = "runc"
GROUP = "/berth/agent-tests"
OOM_HOG = 'x=$(dd if=/dev/zero bs=1M count=300 2>/dev/null | tr "\\0" a); echo survived'

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runc") is None,
                                reason="the runc driver needs root and runc")


@pytest.fixture(scope="module")
def agent(berth: BerthProcess, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[AgentProcess]:
    with runc_agent(berth, tmp_path_factory.mktemp("runc-agent") / "data", CLUSTER) as proc:
        yield proc


def awslogs(prefix: str) -> dict[str, Any]:
    return {"logDriver": "awslogs", "options": {
        "awslogs-group": GROUP, "awslogs-stream-prefix": prefix, "awslogs-create-group": "true",
        "awslogs-region": "us-east-1"}}


def messages(berth: BerthProcess, stream: str) -> list[str]:
    logs = berth.client("logs")
    out = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True)
    return [e["message"] for e in out["events"]]


def test_joins_with_the_hosts_real_resources(berth: BerthProcess, agent: AgentProcess,
                                             ecs: Any) -> None:
    inst = ecs.describe_container_instances(
        cluster=CLUSTER, containerInstances=[agent.instance_arn])["containerInstances"][0]
    assert inst["status"] == "ACTIVE" and inst["agentConnected"] is True
    res = {r["name"]: r for r in inst["registeredResources"]}
    assert res["CPU"]["integerValue"] == (os.cpu_count() or 1) * 1024
    total = next(int(line.split()[1]) // 1024
                 for line in Path("/proc/meminfo").read_text().splitlines()
                 if line.startswith("MemTotal:"))
    assert res["MEMORY"]["integerValue"] == total - 256          # the default reserve
    assert {"22", "2375", "2376", str(berth.port)} <= set(res["PORTS"]["stringSetValue"])
    attrs = {a["name"]: a.get("value") for a in inst["attributes"]}
    assert attrs["ecs.os-type"] == "linux" and attrs["berth.driver"] == "runc"
    assert attrs["ecs.availability-zone"] == "us-east-1a"       # the region's default zone
    assert attrs["ecs.cpu-architecture"] in ("x86_64", "arm64")
    assert "com.amazonaws.ecs.capability.logging-driver.awslogs" in attrs
    assert inst["versionInfo"]["agentHash"] == "berth-runc"


def test_task_runs_reports_its_exit_code_and_ships_its_logs_in_order(
        berth: BerthProcess, agent: AgentProcess, ecs: Any) -> None:
    script = ("sleep 0.6; for i in $(seq 1 300); do echo line $i; done; echo oops >&2; "
              "sleep 0.3; exit 3")
    arn = run_task(ecs, CLUSTER, "exit3", [{
        "name": "main", "image": TEST_IMAGE, "memory": 32, "command": ["sh", "-c", script],
        "logConfiguration": awslogs("exit3")}])
    first = wait_task(ecs, CLUSTER, arn, lambda t: t["lastStatus"] in ("RUNNING", "STOPPED"),
                      agent=agent)
    assert first["lastStatus"] == "RUNNING"
    assert container(first, "main")["runtimeId"]
    task = wait_task(ecs, CLUSTER, arn, stopped, agent=agent)
    main = container(task, "main")
    assert (main["lastStatus"], main["exitCode"]) == ("STOPPED", 3)
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["pullStartedAt"] <= task["pullStoppedAt"] <= task["executionStoppedAt"]
    # Shipped before the task was reported STOPPED, every line, in the order written.
    stream = f"exit3/main/{arn.rsplit('/', 1)[-1]}"
    assert messages(berth, stream) == [f"line {i}" for i in range(1, 301)] + ["oops"]


def test_host_image_runs_the_hosts_python(berth: BerthProcess, agent: AgentProcess,
                                          ecs: Any) -> None:
    arn = run_task(ecs, CLUSTER, "hostpy", [{
        "name": "py", "image": "host", "memory": 64,
        "command": ["/usr/bin/python3", "-c",
                    "import os, sys; print('python', sys.version_info[0], os.environ['K'])\n"
                    + "sys.exit(7)"],
        "environment": [{"name": "K", "value": "v"}], "logConfiguration": awslogs("hostpy")}])
    task = wait_task(ecs, CLUSTER, arn, stopped, agent=agent)
    assert container(task, "py")["exitCode"] == 7
    assert messages(berth, f"hostpy/py/{arn.rsplit('/', 1)[-1]}") == ["python 3 v"]


def test_depends_on_order_and_an_essential_exit_stops_the_rest(agent: AgentProcess,
                                                               ecs: Any) -> None:
    shared = [{"sourceVolume": "shared", "containerPath": "/shared"}]
    arn = run_task(ecs, CLUSTER, "order", [
        {"name": "init", "image": TEST_IMAGE, "memory": 16, "essential": False,
         "mountPoints": shared, "command": ["sh", "-c", "sleep 0.5; echo ready > /shared/f"]},
        # Fails unless init has finished: SUCCESS orders it after init's exit.
        {"name": "app", "image": TEST_IMAGE, "memory": 16, "mountPoints": shared,
         "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
         "command": ["sh", "-c", "grep -q ready /shared/f && sleep 1"]},
        {"name": "side", "image": TEST_IMAGE, "memory": 16, "essential": False,
         "stopTimeout": 1, "dependsOn": [{"containerName": "app", "condition": "START"}],
         "command": ["sleep", "60"]},
    ], volumes=[{"name": "shared"}])
    task = wait_task(ecs, CLUSTER, arn, stopped, agent=agent)
    codes = {c["name"]: c.get("exitCode") for c in task["containers"]}
    # side ignores SIGTERM (pid 1 without a handler): killed after its stopTimeout.
    assert codes == {"init": 0, "app": 0, "side": 137}
    assert task["stoppedReason"] == "Essential container in task exited"


def test_health_check_healthy_then_unhealthy_and_depends_on_healthy(agent: AgentProcess,
                                                                    ecs: Any) -> None:
    arn = run_task(ecs, CLUSTER, "health", [
        {"name": "web", "image": TEST_IMAGE, "memory": 16, "stopTimeout": 1,
         "command": ["sh", "-c", "sleep 3; touch /tmp/bad; sleep 60"],
         "healthCheck": {"command": ["CMD-SHELL", "test ! -e /tmp/bad"], "interval": 5,
                         "timeout": 2, "retries": 1}},
        {"name": "after", "image": TEST_IMAGE, "memory": 16, "essential": False,
         "stopTimeout": 1, "dependsOn": [{"containerName": "web", "condition": "HEALTHY"}],
         "command": ["sleep", "60"]},
    ])
    task = wait_task(ecs, CLUSTER, arn, running, agent=agent)
    # RUNNING needs every container started: `after` waited for web to be HEALTHY.
    assert container(task, "after")["lastStatus"] == "RUNNING"
    assert container(task, "web").get("healthStatus") == "HEALTHY"
    task = wait_task(ecs, CLUSTER, arn,
                     lambda t: container(t, "web").get("healthStatus") == "UNHEALTHY",
                     timeout=15, agent=agent)
    assert task["lastStatus"] == "RUNNING"
    ecs.stop_task(cluster=CLUSTER, task=arn)
    wait_task(ecs, CLUSTER, arn, stopped, agent=agent)


def test_out_of_memory_kill_is_137_with_the_ecs_reason(agent: AgentProcess, ecs: Any) -> None:
    arn = run_task(ecs, CLUSTER, "oom", [{"name": "hog", "image": TEST_IMAGE, "memory": 24,
                                          "command": ["sh", "-c", OOM_HOG]}])
    task = wait_task(ecs, CLUSTER, arn, stopped, timeout=30, agent=agent)
    hog = container(task, "hog")
    assert hog["exitCode"] == 137
    assert hog["reason"] == "OutOfMemoryError: Container killed due to memory usage"


def test_stop_task_sends_sigterm_then_sigkill_after_stop_timeout(agent: AgentProcess,
                                                                 ecs: Any) -> None:
    arn = run_task(ecs, CLUSTER, "stopping", [
        {"name": "stubborn", "image": TEST_IMAGE, "memory": 16, "stopTimeout": 2,
         "command": ["sh", "-c", "trap '' TERM; sleep 60"]},
        {"name": "polite", "image": TEST_IMAGE, "memory": 16, "essential": False,
         "stopTimeout": 30,
         "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]},
    ])
    wait_task(ecs, CLUSTER, arn, running, agent=agent)
    began = time.monotonic()
    ecs.stop_task(cluster=CLUSTER, task=arn, reason="test says stop")
    task = wait_task(ecs, CLUSTER, arn, stopped, agent=agent)
    elapsed = time.monotonic() - began
    assert 2 <= elapsed < 10, elapsed
    assert container(task, "stubborn")["exitCode"] == 137
    assert container(task, "polite")["exitCode"] == 0     # left at SIGTERM, long before 30 s
    assert task["stoppedReason"] == "test says stop"


def test_bridge_task_runs_in_host_mode_on_its_container_port(agent: AgentProcess,
                                                             ecs: Any) -> None:
    port = free_port()
    arn = run_task(ecs, CLUSTER, "web", [{
        "name": "httpd", "image": TEST_IMAGE, "memory": 16, "stopTimeout": 1,
        "portMappings": [{"containerPort": port}],              # dynamic, bridge mode
        "command": ["httpd", "-f", "-p", str(port), "-h", "/etc"]}])
    task = wait_task(ecs, CLUSTER, arn, running, agent=agent)
    binding = container(task, "httpd")["networkBindings"]
    assert [(b["containerPort"], b["hostPort"], b["protocol"]) for b in binding] == [
        (port, port, "tcp")]
    assert http_get(f"http://127.0.0.1:{port}/passwd").startswith("root:")
    # The port is this task's now: a second task asking for it cannot start.
    again = run_task(ecs, CLUSTER, "web")
    refused = wait_task(ecs, CLUSTER, again, stopped, agent=agent)
    assert refused["stoppedReason"].startswith("CannotStartContainerError: ")
    assert "in use" in refused["stoppedReason"]
    # A static mapping to another port cannot run in host mode.
    other = run_task(ecs, CLUSTER, "remap", [{
        "name": "x", "image": TEST_IMAGE, "memory": 16, "command": ["true"],
        "portMappings": [{"containerPort": 80, "hostPort": free_port()}]}])
    refused = wait_task(ecs, CLUSTER, other, stopped, agent=agent)
    assert refused["stoppedReason"].startswith("CannotStartContainerError: ")
    assert "must be equal" in refused["stoppedReason"]
    ecs.stop_task(cluster=CLUSTER, task=arn)
    wait_task(ecs, CLUSTER, arn, stopped, agent=agent)


@pytest.mark.parametrize("definition, reason", [
    ({"image": "berth-test/no-such-image:1", "command": ["true"]},
     "CannotPullContainerError: "),
    ({"image": TEST_IMAGE, "command": ["/no/such/binary"]}, "CannotStartContainerError: "),
    ({"image": TEST_IMAGE, "command": ["true"],
      "ulimits": [{"name": "nofile", "softLimit": 100, "hardLimit": 10}]},
     "CannotStartContainerError: "),
], ids=["missing-image", "bad-command", "impossible-limit"])
def test_what_cannot_run_stops_with_a_clear_reason(agent: AgentProcess, ecs: Any,
                                                   definition: dict[str, Any],
                                                   reason: str) -> None:
    family = "bad-" + str(abs(hash(reason + str(definition))) % 10**6)
    arn = run_task(ecs, CLUSTER, family, [{"name": "c", "memory": 16, **definition}])
    task = wait_task(ecs, CLUSTER, arn, stopped, agent=agent)
    assert task["stoppedReason"].startswith(reason), task["stoppedReason"]
    assert container(task, "c")["reason"].startswith(reason)
    assert task["stopCode"] == "TaskFailedToStart"      # never ran: not an essential exit
    if reason.startswith("CannotPull"):
        # It says what this host can run instead: its images, and the host's file system.
        for runnable in ("busybox:latest", TEST_IMAGE, "host (the host's file system"):
            assert runnable in task["stoppedReason"], task["stoppedReason"]


def test_the_built_in_busybox_image_runs_with_nothing_imported(agent: AgentProcess,
                                                               ecs: Any) -> None:
    """`make install` built busybox:latest from the host's busybox-static; the agent imported
    it into its store at start, so `busybox` runs as a newcomer would type it."""
    listed = subprocess.run([*BERTH, "image", "ls", "--data-dir", str(agent.data_dir)],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    assert "busybox:latest" in listed.split()
    arn = run_task(ecs, CLUSTER, "builtin", [{
        "name": "bb", "image": "busybox", "memory": 16,
        "command": ["sh", "-c", "test -x /bin/busybox && exit 4"]}])
    task = wait_task(ecs, CLUSTER, arn, stopped, agent=agent)
    assert container(task, "bb")["exitCode"] == 4, task


@pytest.mark.parametrize("image", [TEST_IMAGE, "host"])
def test_init_process_lets_a_pid_1_sleep_stop_on_sigterm(agent: AgentProcess, ecs: Any,
                                                          image: str) -> None:
    check_pid1_sleep_stops(ecs, CLUSTER, image, "pid1-" + ("host" if image == "host" else "bb"),
                           agent)

