"""Destinations: the cross-account receivers of subscription filters (Put/Describe/Delete
Destination, PutDestinationPolicy), kept and returned with their access policies and tags."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import destination_arn
from .clock import now_ms
from .policies import check_json
from .schema import log_destinations
from .tokens import keyset_page

_t = log_destinations


def destination_missing() -> ServiceError:
    return ServiceError("ResourceNotFoundException", "The specified destination does not exist.")


def _view(ctx: RequestContext, row: Any) -> dict[str, Any]:
    view: dict[str, Any] = {"destinationName": row.name, "targetArn": row.target_arn,
                            "roleArn": row.role_arn, "arn": destination_arn(ctx, row.name),
                            "creationTime": row.created_ms}
    if row.access_policy:
        view["accessPolicy"] = row.access_policy
    return view


def _describe(region: bool, lo: bool = False, hi: bool = False) -> sa.Select[Any]:
    q = sa.select(_t).where(_t.c.region == sa.bindparam("region"))
    if lo:
        q = q.where(_t.c.name >= sa.bindparam("lo"), _t.c.name < sa.bindparam("hi"))
    return q


def _get(conn: sa.Connection, region: str, name: str) -> Any:
    return conn.execute(sa.select(_t).where(_t.c.region == region, _t.c.name == name)).first()


class Destinations:
    store: Store

    def put_destination(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        name = req["destinationName"]
        values = {"target_arn": req["targetArn"], "role_arn": req["roleArn"]}
        with self.store.write() as conn:
            row = _get(conn, ctx.region, name)
            if row is None:
                self.store.insert(conn, _t, {"region": ctx.region, "name": name, **values,
                                             "tags": req.get("tags") or {},
                                             "created_ms": now_ms()})
            else:   # an update keeps the tags it had: tags change through TagResource
                self.store.bump(conn, _t, {"region": ctx.region, "name": name}, values)
            row = _get(conn, ctx.region, name)
        return {"destination": _view(ctx, row)}

    def put_destination_policy(self, ctx: RequestContext, req: dict[str, Any]
                               ) -> dict[str, Any]:
        check_json(req["accessPolicy"], "access policy")
        with self.store.write() as conn:
            if self.store.bump(conn, _t, {"region": ctx.region, "name": req["destinationName"]},
                               {"access_policy": req["accessPolicy"]}) is None:
                raise destination_missing()
        return {}

    @quick_read
    def describe_destinations(self, ctx: RequestContext, req: dict[str, Any]
                              ) -> dict[str, Any]:
        prefix = req.get("DestinationNamePrefix")
        return keyset_page(self.store, _describe, {
            "region": ctx.region, "lo": prefix, "hi": prefix and prefix + "\U0010ffff"},
            [_t.c.name], req, "destinations", lambda row: _view(ctx, row))

    def delete_destination(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with self.store.write() as conn:
            gone = conn.execute(_t.delete().where(
                _t.c.region == ctx.region, _t.c.name == req["destinationName"])).rowcount
        if not gone:
            raise destination_missing()
        return {}
