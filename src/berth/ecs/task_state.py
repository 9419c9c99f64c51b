"""Task lifecycle transitions on the store, inside the caller's write transaction.

A task moves only forward (PROVISIONING → PENDING → ACTIVATING → RUNNING → DEACTIVATING →
STOPPING → DEPROVISIONING → STOPPED). The one step to STOPPED gives the task's CPU, memory and
ports back to its instance; a guarded UPDATE makes that step happen exactly once even when the
agent, StopTask and the failure detector race for it.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..state.store import Store
from .clock import now
from .lookup import Row
from .schema import instances, tasks

log = logging.getLogger(__name__)

ORDER = {s: i for i, s in enumerate(("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING",
                                     "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"))}
NOT_STARTED = ("PROVISIONING",)   # never handed to an agent: nothing runs yet
# ECS's stop codes for a task that stopped on its own (no StopTask, no scheduler): its
# containers never all started (the reason names the error that kept them from it), or an
# essential container exited.
FAILED_TO_START = "TaskFailedToStart"
ESSENTIAL_EXITED = "EssentialContainerExited"
START_ERRORS = ("CannotPullContainerError", "CannotCreateContainerError",
                "CannotStartContainerError", "ResourceInitializationError")


def own_stop_code(reason: str | None) -> str:
    """The stop code of a task that stopped by itself, from the reason its agent gave."""
    error = (reason or "").split(":", 1)[0].strip()
    return FAILED_TO_START if error in START_ERRORS else ESSENTIAL_EXITED


def release(conn: Connection, instance_arn: str, cpu: int, memory: int,
            ports: Iterable[int], group: str) -> None:
    """Give one stopped task's claims back to its instance."""
    row = conn.execute(sa.select(instances.c.remaining_cpu, instances.c.remaining_memory,
                                 instances.c.used_ports, instances.c.task_groups,
                                 instances.c.task_count)
                       .where(instances.c.arn == instance_arn).with_for_update()).first()
    if row is None:
        return
    used = Counter(row.used_ports)
    used.subtract(ports)
    groups = dict(row.task_groups)
    if groups.get(group, 0) > 1:
        groups[group] -= 1
    else:
        groups.pop(group, None)
    Store.bump(conn, instances, {"arn": instance_arn}, {
        "remaining_cpu": row.remaining_cpu + cpu,
        "remaining_memory": row.remaining_memory + memory,
        "used_ports": sorted(p for p, n in used.items() for _ in range(max(n, 0))),
        "task_groups": groups, "task_count": max(row.task_count - 1, 0)})


def _lock_instance(conn: Connection, instance_arn: str) -> None:
    conn.execute(sa.select(instances.c.arn).where(instances.c.arn == instance_arn)
                 .with_for_update())


def _stopped_containers(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**c, "lastStatus": "STOPPED"} for c in containers]


def finish(conn: Connection, row: Row, reason: str | None, stop_code: str | None,
           containers: list[dict[str, Any]] | None = None,
           extra: dict[str, Any] | None = None) -> bool:
    """Move a task to STOPPED and release its claims; False if it already was STOPPED."""
    # Lock order everywhere: the instance row, then its task rows (as the scheduler's commit
    # does), so two transactions stopping tasks on one host cannot deadlock on PostgreSQL.
    _lock_instance(conn, row.instance_arn)
    at = now()
    values: dict[str, Any] = {
        "last_status": "STOPPED", "desired_status": "STOPPED", "stopped_at": at,
        "stopping_at": row.stopping_at or at,
        "execution_stopped_at": row.execution_stopped_at or at,
        "stopped_reason": row.stopped_reason or reason,
        "stop_code": row.stop_code or stop_code,
        "containers": _stopped_containers(containers if containers is not None
                                          else row.containers),
        "version": tasks.c.version + 1, **(extra or {})}
    result = conn.execute(tasks.update().where(tasks.c.arn == row.arn,
                                               tasks.c.last_status != "STOPPED")
                          .values(**values))
    if result.rowcount != 1:
        return False
    release(conn, row.instance_arn, row.cpu, row.memory, row.ports, row.group)
    return True


def request_stop(conn: Connection, row: Row, reason: str, stop_code: str) -> bool:
    """StopTask's transition: a task no agent has picked up stops at once; one an agent runs
    goes to STOPPING with desiredStatus STOPPED, and the agent reports STOPPED when it is."""
    if row.last_status == "STOPPED":
        return False
    if row.last_status in NOT_STARTED:
        return finish(conn, row, reason, stop_code)
    if row.desired_status == "STOPPED":
        return False
    status = row.last_status if ORDER[row.last_status] > ORDER["STOPPING"] else "STOPPING"
    conn.execute(tasks.update().where(tasks.c.arn == row.arn,
                                      tasks.c.last_status != "STOPPED").values(
        desired_status="STOPPED", last_status=status, stopping_at=now(),
        stopped_reason=reason, stop_code=stop_code, version=tasks.c.version + 1))
    return True


def live_tasks_on(conn: Connection, instance_arn: str) -> list[Row]:
    return list(conn.execute(sa.select(tasks).where(tasks.c.instance_arn == instance_arn,
                                                    tasks.c.last_status != "STOPPED")))


def finish_all_on(conn: Connection, instance_arn: str, reason: str, stop_code: str
                  ) -> list[Row]:
    """Stop every live task of an instance (deregistered with force, or agent lost)."""
    stopped = []
    _lock_instance(conn, instance_arn)
    for row in live_tasks_on(conn, instance_arn):
        if finish(conn, row, reason, stop_code):
            stopped.append(row)
    return stopped


def advance(conn: Connection, row: Row, status: str, reason: str | None,
            containers: list[dict[str, Any]] | None, times: dict[str, float | None]) -> bool:
    """Apply an agent's report; a report that would move the task backwards is ignored."""
    if status not in ORDER or row.last_status == "STOPPED":
        return False
    if status == "STOPPED":
        code = own_stop_code(reason) if row.desired_status != "STOPPED" else None
        default_reason = ("Essential container in task exited"
                          if row.desired_status != "STOPPED" else None)
        return finish(conn, row, reason or default_reason, code, containers,
                      {k: v for k, v in times.items() if v is not None})
    values: dict[str, Any] = {k: v for k, v in times.items() if v is not None}
    if containers is not None:
        values["containers"] = containers
    if ORDER[status] > ORDER[row.last_status]:
        values["last_status"] = status
        if status == "RUNNING" and row.started_at is None:
            values["started_at"] = now()
    if reason and row.stopped_reason is None and ORDER[status] >= ORDER["STOPPING"]:
        values["stopped_reason"] = reason
    if not values:
        return False
    conn.execute(tasks.update().where(tasks.c.arn == row.arn,
                                      tasks.c.last_status != "STOPPED")
                 .values(version=tasks.c.version + 1, **values))
    return True
