"""Custom attributes on container instances: put, delete, list. They feed memberOf placement
constraints and `attribute:` spread strategies, so changing them moves the instance's version."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from . import errors, paging
from .lookup import Row, find_instance, get_cluster
from .quick_lookup import active_cluster
from .schema import instances

NAME_RE = re.compile(r"[A-Za-z0-9_.@/:-]{1,128}")
VALUE_RE = re.compile(r"[A-Za-z0-9_.@/:\- ]{1,128}")
MAX_CUSTOM = 10
MAX_PER_CALL = 10


def _check(attr: dict[str, Any], deleting: bool) -> None:
    if attr.get("targetType", "container-instance") != "container-instance":
        raise errors.invalid("targetType must be container-instance.")
    if not attr.get("targetId"):
        raise errors.invalid("targetId is required for each attribute.")
    if not NAME_RE.fullmatch(attr.get("name") or ""):
        raise errors.invalid(f"Invalid attribute name: {attr.get('name')!r}. Up to 128 letters, "
                             "numbers, hyphens, underscores, periods, at signs, slashes and "
                             "colons.")
    value = attr.get("value")
    if not deleting and value is not None and not VALUE_RE.fullmatch(value):
        raise errors.invalid(f"Invalid attribute value: {value!r}.")


def _custom(attrs: dict[str, Any]) -> int:
    return sum(1 for k in attrs if not k.startswith(("ecs.", "com.amazonaws.ecs.")))


def _targets(conn: sa.Connection, region: str, cluster: Row, items: list[dict[str, Any]]
             ) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for attr in items:
        ident = attr["targetId"]
        if ident in rows:
            continue
        row = find_instance(conn, region, cluster, ident)
        if row is None or row.status == "INACTIVE":
            raise errors.target_not_found(f"target {ident}")
        rows[ident] = row
    return rows


# The attributes of a cluster's live instances, in ARN order; built once (see Store.records).
_ATTRIBUTES = sa.select(instances.c.arn, instances.c.attributes).where(
    instances.c.region == sa.bindparam("region"), instances.c.cluster == sa.bindparam("cluster"),
    instances.c.status != "INACTIVE").order_by(instances.c.arn)


class Attributes:
    store: Store

    def put_attributes(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        def put(attrs: dict[str, Any], attr: dict[str, Any]) -> None:
            attrs[attr["name"]] = attr.get("value")
        return self._change_attributes(ctx, req, deleting=False, apply=put)

    def delete_attributes(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        def delete(attrs: dict[str, Any], attr: dict[str, Any]) -> None:
            attrs.pop(attr["name"], None)
        return self._change_attributes(ctx, req, deleting=True, apply=delete)

    def _change_attributes(self, ctx: RequestContext, req: dict[str, Any], deleting: bool,
                           apply: Callable[[dict[str, Any], dict[str, Any]], None]
                           ) -> dict[str, Any]:
        """Check the attributes, apply each to its target's, and write every target once."""
        items = req["attributes"]
        if not items or len(items) > MAX_PER_CALL:
            raise errors.invalid(f"attributes must have between 1 and {MAX_PER_CALL} items.")
        for attr in items:
            _check(attr, deleting=deleting)
        with self.store.write() as conn:
            cluster = get_cluster(conn, ctx.region, req.get("cluster"))
            targets = _targets(conn, ctx.region, cluster, items)
            changed: dict[str, dict[str, Any]] = {}
            for attr in items:
                row = targets[attr["targetId"]]
                apply(changed.setdefault(row.arn, dict(row.attributes)), attr)
            for arn, attrs in changed.items():
                if not deleting and _custom(attrs) > MAX_CUSTOM:
                    raise ServiceError("AttributeLimitExceededException",
                                       f"A container instance can have at most {MAX_CUSTOM} "
                                       "custom attributes.")
                Store.bump(conn, instances, {"arn": arn}, {"attributes": attrs})
        return {"attributes": [{**a, "targetType": "container-instance"} for a in items]}

    @quick_read
    def list_attributes(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("attributeValue") is not None and not req.get("attributeName"):
            raise errors.invalid("attributeValue can only be given with attributeName.")
        limit = paging.limit(req)
        after = paging.decode(req.get("nextToken"))
        name, value = req.get("attributeName"), req.get("attributeValue")
        found: list[dict[str, Any]] = []
        cluster = active_cluster(self.store, ctx.region, req.get("cluster"))
        for row in self.store.records(_ATTRIBUTES, {"region": ctx.region,
                                                    "cluster": cluster.name}):
            for k, v in sorted(row.attributes.items()):
                if name is not None and k != name:
                    continue
                if value is not None and v != value:
                    continue
                if after is not None and [row.arn, k] <= after:
                    continue
                item = {"name": k, "targetType": "container-instance",
                        "targetId": row.arn}
                if v is not None:
                    item["value"] = v
                found.append(item)
        out: dict[str, Any] = {"attributes": found[:limit]}
        if len(found) > limit:
            last = found[limit - 1]
            out["nextToken"] = paging.encode([last["targetId"], last["name"]])
        return out
