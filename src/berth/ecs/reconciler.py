"""The service reconciler: compares what each service wants with what runs, and acts.

For each ACTIVE or DRAINING service it reads the live tasks and those that stopped since the
last pass, updates the service's failure streak (throttle.py), asks `rollout.plan` (REPLICA) or
`daemon.plan` (DAEMON) what to start and stop, starts tasks through the same placement and
commit path as RunTask and StartTask unless the throttle or a failed deployment holds them
back, stops the others, moves the deployments on (deployments.py) and records ECS's events. It
runs on one replica at a time (see lease.py), in a worker thread.

Daemon services go first in every pass, and what their tasks still wait for on an instance is
held back from the replica services' placements there: ECS launches a daemon's task before
replica tasks and keeps pending replica tasks from taking its room.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..state.store import Store, VersionConflict
from . import daemon, rollout
from .clock import now
from .deployments import FAILED, after_pass
from .lookup import Row
from .placement import Requirements
from .placement_rules import constraint_spec, rules
from .schema import clusters, instances, service_throttle, services, tasks
from .service_tasks import ServiceTasks, Started, failure_message, task_list
from .services import MAX_EVENTS, event
from .snapshot import view_of
from .throttle import Backoff, Ended, Streak, observe, stable

if TYPE_CHECKING:
    from .service import EcsService

log = logging.getLogger(__name__)

STOPPED_RETENTION = 3600.0      # STOPPED tasks stay visible this long, as in ECS
PURGE_EVERY = 60.0
Reserved = dict[str, list[Requirements]]      # instance ARN -> daemon tasks waiting there


@dataclass
class _Pass:
    """What one pass over one service decided, for `_record`."""
    events: list[dict[str, Any]] = field(default_factory=list)
    steady: bool = False
    failure: str | None = None
    desired: int | None = None          # a daemon's, computed
    live_deployments: set[str | None] = field(default_factory=set)


class Reconciler:
    def __init__(self, ecs: EcsService) -> None:
        self.ecs = ecs
        self.store: Store = ecs.store
        self.tasks = ServiceTasks(ecs)
        s = ecs.settings
        self.backoff = Backoff(s.ecs_restart_delay, s.ecs_restart_delay_max)
        self.stable_after = s.ecs_task_stable_after
        self._last_purge = 0.0

    def run_once(self) -> None:
        with self.store.read() as conn:
            rows = list(conn.execute(sa.select(services).where(
                services.c.status.in_(("ACTIVE", "DRAINING")))))
        rows.sort(key=lambda r: r.scheduling_strategy != "DAEMON")      # daemons first
        reserved: dict[tuple[str, str], Reserved] = defaultdict(lambda: defaultdict(list))
        for row in rows:
            try:
                self.reconcile(row, reserved[(row.region, row.cluster)])
            except Exception:   # one broken service must not stop the others
                log.exception("reconciling %s failed", row.arn)
        if now() - self._last_purge > PURGE_EVERY:
            self._last_purge = now()
            self.purge_stopped()

    def reconcile(self, svc: Row, reserved: Reserved) -> None:
        """One pass over one service; `reserved` is its cluster's, shared by the pass."""
        at = now()
        with self.store.read() as conn:
            cluster_ok = conn.execute(sa.select(clusters.c.status).where(
                clusters.c.region == svc.region,
                clusters.c.name == svc.cluster)).scalar() == "ACTIVE"
            streak = Streak.of_row(conn.execute(sa.select(service_throttle.c.state).where(
                service_throttle.c.arn == svc.arn)).scalar())
            live = list(conn.execute(
                sa.select(tasks.c.arn, tasks.c.deployment_id, tasks.c.last_status,
                          tasks.c.desired_status, tasks.c.created_at, tasks.c.started_at,
                          tasks.c.instance_arn, instances.c.status.label("instance_status"))
                .join(instances, instances.c.arn == tasks.c.instance_arn)
                .where(*self._of(svc), tasks.c.last_status != "STOPPED")))
            ended = [Ended(r.deployment_id, r.stop_code, r.started_at, r.stopped_at)
                     for r in conn.execute(
                         sa.select(tasks.c.deployment_id, tasks.c.stop_code, tasks.c.started_at,
                                   tasks.c.stopped_at)
                         .where(*self._of(svc), tasks.c.last_status == "STOPPED",
                                tasks.c.stopped_at > streak.counted_until))]
        primary = svc.deployments[0] if svc.deployments else None
        active = svc.status == "ACTIVE" and cluster_ok
        running = [r for r in live if r.last_status == "RUNNING"
                   and r.deployment_id == (primary or {}).get("id")
                   and r.instance_status == "ACTIVE" and r.started_at is not None]
        loaded = streak
        streak = observe(streak, primary["id"] if primary else None, ended,
                         [r.started_at for r in running], at, self.stable_after, self.backoff)
        out = _Pass(live_deployments={r.deployment_id for r in live})
        # Starts wait while the throttle holds them back, and stop with a failed deployment.
        held = (primary is None or at < streak.retry_at
                or primary.get("rolloutState") == FAILED)
        if svc.scheduling_strategy == "DAEMON":
            steady = self._daemon(svc, primary, live, active, held, reserved, out)
        else:
            steady = self._replica(svc, primary, live, active, held, reserved, out)
        if self.backoff.delay(streak.failures) > 0 and not streak.impaired:
            streak = replace(streak, impaired=True)
            out.events.append(event(f"(service {svc.name}) is unable to consistently start "
                                    "tasks successfully."))
        desired = out.desired if out.desired is not None else svc.desired_count
        out.steady = steady and (not active or not desired or (
            streak.failures == 0 and stable([r.started_at for r in running], at,
                                             self.stable_after)))
        self._record(svc, out, loaded, streak, desired, at)

    @staticmethod
    def _of(svc: Row) -> tuple[Any, ...]:
        return (tasks.c.region == svc.region, tasks.c.cluster == svc.cluster,
                tasks.c.service_name == svc.name)

    # -- the two scheduling strategies ---------------------------------------------------------

    def _replica(self, svc: Row, primary: dict[str, Any] | None, live: list[Row],
                 active: bool, held: bool, reserved: Reserved, out: _Pass) -> bool:
        desired = svc.desired_count if active else 0
        running = [rollout.LiveTask(r.arn, r.deployment_id, r.last_status == "RUNNING",
                                    r.instance_status != "ACTIVE", r.created_at)
                   for r in live if r.desired_status == "RUNNING"]
        config = svc.deployment_config
        plan = rollout.plan(desired, config.get("minimumHealthyPercent", 100),
                            config.get("maximumPercent", 200),
                            primary["id"] if primary else "", running)
        self._stop(svc, plan.stop, primary, out)
        if plan.start and not held and primary is not None:
            found = self.tasks.spec(svc, primary)
            started = (Started(failures=[{"reason": "TaskDefinition not found."}])
                       if found is None else
                       self.tasks.start(svc, found[0], found[1], plan.start, reserved))
            self._started(svc, started, out)
        else:
            out.failure = svc.last_failure
        return plan.steady

    def _daemon(self, svc: Row, primary: dict[str, Any] | None, live: list[Row],
                active: bool, held: bool, reserved: Reserved, out: _Pass) -> bool:
        found = self.tasks.spec(svc, primary) if primary is not None else None
        constraints = found[1] if found is not None else svc.placement_constraints
        busy: dict[str, int] = {}
        with self.store.read() as conn:
            rows = list(conn.execute(sa.select(instances).where(
                instances.c.region == svc.region, instances.c.cluster == svc.cluster,
                instances.c.status.in_(("ACTIVE", "DRAINING")))))
            draining = {r.arn for r in rows if r.status == "DRAINING"}
            if draining:     # replica services' tasks there: the daemon's stops after them
                busy = dict(conn.execute(
                    sa.select(tasks.c.instance_arn, sa.func.count())
                    .join(services, sa.and_(services.c.region == tasks.c.region,
                                            services.c.cluster == tasks.c.cluster,
                                            services.c.name == tasks.c.service_name))
                    .where(tasks.c.instance_arn.in_(draining), tasks.c.last_status != "STOPPED",
                           services.c.scheduling_strategy == "REPLICA")
                    .group_by(tasks.c.instance_arn)).all())
        member_of = rules(constraint_spec(constraints)).member_of
        eligible = sorted(r.arn for r in rows if active and r.status == "ACTIVE"
                          and all(p(view_of(r)) for p in member_of))
        config = svc.deployment_config
        plan = daemon.plan(
            eligible, frozenset(draining), busy, primary["id"] if primary else "",
            config.get("minimumHealthyPercent", 0),
            [daemon.DaemonTask(r.arn, r.instance_arn, r.deployment_id,
                               r.last_status == "RUNNING", r.desired_status == "STOPPED",
                               r.created_at) for r in live])
        out.desired = plan.desired
        self._stop(svc, plan.stop, primary, out)
        if plan.start_on and not held and primary is not None:
            started = (Started(failures=[{"reason": "TaskDefinition not found."}])
                       if found is None else self.tasks.start_on(found[0], plan.start_on))
            self._started(svc, started, out)
            # What could not be placed waits for room that replica tasks must leave it.
            for f in started.failures:
                if f.get("arn") and found is not None:
                    reserved[f["arn"]].append(found[0].requirements)
        else:
            out.failure = svc.last_failure
        return plan.steady

    # -- acting and recording ------------------------------------------------------------------

    def _stop(self, svc: Row, arns_: list[str], primary: dict[str, Any] | None,
              out: _Pass) -> None:
        if arns_:
            self.tasks.stop(arns_, primary)
            out.events.append(event(f"(service {svc.name}) has stopped {len(arns_)} running "
                                    f"tasks: {task_list(arns_)}."))

    def _started(self, svc: Row, started: Started, out: _Pass) -> None:
        out.failure = svc.last_failure
        if started.tasks:
            out.failure = None
            out.events.append(event(f"(service {svc.name}) has started {len(started.tasks)} "
                                    f"tasks: {task_list([t['arn'] for t in started.tasks])}."))
        if started.failures:
            message = failure_message(svc.name, started.failures[0])
            if message != svc.last_failure:
                out.events.append(event(message))
            out.failure = message

    def _record(self, svc: Row, out: _Pass, loaded: Streak, streak: Streak, desired: int,
                at: float) -> None:
        config = svc.deployment_config
        moved = after_pass(svc.name, svc.deployments, streak,
                           config.get("deploymentCircuitBreaker") or {}, desired, out.steady,
                           bool(svc.steady), at)
        events = out.events + [event(m, at) for m in moved.messages]
        deployments = [d for i, d in enumerate(moved.deployments)
                       if i == 0 or d["id"] in out.live_deployments]
        values: dict[str, Any] = {}
        if deployments != svc.deployments:
            values["deployments"] = deployments
        if moved.task_definition and moved.task_definition != svc.task_definition:
            values["task_definition"] = moved.task_definition
        steady = out.steady and moved.task_definition is None
        if steady != svc.steady:
            values["steady"] = steady
        if out.failure != svc.last_failure:
            values["last_failure"] = out.failure
        if desired != svc.desired_count and svc.status == "ACTIVE":
            values["desired_count"] = desired
        if events:
            values["events"] = (list(reversed(events)) + list(svc.events))[:MAX_EVENTS]
        if svc.status == "DRAINING" and steady:
            values["status"] = "INACTIVE"
        if not values and moved.streak == loaded:
            return
        try:
            with self.store.write() as conn:
                if values:
                    Store.cas_update(conn, services, {"arn": svc.arn}, svc.version, values)
                if moved.streak != loaded:
                    _save_streak(conn, svc.arn, moved.streak.as_row())
        except VersionConflict:
            # UpdateService won the row; the next pass starts from its version.
            self.ecs.wakeups.reconciler()

    def purge_stopped(self) -> None:
        with self.store.write() as conn:
            conn.execute(tasks.delete().where(tasks.c.last_status == "STOPPED",
                                              tasks.c.stopped_at < now() - STOPPED_RETENTION))
            conn.execute(service_throttle.delete().where(service_throttle.c.arn.not_in(
                sa.select(services.c.arn).where(services.c.status != "INACTIVE"))))


def _save_streak(conn: sa.Connection, arn: str, state: dict[str, Any]) -> None:
    if conn.execute(service_throttle.update().where(service_throttle.c.arn == arn)
                    .values(state=state)).rowcount == 0:
        conn.execute(service_throttle.insert().values(arn=arn, state=state))
