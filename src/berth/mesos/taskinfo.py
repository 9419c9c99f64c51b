"""From a Mesos TaskInfo to what StartTask needs: the task definition it runs (registered on the
fly from its command and container, or one it names) and the resources it claims.

- `command.value` runs under `sh -c` (`shell` true, Mesos's default) or as the executable with
  `arguments` as its argv (`shell` false); `command.environment.variables` become the
  container's environment.
- `container.docker.image` (or `container.mesos.image.docker.name`) is the image; without one
  the task runs on the driver's default image (`host`: the host's own file system, read-only,
  as a Mesos command task sees its agent's).
- `container.docker.network` HOST (the default), BRIDGE or NONE is the network mode; BRIDGE's
  `port_mappings` map container ports to host ports of the task's `ports` resource, and with
  HOST every port of that resource is mapped to itself, so ECS claims them.
- The ports also reach the command as PORT0, PORT1, ... and PORTS (Marathon's convention).
- `kill_policy.grace_period` is the container's stopTimeout (SIGTERM to SIGKILL): 3 s unless
  given, as Mesos's command executor allows.
- A label `berth.task-definition` names a task definition to run instead (family, family:rev
  or ARN); the TaskInfo's cpus and mem then become the task-level cpu/memory overrides.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .messages import id_value
from .resources import InvalidResources, Resources, from_mesos

TASK_DEFINITION_LABEL = "berth.task-definition"
CONTAINER = "task"
NETWORKS = {"HOST": "host", "BRIDGE": "bridge", "NONE": "none", "USER": "bridge"}
GRACE_SECONDS = 3


class InvalidTask(ValueError):
    """A TaskInfo this driver cannot launch (Mesos answers TASK_ERROR, REASON_TASK_INVALID)."""


@dataclass(frozen=True)
class Launch:
    task_id: str
    agent_id: str
    needs: Resources
    # Exactly one of: a task definition body to register (then `family` names it), or the
    # task definition the TaskInfo names.
    body: dict[str, Any] | None = None
    named: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Names the body's content: launches with equal bodies share one registration."""
        assert self.body is not None
        return hashlib.sha256(json.dumps(self.body, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Defaults:
    image: str = "host"
    log_group: str | None = None        # awslogs group for on-the-fly definitions


def family_name(framework_name: str) -> str:
    """The task definition family a framework's on-the-fly definitions are registered in."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", framework_name).strip("-")[:200] or "framework"
    return f"mesos-{safe}"


def _labels(task: Mapping[str, Any]) -> dict[str, str]:
    return {str(lab.get("key")): str(lab.get("value", ""))
            for lab in ((task.get("labels") or {}).get("labels") or [])}


def _image(container: Mapping[str, Any]) -> str | None:
    docker = container.get("docker") or {}
    image = docker["image"] if "image" in docker else (
        ((container.get("mesos") or {}).get("image") or {}).get("docker") or {}).get("name")
    if image is not None and (not isinstance(image, str) or not image):
        raise InvalidTask("container image must be a non-empty string")
    return image


def _command(command: Mapping[str, Any]) -> tuple[list[str] | None, list[str] | None]:
    """(entryPoint, command) for the container; (None, None) keeps the image's."""
    if not command:
        return None, None
    value = command.get("value")
    if value is not None and not isinstance(value, str):
        raise InvalidTask("command.value must be a string")
    arguments = [str(a) for a in command.get("arguments") or []]
    if command.get("shell", True):
        if not value:
            raise InvalidTask("a shell command needs command.value")
        return ["sh", "-c"], [value]
    if not value:
        return None, arguments[1:] or None       # the image's entrypoint, given arguments
    return [value], arguments[1:]


def _environment(command: Mapping[str, Any], ports: list[int]) -> list[dict[str, str]]:
    env: dict[str, str] = {}
    for var in ((command.get("environment") or {}).get("variables") or []):
        name = var.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidTask("an environment variable needs a name")
        env[name] = str(var.get("value", ""))
    for i, port in enumerate(ports):
        env.setdefault(f"PORT{i}", str(port))
    if ports:
        env.setdefault("PORTS", ",".join(map(str, ports)))
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


def _port_mappings(container: Mapping[str, Any], network: str, ports: list[int]
                   ) -> list[dict[str, Any]]:
    mappings = (container.get("docker") or {}).get("port_mappings") or []
    if network != "bridge":
        if mappings:
            raise InvalidTask("port_mappings need the BRIDGE network")
        return [{"containerPort": p, "hostPort": p, "protocol": "tcp"} for p in ports]
    out, mapped = [], set()
    for m in mappings:
        host, inner = int(m.get("host_port", 0)), int(m.get("container_port", 0))
        protocol = str(m.get("protocol", "tcp")).lower()
        if host not in ports:
            raise InvalidTask(f"port mapping uses host port {host}, which is not in the "
                              "task's ports resource")
        if protocol != "tcp":
            raise InvalidTask("only TCP port mappings are offered")
        if not 0 < inner < 65536:
            raise InvalidTask(f"invalid container port {inner}")
        out.append({"containerPort": inner, "hostPort": host, "protocol": "tcp"})
        mapped.add(host)
    # A host port of the resource that no mapping uses is still the task's: claim it as itself.
    out += [{"containerPort": p, "hostPort": p, "protocol": "tcp"} for p in ports
            if p not in mapped]
    return out


def _grace_seconds(task: Mapping[str, Any]) -> int:
    grace = (task.get("kill_policy") or {}).get("grace_period")
    if not grace:
        return GRACE_SECONDS
    try:
        nanoseconds = int(grace.get("nanoseconds", 0))
    except (TypeError, ValueError):
        raise InvalidTask("kill_policy.grace_period.nanoseconds must be an integer") from None
    if nanoseconds < 0:
        raise InvalidTask("kill_policy.grace_period cannot be negative")
    return -(-nanoseconds // 1_000_000_000)


def _volumes(container: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes, mounts = [], []
    for i, v in enumerate(container.get("volumes") or []):
        host, path = v.get("host_path"), v.get("container_path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise InvalidTask("a volume needs an absolute container_path")
        name = f"v{i}"
        volumes.append({"name": name, **({"host": {"sourcePath": host}} if host else {})})
        mounts.append({"sourceVolume": name, "containerPath": path,
                       "readOnly": v.get("mode", "RW") == "RO"})
    return volumes, mounts


def plan(task: Mapping[str, Any], defaults: Defaults = Defaults()) -> Launch:
    """What launching `task` takes; InvalidTask if it cannot run on ECS as given."""
    try:
        task_id = id_value(task.get("task_id"))
        agent_id = id_value(task.get("agent_id") or task.get("slave_id"))
        needs = from_mesos(task.get("resources") or [])
    except (InvalidResources, ValueError) as exc:
        raise InvalidTask(str(exc)) from None
    if task.get("executor"):
        raise InvalidTask("custom executors are not supported: give the task a command or a "
                          "container")
    if needs.memory <= 0:
        raise InvalidTask("a task needs a mem resource (ECS claims memory for every task)")
    ports = sorted(needs.ports)
    named = _labels(task).get(TASK_DEFINITION_LABEL)
    if named:
        overrides = {"cpu": str(max(needs.cpu, 1)), "memory": str(needs.memory)}
        return Launch(task_id, agent_id, needs, named=named, overrides=overrides)
    container = task.get("container") or {}
    command = task.get("command") or {}
    image = _image(container)
    if not command and image is None:
        raise InvalidTask("a task needs a command or a container image")
    network = NETWORKS.get(str((container.get("docker") or {}).get("network", "HOST")))
    if network is None:
        raise InvalidTask("container.docker.network must be HOST, BRIDGE, NONE or USER")
    if network == "none" and ports:
        raise InvalidTask("a task without a network cannot use ports")
    entry_point, argv = _command(command)
    volumes, mounts = _volumes(container)
    definition: dict[str, Any] = {
        "name": CONTAINER, "image": image or defaults.image, "essential": True,
        "cpu": needs.cpu, "memory": needs.memory,
        "environment": _environment(command, ports),
        "portMappings": _port_mappings(container, network, ports),
        "stopTimeout": _grace_seconds(task)}
    if entry_point is not None:
        definition["entryPoint"] = entry_point
    if argv is not None:
        definition["command"] = argv
    if mounts:
        definition["mountPoints"] = mounts
    if defaults.log_group:
        options = {"awslogs-group": defaults.log_group, "awslogs-stream-prefix": "mesos",
                   "awslogs-create-group": "true"}
        definition["logConfiguration"] = {"logDriver": "awslogs", "options": options}
    body = {"containerDefinitions": [definition], "networkMode": network}
    if volumes:
        body["volumes"] = volumes
    return Launch(task_id, agent_id, needs, body=body)
