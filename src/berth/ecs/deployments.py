"""How a service's deployments move after a reconciler pass, as a pure function: completed
when the service is steady, failed (and rolled back) by the deployment circuit breaker.

ECS's rules: the primary deployment is COMPLETED once the service reaches a steady state (its
tasks have stayed up, see throttle.py). With `deploymentCircuitBreaker.enable`, a deployment
still IN_PROGRESS whose failed tasks reach the threshold is FAILED and launches no more tasks;
with `rollback` the last COMPLETED deployment becomes the primary again, IN_PROGRESS, and the
service runs its task definition. Without such a deployment the failed one stays, stalled.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .throttle import Streak, breaker_threshold

IN_PROGRESS, COMPLETED, FAILED = "IN_PROGRESS", "COMPLETED", "FAILED"
BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."


@dataclass
class Outcome:
    deployments: list[dict[str, Any]]
    streak: Streak
    messages: list[str] = field(default_factory=list)   # service events, in order
    task_definition: str | None = None                  # the service's, after a rollback


def after_pass(name: str, deployments: list[dict[str, Any]], streak: Streak,
               breaker: dict[str, Any], desired: int, steady: bool, was_steady: bool,
               now: float) -> Outcome:
    out = Outcome([dict(d) for d in deployments], streak)
    if not out.deployments:
        return out
    primary = out.deployments[0]
    failed = streak.failures if breaker.get("resetOnHealthyTask", True) else streak.total
    if primary.get("rolloutState") == IN_PROGRESS and primary.get("failedTasks") != failed:
        primary.update(failedTasks=failed, updatedAt=now)
    if (breaker.get("enable") and primary.get("rolloutState") == IN_PROGRESS
            and failed >= breaker_threshold(desired)):
        _fail(out, name, breaker, desired, now)
    elif steady and not was_steady:
        if primary.get("rolloutState") == IN_PROGRESS:
            primary.update(rolloutState=COMPLETED, updatedAt=now,
                           rolloutStateReason=f"ECS deployment {primary['id']} completed.")
            out.messages.append(f"(service {name}) (deployment {primary['id']}) deployment "
                                "completed.")
            out.streak = replace(out.streak, stable=dict(primary))
        out.messages.append(f"(service {name}) has reached a steady state.")
    return out


def _fail(out: Outcome, name: str, breaker: dict[str, Any], desired: int, now: float) -> None:
    primary = out.deployments[0]
    primary.update(rolloutState=FAILED, rolloutStateReason=BREAKER_REASON, updatedAt=now)
    out.messages.append(f"(service {name}) (deployment {primary['id']}) deployment failed: "
                        "tasks failed to start.")
    target = out.streak.stable
    if not breaker.get("rollback") or target is None or target["id"] == primary["id"]:
        return      # stalled: the failed deployment stays primary and starts nothing
    primary["status"] = "ACTIVE"
    back = {**target, "status": "PRIMARY", "desiredCount": desired, "failedTasks": 0,
            "rolloutState": IN_PROGRESS, "rolloutStateReason": "ECS deployment in progress.",
            "updatedAt": now}
    out.deployments = [back, *(d for d in out.deployments if d["id"] != target["id"])]
    out.task_definition = target["taskDefinition"]
    out.messages.append(f"(service {name}) rolling back to deployment {target['id']}.")
