"""What a service should do next, as a pure function of what it wants and what runs.

A task counts as *good* if it belongs to the primary deployment and sits on an ACTIVE instance;
every other live task (an older deployment's, or one on a DRAINING instance) is to be replaced.
Within `maximumPercent` of desiredCount running at once, start good tasks; while at least
`minimumHealthyPercent` stay RUNNING, stop the others. Tasks not yet RUNNING are not healthy,
so they can always be stopped, and are stopped first when scaling in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LiveTask:
    arn: str
    deployment_id: str | None
    running: bool            # lastStatus RUNNING (healthy)
    on_draining: bool        # its instance is DRAINING
    created_at: float


@dataclass
class Plan:
    start: int = 0
    stop: list[str] = field(default_factory=list)
    steady: bool = False


def plan(desired: int, min_percent: int, max_percent: int, primary: str,
         live: list[LiveTask]) -> Plan:
    good = [t for t in live if t.deployment_id == primary and not t.on_draining]
    bad = [t for t in live if t.deployment_id != primary or t.on_draining]
    out = Plan()
    max_total = max(math.floor(desired * max_percent / 100), desired if desired else 0)
    if max_percent < 100 and desired:
        # ECS refuses such settings for replica services; still never deadlock on them.
        max_total = max(math.floor(desired * max_percent / 100), 1)
    min_healthy = math.ceil(desired * min_percent / 100)

    # Scale in: surplus good tasks go, those not yet running first, then the newest.
    surplus = len(good) - desired
    if surplus > 0:
        order = sorted(good, key=lambda t: (t.running, -t.created_at))
        out.stop.extend(t.arn for t in order[:surplus])
        good = [t for t in good if t.arn not in set(out.stop)]

    # Tasks to replace that are not healthy can go at once.
    for t in bad:
        if not t.running:
            out.stop.append(t.arn)
    bad_running = sorted((t for t in bad if t.running), key=lambda t: t.created_at)

    # Start within maximumPercent.
    remaining = len(good) + len(bad_running)
    room = max_total - remaining
    out.start = max(0, min(desired - len(good), room))

    # Stop replaced tasks while minimumHealthyPercent of RUNNING tasks remains.
    healthy = sum(1 for t in good if t.running) + len(bad_running)
    allowance = healthy - min_healthy
    if desired == 0:
        allowance = len(bad_running)
    for t in bad_running[:max(0, allowance)]:
        out.stop.append(t.arn)

    out.steady = (not bad and len(good) == desired and all(t.running for t in good)
                  and out.start == 0 and not out.stop)
    return out
