"""ECS tasks call berth back as they would call AWS: they read the task metadata endpoint
(v4 and v3), find their task role's credentials through the SDK's default chain, and call STS
with them, on runc (the host's network), on Docker (a bridge network of its own) and on plain
processes. Nothing in the task definitions but a task role."""
from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_process import (AgentProcess, container, docker_agent, run_task, runc_agent,
                           stopped, wait_task)
from berth_process import BerthProcess
from images import TEST_IMAGE

import berth

ROLE = "arn:aws:iam::000000000000:role/task-role"
EXEC_ROLE = "arn:aws:iam::000000000000:role/task-execution-role"
GROUP = "/berth/task-callback"
SDK = str(Path(berth.__file__).parent / "runtimes" / "python" / "sdk")

# Reads its metadata, then calls STS and CloudWatch Logs through boto3's default chain.
SCRIPT = r'''
import json, os, sys, urllib.request
sys.path.insert(0, "{sdk}")
import boto3

def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)

v4 = os.environ["ECS_CONTAINER_METADATA_URI_V4"]
out = {{"container": get(v4), "task": get(v4 + "/task"), "stats": get(v4 + "/stats"),
       "task_stats": get(v4 + "/task/stats"),
       "v3": get(os.environ["ECS_CONTAINER_METADATA_URI"] + "/task"),
       "env": {{k: v for k, v in os.environ.items()
               if k.startswith(("AWS_", "ECS_")) and "TOKEN" not in k}}}}
session = boto3.session.Session()
out["method"] = session.get_credentials().method
out["caller"] = session.client("sts").get_caller_identity()["Arn"]
session.client("logs").describe_log_groups(limit=1)
print("RESULT " + json.dumps(out))
'''


