"""The resources an offer holds and a task takes, in ECS's units: CPU units (1024 a core),
memory in MiB, and a set of host ports. Mesos speaks of `cpus` (cores, fractional), `mem`
(MB) and `ports` (ranges); this module converts between the two."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .messages import Message, ranges, scalar

CPU_UNITS = 1024


class InvalidResources(ValueError):
    """A TaskInfo's resources that this driver cannot express on ECS."""


@dataclass(frozen=True)
class Resources:
    cpu: int = 0                                # CPU units
    memory: int = 0                             # MiB
    ports: frozenset[int] = frozenset()         # host ports (TCP)

    def contains(self, other: Resources) -> bool:
        return (other.cpu <= self.cpu and other.memory <= self.memory
                and other.ports <= self.ports)

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory,
                         self.ports | other.ports)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu - other.cpu, self.memory - other.memory,
                         self.ports - other.ports)

    def empty(self) -> bool:
        return self.cpu <= 0 and self.memory <= 0 and not self.ports

    def as_mesos(self) -> list[Message]:
        out = [scalar("cpus", self.cpu / CPU_UNITS), scalar("mem", float(self.memory))]
        if self.ports:
            out.append(ranges("ports", spans(self.ports)))
        return out


def spans(ports: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted ports as the fewest inclusive (begin, end) ranges."""
    if isinstance(ports, frozenset):
        return list(_frozen_spans(ports))
    return list(_spans(ports))


@lru_cache(maxsize=256)
def _frozen_spans(ports: frozenset[int]) -> tuple[tuple[int, int], ...]:
    # Instances mostly share one set of free ports (Instance reuses it): a frozenset keeps its
    # hash, so this costs one lookup per offer instead of a sort of a thousand ports.
    return _spans(ports)


def _spans(ports: Iterable[int]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for p in sorted(ports):
        if out and p == out[-1][1] + 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return tuple(out)


def _range_ports(resource: Mapping[str, Any]) -> set[int]:
    out: set[int] = set()
    for span in (resource.get("ranges") or {}).get("range") or []:
        begin, end = int(span["begin"]), int(span.get("end", span["begin"]))
        if not 0 < begin <= end < 65536:
            raise InvalidResources(f"port range {begin}-{end} is not within 1-65535")
        out.update(range(begin, end + 1))
    return out


def from_mesos(resources: Iterable[Mapping[str, Any]]) -> Resources:
    """A TaskInfo's resources in ECS units. `cpus` rounds to the nearest CPU unit, `mem` up to
    the next MiB; `disk` is not claimed on ECS and passes; anything else cannot be honoured."""
    cpus = mem = 0.0
    ports: set[int] = set()
    for r in resources:
        name = r.get("name")
        if name in ("cpus", "mem", "disk"):
            if r.get("type", "SCALAR") != "SCALAR":
                raise InvalidResources(f"resource {name} must be SCALAR")
            value = float((r.get("scalar") or {}).get("value", 0.0))
            if value < 0 or value != value:
                raise InvalidResources(f"resource {name} must be a non-negative number")
            if name == "cpus":
                cpus += value
            elif name == "mem":
                mem += value
        elif name == "ports":
            ports |= _range_ports(r)
        else:
            raise InvalidResources(f"resource {name!r} is not offered on ECS "
                                   "(cpus, mem, ports and disk are)")
    return Resources(round(cpus * CPU_UNITS), int(-(-mem // 1)), frozenset(ports))
