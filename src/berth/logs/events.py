"""Writing and reading one stream's events: PutLogEvents and GetLogEvents."""
from __future__ import annotations

from operator import itemgetter
from typing import Any, Iterator, Sequence

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..state.store import Store
from . import clock
from .arns import resolve_group
from .batch import EVENT_OVERHEAD, MAX_BYTES, check_batch
from .cursor import (MAX_TIME, Position, parse_stream_token, position, predecessor,
                     scan_chunks, stream_token, successor)
from .groups import not_found
from .retention import cutoff_ms, visible_from
from .schema import log_events, log_groups, log_streams
from .streams import get_stream, sequence_token
from .subscription_payload import LogEvent
from .subscriptions import SUBSCRIPTIONS, enqueue_deliveries

# GetLogEvents' statements, built once (see cursor.scan).
_STREAM_RETENTION = (
    sa.select(log_groups.c.retention_days)
    .select_from(log_groups.join(log_streams, sa.and_(
        log_streams.c.region == log_groups.c.region,
        log_streams.c.group_name == log_groups.c.name)))
    .where(log_groups.c.region == sa.bindparam("region"),
           log_groups.c.name == sa.bindparam("group"),
           log_streams.c.name == sa.bindparam("stream")))
_STREAM_EVENTS = sa.and_(
    log_events.c.region == sa.bindparam("region"),
    log_events.c.group_name == sa.bindparam("group"),
    log_events.c.stream_name == sa.bindparam("stream"),
    log_events.c.timestamp >= visible_from(
        sa.bindparam("region"), sa.bindparam("group"),
        sa.bindparam("now", type_=sa.BigInteger), sa.bindparam("start", type_=sa.BigInteger)),
    log_events.c.timestamp < sa.bindparam("end"))


_SIZE = itemgetter(4)  # the `size` column of cursor.EVENT_COLUMNS


def _page(chunks: Iterator[Sequence[Any]], limit: int) -> list[Any]:
    """The events of one page: up to `limit` of them and MAX_BYTES of their sizes (at least
    one event however large). Whole chunks are taken at once while they fit: summing a
    column costs less than a Python step per event."""
    rows: list[Any] = []
    size = 0
    for chunk in chunks:
        room = limit - len(rows)
        if len(chunk) > room:
            chunk = chunk[:room]
        chunk_size = sum(map(_SIZE, chunk)) + EVENT_OVERHEAD * len(chunk)
        if size + chunk_size <= MAX_BYTES:
            rows.extend(chunk)
            size += chunk_size
            if len(rows) >= limit:
                break
            continue
        for row in chunk:  # the page fills inside this chunk
            size += _SIZE(row) + EVENT_OVERHEAD
            if rows and size > MAX_BYTES:
                break
            rows.append(row)
        break
    return rows


