"""Task definitions as data: check a registration as ECS does, fill ECS's defaults, and work out
what one task of it claims on a host (CPU units, MiB, static host ports). Pure functions."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import errors

FAMILY_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
CONTAINER_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
MIN_CONTAINER_MEMORY = 6       # MiB; Docker refuses less
HEALTH_LIMITS = {"interval": (5, 300), "timeout": (2, 120), "retries": (1, 10),
                 "startPeriod": (0, 300)}
# Members of a registration that are copied into the task definition as given.
PASSTHROUGH = ("taskRoleArn", "executionRoleArn", "networkMode", "placementConstraints",
               "requiresCompatibilities", "pidMode", "ipcMode", "proxyConfiguration",
               "inferenceAccelerators", "ephemeralStorage", "runtimePlatform",
               "enableFaultInjection")


@dataclass(frozen=True)
class Needs:
    """What one task claims on its container instance."""
    cpu: int
    memory: int
    ports: tuple[int, ...]         # static TCP host ports
    udp_ports: tuple[int, ...]


def parse_cpu(text: str, what: str = "cpu") -> int:
    """Task-level cpu: '1024' or '1 vCPU' (= 1024 units)."""
    t = text.strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*vcpu", t)
    if m:
        return int(float(m.group(1)) * 1024)
    if t.isdigit():
        return int(t)
    raise errors.client(f"Invalid '{what}' setting for task: {text}")


def parse_memory(text: str, what: str = "memory") -> int:
    """Task-level memory: '512' (MiB) or '2 GB' (= 2048 MiB)."""
    t = text.strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*gb", t)
    if m:
        return int(float(m.group(1)) * 1024)
    if t.isdigit():
        return int(t)
    raise errors.client(f"Invalid '{what}' setting for task: {text}")


def _container(c: dict[str, Any], task_memory: int | None, network_mode: str,
               volumes: set[str]) -> dict[str, Any]:
    name = c.get("name")
    if not name:
        raise errors.client("Container.name should not be null or empty.")
    if not CONTAINER_NAME_RE.fullmatch(name):
        raise errors.client(f"Container name '{name}' can have up to 255 letters, numbers, "
                            "hyphens and underscores.")
    if not c.get("image"):
        raise errors.client("Container.image should not be null or empty.")
    memory, reservation = c.get("memory"), c.get("memoryReservation")
    if memory is None and reservation is None and task_memory is None:
        raise errors.client(f"Invalid setting for container '{name}'. At least one of "
                            "'memory' or 'memoryReservation' must be specified.")
    for label, value in (("memory", memory), ("memoryReservation", reservation)):
        if value is not None and value < MIN_CONTAINER_MEMORY:
            raise errors.client(f"Invalid '{label}' setting for container '{name}'. At least "
                                f"{MIN_CONTAINER_MEMORY} MiB of memory is required.")
    if memory is not None and reservation is not None and reservation > memory:
        raise errors.client(f"Invalid setting for container '{name}'. The memory reservation "
                            "must be less than or equal to the memory limit.")
    if c.get("cpu") is not None and c["cpu"] < 0:
        raise errors.client(f"Invalid 'cpu' setting for container '{name}'.")
    out = dict(c)
    out.setdefault("cpu", 0)
    out.setdefault("essential", True)
    for key in ("environment", "mountPoints", "volumesFrom", "portMappings", "systemControls"):
        out.setdefault(key, [])
    out["portMappings"] = [_port_mapping(name, pm, network_mode) for pm in out["portMappings"]]
    for mp in out["mountPoints"]:
        if mp.get("sourceVolume") not in volumes:
            raise errors.client(f"Invalid 'mountPoints' setting for container '{name}': "
                                f"unknown volume '{mp.get('sourceVolume')}'.")
        if not mp.get("containerPath"):
            raise errors.client(f"Invalid 'mountPoints' setting for container '{name}': "
                                "containerPath is required.")
    hc = out.get("healthCheck")
    if hc is not None:
        if not hc.get("command"):
            raise errors.client(f"Invalid 'healthCheck' setting for container '{name}': "
                                "command is required.")
        for key, (lo, hi) in HEALTH_LIMITS.items():
            value = hc.get(key)
            if value is not None and not lo <= value <= hi:
                raise errors.client(f"Invalid 'healthCheck' setting for container '{name}': "
                                    f"{key} must be between {lo} and {hi}.")
        out["healthCheck"] = {"interval": 30, "timeout": 5, "retries": 3, **hc}
    if out.get("stopTimeout") is not None and out["stopTimeout"] < 0:
        raise errors.client(f"Invalid 'stopTimeout' setting for container '{name}'.")
    return out


def _port_mapping(name: str, pm: dict[str, Any], network_mode: str) -> dict[str, Any]:
    container_port = pm.get("containerPort")
    if container_port is None or not 0 < container_port < 65536:
        raise errors.client(f"Invalid 'portMappings' setting for container '{name}': "
                            "containerPort must be between 1 and 65535.")
    host_port = pm.get("hostPort")
    if host_port is not None and not 0 <= host_port < 65536:
        raise errors.client(f"Invalid 'portMappings' setting for container '{name}': "
                            "hostPort must be between 0 and 65535.")
    out = {**pm, "protocol": pm.get("protocol", "tcp")}
    if network_mode in ("host", "awsvpc"):
        if host_port not in (None, container_port):
            raise errors.client(f"Invalid 'portMappings' setting for container '{name}': "
                                f"with networkMode {network_mode} the hostPort must equal "
                                "the containerPort.")
        out["hostPort"] = container_port
    elif network_mode == "none":
        raise errors.client(f"Invalid 'portMappings' setting for container '{name}': "
                            "port mappings are not allowed with networkMode none.")
    return out


def _check_dependencies(containers: list[dict[str, Any]]) -> None:
    by_name = {c["name"]: c for c in containers}
    for c in containers:
        for dep in c.get("dependsOn") or []:
            target = by_name.get(dep.get("containerName"))
            if target is None or target is c:
                raise errors.client(f"Invalid 'dependsOn' setting for container "
                                    f"'{c['name']}': no container named "
                                    f"'{dep.get('containerName')}'.")
            if dep.get("condition") == "HEALTHY" and not target.get("healthCheck"):
                raise errors.client(f"Invalid 'dependsOn' setting for container "
                                    f"'{c['name']}': '{target['name']}' has no healthCheck.")
            if dep.get("condition") in ("COMPLETE", "SUCCESS") and target.get("essential"):
                raise errors.client(f"Invalid 'dependsOn' setting for container "
                                    f"'{c['name']}': condition {dep['condition']} needs "
                                    f"'{target['name']}' to be non-essential.")
    state: dict[str, int] = {}   # 1 = visiting, 2 = done

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise errors.client(f"Invalid 'dependsOn' setting: a dependency cycle includes "
                                f"container '{name}'.")
        state[name] = 1
        for dep in by_name[name].get("dependsOn") or []:
            visit(dep["containerName"])
        state[name] = 2

    for name in by_name:
        visit(name)


def normalize(req: dict[str, Any]) -> dict[str, Any]:
    """A registration checked and filled in: the TaskDefinition shape minus ARN, revision and
    status. Raises ClientException with ECS's wording on what ECS refuses."""
    family = req["family"]
    if not FAMILY_RE.fullmatch(family):
        raise errors.client("Family contains invalid characters. Up to 255 letters (uppercase "
                            "and lowercase), numbers, hyphens, and underscores are allowed.")
    defs = req.get("containerDefinitions") or []
    if not defs:
        raise errors.client("Container list cannot be empty.")
    if len(defs) > 10:
        raise errors.client("Too many containers: a task definition has at most 10.")
    network_mode = req.get("networkMode", "bridge")
    task_cpu = parse_cpu(req["cpu"]) if req.get("cpu") else None
    task_memory = parse_memory(req["memory"]) if req.get("memory") else None
    volumes = [dict(v) for v in req.get("volumes") or []]
    names = [v.get("name") for v in volumes]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise errors.client("Volume names must be present and unique.")
    containers = [_container(c, task_memory, network_mode, set(names)) for c in defs]
    seen: set[str] = set()
    for c in containers:
        if c["name"] in seen:
            raise errors.client(f"Duplicate container name: {c['name']}.")
        seen.add(c["name"])
    if not any(c["essential"] for c in containers):
        raise errors.client("Invalid task definition: at least one container must be "
                            "essential.")
    _check_dependencies(containers)
    host_ports: set[tuple[int, str]] = set()
    for c in containers:
        for pm in c["portMappings"]:
            hp = pm.get("hostPort")
            if hp:
                key = (hp, pm["protocol"])
                if key in host_ports:
                    raise errors.client(f"Host port {hp}/{pm['protocol']} is used by more "
                                        "than one container in the task definition.")
                host_ports.add(key)
    if task_memory is not None:
        claimed = sum(c.get("memoryReservation") or c.get("memory") or 0 for c in containers)
        if claimed > task_memory:
            raise errors.client("The sum of the containers' memory reservations exceeds the "
                                "task memory.")
    if task_cpu is not None and sum(c["cpu"] for c in containers) > task_cpu:
        raise errors.client("The sum of the containers' cpu exceeds the task cpu.")
    body: dict[str, Any] = {"family": family, "containerDefinitions": containers,
                            "volumes": volumes, "placementConstraints": [],
                            "compatibilities": ["EC2", "EXTERNAL"],
                            "requiresAttributes": []}
    for key in PASSTHROUGH:
        if req.get(key) is not None:
            body[key] = req[key]
    for pc in body.get("placementConstraints") or []:
        if pc.get("type") != "memberOf" or not pc.get("expression"):
            raise errors.client("Task definition placement constraints must be of type "
                                "memberOf with an expression.")
    if req.get("cpu"):
        body["cpu"] = req["cpu"]
    if req.get("memory"):
        body["memory"] = req["memory"]
    return body


