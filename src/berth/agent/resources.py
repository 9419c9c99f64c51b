"""What this host offers the cluster: CPU units, memory, reserved ports, and the attributes
(`ecs.os-type`, `ecs.cpu-architecture`, `berth.driver`, capabilities) schedulers match on."""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CPU_UNITS_PER_CORE = 1024
# Ports ECS reserves on every container instance: SSH, the Docker API, the ECS agent's own.
ECS_RESERVED_PORTS = (22, 2375, 2376, 51678, 51679)
CAPABILITIES = (
    "com.amazonaws.ecs.capability.logging-driver.awslogs",
    "ecs.capability.container-health-check",
    "ecs.capability.container-ordering",
)
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class HostResources:
    cpu: int                        # CPU units
    memory: int                     # MiB
    ports: tuple[int, ...]          # reserved TCP host ports
    udp_ports: tuple[int, ...] = ()

    def as_ecs(self) -> list[dict[str, Any]]:
        """RegisterContainerInstance's totalResources."""
        return [{"name": "CPU", "type": "INTEGER", "integerValue": self.cpu},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": self.memory},
                {"name": "PORTS", "type": "STRINGSET",
                 "stringSetValue": [str(p) for p in self.ports]},
                {"name": "PORTS_UDP", "type": "STRINGSET",
                 "stringSetValue": [str(p) for p in self.udp_ports]}]


def cpu_units() -> int:
    return (os.cpu_count() or 1) * CPU_UNITS_PER_CORE


def memory_mib(meminfo: Path = Path("/proc/meminfo")) -> int:
    """The host's total memory in MiB (MemTotal)."""
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ValueError(f"no MemTotal in {meminfo}")


def detect(reserved_memory: int, extra_ports: list[int], berth_port: int | None
           ) -> HostResources:
    """This host's resources, less the memory reserve, with ECS's reserved ports, berth's own
    port (when berth listens here) and the configured extras."""
    ports = {*ECS_RESERVED_PORTS, *extra_ports}
    if berth_port:
        ports.add(berth_port)
    return HostResources(cpu=cpu_units(), memory=max(memory_mib() - reserved_memory, 0),
                         ports=tuple(sorted(ports)))


def cpu_architecture(machine: str | None = None) -> str:
    machine = machine or platform.machine()
    return _ARCH.get(machine.lower(), machine.lower())


def attributes(driver: str) -> dict[str, str | None]:
    """The instance's attributes; capabilities carry no value, as ECS's do."""
    attrs: dict[str, str | None] = {
        "ecs.os-type": "linux", "ecs.os-family": "LINUX",
        "ecs.cpu-architecture": cpu_architecture(), "berth.driver": driver}
    attrs.update({name: None for name in CAPABILITIES})
    return attrs
