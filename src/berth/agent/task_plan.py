"""One assigned task as the agent runs it: the ECS Task (with its task definition and
overrides) turned into container plans — a ContainerSpec each, plus essential, dependsOn,
healthCheck, logConfiguration and port requests. Pure functions; anything malformed raises
MalformedTask, anything this host cannot run raises CannotStart.

Network modes: a task runs in its own mode when the driver offers it. On a driver without
`bridge` (runc, process) a bridge task runs in host mode, where a container's host port is its
container port: a static mapping must have hostPort == containerPort, and a dynamic one
(hostPort 0 or omitted) is given its container port as host port when that port is free;
otherwise the task stops with CannotStartContainerError. A `none` task on a driver without
`none` (process) runs in host mode too. `awsvpc` runs as bridge (its host ports are its
container ports already).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .drivers.base import (
    LABEL_CONTAINER_NAME,
    LABEL_TASK_ARN,
    CannotStart,
    ContainerSpec,
    Mount,
    PortMapping,
    Ulimit,
)
from .ports import NoFreePort, PortAllocator

LABEL_INSTANCE = "berth.container-instance"
LABEL_HOST_PORTS = "berth.host-ports"           # the chosen host ports, as JSON
LABEL_PIDS_LIMIT = "berth.pids-limit"           # a dockerLabel that sets the pids limit
CONDITIONS = ("START", "COMPLETE", "SUCCESS", "HEALTHY")


class MalformedTask(CannotStart):
    """The assignment does not describe a task this agent can read."""


@dataclass(frozen=True)
class PortRequest:
    container_port: int
    host_port: int                  # 0: dynamic, the agent chooses
    protocol: str = "tcp"


@dataclass(frozen=True)
class HealthCheck:
    command: list[str]
    interval: float = 30.0
    timeout: float = 5.0
    retries: int = 3
    start_period: float = 0.0


@dataclass(frozen=True)
class Dependency:
    container: str
    condition: str                  # START | COMPLETE | SUCCESS | HEALTHY


@dataclass(frozen=True)
class PlanDefaults:
    instance_arn: str
    volume_root: Path               # task-scoped volumes live under <volume_root>/<task id>/
    stop_timeout: int = 30
    start_timeout: int = 180
    pids_limit: int | None = None


@dataclass
class ContainerPlan:
    name: str
    essential: bool
    spec: ContainerSpec
    ports: list[PortRequest] = field(default_factory=list)
    depends_on: list[Dependency] = field(default_factory=list)
    health: HealthCheck | None = None
    log_configuration: dict[str, Any] | None = None
    start_timeout: float = 180.0


@dataclass(frozen=True)
class TaskInfo:
    """What the task metadata endpoint and the task's credentials need beyond its
    containers: ECS's names for the task, its roles (overrides applied) and its limits."""
    cluster: str = ""
    family: str = ""
    revision: str = ""
    task_role_arn: str | None = None
    execution_role_arn: str | None = None
    service_name: str | None = None
    cpu: str | None = None              # task-level CPU units and MiB, when defined
    memory: str | None = None
    launch_type: str = "EC2"
    container_arns: dict[str, str] = field(default_factory=dict)


@dataclass
class TaskPlan:
    arn: str
    task_id: str
    desired_status: str
    last_status: str
    network: str                    # the mode its containers run in here
    bridge_as_host: bool            # a bridge task run in host mode (see the module doc)
    containers: list[ContainerPlan]
    host_ports: list[int]           # the static ports the server claimed for it
    volume_dirs: list[Path]         # task-scoped volume directories to create
    info: TaskInfo = field(default_factory=TaskInfo)

    def container(self, name: str) -> ContainerPlan:
        return next(c for c in self.containers if c.name == name)


def _get(d: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None,
         what: str = "") -> Any:
    value = d.get(key, default)
    if value is None:
        return default
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise MalformedTask(f"malformed task: {what or key} is not a "
                            f"{getattr(kind, '__name__', kind)}")
    return value


def _str_list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedTask(f"malformed task: {what} is not a list of strings")
    return list(value)


def effective_network(requested: str, modes: frozenset[str]) -> tuple[str, bool]:
    """(the mode to run in, whether a bridge task runs in host mode)."""
    if requested == "awsvpc":
        requested = "bridge"
    if requested in modes:
        return requested, False
    if requested in ("bridge", "none") and "host" in modes:
        return "host", requested == "bridge"
    raise CannotStart(f"network mode {requested!r} cannot run on this instance "
                      f"(its driver offers {', '.join(sorted(modes))})")