def needs(body: dict[str, Any], overrides: dict[str, Any] | None) -> Needs:
    """CPU, memory and static host ports one task of `body` claims, overrides applied.

    Memory counts the soft limit (memoryReservation) when a container has one, as ECS does.
    """
    overrides = overrides or {}
    by_name = {o.get("name"): o for o in overrides.get("containerOverrides") or []}
    cpu = mem = 0
    ports: list[int] = []
    udp: list[int] = []
    for c in body["containerDefinitions"]:
        o = by_name.get(c["name"], {})
        cpu += o.get("cpu", c.get("cpu") or 0)
        if "memoryReservation" in o or "memory" in o:
            mem += o.get("memoryReservation") or o.get("memory") or 0
        else:
            mem += c.get("memoryReservation") or c.get("memory") or 0
        for pm in c.get("portMappings") or []:
            if pm.get("hostPort"):
                (udp if pm.get("protocol") == "udp" else ports).append(pm["hostPort"])
    task_cpu = overrides.get("cpu") or body.get("cpu")
    task_mem = overrides.get("memory") or body.get("memory")
    if task_cpu:
        cpu = parse_cpu(task_cpu)
    if task_mem:
        mem = parse_memory(task_mem)
    return Needs(cpu, mem, tuple(ports), tuple(udp))


def check_overrides(body: dict[str, Any], overrides: dict[str, Any] | None) -> None:
    names = {c["name"] for c in body["containerDefinitions"]}
    for o in (overrides or {}).get("containerOverrides") or []:
        if o.get("name") not in names:
            raise errors.invalid(f"Override for container named {o.get('name')} is not a "
                                 "container in the TaskDefinition.")
