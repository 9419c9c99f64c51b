"""What a DAEMON service should do next, as a pure function of its instances and tasks.

ECS's daemon scheduling strategy: exactly one task on each ACTIVE container instance that meets
the service's placement constraints. The scheduler follows instances as they join (a task is
started there), turn DRAINING (its task stops, but only after the replica services' tasks there
have gone: the daemon is the last to stop) or stop meeting the constraints (its task stops). A
new deployment replaces tasks instance by instance: maximumPercent is 100, so a new task starts
only once the old one there has stopped, and minimumHealthyPercent (0 by default) bounds how
many run down at once. A daemon's placements come before replica services' in every pass, and
replicas do not take what a daemon still waits for (see reconciler.py).
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DaemonTask:
    arn: str
    instance_arn: str
    deployment_id: str | None
    running: bool            # lastStatus RUNNING
    stopping: bool           # desiredStatus STOPPED already; it holds its slot until STOPPED
    created_at: float


@dataclass
class DaemonPlan:
    start_on: list[str] = field(default_factory=list)     # instances that get a new task
    stop: list[str] = field(default_factory=list)         # task ARNs
    desired: int = 0
    steady: bool = False


def plan(eligible: Sequence[str], draining: frozenset[str], busy: Mapping[str, int],
         primary: str, min_percent: int, live: Sequence[DaemonTask]) -> DaemonPlan:
    """`eligible`: the ACTIVE instances that meet the constraints; `draining`: DRAINING
    instances; `busy`: live replica-service tasks per instance; `live`: the service's tasks
    that are not STOPPED."""
    wanted = set(eligible)
    by_instance: dict[str, list[DaemonTask]] = defaultdict(list)
    for t in live:
        by_instance[t.instance_arn].append(t)
    out = DaemonPlan(desired=len(eligible))

    for inst, found in by_instance.items():
        if inst in wanted or (inst in draining and busy.get(inst, 0)):
            continue        # its place, or a draining instance it leaves last
        out.stop.extend(t.arn for t in found if not t.stopping)

    old: list[DaemonTask] = []
    healthy = 0
    settled = 0
    for inst in eligible:
        found = [t for t in by_instance.get(inst, []) if not t.stopping]
        good = sorted((t for t in found if t.deployment_id == primary),
                      key=lambda t: (not t.running, t.created_at))
        old.extend(t for t in found if t.deployment_id != primary)
        if good:
            healthy += good[0].running
            out.stop.extend(t.arn for t in good[1:])        # one task per instance
            if good[0].running and len(found) == 1 and len(by_instance[inst]) == 1:
                settled += 1
        elif not by_instance.get(inst):
            out.start_on.append(inst)

    # The old deployment's tasks go within minimumHealthyPercent of the instances; those not
    # running yet are not healthy and go at once. Their replacements start once they are gone.
    running_old = sorted((t for t in old if t.running), key=lambda t: t.created_at)
    out.stop.extend(t.arn for t in old if not t.running)
    allowance = healthy + len(running_old) - math.ceil(len(eligible) * min_percent / 100)
    out.stop.extend(t.arn for t in running_old[:max(0, allowance)])

    out.steady = (not out.stop and not out.start_on and settled == len(eligible)
                  and all(inst in wanted for inst in by_instance))
    return out
