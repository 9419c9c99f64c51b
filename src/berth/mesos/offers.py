"""Offers from container instances: what an instance has left (DescribeContainerInstances'
`remainingResources`) becomes one Mesos offer for its agent.

An instance is offered while it is ACTIVE and its agent connected. `cpus` is its remaining CPU
units / 1024, `mem` its remaining MiB, `ports` the host ports of the driver's port range that
no task holds and the instance does not reserve. ECS names the taken ports, not the free ones:
its remaining PORTS set lists reserved and claimed ports."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .messages import Message, built, ident, text_attribute
from .resources import Resources

# Mesos agents offer 31000-32000 unless told otherwise; berth's agents pick dynamic host
# ports from 49153-65535 on their own, so offering those could collide with them.
DEFAULT_PORT_RANGE = (31000, 32000)


@dataclass(frozen=True)
class Instance:
    """One container instance as the driver last read it."""
    arn: str
    hostname: str
    active: bool            # status ACTIVE (not DRAINING)
    connected: bool         # agentConnected
    remaining: Resources
    attributes: tuple[tuple[str, str], ...]

    @property
    def offerable(self) -> bool:
        return self.active and self.connected and not self.remaining.empty()


def _value(items: list[Mapping[str, Any]], name: str) -> Any:
    for r in items:
        if r.get("name") == name:
            if r.get("type") == "STRINGSET":
                return r.get("stringSetValue") or []
            return r.get("integerValue") or r.get("longValue") or 0
    return [] if name.startswith("PORTS") else 0


def instance(desc: Mapping[str, Any], port_range: tuple[int, int] = DEFAULT_PORT_RANGE
             ) -> Instance:
    """An Instance from one element of DescribeContainerInstances' `containerInstances`."""
    remaining = desc.get("remainingResources") or []
    low, high = port_range
    taken = frozenset(p for p in map(int, _value(remaining, "PORTS")) if low <= p <= high)
    free = _free_ports(low, high, taken)
    attrs = tuple(sorted((a["name"], a.get("value") or "")
                         for a in desc.get("attributes") or []))
    return Instance(
        arn=desc["containerInstanceArn"],
        hostname=desc.get("ec2InstanceId") or desc["containerInstanceArn"].rsplit("/", 1)[-1],
        active=desc.get("status") == "ACTIVE", connected=bool(desc.get("agentConnected")),
        remaining=Resources(int(_value(remaining, "CPU")), int(_value(remaining, "MEMORY")),
                            free),
        attributes=attrs)


@lru_cache(maxsize=256)
def _free_ports(low: int, high: int, taken: frozenset[int]) -> frozenset[int]:
    """One shared set for every instance with the same ports taken in the range."""
    return frozenset(range(low, high + 1)) - taken


def offer(inst: Instance, offer_id: str, framework_id: str, resources: Resources) -> Message:
    """The Mesos Offer for `resources` of `inst` (agent id = the container instance ARN)."""
    return built(
        id=ident(offer_id), framework_id=ident(framework_id), agent_id=ident(inst.arn),
        slave_id=ident(inst.arn), hostname=inst.hostname, resources=resources.as_mesos(),
        attributes=[text_attribute(k, v) for k, v in inst.attributes])
