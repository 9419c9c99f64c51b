"""The durable queue of asynchronous invocations: one row per event, written before Invoke
answers 202, claimed under a lease by a dispatcher, then rescheduled for a retry or deleted.

A claim is a compare-and-swap on the row version, so any number of dispatchers (server
replicas sharing PostgreSQL) can poll one queue without running an event twice at once; an
event whose dispatcher died is claimed again once its lease expires: at-least-once, never lost.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..state.store import Store, VersionConflict, versioned

# AWS's quota for an asynchronous invocation's payload (and so for a destination record).
ASYNC_PAYLOAD = 262_144

lambda_async_events = versioned(
    "lambda_async_events",
    sa.Column("id", sa.String(64), primary_key=True),      # the request id, kept by retries
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("function_name", sa.String(64), nullable=False),
    # As the caller named it (None = unqualified): an alias routes again on every attempt,
    # and the event-invoke config of this qualifier governs the event.
    sa.Column("qualifier", sa.String(128)),
    sa.Column("invoked_arn", sa.String(350), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.Float, nullable=False),        # accepted at; its age counts from here
    sa.Column("due_at", sa.Float, nullable=False),         # may run from then on
    sa.Column("attempts", sa.Integer, nullable=False, default=0),   # runs that ended in error
    sa.Column("throttles", sa.Integer, nullable=False, default=0),  # runs refused for capacity
    sa.Column("last_response", sa.JSON),                   # the last failed run, for records
    # While a dispatcher runs the event: who, and until when unless it renews.
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires", sa.Float),
    sa.Index("ix_lambda_async_events_due_at", "due_at"),
)
_t = lambda_async_events


@dataclass(frozen=True)
class QueuedEvent:
    """One asynchronous invocation as the queue holds it."""

    id: str
    region: str
    account_id: str
    function_name: str
    qualifier: str | None
    invoked_arn: str
    payload: bytes
    created: float
    attempts: int = 0
    throttles: int = 0
    last_response: dict[str, Any] | None = None


def _event(row: Any) -> QueuedEvent:
    return QueuedEvent(row.id, row.region, row.account_id, row.function_name, row.qualifier,
                       row.invoked_arn, bytes(row.payload), row.created, row.attempts,
                       row.throttles, row.last_response)


def _insert(conn: sa.Connection, event: QueuedEvent, due_at: float) -> None:
    Store.insert(conn, _t, {
        "id": event.id, "region": event.region, "account_id": event.account_id,
        "function_name": event.function_name, "qualifier": event.qualifier,
        "invoked_arn": event.invoked_arn, "payload": event.payload, "created": event.created,
        "due_at": due_at, "attempts": event.attempts, "throttles": event.throttles,
        "last_response": event.last_response})


def enqueue(store: Store, event: QueuedEvent) -> None:
    """Make `event` durable, due at once. One short write transaction."""
    with store.write() as conn:
        enqueue_in(conn, event)


def enqueue_in(conn: sa.Connection, event: QueuedEvent) -> None:
    """Make `event` durable, due at once, in the caller's write transaction: it commits with
    the change that produced it (a producer's outbox row), or not at all."""
    _insert(conn, event, event.created)


def claimable(now: float) -> sa.ColumnElement[bool]:
    return sa.and_(_t.c.due_at <= now,
                   sa.or_(_t.c.lease_expires.is_(None), _t.c.lease_expires < now))


def claim(store: Store, owner: str, now: float, lease_ttl: float, limit: int
          ) -> tuple[list[QueuedEvent], float | None]:
    """Lease up to `limit` due events to `owner`; also when the next unleased one falls due.

    Candidates are read outside any write transaction (an idle queue costs no write lock),
    then each is taken by compare-and-swap on the version read: of several dispatchers that
    saw the same event, exactly one takes it.
    """
    with store.read() as conn:
        rows = conn.execute(sa.select(_t).where(claimable(now))
                            .order_by(_t.c.due_at).limit(limit)).all()
        next_due = conn.execute(sa.select(sa.func.min(_t.c.due_at)).where(
            _t.c.lease_owner.is_(None), _t.c.due_at > now)).scalar()
    if not rows:
        return [], next_due
    taken: list[QueuedEvent] = []
    with store.write() as conn:
        for row in rows:
            try:
                Store.cas_update(conn, _t, {"id": row.id}, row.version,
                                 {"lease_owner": owner, "lease_expires": now + lease_ttl})
            except VersionConflict:
                continue    # another dispatcher took it (or it finished) since the read
            taken.append(_event(row))
    return taken, next_due


def renew(store: Store, owner: str, ids: list[str], now: float, lease_ttl: float) -> int:
    """Extend `owner`'s leases on `ids`; the count still held.

    The version moves too, so a dispatcher that read the row while the lease had lapsed
    cannot take it over after this renewal.
    """
    if not ids:
        return 0
    with store.write() as conn:
        return int(conn.execute(_t.update().where(_t.c.id.in_(ids), _t.c.lease_owner == owner)
                                .values(lease_expires=now + lease_ttl,
                                        version=_t.c.version + 1)).rowcount)


def complete(store: Store, event_id: str, owner: str,
             follow_up: QueuedEvent | None = None) -> bool:
    """Remove a finished event and, in the same transaction, enqueue its destination's event.

    False (and nothing done) if `owner` no longer holds the event's lease.
    """
    with store.write() as conn:
        gone = conn.execute(_t.delete().where(_t.c.id == event_id,
                                              _t.c.lease_owner == owner)).rowcount
        if gone and follow_up is not None:
            _insert(conn, follow_up, follow_up.created)
    return bool(gone)


def reschedule(store: Store, event_id: str, owner: str, due_at: float, attempts: int,
               throttles: int, last_response: dict[str, Any] | None) -> bool:
    """Give the event back to the queue, due again at `due_at`; False if the lease was lost."""
    with store.write() as conn:
        return bool(conn.execute(
            _t.update().where(_t.c.id == event_id, _t.c.lease_owner == owner)
            .values(due_at=due_at, attempts=attempts, throttles=throttles,
                    last_response=last_response, lease_owner=None, lease_expires=None,
                    version=_t.c.version + 1)).rowcount)


def release(store: Store, owner: str, ids: list[str]) -> None:
    """Drop `owner`'s leases on `ids` (a server stopping): others may claim them at once."""
    if not ids:
        return
    with store.write() as conn:
        conn.execute(_t.update().where(_t.c.id.in_(ids), _t.c.lease_owner == owner)
                     .values(lease_owner=None, lease_expires=None, version=_t.c.version + 1))
