"""The durable async-invocation queue on SQLite and PostgreSQL: leases, their lapse and renewal,
settling only by the lease holder, and claims by rival dispatchers that never overlap."""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from postgres import private_database

from berth.lambda_ import async_queue as q
from berth.lambda_.async_queue import QueuedEvent, lambda_async_events
from berth.state.store import Store

ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"


def event(created: float = 100.0, name: str = "f", payload: bytes = b"{}") -> QueuedEvent:
    return QueuedEvent(str(uuid.uuid4()), "us-east-1", "000000000000", name, None, ARN,
                       payload, created)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'berth.db'}"
        return
    # A database of the test's own: claims take whatever is due in the whole table.
    with private_database(str(request.getfixturevalue("postgres_url")), "q") as private:
        yield private


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = Store(url)
    s.create_all()
    yield s
    s.dispose()


def rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(sa.select(lambda_async_events)))


def test_enqueued_event_is_claimed_once_while_leased(store: Store) -> None:
    ev = event(payload=b'{"k": 1}')
    q.enqueue(store, ev)
    taken, _ = q.claim(store, "a", now=100.0, lease_ttl=30, limit=10)
    assert taken == [ev]
    assert q.claim(store, "b", now=110.0, lease_ttl=30, limit=10)[0] == []
    assert q.claim(store, "a", now=129.0, lease_ttl=30, limit=10)[0] == []


def test_lapsed_lease_lets_another_dispatcher_take_it(store: Store) -> None:
    ev = event()
    q.enqueue(store, ev)
    assert q.claim(store, "dead", 100.0, 30, 10)[0] == [ev]
    taken, _ = q.claim(store, "b", 131.0, 30, 10)
    assert [e.id for e in taken] == [ev.id]
    # The first holder, back from the dead, can no longer settle it; the new one can.
    assert not q.complete(store, ev.id, "dead")
    assert not q.reschedule(store, ev.id, "dead", 200.0, 1, 0, None)
    assert q.complete(store, ev.id, "b")
    assert rows(store) == []


def test_renewal_keeps_the_lease(store: Store) -> None:
    ev = event()
    q.enqueue(store, ev)
    q.claim(store, "a", 100.0, 10, 10)
    assert q.renew(store, "a", [ev.id], 108.0, 10) == 1
    assert q.renew(store, "b", [ev.id], 108.0, 10) == 0
    assert q.claim(store, "b", 115.0, 10, 10)[0] == []
    assert len(q.claim(store, "b", 118.5, 10, 10)[0]) == 1


def test_reschedule_hides_the_event_until_due_and_keeps_its_history(store: Store) -> None:
    ev = event()
    q.enqueue(store, ev)
    q.claim(store, "a", 100.0, 30, 10)
    last = {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled",
            "payload": '{"errorMessage": "boom"}'}
    assert q.reschedule(store, ev.id, "a", 160.0, 1, 2, last)
    taken, next_due = q.claim(store, "b", 150.0, 30, 10)
    assert taken == [] and next_due == 160.0
    taken, _ = q.claim(store, "b", 160.0, 30, 10)
    assert len(taken) == 1
    got = taken[0]
    assert (got.id, got.attempts, got.throttles, got.last_response) == (ev.id, 1, 2, last)
    assert (got.created, got.payload) == (ev.created, ev.payload)


def test_complete_enqueues_the_follow_up_atomically(store: Store) -> None:
    ev, dest = event(), event(created=120.0, name="dlq", payload=b'{"record": 1}')
    q.enqueue(store, ev)
    q.claim(store, "a", 100.0, 30, 10)
    assert not q.complete(store, ev.id, "someone-else", dest)
    assert [r.id for r in rows(store)] == [ev.id]      # neither deleted nor followed up
    assert q.complete(store, ev.id, "a", dest)
    left = rows(store)
    assert [(r.id, r.function_name, bytes(r.payload), r.due_at) for r in left] == [
        (dest.id, "dlq", b'{"record": 1}', 120.0)]


def test_release_hands_events_back_at_once(store: Store) -> None:
    ev = event()
    q.enqueue(store, ev)
    q.claim(store, "a", 100.0, 300, 10)
    q.release(store, "a", [ev.id])
    assert [e.id for e in q.claim(store, "b", 101.0, 30, 10)[0]] == [ev.id]


def test_rival_dispatchers_never_claim_the_same_event(url: str, store: Store) -> None:
    events = [event(created=100.0 + i / 100) for i in range(40)]
    for ev in events:
        q.enqueue(store, ev)
    claimed: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def dispatcher(owner: str) -> None:
        replica = Store(url)           # each its own engine and pool, as separate servers
        deadline = time.monotonic() + 15
        try:
            while time.monotonic() < deadline:
                taken, _ = q.claim(replica, owner, 200.0, 60, 3)
                with lock:
                    claimed.extend(e.id for e in taken)
                    if len(claimed) >= len(events):
                        return
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            replica.dispose()

    threads = [threading.Thread(target=dispatcher, args=(f"d{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    assert sorted(claimed) == sorted(e.id for e in events)   # each exactly once
    assert {r.lease_owner for r in rows(store)} <= {"d0", "d1", "d2", "d3"}
