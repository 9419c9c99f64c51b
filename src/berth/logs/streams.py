"""Log stream operations: create, delete, describe (by name or by last event time)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import resolve_group, stream_arn
from . import clock
from .groups import get_group, not_found, quick_group
from .schema import log_streams
from .tokens import decode_token, encode_token

# The orderBy=LastEventTime key: a stream without events sorts as if its last event were at 0.
_LAST_EVENT = sa.func.coalesce(log_streams.c.last_event_ms, 0)


def sequence_token(version: int) -> str:
    """The stream's upload sequence token: AWS ignores tokens now, but still hands them out."""
    return f"{version:056d}"


def already_exists() -> ServiceError:
    return ServiceError("ResourceAlreadyExistsException",
                        "The specified log stream already exists")


def get_stream(conn: sa.Connection, region: str, group: str, name: str) -> sa.Row[Any]:
    """The stream row; ResourceNotFoundException naming the group or the stream if missing."""
    row = conn.execute(sa.select(log_streams).where(
        log_streams.c.region == region, log_streams.c.group_name == group,
        log_streams.c.name == name)).first()
    if row is None:
        get_group(conn, region, group)
        raise not_found("log stream")
    return row


class LogStreams:
    store: Store

    def create_log_stream(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        group, name = req["logGroupName"], req["logStreamName"]
        with self.store.write() as conn:
            get_group(conn, ctx.region, group)
            exists = conn.execute(sa.select(log_streams.c.name).where(
                log_streams.c.region == ctx.region, log_streams.c.group_name == group,
                log_streams.c.name == name)).first()
            if exists:
                raise already_exists()
            try:
                self.store.insert(conn, log_streams, {
                    "region": ctx.region, "group_name": group, "name": name,
                    "created_ms": clock.now_ms(), "stored_bytes": 0})
            except sa.exc.IntegrityError:
                # PostgreSQL: a concurrent CreateLogStream of the same name committed first.
                raise already_exists() from None
        return {}

    def delete_log_stream(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        group, name = req["logGroupName"], req["logStreamName"]
        with self.store.write() as conn:
            get_stream(conn, ctx.region, group, name)
            # The stream's events go with it (ON DELETE CASCADE).
            conn.execute(log_streams.delete().where(
                log_streams.c.region == ctx.region, log_streams.c.group_name == group,
                log_streams.c.name == name))
        return {}

    @quick_read
    def describe_log_streams(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        group = resolve_group(ctx, req)
        prefix = req.get("logStreamNamePrefix")
        by_time = req.get("orderBy", "LogStreamName") == "LastEventTime"
        if by_time and prefix:
            raise ServiceError("InvalidParameterException",
                               "Cannot order by LastEventTime with a logStreamNamePrefix.")
        desc = bool(req.get("descending", False))
        limit = req.get("limit", 50)
        after = decode_token(req.get("nextToken"))
        keys = 2 if by_time else 1
        params: dict[str, Any] = {"region": ctx.region, "group": group, "lo": prefix,
                                  "hi": (prefix or "") + "\U0010ffff", "limit": limit + 1}
        if after is not None:
            params.update(zip(("after_0", "after_1"), _token_position(after, keys)))
        quick_group(self.store, ctx.region, group)
        rows = self.store.records(
            _describe_streams(bool(prefix), by_time, desc, after is not None), params)
        out: dict[str, Any] = {"logStreams": [_stream_view(ctx, r) for r in rows[:limit]]}
        if len(rows) > limit:
            last = rows[limit - 1]
            out["nextToken"] = encode_token(
                [last.last_event_ms or 0, last.name] if by_time else [last.name])
        return out


@lru_cache(maxsize=16)
def _describe_streams(prefix: bool, by_time: bool, desc: bool, after: bool
                      ) -> sa.Select[Any]:
    """DescribeLogStreams' statement for one combination of options, built once (see
    Store.records)."""
    c = log_streams.c
    q = sa.select(log_streams).where(c.region == sa.bindparam("region"),
                                     c.group_name == sa.bindparam("group"))
    if prefix:
        # A range on the primary key; U+10FFFF sorts after every other character.
        q = q.where(c.name >= sa.bindparam("lo"), c.name < sa.bindparam("hi"))
    keys = [_LAST_EVENT, c.name] if by_time else [c.name]
    if after:
        q = q.where(_after(keys, [sa.bindparam(f"after_{i}") for i in range(len(keys))], desc))
    q = q.order_by(*(k.desc() if desc else k.asc() for k in keys))
    return q.limit(sa.bindparam("limit"))


def _token_position(token: Any, size: int) -> list[Any]:
    if not isinstance(token, list) or len(token) != size:
        raise ServiceError("InvalidParameterException", "The specified nextToken is invalid.")
    return token


def _after(keys: list[Any], position: list[Any], desc: bool) -> Any:
    """Rows strictly past `position` in the (possibly descending) order of `keys`."""
    first, rest = keys[0], keys[1:]
    past = first < position[0] if desc else first > position[0]
    if not rest:
        return past
    return sa.or_(past, sa.and_(first == position[0], _after(rest, position[1:], desc)))


def _stream_view(ctx: RequestContext, row: sa.Row[Any]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "logStreamName": row.name, "creationTime": row.created_ms,
        "arn": stream_arn(ctx, row.group_name, row.name),
        "storedBytes": int(row.stored_bytes or 0)}
    if row.last_ingestion_ms is not None:
        view.update(firstEventTimestamp=row.first_event_ms,
                    lastEventTimestamp=row.last_event_ms,
                    lastIngestionTime=row.last_ingestion_ms,
                    uploadSequenceToken=sequence_token(row.version))
    return view
