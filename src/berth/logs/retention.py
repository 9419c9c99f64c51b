"""Retention: which events a group's policy has expired, and the purge that deletes them.

Reads hide expired events on their own (`cutoff_ms`), so correctness never waits for a purge;
the purge only reclaims space. It runs when a policy is put and periodically from `Purger`.
Purging is idempotent, so several server replicas running it at once do no harm.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import sqlalchemy as sa

from ..state.store import Store
from . import clock
from .schema import log_events, log_groups, log_streams

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


def cutoff_ms(retention_days: int | None, now: int | None = None) -> int | None:
    """Events with a timestamp before this have expired; None when the group keeps all."""
    if not retention_days:
        return None
    return (clock.now_ms() if now is None else now) - retention_days * DAY_MS


def visible_from(region: Any, group: Any, now: Any, start: Any) -> sa.ColumnElement[Any]:
    """`max(start, cutoff_ms(group's retention, now) or 0)` computed by the database, so a
    statement reading events applies its group's policy without a lookup of its own."""
    days = sa.cast(log_groups.c.retention_days, sa.BigInteger)  # days * DAY_MS overflows int4
    cutoff = sa.func.coalesce(
        sa.select(now - days * DAY_MS)
        .where(log_groups.c.region == region, log_groups.c.name == group,
               log_groups.c.retention_days > 0)
        .scalar_subquery(), 0)
    return sa.case((cutoff > start, cutoff), else_=start)


def purge_expired(store: Store, region: str | None = None, group: str | None = None) -> int:
    """Delete expired events of every group with a retention policy (or just the one given).

    One transaction per group keeps each write short, so ingestion is never held up for long.
    Returns the number of events deleted.
    """
    q = sa.select(log_groups.c.region, log_groups.c.name, log_groups.c.retention_days).where(
        log_groups.c.retention_days.is_not(None))
    if region is not None:
        q = q.where(log_groups.c.region == region)
    if group is not None:
        q = q.where(log_groups.c.name == group)
    with store.read() as conn:
        targets = list(conn.execute(q))
    deleted = 0
    for row in targets:
        deleted += _purge_group(store, row.region, row.name, row.retention_days)
    return deleted


def _purge_group(store: Store, region: str, group: str, days: int) -> int:
    cutoff = cutoff_ms(days)
    expired = sa.and_(log_events.c.region == region, log_events.c.group_name == group,
                      log_events.c.timestamp < cutoff)
    with store.write() as conn:
        per_stream = conn.execute(
            sa.select(log_events.c.stream_name, sa.func.count(), sa.func.sum(log_events.c.size))
            .where(expired).group_by(log_events.c.stream_name)).all()
        if not per_stream:
            return 0
        conn.execute(log_events.delete().where(expired))
        for stream, _count, size in per_stream:
            store.bump(conn, log_streams,
                       {"region": region, "group_name": group, "name": stream},
                       {"stored_bytes": sa.func.coalesce(log_streams.c.stored_bytes, 0)
                        - int(size or 0)})
    return sum(int(count) for _stream, count, _size in per_stream)


class Purger:
    """A daemon thread that purges expired events every `interval` seconds until stopped."""

    def __init__(self, store: Store, interval: float) -> None:
        self.store, self.interval = store, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="logs-retention-purge",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                purged = purge_expired(self.store)
            except Exception:
                # A background loop has no caller to raise to: log, and try again next round.
                log.exception("retention purge failed")
                continue
            if purged:
                log.info("retention purge deleted %d expired events", purged)
