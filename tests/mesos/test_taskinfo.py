"""TaskInfos as ECS task definitions: commands, containers, networks, ports, volumes."""
from __future__ import annotations

from typing import Any

import pytest

from berth.mesos.resources import Resources
from berth.mesos.taskinfo import Defaults, InvalidTask, family_name, plan


def info(**extra: Any) -> dict[str, Any]:
    return {"task_id": {"value": "t"}, "agent_id": {"value": "A"},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}},
                          {"name": "ports", "type": "RANGES",
                           "ranges": {"range": [{"begin": 31001, "end": 31002}]}}],
            **extra}


def test_a_shell_command_on_the_hosts_own_files() -> None:
    launch = plan(info(command={"value": "echo hi", "environment": {"variables": [
        {"name": "GREETING", "value": "hello"}]}}), Defaults(log_group="/mesos/fw"))
    assert (launch.task_id, launch.agent_id) == ("t", "A")
    assert launch.needs == Resources(512, 64, frozenset({31001, 31002}))
    body = launch.body
    assert body is not None and body["networkMode"] == "host"
    (c,) = body["containerDefinitions"]
    assert (c["image"], c["entryPoint"], c["command"]) == ("host", ["sh", "-c"], ["echo hi"])
    assert (c["cpu"], c["memory"], c["stopTimeout"]) == (512, 64, 3)
    assert c["environment"] == [{"name": "GREETING", "value": "hello"},
                                {"name": "PORT0", "value": "31001"},
                                {"name": "PORT1", "value": "31002"},
                                {"name": "PORTS", "value": "31001,31002"}]
    assert c["portMappings"] == [{"containerPort": p, "hostPort": p, "protocol": "tcp"}
                                 for p in (31001, 31002)]
    assert c["logConfiguration"]["options"]["awslogs-group"] == "/mesos/fw"
    # Equal content, equal digest: one registration serves every copy.
    assert launch.digest == plan(info(command={"value": "echo hi", "environment": {
        "variables": [{"name": "GREETING", "value": "hello"}]}}),
        Defaults(log_group="/mesos/fw")).digest


def test_an_executable_with_arguments_and_a_docker_container_on_a_bridge() -> None:
    launch = plan(info(
        kill_policy={"grace_period": {"nanoseconds": 10_500_000_000}},
        command={"shell": False, "value": "/bin/server", "arguments": ["server", "--port",
                                                                        "8080"]},
        container={"type": "DOCKER", "docker": {
            "image": "web:1", "network": "BRIDGE",
            "port_mappings": [{"host_port": 31002, "container_port": 8080}]},
            "volumes": [{"container_path": "/data", "host_path": "/srv/data", "mode": "RO"}]}))
    body = launch.body
    assert body is not None and body["networkMode"] == "bridge"
    (c,) = body["containerDefinitions"]
    assert (c["image"], c["entryPoint"], c["command"]) == ("web:1", ["/bin/server"],
                                                           ["--port", "8080"])
    assert c["stopTimeout"] == 11
    assert c["portMappings"] == [
        {"containerPort": 8080, "hostPort": 31002, "protocol": "tcp"},
        {"containerPort": 31001, "hostPort": 31001, "protocol": "tcp"}]
    assert body["volumes"] == [{"name": "v0", "host": {"sourcePath": "/srv/data"}}]
    assert c["mountPoints"] == [{"sourceVolume": "v0", "containerPath": "/data",
                                 "readOnly": True}]
    image_only = plan(info(container={"mesos": {"image": {"docker": {"name": "job:2"}}}}))
    assert image_only.body is not None
    (c,) = image_only.body["containerDefinitions"]
    assert c["image"] == "job:2" and "command" not in c and "entryPoint" not in c


def test_a_named_task_definition_takes_the_tasks_resources_as_overrides() -> None:
    launch = plan(info(labels={"labels": [{"key": "berth.task-definition",
                                           "value": "web:3"}]}))
    assert launch.body is None and launch.named == "web:3"
    assert launch.overrides == {"cpu": "512", "memory": "64"}


@pytest.mark.parametrize("change, message", [
    ({"command": None}, "a command or a container image"),
    ({"executor": {"executor_id": {"value": "e"}}}, "custom executors"),
    ({"resources": [{"name": "cpus", "scalar": {"value": 1}}]}, "needs a mem resource"),
    ({"task_id": None}, "not an id"),
    ({"command": {"shell": True}}, "needs command.value"),
    ({"container": {"docker": {"image": "x", "network": "WEIRD"}}}, "network must be"),
    ({"container": {"docker": {"image": "x", "network": "NONE"}}}, "cannot use ports"),
    ({"container": {"docker": {"image": "x", "port_mappings": [{"host_port": 1,
                                                                 "container_port": 2}]}}},
     "need the BRIDGE network"),
    ({"container": {"docker": {"image": "x", "network": "BRIDGE", "port_mappings": [
        {"host_port": 40000, "container_port": 80}]}}}, "not in the task's ports"),
    ({"container": {"docker": {"image": ""}}}, "non-empty"),
    ({"container": {"docker": {"image": "x"}, "volumes": [{"container_path": "rel"}]}},
     "absolute container_path"),
    ({"kill_policy": {"grace_period": {"nanoseconds": -1}}}, "cannot be negative"),
])
def test_what_cannot_run_is_an_invalid_task(change: dict[str, Any], message: str) -> None:
    task = info(command={"value": "true"})
    task.update({k: v for k, v in change.items() if v is not None})
    for k in [k for k, v in change.items() if v is None]:
        del task[k]
    with pytest.raises(InvalidTask, match=message):
        plan(task)


def test_family_names_are_what_ecs_accepts() -> None:
    assert family_name("my framework/2") == "mesos-my-framework-2"
    assert family_name("///") == "mesos-framework"
