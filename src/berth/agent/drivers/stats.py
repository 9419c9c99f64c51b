"""A container's resource usage in the Docker Engine's stats format, the one ECS's task metadata
endpoint serves (`${ECS_CONTAINER_METADATA_URI_V4}/stats`). The docker driver gets it from the
engine; the runc driver reads its container's cgroup, the process driver /proc, and both
format what they read here.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TICK_NS = 10**9 // os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """What was read, in nanoseconds of CPU and bytes of memory."""
    cpu_total_ns: int = 0
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    percpu_ns: list[int] = field(default_factory=list)
    memory: int = 0
    memory_max: int = 0
    memory_limit: int = 0
    memory_stat: dict[str, int] = field(default_factory=dict)
    pids: int = 0


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def system_cpu_ns() -> int:
    """The host's CPU time since boot, all CPUs, as Docker's system_cpu_usage counts it."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return sum(int(x) for x in fields[:8]) * _TICK_NS


def docker_stats(usage: Usage, name: str, cid: str) -> dict[str, Any]:
    """`usage` as one Docker stats sample (precpu_stats left empty, as Docker's one-shot
    sample leaves it: the metadata endpoint fills it with the previous sample)."""
    cpus = os.cpu_count() or 1
    return {
        "read": _now(), "preread": "0001-01-01T00:00:00Z", "name": "/" + name, "id": cid,
        "num_procs": 0, "pids_stats": {"current": usage.pids},
        "blkio_stats": {k: None for k in (
            "io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
            "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
            "io_time_recursive", "sectors_recursive")},
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": {"total_usage": usage.cpu_total_ns,
                          "percpu_usage": usage.percpu_ns or None,
                          "usage_in_kernelmode": usage.cpu_system_ns,
                          "usage_in_usermode": usage.cpu_user_ns},
            "system_cpu_usage": system_cpu_ns(), "online_cpus": cpus,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
        "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                                       "usage_in_usermode": 0},
                         "throttling_data": {"periods": 0, "throttled_periods": 0,
                                             "throttled_time": 0}},
        "memory_stats": {"usage": usage.memory, "max_usage": usage.memory_max,
                         "stats": usage.memory_stat, "limit": usage.memory_limit},
    }


def _read_int(path: Path, default: int = 0) -> int:
    try:
        text = path.read_text().strip()
    except OSError:
        return default
    return int(text) if text.isdigit() else default


def _read_pairs(path: Path) -> dict[str, int]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def cgroup_usage(dirs: dict[str, Path]) -> Usage:
    """Usage from a container's cgroup directories by controller (v1), or from its one
    directory under "unified" (v2)."""
    unified = dirs.get("unified")
    if unified is not None:
        cpu = _read_pairs(unified / "cpu.stat")
        memory = _read_int(unified / "memory.current")
        limit = unified / "memory.max"
        return Usage(cpu_total_ns=cpu.get("usage_usec", 0) * 1000,
                     cpu_user_ns=cpu.get("user_usec", 0) * 1000,
                     cpu_system_ns=cpu.get("system_usec", 0) * 1000,
                     memory=memory, memory_max=_read_int(unified / "memory.peak", memory),
                     memory_limit=_read_int(limit), memory_stat=_read_pairs(
                         unified / "memory.stat"), pids=_read_int(unified / "pids.current"))
    usage = Usage()
    acct = dirs.get("cpuacct")
    if acct is not None:
        usage.cpu_total_ns = _read_int(acct / "cpuacct.usage")
        try:
            usage.percpu_ns = [int(x) for x in (acct / "cpuacct.usage_percpu").read_text()
                               .split()]
        except (OSError, ValueError):
            pass
        ticks = _read_pairs(acct / "cpuacct.stat")
        usage.cpu_user_ns = ticks.get("user", 0) * _TICK_NS
        usage.cpu_system_ns = ticks.get("system", 0) * _TICK_NS
    memory = dirs.get("memory")
    if memory is not None:
        usage.memory = _read_int(memory / "memory.usage_in_bytes")
        usage.memory_max = _read_int(memory / "memory.max_usage_in_bytes")
        usage.memory_limit = _read_int(memory / "memory.limit_in_bytes")
        usage.memory_stat = _read_pairs(memory / "memory.stat")
    pids = dirs.get("pids")
    if pids is not None:
        usage.pids = _read_int(pids / "pids.current")
    return usage


def process_usage(pids: list[int]) -> Usage:
    """Usage summed over processes (the process driver's containers have no cgroup)."""
    usage = Usage(pids=len(pids))
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            with open(f"/proc/{pid}/status") as f:
                status = {k: v for k, _, v in (line.partition(":") for line in f)}
        except OSError:
            continue
        user, system = int(fields[11]) * _TICK_NS, int(fields[12]) * _TICK_NS
        usage.cpu_user_ns += user
        usage.cpu_system_ns += system
        usage.cpu_total_ns += user + system
        usage.memory += int(status.get("VmRSS", "0 kB").split()[0]) * 1024
        usage.memory_max += int(status.get("VmHWM", "0 kB").split()[0]) * 1024
    return usage
