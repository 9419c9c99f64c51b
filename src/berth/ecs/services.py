"""Service operations: create, update (scale, roll a new task definition), delete, describe,
list. Keeping desiredCount running is the reconciler's job; these only record what is wanted."""
from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..api.app import RequestContext, quick_read
from ..state.store import Store, VersionConflict
from . import arns, errors, paging
from .clock import now
from .lookup import Row, cluster_ref, find_service, get_cluster, service_arn_for
from .placement_rules import PlacementError, validate
from .quick_lookup import active_cluster
from .schema import services, tasks
from .tags import tag_list, tag_map
from .tasks import usable_task_definition
from .wakeups import Wakeups

ECHOED = ("loadBalancers", "serviceRegistries", "networkConfiguration",
          "healthCheckGracePeriodSeconds", "role", "platformVersion", "propagateTags",
          "enableECSManagedTags", "enableExecuteCommand", "serviceConnectConfiguration",
          "capacityProviderStrategy", "availabilityZoneRebalancing")
MAX_UPDATE_ATTEMPTS = 20
MAX_EVENTS = 100


def new_deployment(task_definition: str, desired: int, launch_type: str, at: float
                   ) -> dict[str, Any]:
    return {"id": arns.new_deployment_id(), "status": "PRIMARY",
            "taskDefinition": task_definition, "desiredCount": desired, "failedTasks": 0,
            "createdAt": at, "updatedAt": at, "launchType": launch_type,
            "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": "ECS deployment in progress."}


def event(message: str, at: float | None = None) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "createdAt": at or now(), "message": message}


# ECS's defaults per scheduling strategy: a daemon runs one task per instance, so it never runs
# more (maximumPercent 100) and by default replaces its tasks all at once.
_DEFAULT_PERCENTS = {"REPLICA": (200, 100), "DAEMON": (100, 0)}


def _deployment_config(given: dict[str, Any] | None, current: dict[str, Any] | None,
                       strategy: str) -> dict[str, Any]:
    maximum, minimum = _DEFAULT_PERCENTS[strategy]
    out = {"maximumPercent": maximum, "minimumHealthyPercent": minimum,
           "deploymentCircuitBreaker": {"enable": False, "rollback": False},
           **(current or {}), **(given or {})}
    if not 0 <= out["minimumHealthyPercent"] <= 100:
        raise errors.invalid("minimumHealthyPercent must be between 0 and 100.")
    if strategy == "DAEMON" and out["maximumPercent"] != 100:
        raise errors.invalid("maximumPercent must be 100 for a DAEMON service.")
    if out["maximumPercent"] < 100:
        raise errors.invalid("maximumPercent must be at least 100 for a REPLICA service.")
    return out


