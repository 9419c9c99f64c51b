"""Task operations: RunTask (berth places), StartTask (the caller places: custom schedulers),
StopTask, ListTasks, DescribeTasks."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read, quick_write
from ..api.errors import ServiceError
from ..state.store import Store
from . import client_tokens, errors, paging, scheduling, taskdef_spec
from .lookup import (
    Row,
    cluster_ref,
    find_task,
    find_task_definition,
    instance_arn_for,
    task_arn_for,
)
from .placement import NO_INSTANCES
from .placement_rules import PlacementError, validate
from .quick_lookup import TaskDefinitionCache, active_cluster
from .schema import tasks
from .tags import tag_map
from .task_state import request_stop
from .task_views import task_view
from .wakeups import Wakeups

MAX_COUNT = 10


def usable_task_definition(conn: sa.Connection, region: str, ident: str) -> Row:
    row = find_task_definition(conn, region, ident)
    if row is None:
        raise errors.client("TaskDefinition not found.")
    if row.status != "ACTIVE":
        raise errors.client("TaskDefinition is inactive")
    return row


def build_spec(ctx: RequestContext, cluster: Row, td: Row, req: dict[str, Any],
               group: str | None = None, **extra: Any) -> scheduling.TaskSpec:
    overrides = req.get("overrides") or {}
    taskdef_spec.check_overrides(td.body, overrides)
    launch_type = req.get("launchType") or "EC2"
    if launch_type not in ("EC2", "EXTERNAL"):
        raise errors.invalid(f"launchType {launch_type} is not supported: berth runs tasks on "
                             "registered container instances (EC2 or EXTERNAL).")
    tags = tag_map(req.get("tags"))
    if req.get("propagateTags") == "TASK_DEFINITION":
        tags = {**(td.tags or {}), **tags}
    started_by = req.get("startedBy")
    if started_by is not None and len(started_by) > 128:
        raise errors.invalid("startedBy can be at most 128 characters.")
    return scheduling.TaskSpec(
        region=ctx.region, account=ctx.account_id, cluster=cluster.name,
        task_definition_arn=td.arn, family=td.family,
        containers=td.body["containerDefinitions"],
        needs=taskdef_spec.needs(td.body, overrides),
        group=group or req.get("group") or f"family:{td.family}",
        launch_type=launch_type, overrides=overrides, started_by=started_by, tags=tags,
        **extra)


# ListTasks' optional filters: request parameter -> column; its statement for each combination
# is built once (see Store.rows).
_TASK_FILTERS = {"instance": tasks.c.instance_arn, "family": tasks.c.family,
                 "started_by": tasks.c.started_by, "service": tasks.c.service_name,
                 "launch_type": tasks.c.launch_type, "after": tasks.c.arn}


@lru_cache(maxsize=64)
def _list_tasks(*given: bool) -> sa.Select[Any]:
    q = sa.select(tasks.c.arn).where(
        tasks.c.region == sa.bindparam("region"), tasks.c.cluster == sa.bindparam("cluster"),
        tasks.c.desired_status == sa.bindparam("desired"))
    for (name, column), wanted in zip(_TASK_FILTERS.items(), given):
        if wanted:
            q = q.where(column > sa.bindparam(name) if name == "after"
                        else column == sa.bindparam(name))
    return q.order_by(tasks.c.arn).limit(sa.bindparam("limit"))


class Tasks:
    store: Store
    scheduler: scheduling.Scheduler
    task_definitions: TaskDefinitionCache
    wakeups: Wakeups

    @quick_write
    def run_task(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        count = req.get("count", 1)
        if not 1 <= count <= MAX_COUNT:
            raise errors.invalid(f"count must be between 1 and {MAX_COUNT}.")
        cluster = active_cluster(self.store, ctx.region, req.get("cluster"))
        claim = None
        if req.get("clientToken") is not None:
            found = client_tokens.begin(self.store, ctx.region, cluster.name,
                                        req["clientToken"], req, ctx.request_id)
            if isinstance(found, client_tokens.Earlier):
                return self._ran_before(ctx, cluster.name, found)
            claim = found
        td = self.task_definitions.usable(ctx.region, req["taskDefinition"])
        spec = build_spec(ctx, cluster, td, req, client_token=claim)
        strategies = req.get("placementStrategy") or []
        constraints = [*(req.get("placementConstraints") or []),
                       *(td.body.get("placementConstraints") or [])]
        try:
            validate(strategies, constraints)
            outcome = self.scheduler.run_tasks(spec, count, strategies, constraints)
        except PlacementError as exc:
            raise errors.invalid(str(exc)) from None
        except client_tokens.Taken:     # a request with the same token committed first
            found = client_tokens.begin(self.store, ctx.region, cluster.name,
                                        req["clientToken"], req, ctx.request_id)
            if not isinstance(found, client_tokens.Earlier):    # and its row is gone since
                raise ServiceError("ServerException", "The request raced another one with the "
                                   "same client token; retry it.") from None
            return self._ran_before(ctx, cluster.name, found)
        if not outcome.tasks and any(f["reason"] == NO_INSTANCES for f in outcome.failures):
            raise errors.invalid(NO_INSTANCES)
        if claim is not None and outcome.failures:
            client_tokens.finish(self.store, claim, outcome.failures)
        self._placed(outcome.tasks)
        return {"tasks": [task_view(t) for t in outcome.tasks], "failures": outcome.failures}

    def _ran_before(self, ctx: RequestContext, cluster: str,
                    earlier: client_tokens.Earlier) -> dict[str, Any]:
        """A retried RunTask's answer: the tasks the first request placed, as they are now."""
        tasks = self.describe_tasks(ctx, {"cluster": cluster, "tasks": earlier.task_arns,
                                          "include": ["TAGS"]})["tasks"] \
            if earlier.task_arns else []
        return {"tasks": tasks, "failures": earlier.failures}

    @quick_write
    def start_task(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        idents = req["containerInstances"]
        if not 1 <= len(idents) <= MAX_COUNT:
            raise errors.invalid(f"containerInstances must have between 1 and {MAX_COUNT} "
                                 "items.")
        cluster = active_cluster(self.store, ctx.region, req.get("cluster"))
        td = self.task_definitions.usable(ctx.region, req["taskDefinition"])
        spec = build_spec(ctx, cluster, td, req)
        targets = [instance_arn_for(ctx.region, cluster, i) for i in idents]
        outcome = self.scheduler.start_tasks(spec, targets)
        self._placed(outcome.tasks)
        return {"tasks": [task_view(t) for t in outcome.tasks], "failures": outcome.failures}

    def _placed(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.wakeups.instances({t["instance_arn"] for t in rows})

    def stop_task(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        reason = req.get("reason") or "Task stopped by user"
        if len(reason) > 255:
            raise errors.invalid("reason can be at most 255 characters.")
        with self.store.write() as conn:
            cluster = cluster_ref(conn, ctx.region, req.get("cluster"))
            row = find_task(conn, ctx.region, cluster, req["task"])
            if row is None:
                raise errors.invalid("The referenced task was not found.")
            request_stop(conn, row, reason, "UserInitiated")
            row = find_task(conn, ctx.region, cluster, row.arn)
        assert row is not None
        self.wakeups.instances([row.instance_arn])
        if row.service_name:
            self.wakeups.reconciler()
        return {"task": task_view(row._mapping)}

    @quick_read
    def list_tasks(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        limit = paging.limit(req)
        after = paging.decode(req.get("nextToken"))
        cluster = active_cluster(self.store, ctx.region, req.get("cluster"))
        params: dict[str, Any] = {
            "region": ctx.region, "cluster": cluster.name,
            "desired": req.get("desiredStatus", "RUNNING"), "after": after,
            "limit": limit + 1, "family": req.get("family"),
            "started_by": req.get("startedBy"), "launch_type": req.get("launchType")}
        if req.get("containerInstance"):
            params["instance"] = instance_arn_for(ctx.region, cluster, req["containerInstance"])
        if req.get("serviceName"):
            params["service"] = req["serviceName"].rsplit("/", 1)[-1]
        q = _list_tasks(*(k in params and params[k] is not None for k in _TASK_FILTERS))
        found = [arn for (arn,) in self.store.rows(q, params)]
        out: dict[str, Any] = {"taskArns": found[:limit]}
        if len(found) > limit:
            out["nextToken"] = paging.encode(found[limit - 1])
        return out

    @quick_read
    def describe_tasks(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        idents = req["tasks"]
        if len(idents) > 100:
            raise errors.invalid("tasks can have at most 100 items.")
        with_tags = "TAGS" in (req.get("include") or [])
        views, failures = [], []
        with self.store.read() as conn:
            cluster = cluster_ref(conn, ctx.region, req.get("cluster"))
            wanted = {task_arn_for(ctx.region, cluster, i): i for i in idents}
            # By primary key alone: with region and cluster in the WHERE clause too, SQLite
            # may pick the cluster index and scan every task of the cluster.
            rows = {r.arn: r for r in conn.execute(sa.select(tasks).where(
                tasks.c.arn.in_(list(wanted))))} if wanted else {}
        for arn in wanted:
            row = rows.get(arn)
            if row is None or row.region != ctx.region or row.cluster != cluster.name:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                views.append(task_view(row._mapping, with_tags))
        return {"tasks": views, "failures": failures}
