"""Running Logs Insights queries in the background and keeping their state in the store.

StartQuery writes the query's row (Scheduled) and hands it here; a worker thread marks it
Running, scans the groups' events newest first (each group in its own index order, merged),
feeds them to the engine, and writes the results with Complete. While it runs it refreshes
the row's heartbeat and statistics every `PROGRESS_S`; a StopQuery (the row no longer
Running) makes it stop at the next refresh. A query whose server died stays Running in the
store with a stale heartbeat: readers report it Failed (`effective_status`).
"""
from __future__ import annotations

import base64
import heapq
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import sqlalchemy as sa

from ..state.store import Store
from . import clock
from .cursor import EVENT_COLUMNS, scan_chunks
from .insights.engine import run
from .insights.parser import parse
from .insights.records import Record, event_record
from .retention import visible_from
from .schema import log_events, log_queries

log = logging.getLogger(__name__)

PROGRESS_S = 0.5            # how often a running query refreshes its row
STALE_MS = 30_000           # a Running query not refreshed for this long has no runner
QUEUED_MS = 5 * 60_000      # nor has one Scheduled for this long
TIMEOUT_MS = 60 * 60_000    # AWS stops a query after 60 minutes
WORKERS = 2
EVENT_OVERHEAD = 26         # bytes counted per event, as PutLogEvents counts them

_t = log_queries
_GROUP_EVENTS = sa.and_(
    log_events.c.region == sa.bindparam("region"),
    log_events.c.group_name == sa.bindparam("group"),
    log_events.c.timestamp >= visible_from(
        sa.bindparam("region"), sa.bindparam("group"),
        sa.bindparam("now", type_=sa.BigInteger), sa.bindparam("start", type_=sa.BigInteger)),
    log_events.c.timestamp <= sa.bindparam("end"))
_COLUMNS = EVENT_COLUMNS + (log_events.c.stream_name,)


class Stopped(Exception):
    """The query's row left Running (StopQuery): stop scanning."""


def pointer(group: str, event_id: int) -> str:
    """A result's @ptr: which event it shows (GetLogRecord takes it back)."""
    return base64.urlsafe_b64encode(json.dumps([group, event_id]).encode()).decode()


def parse_pointer(ptr: str) -> tuple[str, int] | None:
    try:
        group, event_id = json.loads(base64.urlsafe_b64decode(ptr.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(group, str) or not isinstance(event_id, int):
        return None
    return group, event_id


def effective_status(row: Any, now_ms: int) -> str:
    """The status readers see: a Scheduled or Running query whose runner stopped refreshing it
    has failed (its server is gone)."""
    waited = now_ms - row.heartbeat_ms
    if (row.status == "Running" and waited > STALE_MS) or (
            row.status == "Scheduled" and waited > QUEUED_MS):
        return "Failed"
    return str(row.status)


class QueryRunner:
    def __init__(self, store: Store, account_id: str) -> None:
        self.store, self.account_id = store, account_id
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, query_id: str) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="logs-query")
            self._pool.submit(self._run_logged, query_id)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _run_logged(self, query_id: str) -> None:
        try:
            self.run(query_id)
        except Stopped:
            pass
        except Exception as exc:
            # A worker has no caller to raise to: the query fails, visibly, and is logged.
            log.exception("query %s failed", query_id)
            self._finish(query_id, "Failed", None, None, str(exc))

    def run(self, query_id: str) -> None:
        with self.store.write() as conn:
            row = conn.execute(sa.select(_t).where(_t.c.id == query_id)).first()
            if row is None or row.status != "Scheduled":
                return
            conn.execute(_t.update().where(_t.c.id == query_id).values(
                status="Running", heartbeat_ms=clock.now_ms(), version=_t.c.version + 1))
        progress = _Progress(self, query_id, row.created_ms)
        records = self._records(row, progress)
        result = run(parse(row.query_string), records, row.result_limit)
        rows = []
        for fields, event in result.rows:
            out = [{"field": name, "value": value} for name, value in fields]
            if event is not None:
                out.append({"field": "@ptr", "value": pointer(*event)})
            rows.append(out)
        stats = progress.statistics(result.matched)
        self._finish(query_id, "Complete", rows, stats, None)

    def _records(self, row: Any, progress: "_Progress") -> Iterator[Record]:
        """Every visible event of the query's groups in its window, newest first."""
        now = clock.now_ms()
        streams = [self._group_events(row.region, group, row.start_ms, row.end_ms, now)
                   for group in row.group_names]
        merged = heapq.merge(*streams, key=lambda item: (-item[0], -item[1]))
        for timestamp, ident, group, raw in merged:
            progress.scanned(raw[4])
            yield event_record(f"{self.account_id}:{group}", raw[5], timestamp, raw[2], raw[3],
                               (group, ident), group.startswith("/aws/lambda/"))

    def _group_events(self, region: str, group: str, start: int, end: int, now: int
                      ) -> Iterator[tuple[int, int, str, Any]]:
        params = {"region": region, "group": group, "start": start, "end": end, "now": now}
        for chunk in scan_chunks(self.store.rows, _GROUP_EVENTS, None, False, 1000, params,
                                 _COLUMNS):
            for raw in chunk:
                yield raw[1], raw[0], group, raw

    def _finish(self, query_id: str, status: str, rows: list[Any] | None,
                stats: dict[str, float] | None, error: str | None) -> None:
        values: dict[str, Any] = {"status": status, "finished_ms": clock.now_ms(),
                                  "heartbeat_ms": clock.now_ms(), "results": rows,
                                  "error": error, "version": _t.c.version + 1}
        if stats is not None:
            values["statistics"] = stats
        with self.store.write() as conn:
            conn.execute(_t.update().where(_t.c.id == query_id, _t.c.status == "Running")
                         .values(**values))


class _Progress:
    """A running query's counts; refreshes its row (heartbeat, statistics) now and then and
    stops the scan once the row is no longer Running or the query has run too long."""

    def __init__(self, runner: QueryRunner, query_id: str, created_ms: int) -> None:
        self.runner, self.query_id, self.created_ms = runner, query_id, created_ms
        self.records = 0
        self.bytes = 0
        self.next_refresh = time.monotonic() + PROGRESS_S

    def scanned(self, size: int) -> None:
        self.records += 1
        self.bytes += size + EVENT_OVERHEAD
        if self.records % 256 == 0 and time.monotonic() >= self.next_refresh:
            self.refresh()

    def statistics(self, matched: int | None = None) -> dict[str, float]:
        stats = {"recordsScanned": float(self.records), "bytesScanned": float(self.bytes)}
        if matched is not None:
            stats["recordsMatched"] = float(matched)
        return stats

    def refresh(self) -> None:
        now = clock.now_ms()
        if now - self.created_ms > TIMEOUT_MS:
            self.runner._finish(self.query_id, "Timeout", None, self.statistics(), None)
            raise Stopped
        with self.runner.store.write() as conn:
            still = conn.execute(_t.update().where(
                _t.c.id == self.query_id, _t.c.status == "Running").values(
                heartbeat_ms=now, statistics=self.statistics(),
                version=_t.c.version + 1)).rowcount
        if not still:
            raise Stopped
        self.next_refresh = time.monotonic() + PROGRESS_S
