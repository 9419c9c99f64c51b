"""Task scale-in protection: UpdateTaskProtection and GetTaskProtection.

Protection is kept per task with its expiry, as ECS keeps it; only a service's tasks can be
protected (a standalone task is a TASK_NOT_VALID failure, as in ECS). berth's service
reconciler does not consult it yet when it scales in.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..state.store import Store
from . import errors
from .lookup import cluster_ref, task_arn_for
from .schema import task_protection, tasks

DEFAULT_MINUTES, MAX_MINUTES = 120, 2880
MAX_TASKS = 10
_p = task_protection


def _protected(arn: str, expires_at: float | None, now: float) -> dict[str, Any]:
    if expires_at is None or expires_at <= now:
        return {"taskArn": arn, "protectionEnabled": False}
    return {"taskArn": arn, "protectionEnabled": True,
            "expirationDate": dt.datetime.fromtimestamp(expires_at, dt.timezone.utc)}


class TaskProtection:
    store: Store

    def update_task_protection(self, ctx: RequestContext, req: dict[str, Any]
                               ) -> dict[str, Any]:
        enabled = req["protectionEnabled"]
        minutes = req.get("expiresInMinutes", DEFAULT_MINUTES)
        if enabled and not 1 <= minutes <= MAX_MINUTES:
            raise errors.invalid(f"expiresInMinutes must be between 1 and {MAX_MINUTES}.")
        now = time.time()
        expires = now + minutes * 60 if enabled else None
        with self.store.write() as conn:
            found, failures = self._tasks(conn, ctx, req)
            arns = [arn for arn, row in found.items() if row.service_name]
            failures += [{"arn": arn, "reason": "TASK_NOT_VALID",
                          "detail": "The task is not part of a service."}
                         for arn, row in found.items() if not row.service_name]
            if arns:
                conn.execute(_p.delete().where(_p.c.arn.in_(arns)))
                if expires is not None:
                    conn.execute(_p.insert(), [{"arn": a, "expires_at": expires}
                                               for a in arns])
        return {"protectedTasks": [_protected(a, expires, now) for a in arns],
                "failures": failures}

    @quick_read
    def get_task_protection(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        with self.store.read() as conn:
            found, failures = self._tasks(conn, ctx, req)
            expiry = dict(conn.execute(sa.select(_p.c.arn, _p.c.expires_at).where(
                _p.c.arn.in_(list(found)))).tuples().all()) if found else {}
        return {"protectedTasks": [_protected(a, expiry.get(a), now) for a in found],
                "failures": failures}

    def _tasks(self, conn: sa.Connection, ctx: RequestContext, req: dict[str, Any]
               ) -> tuple[dict[str, Any], list[dict[str, str]]]:
        """The live tasks a request names, by ARN, and failures for the others."""
        idents = req.get("tasks") or []
        if len(idents) > MAX_TASKS:
            raise errors.invalid(f"tasks can have at most {MAX_TASKS} items.")
        cluster = cluster_ref(conn, ctx.region, req["cluster"])
        wanted = [task_arn_for(ctx.region, cluster, i) for i in idents]
        rows = {r.arn: r for r in conn.execute(sa.select(
            tasks.c.arn, tasks.c.region, tasks.c.cluster, tasks.c.service_name,
            tasks.c.last_status).where(tasks.c.arn.in_(wanted)))} if wanted else {}
        found, failures = {}, []
        for arn in wanted:
            row = rows.get(arn)
            if row is None or row.region != ctx.region or row.cluster != cluster.name \
                    or row.last_status == "STOPPED":
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found[arn] = row
        return found, failures