def _placement(req: dict[str, Any], current: Row | None = None
               ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    constraints = req.get("placementConstraints")
    strategy = req.get("placementStrategy")
    if constraints is None:
        constraints = current.placement_constraints if current is not None else []
    if strategy is None:
        strategy = current.placement_strategy if current is not None else []
    try:
        validate(strategy, constraints)
    except PlacementError as exc:
        raise errors.invalid(str(exc)) from None
    return constraints, strategy


Counts = dict[str | None, tuple[int, int]]


def service_counts(conn: Connection, row: Row) -> Counts:
    """(running, pending) live tasks per deployment id."""
    return services_counts(conn, row.region, row.cluster, [row.name])[row.name]


def services_counts(conn: Connection, region: str, cluster: str, names: list[str]
                    ) -> dict[str, Counts]:
    """service_counts of several services of one cluster, in one query."""
    out: dict[str, dict[str | None, list[int]]] = {n: {} for n in names}
    for name, dep, status, n in conn.execute(
            sa.select(tasks.c.service_name, tasks.c.deployment_id, tasks.c.last_status,
                      sa.func.count())
            .where(tasks.c.region == region, tasks.c.cluster == cluster,
                   tasks.c.service_name.in_(names), tasks.c.last_status != "STOPPED")
            .group_by(tasks.c.service_name, tasks.c.deployment_id, tasks.c.last_status)):
        counts = out[name].setdefault(dep, [0, 0])
        if status == "RUNNING":
            counts[0] += n
        elif status in ("PROVISIONING", "PENDING", "ACTIVATING"):
            counts[1] += n
    return {name: {k: (v[0], v[1]) for k, v in deps.items()} for name, deps in out.items()}


def service_view(row: Row, counts: dict[str | None, tuple[int, int]],
                 with_tags: bool = False) -> dict[str, Any]:
    deployments = []
    for d in row.deployments:
        running, pending = counts.get(d["id"], (0, 0))
        desired = row.desired_count if d["status"] == "PRIMARY" else running + pending
        deployments.append({**d, "desiredCount": desired, "runningCount": running,
                            "pendingCount": pending})
    extra = row.extra or {}
    view: dict[str, Any] = {
        "serviceArn": row.arn, "serviceName": row.name,
        "clusterArn": row.arn[:row.arn.index(":service/") + 1] + "cluster/" + row.cluster,
        "loadBalancers": extra.get("loadBalancers", []),
        "serviceRegistries": extra.get("serviceRegistries", []), "status": row.status,
        "desiredCount": row.desired_count,
        "runningCount": sum(r for r, _ in counts.values()),
        "pendingCount": sum(p for _, p in counts.values()),
        "launchType": row.launch_type, "taskDefinition": row.task_definition,
        "deploymentConfiguration": row.deployment_config, "deployments": deployments,
        "events": row.events, "createdAt": row.created_at,
        "placementConstraints": row.placement_constraints,
        "placementStrategy": row.placement_strategy,
        "schedulingStrategy": row.scheduling_strategy,
        "deploymentController": {"type": "ECS"},
        "enableECSManagedTags": extra.get("enableECSManagedTags", False),
        "propagateTags": extra.get("propagateTags", "NONE"),
        "enableExecuteCommand": extra.get("enableExecuteCommand", False)}
    for key in ("networkConfiguration", "healthCheckGracePeriodSeconds", "platformVersion"):
        if key in extra:
            view[key] = extra[key]
    if "role" in extra:
        view["roleArn"] = extra["role"]
    if with_tags:
        view["tags"] = tag_list(row.tags or {})
    return view


class Services:
    store: Store
    wakeups: Wakeups

    def create_service(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        name = req["serviceName"]
        if not arns.NAME_RE.fullmatch(name):
            raise errors.invalid("Service name can have up to 255 letters, numbers, hyphens "
                                 "and underscores.")
        strategy = req.get("schedulingStrategy") or "REPLICA"
        if not req.get("taskDefinition"):
            raise errors.invalid("TaskDefinition can not be blank.")
        desired = req.get("desiredCount")
        if strategy == "DAEMON":
            if req.get("placementStrategy"):
                raise errors.invalid("Placement strategies are not supported for a DAEMON "
                                     "service: it runs one task on every instance.")
            desired = 0         # the reconciler counts the instances that qualify
        elif desired is None:
            raise errors.invalid("desiredCount is required for a REPLICA service.")
        if desired < 0:
            raise errors.invalid("desiredCount can not be negative.")
        launch_type = req.get("launchType") or "EC2"
        if launch_type not in ("EC2", "EXTERNAL"):
            raise errors.invalid(f"launchType {launch_type} is not supported: berth runs tasks "
                                 "on registered container instances (EC2 or EXTERNAL).")
        config = _deployment_config(req.get("deploymentConfiguration"), None, strategy)
        constraints, placement_strategy = _placement(req)
        tags = tag_map(req.get("tags"))
        at = now()
        with self.store.write() as conn:
            cluster = get_cluster(conn, ctx.region, req.get("cluster"))
            td = usable_task_definition(conn, ctx.region, req["taskDefinition"])
            arn = arns.service_arn(ctx.region, ctx.account_id, cluster.name, name)
            existing = find_service(conn, ctx.region, cluster, arn)
            if existing is not None:
                if existing.status != "INACTIVE":
                    raise errors.invalid("Creation of service was not idempotent.")
                conn.execute(services.delete().where(services.c.arn == arn))
            Store.insert(conn, services, {
                "arn": arn, "region": ctx.region, "cluster": cluster.name, "name": name,
                "status": "ACTIVE", "desired_count": desired, "task_definition": td.arn,
                "deployment_config": config, "placement_constraints": constraints,
                "placement_strategy": placement_strategy,
                "deployments": [new_deployment(td.arn, desired, launch_type, at)],
                "events": [], "extra": {k: req[k] for k in ECHOED if k in req},
                "tags": tags, "launch_type": launch_type,
                "scheduling_strategy": strategy, "created_at": at, "steady": False})
            row = find_service(conn, ctx.region, cluster, arn)
        assert row is not None
        self.wakeups.reconciler()
        return {"service": service_view(row, {}, with_tags=True)}

    def update_service(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("desiredCount") is not None and req["desiredCount"] < 0:
            raise errors.invalid("desiredCount can not be negative.")
        for _ in range(MAX_UPDATE_ATTEMPTS):
            try:
                with self.store.write() as conn:
                    row = self._update(conn, ctx, req)
                    counts = service_counts(conn, row)
                break
            except VersionConflict:
                continue   # the reconciler wrote the row meanwhile; apply on its version
        else:
            raise errors.invalid("The service is being updated concurrently; retry.")
        self.wakeups.reconciler()
        return {"service": service_view(row, counts)}

    def _update(self, conn: Connection, ctx: RequestContext, req: dict[str, Any]) -> Row:
        cluster, row = _active_service(conn, ctx, req)
        values: dict[str, Any] = {}
        daemon = row.scheduling_strategy == "DAEMON"
        if daemon and req.get("desiredCount") is not None:
            raise errors.invalid("The desired count of a DAEMON service cannot be set: it runs "
                                 "one task on every instance that meets its constraints.")
        if daemon and req.get("placementStrategy"):
            raise errors.invalid("Placement strategies are not supported for a DAEMON "
                                 "service: it runs one task on every instance.")
        desired = req.get("desiredCount", row.desired_count)
        if desired != row.desired_count:
            values["desired_count"] = desired
            values["steady"] = False
        if req.get("deploymentConfiguration") is not None:
            values["deployment_config"] = _deployment_config(
                req["deploymentConfiguration"], row.deployment_config, row.scheduling_strategy)
        constraints, strategy = _placement(req, row)
        roll = bool(req.get("forceNewDeployment"))
        if (constraints, strategy) != (row.placement_constraints, row.placement_strategy):
            values["placement_constraints"], values["placement_strategy"] = constraints, strategy
            roll = True
        td_arn = row.task_definition
        if req.get("taskDefinition"):
            td_arn = usable_task_definition(conn, ctx.region, req["taskDefinition"]).arn
            if td_arn != row.task_definition:
                values["task_definition"] = td_arn
                roll = True
        deployments = [dict(d) for d in row.deployments]
        at = now()
        if roll:
            for d in deployments:
                d["status"], d["updatedAt"] = "ACTIVE", at
            deployments.insert(0, new_deployment(td_arn, desired, row.launch_type, at))
            values["steady"] = False
        elif "desired_count" in values and deployments:
            deployments[0] = {**deployments[0], "desiredCount": desired, "updatedAt": at}
        if roll or "desired_count" in values:
            values["deployments"] = deployments
        extra = {**(row.extra or {}), **{k: req[k] for k in ECHOED if k in req}}
        if extra != (row.extra or {}):
            values["extra"] = extra
        if values:
            Store.cas_update(conn, services, {"arn": row.arn}, row.version, values)
            row = find_service(conn, ctx.region, cluster, row.arn)
        assert row is not None
        return row

    def delete_service(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with self.store.write() as conn:
            cluster, row = _active_service(conn, ctx, req)
            # A daemon cannot be scaled down: it goes without `force`, as in ECS.
            if (row.desired_count > 0 and not req.get("force")
                    and row.scheduling_strategy == "REPLICA"):
                raise errors.invalid("The service cannot be stopped while it is scaled above 0.")
            Store.bump(conn, services, {"arn": row.arn},
                       {"status": "DRAINING", "desired_count": 0, "steady": False})
            row = find_service(conn, ctx.region, cluster, row.arn)
            assert row is not None
            counts = service_counts(conn, row)
        self.wakeups.reconciler()
        return {"service": service_view(row, counts)}

    @quick_read
    def describe_services(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        idents = req["services"]
        if len(idents) > 10:
            raise errors.invalid("services can have at most 10 items.")
        with_tags = "TAGS" in (req.get("include") or [])
        out, failures = [], []
        with self.store.read() as conn:
            cluster = cluster_ref(conn, ctx.region, req.get("cluster"))
            wanted = [service_arn_for(ctx.region, cluster, i) for i in idents]
            # One read by primary key for all of them, one for their task counts.
            found = {r.arn: r for r in conn.execute(sa.select(services).where(
                services.c.arn.in_(wanted)))} if wanted else {}
            rows = [found.get(arn) for arn in wanted]
            rows = [r if r is not None and r.region == ctx.region
                    and r.cluster == cluster.name else None for r in rows]
            counts = services_counts(conn, ctx.region, cluster.name,
                                     [r.name for r in rows if r is not None])
        for arn, row in zip(wanted, rows):
            if row is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                out.append(service_view(row, counts[row.name], with_tags))
        return {"services": out, "failures": failures}

    @quick_read
    def list_services(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        limit = paging.limit(req, default=10)
        after = paging.decode(req.get("nextToken"))
        cluster = active_cluster(self.store, ctx.region, req.get("cluster"))
        params = {"region": ctx.region, "cluster": cluster.name, "after": after,
                  "launch": req.get("launchType"), "scheduling": req.get("schedulingStrategy"),
                  "limit": limit + 1}
        q = _list_services(*(params[k] is not None for k in ("launch", "scheduling", "after")))
        found = [arn for (arn,) in self.store.rows(q, params)]
        out: dict[str, Any] = {"serviceArns": found[:limit]}
        if len(found) > limit:
            out["nextToken"] = paging.encode(found[limit - 1])
        return out


@lru_cache(maxsize=16)
def _list_services(launch: bool, scheduling: bool, after: bool) -> sa.Select[Any]:
    """ListServices' statement for one combination of filters, built once (see Store.rows)."""
    s = services.c
    q = sa.select(s.arn).where(s.region == sa.bindparam("region"),
                               s.cluster == sa.bindparam("cluster"), s.status != "INACTIVE")
    if launch:
        q = q.where(s.launch_type == sa.bindparam("launch"))
    if scheduling:
        q = q.where(s.scheduling_strategy == sa.bindparam("scheduling"))
    if after:
        q = q.where(s.arn > sa.bindparam("after"))
    return q.order_by(s.arn).limit(sa.bindparam("limit"))


def _active_service(conn: Connection, ctx: RequestContext, req: dict[str, Any]
                    ) -> tuple[Row, Row]:
    """The cluster and the ACTIVE service a request names, or the ECS error."""
    cluster = get_cluster(conn, ctx.region, req.get("cluster"))
    row = find_service(conn, ctx.region, cluster, req["service"])
    if row is None:
        raise errors.service_not_found()
    if row.status != "ACTIVE":
        raise errors.service_not_active()
    return cluster, row
