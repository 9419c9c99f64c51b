"""Starting and stopping a service's tasks, for the reconciler: through the same placement and
compare-and-swap commit as RunTask (replica services) and StartTask (daemon services, whose
instances are chosen), and the same stop transition as StopTask.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import scheduling
from .lookup import Row, find_task_definition
from .placement import (
    NO_INSTANCES,
    REASON_CPU,
    REASON_MEMORY,
    REASON_PORTS,
    REASON_PORTS_UDP,
    Requirements,
)
from .placement_rules import PlacementError
from .schema import tasks
from .task_state import request_stop
from .taskdef_spec import needs

if TYPE_CHECKING:
    from .service import EcsService

_CLOSEST = {REASON_CPU: "has insufficient CPU units available",
            REASON_MEMORY: "has insufficient memory available",
            REASON_PORTS: "is already using a port required by your task",
            REASON_PORTS_UDP: "is already using a port required by your task"}


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def task_list(arns_: Sequence[str]) -> str:
    """ECS's way of naming tasks in an event: `(task a) (task b)`."""
    return " ".join(f"(task {_short(a)})" for a in arns_)


def failure_message(service: str, failure: dict[str, str]) -> str:
    head = (f"(service {service}) was unable to place a task because no container instance "
            "met all of its requirements.")
    reason = failure.get("reason", "")
    if reason == NO_INSTANCES:
        return f"{head} Reason: {NO_INSTANCES}"
    if failure.get("arn") and reason in _CLOSEST:
        return (f"{head} The closest matching (container-instance {_short(failure['arn'])}) "
                f"{_CLOSEST[reason]}. For more information, see the Troubleshooting section.")
    return f"{head} Reason: {reason}"


@dataclass
class Started:
    tasks: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


class ServiceTasks:
    def __init__(self, ecs: EcsService) -> None:
        self.ecs = ecs
        self.store = ecs.store

    def spec(self, svc: Row, deployment: dict[str, Any]
             ) -> tuple[scheduling.TaskSpec, list[dict[str, str]]] | None:
        """The deployment's tasks, and all their placement constraints (the service's and its
        task definition's); None when the task definition is gone."""
        with self.store.read() as conn:
            td = find_task_definition(conn, svc.region, deployment["taskDefinition"])
        if td is None:
            return None
        extra = svc.extra or {}
        spec = scheduling.TaskSpec(
            region=svc.region, account=svc.arn.split(":")[4], cluster=svc.cluster,
            task_definition_arn=td.arn, family=td.family,
            containers=td.body["containerDefinitions"], needs=needs(td.body, None),
            group=f"service:{svc.name}", launch_type=svc.launch_type,
            started_by=deployment["id"], service_name=svc.name,
            deployment_id=deployment["id"],
            tags=dict(svc.tags or {}) if extra.get("propagateTags") == "SERVICE"
            else dict(td.tags or {}) if extra.get("propagateTags") == "TASK_DEFINITION"
            else {})
        return spec, [*svc.placement_constraints, *(td.body.get("placementConstraints") or [])]

    def start(self, svc: Row, spec: scheduling.TaskSpec, constraints: list[dict[str, str]],
              count: int, reserved: Mapping[str, Sequence[Requirements]]) -> Started:
        """`count` tasks placed by the service's strategy and constraints, leaving alone what
        `reserved` holds back on each instance (daemon tasks still waiting for room)."""
        try:
            outcome = self.ecs.scheduler.run_tasks(spec, count, svc.placement_strategy,
                                                   constraints, reserved=reserved)
        except PlacementError as exc:
            return Started(failures=[{"reason": str(exc)}])
        self._woken(outcome.tasks)
        return Started(outcome.tasks, outcome.failures)

    def start_on(self, spec: scheduling.TaskSpec, instance_arns: list[str]) -> Started:
        """One task on each of these instances (a daemon's, which chose them)."""
        outcome = self.ecs.scheduler.start_tasks(spec, instance_arns)
        self._woken(outcome.tasks)
        return Started(outcome.tasks, outcome.failures)

    def _woken(self, placed: list[dict[str, Any]]) -> None:
        if placed:
            self.ecs.wakeups.instances({t["instance_arn"] for t in placed})

    def stop(self, arns_: list[str], primary: dict[str, Any] | None) -> None:
        reason = (f"Scaling activity initiated by (deployment {primary['id']})"
                  if primary else "Service deleted")
        touched = set()
        with self.store.write() as conn:
            for row in conn.execute(sa.select(tasks).where(tasks.c.arn.in_(arns_))):
                if request_stop(conn, row, reason, "ServiceSchedulerInitiated"):
                    touched.add(row.instance_arn)
        self.ecs.wakeups.instances(touched)
