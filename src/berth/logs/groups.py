"""Log group operations: create, delete, describe, retention, tags."""
from __future__ import annotations

import fnmatch
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import group_arn
from .clock import now_ms
from .retention import purge_expired
from .schema import log_groups, log_streams
from .tokens import decode_token, encode_token

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                  1827, 2192, 2557, 2922, 3288, 3653)


def not_found(what: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"The specified {what} does not exist.")


def get_group(conn: sa.Connection, region: str, name: str) -> sa.Row[Any]:
    row = conn.execute(sa.select(log_groups).where(
        log_groups.c.region == region, log_groups.c.name == name)).first()
    if row is None:
        raise not_found("log group")
    return row


_STORED_BYTES = (
    sa.select(sa.func.coalesce(sa.func.sum(log_streams.c.stored_bytes), 0))
    .where(log_streams.c.region == log_groups.c.region,
           log_streams.c.group_name == log_groups.c.name)
    .scalar_subquery())


@lru_cache(maxsize=16)
def _describe_groups(prefix: bool, after: bool, klass: bool, limited: bool) -> sa.Select[Any]:
    """DescribeLogGroups' statement for one combination of filters, built once: building it
    costs more than running it."""
    c = log_groups.c
    q = (sa.select(c.name, c.created_ms, c.retention_days, c.kms_key_id, c.log_group_class,
                   _STORED_BYTES.label("stored"))
         .where(c.region == sa.bindparam("region")))
    if prefix:
        q = q.where(c.name >= sa.bindparam("lo"), c.name < sa.bindparam("hi"))
    if after:
        q = q.where(c.name > sa.bindparam("after"))
    if klass:
        q = q.where(c.log_group_class == sa.bindparam("klass"))
    q = q.order_by(c.name)
    return q.limit(sa.bindparam("limit")) if limited else q


def _group_view(arn_prefix: str, row: Any) -> dict[str, Any]:
    name, created, retention, kms_key, klass, stored = row
    arn = arn_prefix + name
    view: dict[str, Any] = {
        "logGroupName": name, "creationTime": created, "metricFilterCount": 0,
        "arn": arn + ":*", "logGroupArn": arn, "storedBytes": int(stored),
        "logGroupClass": klass}
    if retention:
        view["retentionInDays"] = retention
    if kms_key:
        view["kmsKeyId"] = kms_key
    return view


class LogGroups:
    store: Store

    def create_log_group(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        name = req["logGroupName"]
        with self.store.write() as conn:
            exists = conn.execute(sa.select(log_groups.c.name).where(
                log_groups.c.region == ctx.region, log_groups.c.name == name)).first()
            if exists:
                raise ServiceError("ResourceAlreadyExistsException",
                                   "The specified log group already exists")
            try:
                self.store.insert(conn, log_groups, {
                    "region": ctx.region, "name": name, "created_ms": now_ms(),
                    "kms_key_id": req.get("kmsKeyId"),
                    "log_group_class": req.get("logGroupClass", "STANDARD"),
                    "tags": req.get("tags") or {}})
            except sa.exc.IntegrityError:
                # PostgreSQL: a concurrent CreateLogGroup of the same name committed first.
                raise ServiceError("ResourceAlreadyExistsException",
                                   "The specified log group already exists") from None
        return {}

    def delete_log_group(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with self.store.write() as conn:
            get_group(conn, ctx.region, req["logGroupName"])
            conn.execute(log_groups.delete().where(log_groups.c.region == ctx.region,
                                                   log_groups.c.name == req["logGroupName"]))
        return {}

    @quick_read
    def describe_log_groups(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        prefix = req.get("logGroupNamePrefix")
        pattern = req.get("logGroupNamePattern")
        if prefix and pattern:
            raise ServiceError("InvalidParameterException",
                               "LogGroupNamePrefix and LogGroupNamePattern are mutually "
                               "exclusive.")
        limit = req.get("limit", 50)
        after = decode_token(req.get("nextToken"))
        if after is not None and not isinstance(after, str):  # a token we never handed out
            raise ServiceError("InvalidParameterException", "The specified nextToken is invalid.")
        klass = req.get("logGroupClass")
        q = _describe_groups(bool(prefix), after is not None, bool(klass), not pattern)
        params = {"region": ctx.region, "lo": prefix, "hi": (prefix or "") + "\uffff",
                  "after": after, "klass": klass, "limit": limit + 1}
        rows = self.store.rows(q, params)  # (name, created, retention, kms, class, stored)
        if pattern:
            needle = f"*{pattern.lower()}*"
            rows = [r for r in rows if fnmatch.fnmatchcase(r[0].lower(), needle)][:limit + 1]
        arn_prefix = group_arn(ctx, "")  # built once: a group's ARN is this + its name
        out: dict[str, Any] = {"logGroups": [_group_view(arn_prefix, r) for r in rows[:limit]]}
        if len(rows) > limit:
            out["nextToken"] = encode_token(rows[limit - 1][0])
        return out

    def put_retention_policy(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        days = req["retentionInDays"]
        if days not in RETENTION_DAYS:
            raise ServiceError(
                "InvalidParameterException",
                f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to "
                f"satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(map(str, RETENTION_DAYS))}]")
        self._set_group(ctx, req["logGroupName"], {"retention_days": days})
        # Drop what the new policy expires now rather than at the next periodic purge.
        purge_expired(self.store, ctx.region, req["logGroupName"])
        return {}

    def delete_retention_policy(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        self._set_group(ctx, req["logGroupName"], {"retention_days": None})
        return {}

    def _set_group(self, ctx: RequestContext, name: str, values: dict[str, Any]) -> None:
        with self.store.write() as conn:
            if self.store.bump(conn, log_groups, {"region": ctx.region, "name": name},
                               values) is None:
                raise not_found("log group")