def _get(url: str, token: str | None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def _awslogs(prefix: str) -> dict[str, Any]:
    return {"logDriver": "awslogs", "options": {
        "awslogs-group": GROUP, "awslogs-stream-prefix": prefix, "awslogs-create-group": "true",
        "awslogs-region": "us-east-1"}}


def _result(berth: BerthProcess, ecs: Any, cluster: str, family: str,
            containers: list[dict[str, Any]], agent: AgentProcess,
            **td: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    arn = run_task(ecs, cluster, family, containers, taskRoleArn=ROLE, **td)
    task = wait_task(ecs, cluster, arn, stopped, timeout=60, agent=agent)
    stream = f"{family}/main/{arn.rsplit('/', 1)[-1]}"
    events = berth.client("logs").get_log_events(logGroupName=GROUP, logStreamName=stream,
                                                  startFromHead=True)["events"]
    lines = [e["message"] for e in events]
    found = [line for line in lines if line.startswith("RESULT ")]
    assert found, f"{task}\n{lines}\n{agent.log()}"
    assert container(task, "main")["exitCode"] == 0, lines
    return json.loads(found[0][7:]), task


def _check(out: dict[str, Any], task: dict[str, Any], cluster: str, family: str,
           network: str) -> None:
    task_id = task["taskArn"].rsplit("/", 1)[-1]
    assert out["caller"] == f"arn:aws:sts::000000000000:assumed-role/task-role/{task_id}"
    assert out["method"] == "container-role"
    c = out["container"]
    assert c["Name"] == "main" and c["KnownStatus"] == "RUNNING" and c["DesiredStatus"] == \
        "RUNNING"
    assert c["DockerId"] == container(task, "main")["runtimeId"]
    assert c["ContainerARN"] == container(task, "main")["containerArn"]
    assert c["Labels"]["com.amazonaws.ecs.task-arn"] == task["taskArn"]
    assert c["Labels"]["com.amazonaws.ecs.task-definition-family"] == family
    assert c["Limits"]["Memory"] == 256 and c["Type"] == "NORMAL"
    assert c["Networks"][0]["NetworkMode"] == network and c["LogDriver"] == "awslogs"
    assert "StartedAt" in c and "CreatedAt" in c
    t = out["task"]
    assert (t["Cluster"], t["TaskARN"], t["Family"]) == (cluster, task["taskArn"], family)
    assert t["Revision"] == task["taskDefinitionArn"].rsplit(":", 1)[-1]
    assert t["KnownStatus"] == "RUNNING" and t["LaunchType"] == "EC2"
    assert t["AvailabilityZone"] == "us-east-1a"
    assert [x["Name"] for x in t["Containers"]] == ["main"]
    assert t["ClockDrift"]["ClockSynchronizationStatus"] in ("SYNCHRONIZED",
                                                             "NOT_SYNCHRONIZED")
    assert "PullStartedAt" in t and "PullStoppedAt" in t
    stats = out["stats"]
    assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert stats["memory_stats"]["usage"] > 0 and stats["pids_stats"]["current"] >= 1
    assert list(out["task_stats"]) == [c["DockerId"]]
    assert out["v3"]["TaskARN"] == task["taskArn"] and "ClockDrift" not in out["v3"]
    assert out["env"]["AWS_REGION"] == out["env"]["AWS_DEFAULT_REGION"] == "us-east-1"


@pytest.fixture(scope="module")
def ecs(berth: BerthProcess) -> Any:
    return berth.client("ecs")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runc") is None,
                    reason="the runc driver needs root and runc")
def test_a_runc_task_reads_its_metadata_and_calls_sts_as_its_role(
        berth: BerthProcess, ecs: Any, tmp_path: Path) -> None:
    with runc_agent(berth, tmp_path / "data", "cb-runc") as agent:
        python = os.path.realpath(sys.executable)
        # The agent ships the task's logs as its execution role.
        out, task = _result(berth, ecs, "cb-runc", "cb-runc", [{
            "name": "main", "image": "host", "memory": 256,
            "command": [python, "-S", "-c", SCRIPT.format(sdk=SDK)],
            "logConfiguration": _awslogs("cb-runc")}], agent, executionRoleArn=EXEC_ROLE)
        env = out["env"]
        full_uri = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        assert full_uri.startswith("http://127.0.0.1:")
        # The host's loopback listener answers only with the task's token.
        for token in (None, "not-the-token"):
            status, body = _get(full_uri, token)
            assert (status, body["code"]) == (401, "AccessDenied")
        status, body = _get(full_uri.rsplit("/", 1)[0] + "/" + "0" * 32, "x")
        assert status == 400
        # An execution role that cannot be assumed: the logs cannot start, nor the task.
        arn = run_task(ecs, "cb-runc", "cb-bad-exec", [{
            "name": "main", "image": "host", "memory": 64, "command": ["/bin/true"],
            "logConfiguration": _awslogs("cb-bad-exec")}],
            executionRoleArn="arn:aws:iam::000000000000:user/not-a-role")
        failed = wait_task(ecs, "cb-runc", arn, stopped, timeout=60, agent=agent)
        assert "failed to initialize logging driver" in failed["stoppedReason"]
        assert "not a valid role ARN" in failed["stoppedReason"]
    _check(out, task, "cb-runc", "cb-runc", "host")
    assert env["AWS_ENDPOINT_URL"] == berth.endpoint


def test_a_docker_task_on_a_bridge_network_reads_its_metadata_and_calls_sts_as_its_role(
        berth: BerthProcess, ecs: Any, docker_host: str, tmp_path: Path) -> None:
    # The busybox image has no Python: the host's is shown to it read-only, with boto3.
    volumes = [{"name": n, "host": {"sourcePath": p}} for n, p in (
        ("usr", "/usr"), ("lib", "/usr/lib"), ("lib64", "/usr/lib64"), ("sdk", SDK))]
    mounts = [{"sourceVolume": "usr", "containerPath": "/usr", "readOnly": True},
              {"sourceVolume": "lib", "containerPath": "/lib", "readOnly": True},
              {"sourceVolume": "lib64", "containerPath": "/lib64", "readOnly": True},
              {"sourceVolume": "sdk", "containerPath": "/sdk", "readOnly": True}]
    with docker_agent(berth, docker_host, tmp_path, "cb-docker") as agent:
        out, task = _result(berth, ecs, "cb-docker", "cb-docker", [{
            "name": "main", "image": TEST_IMAGE, "memory": 256, "mountPoints": mounts,
            "command": ["/usr/bin/python3", "-S", "-c", SCRIPT.format(sdk="/sdk")],
            "logConfiguration": _awslogs("cb-docker")}], agent, volumes=volumes)
    _check(out, task, "cb-docker", "cb-docker", "bridge")
    env = out["env"]
    assert env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"].startswith("/v2/credentials/")
    assert env["ECS_CONTAINER_METADATA_URI_V4"].startswith("http://169.254.170.2/v4/")
    assert env["AWS_ENDPOINT_URL"] == "http://169.254.170.2:4750"
    assert out["container"]["Networks"][0]["IPv4Addresses"]


def test_a_process_task_reads_its_metadata_and_calls_sts_as_its_role(
        berth: BerthProcess, ecs: Any, tmp_path: Path) -> None:
    ecs.create_cluster(clusterName="cb-process")
    agent = AgentProcess(berth, tmp_path / "data", "cb-process", "process").start()
    try:
        python = os.path.realpath(sys.executable)
        out, task = _result(berth, ecs, "cb-process", "cb-process", [{
            "name": "main", "image": "host", "memory": 256,
            "command": [python, "-S", "-c", SCRIPT.format(sdk=SDK)],
            "logConfiguration": _awslogs("cb-process")}], agent)
    finally:
        agent.stop()
    _check(out, task, "cb-process", "cb-process", "host")
    assert out["env"]["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://127.0.0.1:")
