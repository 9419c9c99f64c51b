"""Log group operations: create, delete, describe and list, retention, KMS keys, deletion
protection."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import group_arn, resolve_group, resolve_identifier
from .clock import now_ms
from .retention import purge_expired
from .schema import log_groups, log_metric_filters, log_streams
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


_GROUP = sa.select(log_groups).where(log_groups.c.region == sa.bindparam("region"),
                                     log_groups.c.name == sa.bindparam("name"))


def quick_group(store: Store, region: str, name: str) -> Any:
    """get_group through Store.records, for reads outside a transaction."""
    rows = store.records(_GROUP, {"region": region, "name": name})
    if not rows:
        raise not_found("log group")
    return rows[0]


_STORED_BYTES = (
    sa.select(sa.func.coalesce(sa.func.sum(log_streams.c.stored_bytes), 0))
    .where(log_streams.c.region == log_groups.c.region,
           log_streams.c.group_name == log_groups.c.name)
    .scalar_subquery())
_METRIC_FILTERS = (
    sa.select(sa.func.count())
    .where(log_metric_filters.c.region == log_groups.c.region,
           log_metric_filters.c.group_name == log_groups.c.name)
    .scalar_subquery())


@lru_cache(maxsize=32)
def _describe_groups(prefix: bool, after: bool, klass: bool, limited: bool,
                     names: bool = False) -> sa.Select[Any]:
    """DescribeLogGroups' (and ListLogGroups') statement for one combination of filters,
    built once: building it costs more than running it."""
    c = log_groups.c
    # The flag as its stored integer: a Boolean column's conversion would keep Store.rows
    # from preparing the statement.
    q = (sa.select(c.name, c.created_ms, c.retention_days, c.kms_key_id, c.log_group_class,
                   sa.type_coerce(c.deletion_protection, sa.Integer).label("protected"),
                   _STORED_BYTES.label("stored"),
                   _METRIC_FILTERS.label("metric_filters"))
         .where(c.region == sa.bindparam("region")))
    if prefix:
        q = q.where(c.name >= sa.bindparam("lo"), c.name < sa.bindparam("hi"))
    if names:
        q = q.where(c.name.in_(sa.bindparam("names", expanding=True)))
    if after:
        q = q.where(c.name > sa.bindparam("after"))
    if klass:
        q = q.where(c.log_group_class == sa.bindparam("klass"))
    q = q.order_by(c.name)
    return q.limit(sa.bindparam("limit")) if limited else q


def _group_view(arn_prefix: str, row: Any, brief: bool = False) -> dict[str, Any]:
    """A DescribeLogGroups entry; `brief` is what AWS answers to a name pattern."""
    name, created, retention, kms_key, klass, protected, stored, metric_filters = row
    arn = arn_prefix + name
    view: dict[str, Any] = {
        "logGroupName": name, "creationTime": created, "metricFilterCount": metric_filters,
        "arn": arn + ":*", "logGroupArn": arn, "logGroupClass": klass}
    if brief:
        return view
    view["storedBytes"] = int(stored)
    view["deletionProtectionEnabled"] = bool(protected)
    if retention:
        view["retentionInDays"] = retention
    if kms_key:
        view["kmsKeyId"] = kms_key
    return view


def list_pattern(pattern: str) -> re.Pattern[str]:
    """ListLogGroups' logGroupNamePattern: up to five alternatives separated by `|`, each a
    case-sensitive substring, or a prefix when it starts with `^`."""
    parts = [f"^{re.escape(p[1:])}" if p.startswith("^") else re.escape(p)
             for p in pattern.split("|")]
    return re.compile("|".join(parts))


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
                    "deletion_protection": bool(req.get("deletionProtectionEnabled")),
                    "tags": req.get("tags") or {}})
            except sa.exc.IntegrityError:
                # PostgreSQL: a concurrent CreateLogGroup of the same name committed first.
                raise ServiceError("ResourceAlreadyExistsException",
                                   "The specified log group already exists") from None
        return {}

    def delete_log_group(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with self.store.write() as conn:
            if get_group(conn, ctx.region, req["logGroupName"]).deletion_protection:
                raise ServiceError("ValidationException",
                                   "Cannot delete log group with deletion protection enabled. "
                                   "Disable deletion protection first.")
            conn.execute(log_groups.delete().where(log_groups.c.region == ctx.region,
                                                   log_groups.c.name == req["logGroupName"]))
        return {}

    @quick_read
    def describe_log_groups(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        prefix = req.get("logGroupNamePrefix")
        pattern = req.get("logGroupNamePattern")
        idents = req.get("logGroupIdentifiers")
        if prefix and pattern:
            raise ServiceError("InvalidParameterException",
                               "LogGroup name prefix and LogGroup name pattern are mutually "
                               "exclusive parameters.")
        if idents and (prefix or pattern):
            raise ServiceError("InvalidParameterException",
                               "LogGroup identifiers cannot be used with a LogGroup name "
                               "prefix or pattern.")
        names = [resolve_identifier(ctx, i) for i in idents] if idents else None
        match = (lambda name: pattern in name) if pattern else None
        rows = self._group_rows(ctx, req, prefix, names, match)
        limit = req.get("limit", 50)
        arn_prefix = group_arn(ctx, "")  # built once: a group's ARN is this + its name
        out: dict[str, Any] = {"logGroups": [_group_view(arn_prefix, r, bool(pattern))
                                             for r in rows[:limit]]}
        if len(rows) > limit:
            out["nextToken"] = encode_token(rows[limit - 1][0])
        return out

    @quick_read
    def list_log_groups(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        pattern = req.get("logGroupNamePattern")
        match = list_pattern(pattern).search if pattern else None
        tag_filters = req.get("logGroupTags")
        rows = self._group_rows(ctx, {**req, "limit": req.get("limit", 50)}, None, None, match,
                                tagged=bool(tag_filters))
        if tag_filters:
            rows = self._tagged(ctx, rows, tag_filters)
        limit = req.get("limit", 50)
        arn_prefix = group_arn(ctx, "")
        out: dict[str, Any] = {"logGroups": [
            {"logGroupName": r[0], "logGroupArn": arn_prefix + r[0], "logGroupClass": r[4]}
            for r in rows[:limit]]}
        if len(rows) > limit:
            out["nextToken"] = encode_token(rows[limit - 1][0])
        return out

    def _group_rows(self, ctx: RequestContext, req: dict[str, Any], prefix: str | None,
                    names: list[str] | None, match: Any, tagged: bool = False) -> list[Any]:
        """Up to `limit` + 1 groups in name order past the request's nextToken: rows of
        (name, created, retention, kms, class, protected, stored, metric filters). Name
        patterns and tags filter in Python, so those reads are not limited in SQL."""
        limit = req.get("limit", 50)
        after = decode_token(req.get("nextToken"))
        if after is not None and not isinstance(after, str):  # a token we never handed out
            raise ServiceError("InvalidParameterException", "The specified nextToken is invalid.")
        klass = req.get("logGroupClass")
        limited = match is None and not tagged
        q = _describe_groups(bool(prefix), after is not None, bool(klass), limited,
                             names is not None)
        params = {"region": ctx.region, "lo": prefix, "hi": (prefix or "") + "\uffff",
                  "after": after, "klass": klass, "limit": limit + 1, "names": names}
        rows = self.store.rows(q, params)
        if match is not None:
            rows = [r for r in rows if match(r[0])]
        return rows

    def _tagged(self, ctx: RequestContext, rows: list[Any], filters: list[dict[str, Any]]
                ) -> list[Any]:
        """The rows whose group has every filter's key (with one of its values, if given)."""
        with self.store.read() as conn:
            tags = dict(conn.execute(sa.select(log_groups.c.name, log_groups.c.tags).where(
                log_groups.c.region == ctx.region,
                log_groups.c.name.in_([r[0] for r in rows]))).all())

        def wanted(name: str) -> bool:
            have = tags.get(name) or {}
            return all(f["key"] in have and (not f.get("values") or have[f["key"]] in
                                             f["values"]) for f in filters)
        return [r for r in rows if wanted(r[0])]

    def put_log_group_deletion_protection(self, ctx: RequestContext, req: dict[str, Any]
                                          ) -> dict[str, Any]:
        name = resolve_group(ctx, {"logGroupIdentifier": req["logGroupIdentifier"]})
        self._set_group(ctx, name, {"deletion_protection": req["deletionProtectionEnabled"]})
        return {}

    def associate_kms_key(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        self._set_group(ctx, self._kms_target(ctx, req), {"kms_key_id": req["kmsKeyId"]})
        return {}

    def disassociate_kms_key(self, ctx: RequestContext, req: dict[str, Any]
                             ) -> dict[str, Any]:
        self._set_group(ctx, self._kms_target(ctx, req), {"kms_key_id": None})
        return {}

    @staticmethod
    def _kms_target(ctx: RequestContext, req: dict[str, Any]) -> str:
        """The group of an Associate/DisassociateKmsKey: by name, or a log group ARN as the
        resourceIdentifier (query-result ARNs name no group berth keeps)."""
        name, ident = req.get("logGroupName"), req.get("resourceIdentifier")
        if bool(name) == bool(ident):
            raise ServiceError("InvalidParameterException",
                               "Specify exactly one of logGroupName and resourceIdentifier.")
        if name:
            return str(name)
        return resolve_group(ctx, {"logGroupIdentifier": ident})

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
