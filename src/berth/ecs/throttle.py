"""ECS's service throttle logic and deployment circuit breaker, as pure functions of what a
service's tasks did.

A task of a service that stops on its own (stop code TaskFailedToStart or
EssentialContainerExited) before it has run `stable_after` seconds is a failure. Consecutive
failures of the primary deployment push the next start back, more each time, up to 15 minutes
(`Backoff`), and the service reports that it "is unable to consistently start tasks
successfully". A task of the deployment that stays RUNNING `stable_after` seconds after the
last failure ends the streak; a new deployment starts without one. The streak is also the
deployment's `failedTasks`, which trips the circuit breaker at ECS's threshold.

The reconciler keeps a `Streak` per service in the store (`ecs_service_throttle`) and calls
`observe` on every pass.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

FAILURE_CODES = ("TaskFailedToStart", "EssentialContainerExited")
BREAKER_MIN, BREAKER_MAX = 3, 200


@dataclass(frozen=True)
class Backoff:
    """The wait before the next start after `failures` consecutive failures: the first is
    replaced at once, then the wait doubles from `base` up to `cap` (ECS: 15 minutes)."""
    base: float = 10.0
    cap: float = 900.0

    def delay(self, failures: int) -> float:
        if failures < 2:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(failures - 2, 64))


@dataclass(frozen=True)
class Ended:
    """A task of the service that reached STOPPED."""
    deployment_id: str | None
    stop_code: str | None
    started_at: float | None
    stopped_at: float


@dataclass(frozen=True)
class Streak:
    """What the reconciler remembers about a service between passes."""
    deployment_id: str | None = None    # the primary deployment the counts below belong to
    failures: int = 0                   # consecutive failures (failedTasks)
    total: int = 0                      # failures of this deployment since it began
    last_failure_at: float = 0.0
    retry_at: float = 0.0               # no task starts before this
    impaired: bool = False              # "unable to consistently start" said this streak
    counted_until: float = 0.0          # tasks that stopped up to here are counted
    stable: dict[str, Any] | None = None   # the last COMPLETED deployment {id, taskDefinition}

    def as_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of_row(cls, row: dict[str, Any] | None) -> "Streak":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (row or {}).items() if k in known})


def observe(streak: Streak, primary: str | None, ended: list[Ended],
            running_since: list[float], now: float, stable_after: float,
            backoff: Backoff) -> Streak:
    """The streak after this pass: `ended` are the service's tasks that stopped (any since the
    last pass will do), `running_since` when the primary deployment's RUNNING tasks started."""
    s = streak
    if s.deployment_id != primary:
        s = replace(s, deployment_id=primary, failures=0, total=0, last_failure_at=0.0,
                    retry_at=0.0, impaired=False)
    for t in sorted(ended, key=lambda t: t.stopped_at):
        if t.stopped_at <= s.counted_until:
            continue
        s = replace(s, counted_until=t.stopped_at)
        if t.stop_code not in FAILURE_CODES or t.deployment_id != primary:
            continue
        ran = t.stopped_at - t.started_at if t.started_at is not None else 0.0
        failures = 1 if ran >= stable_after else s.failures + 1     # it had started fine
        s = replace(s, failures=failures, total=s.total + 1, last_failure_at=t.stopped_at,
                    retry_at=t.stopped_at + backoff.delay(failures))
    # A task started since the last failure that has stayed up ends the streak.
    if s.failures and any(s.last_failure_at <= at <= now - stable_after for at in running_since):
        s = replace(s, failures=0, retry_at=0.0, impaired=False)
    return s


def stable(running_since: list[float], now: float, stable_after: float) -> bool:
    """Whether every one of these RUNNING tasks has stayed up long enough to count."""
    return all(at <= now - stable_after for at in running_since)


def breaker_threshold(desired: int) -> int:
    """Failed tasks that fail a deployment: half the desired count, rounded up, within 3..200."""
    return min(BREAKER_MAX, max(BREAKER_MIN, math.ceil(desired * 0.5)))