class LogEvents:
    store: Store

    def put_log_events(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        group, stream = req["logGroupName"], req["logStreamName"]
        events: list[dict[str, Any]] = req["logEvents"]
        now = clock.now_ms()
        key = {"region": ctx.region, "group_name": group, "name": stream}
        # One transaction: look up group and stream together, insert the accepted events in
        # bulk, advance the stream, queue what subscription filters owe. The caller's success
        # means all of it is committed.
        with self.store.write() as conn:
            found = conn.execute(
                sa.select(log_groups.c.retention_days, log_streams.c.version,
                          SUBSCRIPTIONS.label("subscriptions"))
                .select_from(log_groups.outerjoin(log_streams, sa.and_(
                    log_streams.c.region == log_groups.c.region,
                    log_streams.c.group_name == log_groups.c.name,
                    log_streams.c.name == stream)))
                .where(log_groups.c.region == ctx.region, log_groups.c.name == group)).first()
            if found is None:
                raise not_found("log group")
            if found.version is None:
                raise not_found("log stream")
            batch = check_batch(events, now, found.retention_days)
            version = int(found.version)
            if batch.end > batch.start:
                rows = [{"region": ctx.region, "group_name": group, "stream_name": stream,
                         "timestamp": int(e["timestamp"]), "ingestion_time": now,
                         "message": e["message"], "size": size}
                        for e, size in zip(events[batch.start:batch.end],
                                           batch.sizes[batch.start:batch.end])]
                try:
                    if found.subscriptions:
                        # The deliveries carry the events' ids, so they are read back.
                        ids = conn.execute(log_events.insert().returning(
                            log_events.c.id, sort_by_parameter_order=True), rows).scalars()
                        enqueue_deliveries(conn, ctx, group, stream, [
                            LogEvent(i, r["timestamp"], r["message"])
                            for i, r in zip(ids, rows)])
                    else:
                        conn.execute(log_events.insert(), rows)
                except sa.exc.IntegrityError:
                    # PostgreSQL: the stream was deleted after it was looked up above.
                    raise not_found("log stream") from None
                first = int(events[batch.start]["timestamp"])
                last = int(events[batch.end - 1]["timestamp"])
                first_col, last_col = log_streams.c.first_event_ms, log_streams.c.last_event_ms
                version = self.store.bump(conn, log_streams, key, {
                    "first_event_ms": sa.case((sa.or_(first_col.is_(None), first_col > first),
                                               first), else_=first_col),
                    "last_event_ms": sa.case((sa.or_(last_col.is_(None), last_col < last),
                                              last), else_=last_col),
                    "last_ingestion_ms": now,
                    "stored_bytes": log_streams.c.stored_bytes
                    + sum(batch.sizes[batch.start:batch.end]),
                }) or version
        out: dict[str, Any] = {"nextSequenceToken": sequence_token(version)}
        if batch.rejected:
            out["rejectedLogEventsInfo"] = batch.rejected
        return out

    @quick_read
    def get_log_events(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        group, stream = resolve_group(ctx, req), req["logStreamName"]
        limit = req.get("limit", 10_000)
        token = req.get("nextToken")
        after: Position | None = None
        if token:
            forward, after = parse_stream_token(token)
        else:
            forward = bool(req.get("startFromHead", False))
        key = {"region": ctx.region, "group": group, "stream": stream}
        now = clock.now_ms()
        start = req.get("startTime") or 0
        end = min(req.get("endTime", MAX_TIME), MAX_TIME)
        # The events query applies the retention policy itself: only a page without events
        # needs the group and stream looked up (do they exist, where does the window start).
        rows = _page(scan_chunks(self.store.rows, _STREAM_EVENTS, after, forward,
                                 chunk=min(limit, 1000),
                                 params={**key, "now": now, "start": start, "end": end}), limit)
        if not rows:
            found = self.store.rows(_STREAM_RETENTION, key)
            if not found:
                with self.store.read() as conn:
                    get_stream(conn, ctx.region, group, stream)  # the precise not-found
                raise not_found("log stream")  # created after the lookup: absent as of it
            start = max(start, cutoff_ms(found[0][0], now) or 0)
        if not forward:
            rows.reverse()
        # Tuple unpacking: by-name access on 10,000 rows is a visible part of the request.
        out: dict[str, Any] = {"events": [
            {"timestamp": ts, "message": message, "ingestionTime": ingested}
            for _id, ts, ingested, message, _size in rows]}
        if rows:
            out["nextForwardToken"] = stream_token(True, position(rows[-1]))
            out["nextBackwardToken"] = stream_token(False, position(rows[0]))
        elif after is not None:
            # At the end in the token's direction: AWS hands the same token back, and the
            # other direction resumes from the same point.
            assert token is not None
            other = successor(after) if forward else predecessor(after)
            out["nextForwardToken"] = token if forward else stream_token(True, other)
            out["nextBackwardToken"] = stream_token(False, other) if forward else token
        else:
            out["nextForwardToken"] = stream_token(True, (start, 0))
            out["nextBackwardToken"] = stream_token(False, (end, 0))
        return out
