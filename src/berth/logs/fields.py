"""What fields a group's events have, as Logs Insights discovers them: GetLogGroupFields (the
fields of recent events, with the share of events that have each) and GetLogRecord (every
field of the one event a query result's @ptr points at)."""
from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from . import clock
from .arns import resolve_group
from .groups import get_group
from .insights.records import SYSTEM_FIELDS, event_record
from .insights.values import text
from .query_runner import parse_pointer
from .retention import cutoff_ms
from .schema import log_events

WINDOW_MS = 15 * 60_000     # GetLogGroupFields looks at the events of the 15 minutes before
SAMPLE = 10_000             # ... at most this many of them


class LogFields:
    store: Store

    def get_log_group_fields(self, ctx: RequestContext, req: dict[str, Any]
                             ) -> dict[str, Any]:
        group = resolve_group(ctx, req)
        end = req["time"] * 1000 if req.get("time") is not None else clock.now_ms()
        e = log_events.c
        with self.store.read() as conn:
            retention = get_group(conn, ctx.region, group).retention_days
            start = max(end - WINDOW_MS, cutoff_ms(retention) or 0)
            rows = conn.execute(
                sa.select(e.id, e.stream_name, e.timestamp, e.ingestion_time, e.message)
                .where(e.region == ctx.region, e.group_name == group,
                       e.timestamp >= start, e.timestamp <= end)
                .order_by(e.timestamp.desc(), e.id.desc()).limit(SAMPLE)).all()
        counts: Counter[str] = Counter()
        lambda_group = group.startswith("/aws/lambda/")
        for row in rows:
            record = event_record("", row.stream_name, row.timestamp, row.ingestion_time,
                                  row.message, row.id, lambda_group)
            record.extract()
            counts.update(record.keys())
        fields = [{"name": name, "percent": round(100 * n / len(rows))}
                  for name, n in counts.items()] if rows else []
        fields.sort(key=lambda f: (f["name"] not in SYSTEM_FIELDS, f["name"]))
        return {"logGroupFields": fields}

    @quick_read
    def get_log_record(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        found = parse_pointer(req["logRecordPointer"])
        if found is None:
            raise ServiceError("InvalidParameterException",
                               "The specified log record pointer is invalid.")
        group, event_id = found
        e = log_events.c
        with self.store.read() as conn:
            row = conn.execute(sa.select(e.stream_name, e.timestamp, e.ingestion_time,
                                         e.message).where(
                e.id == event_id, e.region == ctx.region, e.group_name == group)).first()
        if row is None:
            raise ServiceError("ResourceNotFoundException",
                               "The specified log record does not exist.")
        record = event_record(f"{ctx.account_id}:{group}", row.stream_name, row.timestamp,
                              row.ingestion_time, row.message, (group, event_id),
                              group.startswith("/aws/lambda/"))
        record.extract()
        return {"logRecord": {name: text(value) or "" for name, value in record.items()
                              if value is not None}}
