"""Cluster operations: create, describe (with live counts), list, update, delete, and the
cluster's capacity providers (PutClusterCapacityProviders)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from . import arns, errors, paging
from .account_settings import effective
from .capacity_providers import check_strategy, provider_name, strategy_view
from .clock import now
from .lookup import Row, find_cluster, get_cluster
from .schema import clusters, instances, services, tasks
from .tags import tag_list, tag_map

PENDING_STATES = ("PROVISIONING", "PENDING", "ACTIVATING")
LIVE_INSTANCE = ("ACTIVE", "DRAINING")
Fetch = Callable[[sa.Select[Any], dict[str, Any]], Sequence[Any]]


def _settings(given: list[dict[str, str]] | None, current: list[dict[str, str]]
              ) -> list[dict[str, str]]:
    out = {s["name"]: s["value"] for s in current}
    for s in given or []:
        if s.get("name") != "containerInsights":
            raise errors.invalid(f"Invalid cluster setting name: {s.get('name')}")
        if s.get("value") not in ("enabled", "disabled", "enhanced"):
            raise errors.invalid("The containerInsights setting must be enabled, disabled or "
                                 "enhanced.")
        out[s["name"]] = s["value"]
    return [{"name": k, "value": v} for k, v in out.items()]


# The counts of one cluster, each from an index alone; built once (see Store.rows).
_KEY = (sa.bindparam("region"), sa.bindparam("cluster"))
_LIVE_INSTANCES = sa.select(sa.func.count()).where(
    instances.c.region == _KEY[0], instances.c.cluster == _KEY[1],
    instances.c.status != "INACTIVE")
_LIVE_TASKS = (sa.select(tasks.c.last_status, sa.func.count())
               .where(tasks.c.region == _KEY[0], tasks.c.cluster == _KEY[1],
                      tasks.c.last_status != "STOPPED")
               .group_by(tasks.c.last_status))
_ACTIVE_SERVICES = sa.select(sa.func.count()).where(
    services.c.region == _KEY[0], services.c.cluster == _KEY[1],
    services.c.status == "ACTIVE")


def _list_clusters(after: bool) -> sa.Select[Any]:
    q = sa.select(clusters.c.name, clusters.c.arn).where(
        clusters.c.region == sa.bindparam("region"), clusters.c.status == "ACTIVE")
    if after:
        q = q.where(clusters.c.name > sa.bindparam("after"))
    return q.order_by(clusters.c.name).limit(sa.bindparam("limit"))


_LIST_CLUSTERS = {after: _list_clusters(after) for after in (False, True)}


def _counts(fetch: Fetch, region: str, names: list[str]) -> dict[str, dict[str, int]]:
    """The live counts of each named cluster; `fetch(statement, params)` runs a read (a
    write transaction's connection, or Store.rows)."""
    out = {}
    for name in names:
        key = {"region": region, "cluster": name}
        running = pending = 0
        for status, n in fetch(_LIVE_TASKS, key):
            if status == "RUNNING":
                running += n
            elif status in PENDING_STATES:
                pending += n
        out[name] = {"registeredContainerInstancesCount": fetch(_LIVE_INSTANCES, key)[0][0],
                     "runningTasksCount": running, "pendingTasksCount": pending,
                     "activeServicesCount": fetch(_ACTIVE_SERVICES, key)[0][0]}
    return out


def _in(conn: Connection) -> Fetch:
    return lambda stmt, params: conn.execute(stmt, params).all()


def cluster_view(row: Row, counts: dict[str, int] | None, include: list[str] = ()
                 ) -> dict[str, Any]:
    view: dict[str, Any] = {"clusterArn": row.arn, "clusterName": row.name,
                            "status": row.status, "capacityProviders": row.capacity_providers,
                            "defaultCapacityProviderStrategy":
                                strategy_view(row.default_strategy or []),
                            **(counts or {"registeredContainerInstancesCount": 0,
                                          "runningTasksCount": 0, "pendingTasksCount": 0,
                                          "activeServicesCount": 0})}
    view["statistics"] = []
    if "SETTINGS" in include or counts is None:
        view["settings"] = row.settings
    if "TAGS" in include or counts is None:
        view["tags"] = tag_list(row.tags or {})
    if row.configuration and ("CONFIGURATIONS" in include or counts is None):
        view["configuration"] = row.configuration
    if row.service_connect:
        view["serviceConnectDefaults"] = row.service_connect
    if "STATISTICS" in include and counts is not None:
        view["statistics"] = [{"name": k, "value": str(v)} for k, v in counts.items()]
    return view


class Clusters:
    store: Store

    def create_cluster(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        name = req.get("clusterName") or "default"
        if not arns.NAME_RE.fullmatch(name):
            raise errors.invalid("Cluster name can have up to 255 characters: letters, numbers, "
                                 "hyphens and underscores.")
        tags = tag_map(req.get("tags"))
        providers = [provider_name(p) for p in req.get("capacityProviders") or []]
        strategy = req.get("defaultCapacityProviderStrategy") or []
        values = {"status": "ACTIVE", "configuration": req.get("configuration"),
                  "service_connect": req.get("serviceConnectDefaults"),
                  "capacity_providers": providers, "default_strategy": strategy_view(strategy),
                  "tags": tags, "created_at": now()}
        with self.store.write() as conn:
            check_strategy(conn, ctx.region, providers, strategy)
            # A new cluster's Container Insights follows the account setting.
            insights = effective(conn, ctx.region, ctx.account_id, "containerInsights")
            values["settings"] = _settings(req.get("settings"), [
                {"name": "containerInsights", "value": insights}])
            row = find_cluster(conn, ctx.region, name)
            if row is None:
                Store.insert(conn, clusters, {"region": ctx.region, "name": name,
                                              "arn": arns.cluster_arn(ctx.region,
                                                                      ctx.account_id, name),
                                              **values})
            elif row.status != "ACTIVE":
                Store.bump(conn, clusters, {"region": ctx.region, "name": name}, values)
            # An ACTIVE cluster of that name is returned as it is: CreateCluster is idempotent.
            row = get_cluster(conn, ctx.region, name)
            counts = _counts(_in(conn), ctx.region, [name])[name]
        return {"cluster": cluster_view(row, counts, ["SETTINGS", "TAGS", "CONFIGURATIONS"])}

    @quick_read
    def describe_clusters(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        idents = req.get("clusters") or ["default"]
        if len(idents) > 100:
            raise errors.invalid("clusters can have at most 100 items.")
        include = req.get("include") or []
        out, failures = [], []
        with self.store.read() as conn:
            found: list[Row] = []
            for ident in idents:
                try:
                    row = find_cluster(conn, ctx.region, ident)
                except ServiceError:  # a malformed ARN is reported like a missing cluster
                    row = None
                if row is None:
                    arn = ident if ident.startswith(arns.PREFIX) else arns.cluster_arn(
                        ctx.region, ctx.account_id, ident)
                    failures.append({"arn": arn, "reason": "MISSING"})
                else:
                    found.append(row)
        counts = _counts(self.store.rows, ctx.region,
                         [r.name for r in found if r.status == "ACTIVE"])
        for row in found:
            out.append(cluster_view(row, counts.get(row.name) or {
                "registeredContainerInstancesCount": 0, "runningTasksCount": 0,
                "pendingTasksCount": 0, "activeServicesCount": 0}, include))
        return {"clusters": out, "failures": failures}

    @quick_read
    def list_clusters(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        limit = paging.limit(req)
        after = paging.decode(req.get("nextToken"))
        rows = self.store.rows(_LIST_CLUSTERS[after is not None], {
            "region": ctx.region, "after": after, "limit": limit + 1})   # (name, arn)
        out: dict[str, Any] = {"clusterArns": [arn for _, arn in rows[:limit]]}
        if len(rows) > limit:
            out["nextToken"] = paging.encode(rows[limit - 1][0])
        return out

    def update_cluster(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with self.store.write() as conn:
            row = get_cluster(conn, ctx.region, req["cluster"])
            values: dict[str, Any] = {}
            if req.get("settings") is not None:
                values["settings"] = _settings(req["settings"], row.settings)
            if req.get("configuration") is not None:
                values["configuration"] = req["configuration"]
            if req.get("serviceConnectDefaults") is not None:
                values["service_connect"] = req["serviceConnectDefaults"]
            if values:
                Store.bump(conn, clusters, {"region": ctx.region, "name": row.name}, values)
            row = get_cluster(conn, ctx.region, row.name)
            counts = _counts(_in(conn), ctx.region, [row.name])[row.name]
        return {"cluster": cluster_view(row, counts, ["SETTINGS", "CONFIGURATIONS"])}

    def update_cluster_settings(self, ctx: RequestContext, req: dict[str, Any]
                                ) -> dict[str, Any]:
        with self.store.write() as conn:
            row = get_cluster(conn, ctx.region, req["cluster"])
            Store.bump(conn, clusters, {"region": ctx.region, "name": row.name},
                       {"settings": _settings(req["settings"], row.settings)})
            row = get_cluster(conn, ctx.region, row.name)
            counts = _counts(_in(conn), ctx.region, [row.name])[row.name]
        return {"cluster": cluster_view(row, counts, ["SETTINGS"])}

    def put_cluster_capacity_providers(self, ctx: RequestContext, req: dict[str, Any]
                                       ) -> dict[str, Any]:
        providers = [provider_name(p) for p in req["capacityProviders"]]
        strategy = req["defaultCapacityProviderStrategy"]
        with self.store.write() as conn:
            row = get_cluster(conn, ctx.region, req["cluster"])
            check_strategy(conn, ctx.region, providers, strategy)
            Store.bump(conn, clusters, {"region": ctx.region, "name": row.name},
                       {"capacity_providers": providers,
                        "default_strategy": strategy_view(strategy)})
            row = get_cluster(conn, ctx.region, row.name)
            counts = _counts(_in(conn), ctx.region, [row.name])[row.name]
        return {"cluster": cluster_view(row, counts, ["SETTINGS", "CONFIGURATIONS"])}

    def delete_cluster(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        # Checked from the most specific holder to the least: services own tasks, and tasks
        # live on instances, so the refusal names what must go first.
        with self.store.write() as conn:
            row = get_cluster(conn, ctx.region, req["cluster"])
            where = (services.c.region == ctx.region, services.c.cluster == row.name)
            if conn.execute(sa.select(sa.func.count()).select_from(services).where(
                    *where, services.c.status == "ACTIVE")).scalar_one():
                raise ServiceError("ClusterContainsServicesException",
                                   "The Cluster cannot be deleted while Services are active.")
            if conn.execute(sa.select(sa.func.count()).select_from(tasks).where(
                    tasks.c.region == ctx.region, tasks.c.cluster == row.name,
                    tasks.c.last_status != "STOPPED")).scalar_one():
                raise ServiceError("ClusterContainsTasksException",
                                   "The Cluster cannot be deleted while Tasks are active.")
            if conn.execute(sa.select(sa.func.count()).select_from(instances).where(
                    instances.c.region == ctx.region, instances.c.cluster == row.name,
                    instances.c.status.in_(LIVE_INSTANCE))).scalar_one():
                raise ServiceError("ClusterContainsContainerInstancesException",
                                   "The Cluster cannot be deleted while Container Instances "
                                   "are active or draining.")
            Store.bump(conn, clusters, {"region": ctx.region, "name": row.name},
                       {"status": "INACTIVE"})
            row = find_cluster(conn, ctx.region, row.name)
        assert row is not None
        return {"cluster": cluster_view(row, None)}
