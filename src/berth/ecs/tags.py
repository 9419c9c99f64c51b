"""Tags on clusters, task definitions, tasks, services, container instances and capacity
providers.

Each resource row keeps its tags as a map; the operations find the row from the ARN's kind.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..state.store import Store
from . import arns, errors
from .schema import capacity_providers, clusters, instances, services, task_definitions, tasks

MAX_TAGS = 50


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def tag_map(items: list[dict[str, Any]] | None) -> dict[str, str]:
    """Request tags to a map, refusing what ECS refuses."""
    out: dict[str, str] = {}
    for item in items or []:
        key = item.get("key")
        if not key:
            raise errors.invalid("Tag keys must not be empty.")
        if key.lower().startswith("aws:"):
            raise errors.invalid("Tag keys beginning with 'aws:' are reserved.")
        out[key] = item.get("value", "")
    return out


def merged(current: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    out = {**current, **new}
    if len(out) > MAX_TAGS:
        raise errors.invalid(f"A resource can have at most {MAX_TAGS} tags.")
    return out


def _key(region: str, resource_arn: str) -> tuple[sa.Table, dict[str, Any]]:
    """The table and key of the row a taggable resource's ARN names."""
    arn = arns.parse(resource_arn)
    if arn is None or arn.region != region:
        raise errors.invalid("The ARN provided is invalid.")
    if arn.kind == "cluster":
        key: dict[str, Any] = {"region": region, "name": arn.rest}
        table = clusters
    elif arn.kind == "task-definition":
        family, _, rev = arn.rest.partition(":")
        if not rev.isdigit():
            raise errors.invalid("The ARN provided is invalid.")
        key, table = {"region": region, "family": family, "revision": int(rev)}, task_definitions
    elif arn.kind == "capacity-provider":
        key, table = {"region": region, "name": arn.rest}, capacity_providers
    elif arn.kind in ("task", "container-instance", "service"):
        table = {"task": tasks, "container-instance": instances, "service": services}[arn.kind]
        key = {"arn": resource_arn}
    else:
        raise errors.invalid("The ARN provided is invalid.")
    return table, key


# Each taggable table's row by its key, built once (see Store.records).
_ROW = {t: sa.select(t).where(*(t.c[k] == sa.bindparam(k) for k in keys)) for t, keys in (
    (clusters, ("region", "name")), (capacity_providers, ("region", "name")),
    (task_definitions, ("region", "family", "revision")), (tasks, ("arn",)),
    (instances, ("arn",)), (services, ("arn",)))}


def _found(table: sa.Table, row: sa.Row[Any] | None) -> sa.Row[Any]:
    if row is None or (table in (clusters, capacity_providers) and row.status != "ACTIVE"):
        if table is clusters:
            raise errors.cluster_not_found()
        raise errors.resource_not_found()
    return row


def _locate(conn: sa.Connection, region: str, resource_arn: str
            ) -> tuple[sa.Table, dict[str, Any], sa.Row[Any]]:
    table, key = _key(region, resource_arn)
    return table, key, _found(table, conn.execute(_ROW[table], key).first())


class Tags:
    store: Store

    def tag_resource(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        new = tag_map(req.get("tags"))
        with self.store.write() as conn:
            table, key, row = _locate(conn, ctx.region, req["resourceArn"])
            Store.bump(conn, table, key, {"tags": merged(row.tags or {}, new)})
        return {}

    def untag_resource(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with self.store.write() as conn:
            table, key, row = _locate(conn, ctx.region, req["resourceArn"])
            remaining = {k: v for k, v in (row.tags or {}).items() if k not in req["tagKeys"]}
            Store.bump(conn, table, key, {"tags": remaining})
        return {}

    @quick_read
    def list_tags_for_resource(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        table, key = _key(ctx.region, req["resourceArn"])
        rows = self.store.records(_ROW[table], key)
        return {"tags": tag_list(_found(table, rows[0] if rows else None).tags or {})}
