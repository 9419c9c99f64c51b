"""The service reconciler: compares what each service wants with what runs, and acts.

For each ACTIVE or DRAINING service it reads the live tasks, asks `rollout.plan` what to start
and stop, starts tasks through the same placement-and-commit path as RunTask, stops the others,
and records ECS's events. It runs on one replica at a time (see lease.py), in a worker thread.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..state.store import Store, VersionConflict
from . import rollout, scheduling
from .clock import now
from .lookup import Row, find_task_definition
from .placement import (
    NO_INSTANCES,
    REASON_CPU,
    REASON_MEMORY,
    REASON_PORTS,
    REASON_PORTS_UDP,
)
from .placement_rules import PlacementError
from .schema import clusters, instances, services, tasks
from .services import MAX_EVENTS, event
from .task_state import request_stop
from .taskdef_spec import needs

if TYPE_CHECKING:
    from .service import EcsService

log = logging.getLogger(__name__)

STOPPED_RETENTION = 3600.0      # STOPPED tasks stay visible this long, as in ECS
PURGE_EVERY = 60.0
_CLOSEST = {REASON_CPU: "has insufficient CPU units available",
            REASON_MEMORY: "has insufficient memory available",
            REASON_PORTS: "is already using a port required by your task",
            REASON_PORTS_UDP: "is already using a port required by your task"}


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


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


class Reconciler:
    def __init__(self, ecs: EcsService) -> None:
        self.ecs = ecs
        self.store: Store = ecs.store
        self._last_purge = 0.0

    def run_once(self) -> None:
        with self.store.read() as conn:
            rows = list(conn.execute(sa.select(services).where(
                services.c.status.in_(("ACTIVE", "DRAINING")))))
        for row in rows:
            try:
                self.reconcile(row)
            except Exception:   # one broken service must not stop the others
                log.exception("reconciling %s failed", row.arn)
        if now() - self._last_purge > PURGE_EVERY:
            self._last_purge = now()
            self.purge_stopped()

    def reconcile(self, svc: Row) -> None:
        with self.store.read() as conn:
            live_rows = list(conn.execute(
                sa.select(tasks.c.arn, tasks.c.deployment_id, tasks.c.last_status,
                          tasks.c.created_at, instances.c.status.label("instance_status"))
                .join(instances, instances.c.arn == tasks.c.instance_arn)
                .where(tasks.c.region == svc.region, tasks.c.cluster == svc.cluster,
                       tasks.c.service_name == svc.name, tasks.c.last_status != "STOPPED",
                       tasks.c.desired_status == "RUNNING")))
            cluster_ok = conn.execute(sa.select(clusters.c.status).where(
                clusters.c.region == svc.region,
                clusters.c.name == svc.cluster)).scalar() == "ACTIVE"
        primary = svc.deployments[0] if svc.deployments else None
        desired = svc.desired_count if svc.status == "ACTIVE" and cluster_ok else 0
        live = [rollout.LiveTask(r.arn, r.deployment_id, r.last_status == "RUNNING",
                                 r.instance_status != "ACTIVE", r.created_at)
                for r in live_rows]
        config = svc.deployment_config
        plan = rollout.plan(desired, config.get("minimumHealthyPercent", 100),
                            config.get("maximumPercent", 200),
                            primary["id"] if primary else "", live)
        events: list[dict[str, Any]] = []
        if plan.stop:
            self._stop(svc, plan.stop, primary)
            events.append(event(f"(service {svc.name}) has stopped {len(plan.stop)} running "
                                f"tasks: " + " ".join(f"(task {_short(a)})" for a in plan.stop)
                                + "."))
        failure: str | None = svc.last_failure
        if plan.start and primary is not None:
            started, failures = self._start(svc, primary, plan.start)
            if started:
                failure = None
                events.append(event(f"(service {svc.name}) has started {len(started)} tasks: "
                                    + " ".join(f"(task {_short(t['arn'])})" for t in started)
                                    + "."))
            if failures:
                message = failure_message(svc.name, failures[0])
                if message != svc.last_failure:
                    events.append(event(message))
                failure = message
        self._record(svc, plan, events, failure, {t.deployment_id for t in live})

    def _stop(self, svc: Row, arns_: list[str], primary: dict[str, Any] | None) -> None:
        reason = (f"Scaling activity initiated by (deployment {primary['id']})"
                  if primary else "Service deleted")
        touched = set()
        with self.store.write() as conn:
            for row in conn.execute(sa.select(tasks).where(tasks.c.arn.in_(arns_))):
                if request_stop(conn, row, reason, "ServiceSchedulerInitiated"):
                    touched.add(row.instance_arn)
        self.ecs.wakeups.instances(touched)

    def _start(self, svc: Row, deployment: dict[str, Any], count: int
               ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        with self.store.read() as conn:
            td = find_task_definition(conn, svc.region, deployment["taskDefinition"])
        if td is None:
            return [], [{"reason": "TaskDefinition not found."}]
        account = svc.arn.split(":")[4]
        extra = svc.extra or {}
        spec = scheduling.TaskSpec(
            region=svc.region, account=account, cluster=svc.cluster,
            task_definition_arn=td.arn, family=td.family,
            containers=td.body["containerDefinitions"], needs=needs(td.body, None),
            group=f"service:{svc.name}", launch_type=svc.launch_type,
            started_by=deployment["id"], service_name=svc.name,
            deployment_id=deployment["id"],
            tags=dict(svc.tags or {}) if extra.get("propagateTags") == "SERVICE"
            else dict(td.tags or {}) if extra.get("propagateTags") == "TASK_DEFINITION"
            else {})
        constraints = [*svc.placement_constraints, *(td.body.get("placementConstraints") or [])]
        try:
            outcome = self.ecs.scheduler.run_tasks(spec, count, svc.placement_strategy,
                                                   constraints)
        except PlacementError as exc:
            return [], [{"reason": str(exc)}]
        if outcome.tasks:
            self.ecs.wakeups.instances({t["instance_arn"] for t in outcome.tasks})
        return outcome.tasks, outcome.failures

    def _record(self, svc: Row, plan: rollout.Plan, events: list[dict[str, Any]],
                failure: str | None, live_deployments: set[str | None]) -> None:
        values: dict[str, Any] = {}
        deployments = [d for i, d in enumerate(svc.deployments)
                       if i == 0 or d["id"] in live_deployments]
        steady = plan.steady
        if steady and not svc.steady:
            at = now()
            if deployments and deployments[0].get("rolloutState") != "COMPLETED":
                deployments[0] = {**deployments[0], "rolloutState": "COMPLETED",
                                  "rolloutStateReason": "ECS deployment "
                                  f"{deployments[0]['id']} completed.", "updatedAt": at}
                events.append(event(f"(service {svc.name}) (deployment "
                                    f"{deployments[0]['id']}) deployment completed.", at))
            events.append(event(f"(service {svc.name}) has reached a steady state.", at))
        if deployments != svc.deployments:
            values["deployments"] = deployments
        if steady != svc.steady:
            values["steady"] = steady
        if failure != svc.last_failure:
            values["last_failure"] = failure
        if events:
            values["events"] = (list(reversed(events)) + list(svc.events))[:MAX_EVENTS]
        if svc.status == "DRAINING" and steady:
            values["status"] = "INACTIVE"
        if not values:
            return
        try:
            with self.store.write() as conn:
                Store.cas_update(conn, services, {"arn": svc.arn}, svc.version, values)
        except VersionConflict:
            # UpdateService won the row; the next pass starts from its version.
            self.ecs.wakeups.reconciler()

    def purge_stopped(self) -> None:
        with self.store.write() as conn:
            conn.execute(tasks.delete().where(tasks.c.last_status == "STOPPED",
                                              tasks.c.stopped_at < now() - STOPPED_RETENTION))