def plan_task(task: Any, network_modes: frozenset[str], defaults: PlanDefaults) -> TaskPlan:
    if not isinstance(task, dict) or not isinstance(task.get("taskArn"), str):
        raise MalformedTask("malformed task: no taskArn")
    arn = task["taskArn"]
    td = _get(task, "taskDefinition", dict, what="taskDefinition")
    if not td:
        raise MalformedTask("malformed task: no taskDefinition")
    defs = _get(td, "containerDefinitions", list, what="containerDefinitions")
    if not defs or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in defs):
        raise MalformedTask("malformed task: containerDefinitions without names")
    requested = _get(td, "networkMode", str, "bridge")
    network, bridge_as_host = effective_network(requested, network_modes)
    task_id = arn.rsplit("/", 1)[-1]
    overrides = _get(task, "overrides", dict, {})
    by_name = {o.get("name"): o for o in _get(overrides, "containerOverrides", list, [])
               if isinstance(o, dict)}
    volume_dirs: dict[str, Path] = {}
    volumes: dict[str, str | None] = {}
    for v in _get(td, "volumes", list, []):
        if not isinstance(v, dict) or not isinstance(v.get("name"), str):
            raise MalformedTask("malformed task: a volume without a name")
        host = v.get("host") if isinstance(v.get("host"), dict) else {}
        source = host.get("sourcePath")
        if isinstance(source, str) and source:
            volumes[v["name"]] = source
        else:
            path = defaults.volume_root / task_id / v["name"]
            volume_dirs[v["name"]] = path
            volumes[v["name"]] = str(path)
    containers = [_container(arn, c, by_name.get(c["name"]) or {}, network, volumes, defaults)
                  for c in defs]
    names = {c.name for c in containers}
    for c in containers:
        for dep in c.depends_on:
            if dep.container not in names or dep.container == c.name:
                raise MalformedTask(f"malformed task: {c.name} depends on unknown container "
                                    f"{dep.container!r}")
    host_ports = [p for p in _get(task, "hostPorts", list, []) if isinstance(p, int)]
    return TaskPlan(arn=arn, task_id=task_id,
                    desired_status=_get(task, "desiredStatus", str, "RUNNING"),
                    last_status=_get(task, "lastStatus", str, "PENDING"), network=network,
                    bridge_as_host=bridge_as_host, containers=containers,
                    host_ports=host_ports, volume_dirs=list(volume_dirs.values()),
                    info=_info(task, td, overrides))


def _info(task: dict[str, Any], td: dict[str, Any], overrides: dict[str, Any]) -> TaskInfo:
    group = _get(task, "group", str, "")
    arns = {c["name"]: c["containerArn"] for c in _get(task, "containers", list, [])
            if isinstance(c, dict) and isinstance(c.get("name"), str)
            and isinstance(c.get("containerArn"), str)}
    return TaskInfo(
        cluster=_get(task, "clusterArn", str, "").rsplit("/", 1)[-1],
        family=_get(td, "family", str, ""), revision=str(_get(td, "revision", int, 0) or ""),
        task_role_arn=_get(overrides, "taskRoleArn", str) or _get(td, "taskRoleArn", str),
        execution_role_arn=(_get(overrides, "executionRoleArn", str)
                            or _get(td, "executionRoleArn", str)),
        service_name=group.removeprefix("service:") if group.startswith("service:") else None,
        cpu=_get(overrides, "cpu", str) or _get(td, "cpu", str),
        memory=_get(overrides, "memory", str) or _get(td, "memory", str),
        launch_type=_get(task, "launchType", str, "EC2"), container_arns=arns)


