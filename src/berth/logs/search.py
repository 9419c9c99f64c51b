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
from .groups import quick_group
from .patterns import InvalidPattern, compile_pattern
from .retention import cutoff_ms
from .schema import log_events
from .tokens import decode_token, encode_token

SCAN_BUDGET = 100_000  # rows examined per request before answering with what was found
_COLUMNS = EVENT_COLUMNS + (log_events.c.stream_name,)
# Which events a request reads, by how it names streams; built once (see cursor.scan).
_e = log_events.c
_IN_WINDOW = sa.and_(_e.region == sa.bindparam("region"), _e.group_name == sa.bindparam("group"),
                     _e.timestamp >= sa.bindparam("start"), _e.timestamp <= sa.bindparam("end"))
_WHERE = {
    "all": _IN_WINDOW,
    "prefix": sa.and_(_IN_WINDOW, _e.stream_name >= sa.bindparam("lo"),
                      _e.stream_name < sa.bindparam("hi")),
    "names": sa.and_(_IN_WINDOW, _e.stream_name.in_(sa.bindparam("names", expanding=True))),
}


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
        retention = quick_group(self.store, ctx.region, group).retention_days
        params = {"region": ctx.region, "group": group,
                  "start": max(req.get("startTime") or 0, cutoff_ms(retention) or 0),
                  "end": min(req.get("endTime", MAX_TIME), MAX_TIME), "names": names,
                  "lo": prefix, "hi": (prefix or "") + "\U0010ffff"}
        where = _WHERE["names" if names else "prefix" if prefix else "all"]
        filtered = bool((req.get("filterPattern") or "").strip())
        chunk = 1000 if filtered else min(limit + 1, 1000)
        events: list[dict[str, Any]] = []
        size, scanned, more = 0, 0, False
        last: Position | None = after
        # Rows of (id, timestamp, ingestion time, message, size, stream): see _COLUMNS.
        for row in scan(self.store.rows, where, after, True, chunk, params, _COLUMNS):
            if len(events) >= limit or scanned >= SCAN_BUDGET:
                more = True  # a row exists past this page: it is the next page's start
                break
            scanned += 1
            ident, timestamp, ingested, message, row_size, stream = row
            if match(message):
                size += row_size + EVENT_OVERHEAD
                if events and size > MAX_BYTES:
                    more = True
                    break
                events.append({"logStreamName": stream, "timestamp": timestamp,
                               "message": message, "ingestionTime": ingested,
                               "eventId": event_id(ident)})
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
