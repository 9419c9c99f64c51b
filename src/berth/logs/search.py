"""FilterLogEvents: a group's events across streams, in time order, through a filter pattern.

Stream, time and retention filters go into SQL; the pattern runs in Python over rows as they
are scanned in (timestamp, id) order, and the scan stops as soon as the page is full. A scan
that matches little stops after a budget of rows and hands back a nextToken, as AWS does, so no
single request reads a whole group.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import resolve_group
from .batch import EVENT_OVERHEAD, MAX_BYTES
from .cursor import EVENT_COLUMNS, MAX_TIME, Position, event_id, position, scan
from .groups import get_group
from .patterns import InvalidPattern, compile_pattern
from .retention import cutoff_ms
from .schema import log_events
from .tokens import decode_token, encode_token

SCAN_BUDGET = 100_000  # rows examined per request before answering with what was found
_COLUMNS = EVENT_COLUMNS + (log_events.c.stream_name,)


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


class LogSearch:
    store: Store

    def filter_log_events(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        group = resolve_group(ctx, req)
        names: list[str] | None = req.get("logStreamNames")
        prefix: str | None = req.get("logStreamNamePrefix")
        if names and prefix:
            raise invalid("logStreamNames and logStreamNamePrefix are mutually exclusive.")
        try:
            match = compile_pattern(req.get("filterPattern") or "")
        except InvalidPattern as exc:
            raise invalid(f"Invalid filter pattern: {exc}") from None
        limit = req.get("limit", 10_000)
        after = _token_position(req.get("nextToken"))
        with self.store.read() as conn:
            retention = get_group(conn, ctx.region, group).retention_days
            cond = [log_events.c.region == ctx.region, log_events.c.group_name == group,
                    log_events.c.timestamp >= max(req.get("startTime") or 0,
                                                  cutoff_ms(retention) or 0),
                    log_events.c.timestamp <= min(req.get("endTime", MAX_TIME), MAX_TIME)]
            if names:
                cond.append(log_events.c.stream_name.in_(names))
            elif prefix:
                cond += [log_events.c.stream_name >= prefix,
                         log_events.c.stream_name < prefix + "\U0010ffff"]
            filtered = bool((req.get("filterPattern") or "").strip())
            chunk = 1000 if filtered else min(limit + 1, 1000)
            events: list[dict[str, Any]] = []
            size, scanned, more = 0, 0, False
            last: Position | None = after
            for row in scan(lambda q, p: conn.execute(q, p).all(), sa.and_(*cond), after,
                            True, chunk, columns=_COLUMNS):
                if len(events) >= limit or scanned >= SCAN_BUDGET:
                    more = True  # a row exists past this page: it is the next page's start
                    break
                scanned += 1
                if match(row.message):
                    size += row.size + EVENT_OVERHEAD
                    if events and size > MAX_BYTES:
                        more = True
                        break
                    events.append({"logStreamName": row.stream_name,
                                   "timestamp": row.timestamp, "message": row.message,
                                   "ingestionTime": row.ingestion_time,
                                   "eventId": event_id(row.id)})
                last = position(row)
        out: dict[str, Any] = {"events": events}
        if more and last is not None:
            out["nextToken"] = encode_token(list(last))
        return out


def _token_position(token: str | None) -> Position | None:
    value = decode_token(token)
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and 0 <= v < 2**63 for v in value)):
        raise invalid("The specified nextToken is invalid.")
    return (value[0], value[1])
