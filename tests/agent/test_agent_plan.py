"""Task plans: an assigned ECS task turned into container specs, network modes decided per
driver, host ports chosen, and malformed assignments refused with a clear reason."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from berth.agent.drivers.base import CannotStart, Mount, Ulimit
from berth.agent.ports import NoFreePort, PortAllocator
from berth.agent.task_plan import (
    LABEL_HOST_PORTS,
    LABEL_INSTANCE,
    Dependency,
    MalformedTask,
    PlanDefaults,
    bind_ports,
    effective_network,
    plan_task,
    ports_from_labels,
    with_ports,
)

ARN = "arn:aws:ecs:us-east-1:000000000000:task/c/0123456789abcdef0123456789abcdef"
INSTANCE = "arn:aws:ecs:us-east-1:000000000000:container-instance/c/abc"
ALL = frozenset({"bridge", "host", "none"})
HOST_ONLY = frozenset({"host", "none"})


def defaults(tmp_path: Path) -> PlanDefaults:
    return PlanDefaults(instance_arn=INSTANCE, volume_root=tmp_path / "volumes",
                        stop_timeout=30, start_timeout=180, pids_limit=64)


def task(containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    td = {"containerDefinitions": containers, **extra.pop("td", {})}
    return {"taskArn": ARN, "desiredStatus": "RUNNING", "lastStatus": "PENDING",
            "taskDefinition": td, "hostPorts": [], **extra}


def test_a_container_definition_becomes_its_spec(tmp_path: Path) -> None:
    t = task([{
        "name": "app", "image": "busybox", "memory": 64, "memoryReservation": 32, "cpu": 256,
        "command": ["sh", "-c", "echo"], "entryPoint": ["/init"], "workingDirectory": "/srv",
        "user": "nobody", "environment": [{"name": "A", "value": "1"}, {"name": "B"}],
        "ulimits": [{"name": "nofile", "softLimit": 10, "hardLimit": 20}],
        "dockerLabels": {"team": "x", "berth.pids-limit": "99"}, "stopTimeout": 5,
        "readonlyRootFilesystem": True,
        "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": True},
                        {"sourceVolume": "scratch", "containerPath": "/scratch"}],
        "healthCheck": {"command": ["CMD-SHELL", "test -f /ok"], "interval": 5,
                        "timeout": 2, "retries": 2, "startPeriod": 10},
    }], td={"volumes": [{"name": "data", "host": {"sourcePath": "/var/data"}},
                        {"name": "scratch"}]},
        overrides={"containerOverrides": [{"name": "app", "environment": [
            {"name": "A", "value": "over"}], "command": ["true"], "memory": 128}]})
    plan = plan_task(t, ALL, defaults(tmp_path))
    assert (plan.task_id, plan.network, plan.bridge_as_host) == (
        "0123456789abcdef0123456789abcdef", "bridge", False)
    c = plan.container("app")
    s = c.spec
    assert (s.image, s.command, s.entrypoint, s.working_dir, s.user) == (
        "busybox", ["true"], ["/init"], "/srv", "nobody")
    assert s.environment == {"A": "over", "B": ""}
    assert (s.memory_mib, s.memory_reservation_mib, s.cpu_shares, s.pids_limit) == (
        128, 32, 256, 99)
    assert s.ulimits == [Ulimit("nofile", 10, 20)] and s.read_only_root and s.stop_timeout == 5
    scratch = tmp_path / "volumes" / plan.task_id / "scratch"
    assert s.mounts == [Mount("/data", "/var/data", True), Mount("/scratch", str(scratch))]
    assert plan.volume_dirs == [scratch]
    assert s.labels["berth.task-arn"] == ARN and s.labels[LABEL_INSTANCE] == INSTANCE
    assert s.labels["berth.container-name"] == "app" and s.labels["team"] == "x"
    assert c.essential and c.health is not None
    assert c.health.command == ["/bin/sh", "-c", "test -f /ok"]
    assert (c.health.interval, c.health.timeout, c.health.retries, c.health.start_period) == (
        5, 2, 2, 10)


def test_defaults_where_the_definition_is_silent(tmp_path: Path) -> None:
    plan = plan_task(task([{"name": "a", "image": "i", "cpu": 0, "essential": False,
                            "healthCheck": {"command": ["CMD", "true"]}},
                           {"name": "b", "image": "i",
                            "dependsOn": [{"containerName": "a", "condition": "SUCCESS"}]}]),
                     ALL, defaults(tmp_path))
    a, b = plan.container("a"), plan.container("b")
    assert a.spec.cpu_shares is None            # cpu 0: the engine's default weight
    assert a.spec.command is None and a.spec.pids_limit == 64 and a.spec.stop_timeout == 30
    assert not a.essential and b.essential
    assert a.health is not None and a.health.command == ["true"]
    assert (a.health.interval, a.health.retries) == (30, 3)
    assert b.depends_on == [Dependency("a", "SUCCESS")] and b.start_timeout == 180


@pytest.mark.parametrize("requested, modes, expected", [
    ("bridge", ALL, ("bridge", False)),
    ("host", ALL, ("host", False)),
    ("none", ALL, ("none", False)),
    ("awsvpc", ALL, ("bridge", False)),
    ("bridge", HOST_ONLY, ("host", True)),          # runc: bridge runs in host mode
    ("none", HOST_ONLY, ("none", False)),
    ("bridge", frozenset({"host"}), ("host", True)),  # process
    ("none", frozenset({"host"}), ("host", False)),
])
def test_network_mode_per_driver(requested: str, modes: frozenset[str],
                                 expected: tuple[str, bool]) -> None:
    assert effective_network(requested, modes) == expected


def test_a_network_mode_the_driver_cannot_offer_is_refused() -> None:
    with pytest.raises(CannotStart, match="network mode 'bridge'"):
        effective_network("bridge", frozenset({"none"}))


@pytest.mark.parametrize("bad", [
    "not a task",
    {"taskDefinition": {}},
    {"taskArn": ARN},
    {"taskArn": ARN, "taskDefinition": "x"},
    {"taskArn": ARN, "taskDefinition": {"containerDefinitions": [{"image": "i"}]}},
    task([{"name": "a", "image": 5}]),
    task([{"name": "a", "image": "i", "environment": "A=1"}]),
    task([{"name": "a", "image": "i", "command": "echo hi"}]),
    task([{"name": "a", "image": "i", "memory": "lots"}]),
    task([{"name": "a", "image": "i", "portMappings": [{"hostPort": 80}]}]),
    task([{"name": "a", "image": "i", "ulimits": [{"name": "nofile"}]}]),
    task([{"name": "a", "image": "i", "mountPoints": [{"sourceVolume": "nope",
                                                        "containerPath": "/x"}]}]),
    task([{"name": "a", "image": "i", "dependsOn": [{"containerName": "zz",
                                                     "condition": "START"}]}]),
    task([{"name": "a", "image": "i", "dependsOn": [{"containerName": "a",
                                                     "condition": "LATER"}]}]),
    task([{"name": "a", "image": "i", "healthCheck": {"command": ["CMD"]}}]),
])
def test_malformed_assignments_are_refused_with_a_reason(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(MalformedTask) as err:
        plan_task(bad, ALL, defaults(tmp_path))
    assert err.value.stopped_reason.startswith("CannotStartContainerError: malformed task")


def _plan(tmp_path: Path, ports: list[dict[str, Any]], modes: frozenset[str]) -> Any:
    return plan_task(task([{"name": "web", "image": "i", "portMappings": ports}]), modes,
                     defaults(tmp_path))


def test_bridge_ports_static_and_dynamic(tmp_path: Path) -> None:
    ports = PortAllocator({22}, 50000, 50010, probe=lambda p, proto: p != 50000)
    plan = _plan(tmp_path, [{"containerPort": 80, "hostPort": 8080},
                            {"containerPort": 81}, {"containerPort": 82, "hostPort": 0}], ALL)
    chosen = bind_ports(ARN, plan.container("web"), plan.network, plan.bridge_as_host, ports)
    # 50000 is bound by something else on the host: skipped.
    assert [(p.container_port, p.host_port) for p in chosen] == [
        (80, 8080), (81, 50001), (82, 50002)]
    assert ports.held() == {(8080, "tcp"), (50001, "tcp"), (50002, "tcp")}
    spec = with_ports(plan.container("web").spec, chosen)
    assert ports_from_labels(spec.labels) == chosen and LABEL_HOST_PORTS in spec.labels


def test_bridge_on_a_host_only_driver_uses_the_container_port(tmp_path: Path) -> None:
    ports = PortAllocator({22}, 50000, 50010, probe=lambda p, proto: True)
    plan = _plan(tmp_path, [{"containerPort": 8080}, {"containerPort": 9090,
                                                      "hostPort": 9090}], HOST_ONLY)
    assert (plan.network, plan.bridge_as_host) == ("host", True)
    chosen = bind_ports(ARN, plan.container("web"), plan.network, True, ports)
    assert [(p.container_port, p.host_port) for p in chosen] == [(8080, 8080), (9090, 9090)]
    other = plan_task({**task([{"name": "web", "image": "i",
                                "portMappings": [{"containerPort": 8080}]}]),
                       "taskArn": ARN + "0"}, HOST_ONLY, defaults(tmp_path))
    with pytest.raises(CannotStart, match="in use by another task"):
        bind_ports(ARN + "0", other.container("web"), "host", True, ports)
    remap = _plan(tmp_path, [{"containerPort": 80, "hostPort": 8081}], HOST_ONLY)
    with pytest.raises(CannotStart, match="must be equal"):
        bind_ports(ARN, remap.container("web"), "host", True, ports)
    reserved = _plan(tmp_path, [{"containerPort": 22}], HOST_ONLY)
    with pytest.raises(CannotStart, match="reserved"):
        bind_ports(ARN + "1", reserved.container("web"), "host", True, ports)


def test_allocator_never_hands_a_port_out_twice_and_goes_round() -> None:
    ports = PortAllocator({50001}, 50000, 50003, probe=lambda p, proto: True)
    got = [ports.allocate(f"t{i}") for i in range(3)]
    assert got == [50000, 50002, 50003]
    with pytest.raises(NoFreePort):
        ports.allocate("t3")
    ports.release("t1")
    assert ports.allocate("t4") == 50002
    assert ports.holder((50002, "tcp")) == "t4"


def test_allocator_skips_a_port_bound_on_the_host() -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        busy = s.getsockname()[1]
        ports = PortAllocator((), busy, busy)
        with pytest.raises(NoFreePort, match="no free host port"):
            ports.allocate("t")
        with pytest.raises(NoFreePort, match="already bound"):
            ports.claim("u", (busy, "tcp"))
