"""The async-invoke rules (retries, backoff, throttles, maximum event age, invocation records)
and the dispatcher driving them over a real SQLite store with an injected clock."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from berth.lambda_ import async_queue as q
from berth.lambda_.async_dispatch import (THROTTLE_CAP, Action, AsyncDispatcher, Attempt,
                                          Outcome, decide, destination_record, expired)
from berth.lambda_.async_queue import QueuedEvent, lambda_async_events
from berth.lambda_.event_config import EventInvokeSettings
from berth.lambda_.schema import lambda_event_invoke_configs, lambda_functions
from berth.state.store import Store

REGION, ACCOUNT = "us-east-1", "000000000000"
DLQ = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:dlq"
FAILED = Attempt(Outcome.FUNCTION_ERROR, "$LATEST", "Unhandled",
                 b'{"errorMessage": "boom", "errorType": "RuntimeError"}')


def event(created: float = 1000.0, **kw: Any) -> QueuedEvent:
    fields: dict[str, Any] = dict(id=str(uuid.uuid4()), region=REGION, account_id=ACCOUNT,
                                  function_name="src", qualifier=None,
                                  invoked_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:src",
                                  payload=b'{"n": 1}', created=created)
    fields.update(kw)
    return QueuedEvent(**fields)


# --- the rules, pure ---------------------------------------------------------------------

def test_function_errors_retry_with_doubling_delay_then_exhaust() -> None:
    rules = EventInvokeSettings(maximum_retry_attempts=2, on_failure=DLQ)
    first = decide(event(), FAILED, rules, now=1000.0, retry_delay=60)
    assert (first.action, first.due_at, first.attempts) == (Action.RETRY, 1060.0, 1)
    second = decide(event(attempts=1), FAILED, rules, now=1060.0, retry_delay=60)
    assert (second.action, second.due_at, second.attempts) == (Action.RETRY, 1180.0, 2)
    third = decide(event(attempts=2), FAILED, rules, now=1180.0, retry_delay=60)
    assert (third.action, third.condition, third.destination, third.invoke_count) == (
        Action.FINISH, "RetriesExhausted", DLQ, 3)


def test_zero_retries_finish_after_one_run() -> None:
    rules = EventInvokeSettings(maximum_retry_attempts=0)
    d = decide(event(), FAILED, rules, now=1000.0, retry_delay=60)
    assert (d.action, d.condition, d.invoke_count, d.destination) == (
        Action.FINISH, "RetriesExhausted", 1, None)


def test_throttles_use_no_attempts_and_back_off_to_a_cap() -> None:
    rules = EventInvokeSettings(maximum_retry_attempts=0)
    throttled = Attempt(Outcome.THROTTLED)
    d = decide(event(throttles=0), throttled, rules, now=1000.0, retry_delay=60)
    assert (d.action, d.attempts, d.throttles, d.due_at) == (Action.RETRY, 0, 1, 1001.0)
    d = decide(event(throttles=3), throttled, rules, now=1000.0, retry_delay=60)
    assert (d.attempts, d.throttles, d.due_at) == (0, 4, 1008.0)
    d = decide(event(throttles=60), throttled, rules, now=1000.0, retry_delay=60)
    assert d.due_at == 1000.0 + THROTTLE_CAP


def test_retries_never_wait_past_the_maximum_age() -> None:
    rules = EventInvokeSettings(maximum_event_age=100)
    d = decide(event(created=1000.0), FAILED, rules, now=1090.0, retry_delay=60)
    assert d.due_at == 1100.0
    assert expired(event(created=1000.0), rules, 1099.9) is None
    aged = expired(event(created=1000.0, attempts=1), rules, 1100.0)
    assert aged is not None
    assert (aged.action, aged.condition, aged.invoke_count) == (
        Action.FINISH, "EventAgeExceeded", 1)


def test_success_and_gone() -> None:
    rules = EventInvokeSettings(on_success="arn:aws:lambda:us-east-1:000000000000:function:ok")
    d = decide(event(attempts=1), Attempt(Outcome.SUCCESS, "3", None, b"{}"), rules, 1.0, 60)
    assert (d.action, d.condition, d.destination, d.invoke_count) == (
        Action.FINISH, "Success", rules.on_success, 2)
    assert decide(event(), Attempt(Outcome.GONE), rules, 1.0, 60).action is Action.DROP


def test_record_shape() -> None:
    ev = event(payload=b'{"order": 7}')
    raw = destination_record(ev, "RetriesExhausted", 3, FAILED.response(), 1_700_000_000.25)
    assert json.loads(raw) == {
        "version": "1.0",
        "timestamp": "2023-11-14T22:13:20.250Z",
        "requestContext": {"requestId": ev.id,
                           "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:src:"
                                          "$LATEST",
                           "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": {"order": 7},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                            "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "boom", "errorType": "RuntimeError"},
    }
    unrun = json.loads(destination_record(ev, "EventAgeExceeded", 0, None, 0.0))
    assert "responseContext" not in unrun and "responsePayload" not in unrun
    text = json.loads(destination_record(ev, "Success", 1, Attempt(
        Outcome.SUCCESS, "2", None, b"plain text").response(), 0.0))
    assert text["responsePayload"] == "plain text"
    assert "functionError" not in text["responseContext"]
    assert text["requestContext"]["functionArn"].endswith(":src:2")


# --- the dispatcher over a real store, with an injected clock -----------------------------

class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path: Any) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'berth.db'}")
    s.create_all()
    yield s
    s.dispose()


def configure(store: Store, **columns: Any) -> None:
    with store.write() as conn:
        Store.insert(conn, lambda_functions, {"region": REGION, "name": "src",
                                              "created": 0.0, "tags": {}})
        Store.insert(conn, lambda_event_invoke_configs, {
            "region": REGION, "function_name": "src", "qualifier": "$LATEST",
            "last_modified": 0.0, **columns})


def queued(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(sa.select(lambda_async_events)))


def test_event_older_than_its_maximum_age_goes_to_on_failure_unrun(store: Store) -> None:
    configure(store, maximum_event_age=60, on_failure=DLQ)
    clock, runs = Clock(1000.0), []

    async def run(ev: QueuedEvent) -> Attempt:
        runs.append(clock.t)
        return FAILED

    async def scenario() -> None:
        d = AsyncDispatcher(store, run, retry_delay=40, lease_ttl=30, clock=clock)
        ev = event(created=1000.0)
        q.enqueue(store, ev)
        assert await d.run_once() == 1             # attempt 1 fails: due again at 1040
        clock.t = 1039.0
        assert await d.run_once() == 0
        clock.t = 1040.0
        assert await d.run_once() == 1             # attempt 2 fails: 80 s more is past 1060
        assert [r.due_at for r in queued(store)] == [1060.0]
        clock.t = 1060.0
        assert await d.run_once() == 1             # aged out: not run again
        assert runs == [1000.0, 1040.0]
        [dest] = queued(store)
        assert (dest.function_name, dest.invoked_arn, dest.created) == ("dlq", DLQ, 1060.0)
        record = json.loads(dest.payload)
        assert record["requestContext"] == {
            "requestId": ev.id, "condition": "EventAgeExceeded", "approximateInvokeCount": 2,
            "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:src:$LATEST"}
        assert record["requestPayload"] == {"n": 1}
        assert record["responseContext"]["functionError"] == "Unhandled"
        assert record["responsePayload"]["errorMessage"] == "boom"

    asyncio.run(scenario())


def test_throttled_event_runs_later_with_zero_retries(store: Store) -> None:
    configure(store, maximum_retry_attempts=0, on_failure=DLQ)
    clock, outcomes = Clock(1000.0), [Attempt(Outcome.THROTTLED)] * 3

    async def run(ev: QueuedEvent) -> Attempt:
        return outcomes.pop(0) if outcomes else Attempt(Outcome.SUCCESS, "$LATEST", None, b"1")

    async def scenario() -> None:
        d = AsyncDispatcher(store, run, retry_delay=40, lease_ttl=30, clock=clock)
        q.enqueue(store, event(created=1000.0))
        for step in (0.0, 1.0, 2.0):                # throttled at 0, 1, 3; runs at 7
            clock.t += step
            assert await d.run_once() == 1
            assert await d.run_once() == 0
        assert queued(store) and queued(store)[0].attempts == 0
        clock.t += 4.0
        assert await d.run_once() == 1
        assert queued(store) == []                   # succeeded; no OnSuccess, no record

    asyncio.run(scenario())


def test_running_dispatcher_wakes_on_enqueue_and_releases_on_stop(store: Store) -> None:
    async def scenario() -> None:
        began = asyncio.Event()
        hold = asyncio.Event()

        async def run(ev: QueuedEvent) -> Attempt:
            began.set()
            await hold.wait()                        # never set: stop() cancels the run
            return Attempt(Outcome.SUCCESS)

        d = AsyncDispatcher(store, run, retry_delay=1, lease_ttl=300)
        await d.start()
        q.enqueue(store, event(created=time.time()))
        d.wake()
        await asyncio.wait_for(began.wait(), 5)
        assert queued(store)[0].lease_owner == d.owner
        await d.stop()
        [row] = queued(store)
        assert (row.lease_owner, row.lease_expires, row.attempts) == (None, None, 0)

    asyncio.run(scenario())