def _container(task_arn: str, c: dict[str, Any], o: dict[str, Any], network: str,
               volumes: dict[str, str | None], defaults: PlanDefaults) -> ContainerPlan:
    name = c["name"]
    image = _get(c, "image", str, what=f"{name}.image")
    if not image:
        raise MalformedTask(f"malformed task: container {name} has no image")
    env: dict[str, str] = {}
    for source in (_get(c, "environment", list, []), _get(o, "environment", list, [])):
        for item in source:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise MalformedTask(f"malformed task: {name}.environment")
            env[item["name"]] = str(item.get("value") or "")
    command = _str_list(o["command"], f"{name} override command") if o.get("command") \
        else _str_list(c.get("command"), f"{name}.command")
    labels = {str(k): str(v) for k, v in _get(c, "dockerLabels", dict, {}).items()}
    pids = labels.get(LABEL_PIDS_LIMIT)
    mounts = []
    for mp in _get(c, "mountPoints", list, []):
        if not isinstance(mp, dict):
            raise MalformedTask(f"malformed task: {name}.mountPoints")
        source = volumes.get(mp.get("sourceVolume", ""))
        if source is None or not isinstance(mp.get("containerPath"), str):
            raise MalformedTask(f"malformed task: {name} mounts an unknown volume")
        mounts.append(Mount(mp["containerPath"], source, bool(mp.get("readOnly"))))
    linux = _get(c, "linuxParameters", dict, {})
    for t in _get(linux, "tmpfs", list, []):
        if isinstance(t, dict) and isinstance(t.get("containerPath"), str):
            mounts.append(Mount(t["containerPath"], None))
    ulimits = []
    for u in _get(c, "ulimits", list, []):
        try:
            ulimits.append(Ulimit(str(u["name"]), int(u["softLimit"]), int(u["hardLimit"])))
        except (KeyError, TypeError, ValueError):
            raise MalformedTask(f"malformed task: {name}.ulimits") from None
    cpu = _get(o, "cpu", int, None) if "cpu" in o else _get(c, "cpu", int, 0)
    memory = _get(o, "memory", int) if "memory" in o else _get(c, "memory", int)
    reservation = (_get(o, "memoryReservation", int) if "memoryReservation" in o
                   else _get(c, "memoryReservation", int))
    stop_timeout = _get(c, "stopTimeout", int, defaults.stop_timeout)
    spec = ContainerSpec(
        name=name, image=image, command=command,
        entrypoint=_str_list(c.get("entryPoint"), f"{name}.entryPoint"), environment=env,
        working_dir=_get(c, "workingDirectory", str), user=_get(c, "user", str),
        # cpu 0 (ECS's default) leaves the engine's default weight.
        cpu_shares=cpu or None, memory_mib=memory, memory_reservation_mib=reservation,
        pids_limit=int(pids) if pids and pids.isdigit() else defaults.pids_limit,
        ulimits=ulimits, network=network, mounts=mounts,
        read_only_root=bool(c.get("readonlyRootFilesystem")),
        labels={**labels, LABEL_TASK_ARN: task_arn, LABEL_CONTAINER_NAME: name,
                LABEL_INSTANCE: defaults.instance_arn},
        stop_timeout=stop_timeout, init=bool(linux.get("initProcessEnabled")))
    ports = []
    for pm in _get(c, "portMappings", list, []):
        if not isinstance(pm, dict) or not isinstance(pm.get("containerPort"), int):
            raise MalformedTask(f"malformed task: {name}.portMappings")
        ports.append(PortRequest(pm["containerPort"], _get(pm, "hostPort", int, 0),
                                 _get(pm, "protocol", str, "tcp")))
    depends = []
    for d in _get(c, "dependsOn", list, []):
        if (not isinstance(d, dict) or not isinstance(d.get("containerName"), str)
                or d.get("condition") not in CONDITIONS):
            raise MalformedTask(f"malformed task: {name}.dependsOn")
        depends.append(Dependency(d["containerName"], d["condition"]))
    log_config = _get(c, "logConfiguration", dict)
    return ContainerPlan(
        name=name, essential=bool(c.get("essential", True)), spec=spec, ports=ports,
        depends_on=depends, health=_health(name, _get(c, "healthCheck", dict)),
        log_configuration=log_config,
        start_timeout=float(_get(c, "startTimeout", int, defaults.start_timeout)))


def _health(name: str, hc: dict[str, Any] | None) -> HealthCheck | None:
    if not hc:
        return None
    command = _str_list(hc.get("command"), f"{name}.healthCheck.command") or []
    if not command or command[0] == "NONE":
        return None
    if command[0] == "CMD-SHELL":
        argv = ["/bin/sh", "-c", " ".join(command[1:])]
    elif command[0] == "CMD":
        argv = command[1:]
    else:
        argv = command      # Docker runs a bare list as CMD
    if not argv:
        raise MalformedTask(f"malformed task: {name}.healthCheck has an empty command")
    return HealthCheck(argv, interval=float(hc.get("interval") or 30),
                       timeout=float(hc.get("timeout") or 5), retries=int(hc.get("retries") or 3),
                       start_period=float(hc.get("startPeriod") or 0))


def bind_ports(owner: str, container: ContainerPlan, network: str, bridge_as_host: bool,
               allocator: PortAllocator) -> list[PortMapping]:
    """The host port of each mapping, chosen by the rules in the module doc."""
    out = []
    for p in container.ports:
        try:
            if network == "host":
                if p.host_port and p.host_port != p.container_port:
                    raise CannotStart(
                        f"container {container.name}: host port {p.host_port} cannot map to "
                        f"container port {p.container_port}: this instance runs bridge tasks "
                        "in host mode, where they must be equal")
                allocator.claim(owner, (p.container_port, p.protocol))
                host = p.container_port
            elif p.host_port:
                allocator.hold(owner, [(p.host_port, p.protocol)])     # claimed by the server
                host = p.host_port
            else:
                host = allocator.allocate(owner, p.protocol)
        except NoFreePort as exc:
            raise CannotStart(f"container {container.name}: {exc}") from exc
        out.append(PortMapping(p.container_port, host, p.protocol))
    return out


def with_ports(spec: ContainerSpec, ports: list[PortMapping]) -> ContainerSpec:
    """The spec to create: ports chosen, and recorded in a label to be found after a restart."""
    labels = {**spec.labels, LABEL_HOST_PORTS: json.dumps(
        [[p.container_port, p.host_port, p.protocol] for p in ports])}
    return replace(spec, ports=ports, labels=labels)


def ports_from_labels(labels: dict[str, str]) -> list[PortMapping]:
    try:
        return [PortMapping(int(c), int(h), str(proto))
                for c, h, proto in json.loads(labels.get(LABEL_HOST_PORTS) or "[]")]
    except (ValueError, TypeError):
        return []


def network_bindings(ports: list[PortMapping]) -> list[dict[str, Any]]:
    return [{"bindIP": p.host_ip, "containerPort": p.container_port, "hostPort": p.host_port,
             "protocol": p.protocol} for p in ports]
