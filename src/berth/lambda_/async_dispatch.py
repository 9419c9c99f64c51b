"""The async-invoke dispatcher: claims due events from the durable queue, runs each the way
RequestResponse runs (through the `run` it is given), and applies AWS's rules: retries with
backoff after function errors, patient retries after throttles, a maximum event age, and
invocation records sent to success and failure destinations.

`decide`, `expired` and `destination_record` are the rules, pure; `AsyncDispatcher` is the
shell that does the waiting and the store work (in threads, never on the event loop).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ..api.errors import ServiceError
from ..state.store import Store
from . import async_queue as queue
from .arns import LATEST, function_arn, parse_function_ref
from .async_queue import ASYNC_PAYLOAD, QueuedEvent
from .event_config import EventInvokeSettings, lookup

log = logging.getLogger(__name__)

# How soon events enqueued by another replica, or whose dispatcher died, are noticed (s).
POLL_INTERVAL = 1.0
CLAIM_BATCH = 16
MAX_IN_FLIGHT = 64
# Throttled events wait from 1 second, doubling, up to 5 minutes (as AWS does).
THROTTLE_BASE, THROTTLE_CAP = 1.0, 300.0


class Outcome(Enum):
    SUCCESS = "Success"
    FUNCTION_ERROR = "FunctionError"    # an error result, a timeout, the runtime exiting
    THROTTLED = "Throttled"             # not run: a concurrency limit, or the host failed (5xx)
    GONE = "Gone"                       # the function, version or alias no longer exists


@dataclass(frozen=True)
class Attempt:
    """How one run of an event ended."""

    outcome: Outcome
    executed_version: str = LATEST
    function_error: str | None = None
    payload: bytes = b""

    def response(self, keep: int | None = None) -> dict[str, Any]:
        """The run as records describe it; `keep` bounds the payload kept between retries."""
        out: dict[str, Any] = {"statusCode": 200, "executedVersion": self.executed_version}
        if self.function_error:
            out["functionError"] = self.function_error
        body = self.payload if keep is None else self.payload[:keep]
        out["payload"] = body.decode(errors="replace")
        return out


class Action(Enum):
    RETRY = "retry"       # back to the queue until due_at
    FINISH = "finish"     # done: send the record to `destination`, if any
    DROP = "drop"         # nothing left to run


@dataclass(frozen=True)
class Decision:
    action: Action
    due_at: float = 0.0
    attempts: int = 0
    throttles: int = 0
    condition: str | None = None        # Success, RetriesExhausted or EventAgeExceeded
    destination: str | None = None
    invoke_count: int = 0


def expired(event: QueuedEvent, rules: EventInvokeSettings, now: float) -> Decision | None:
    """An event past its maximum age is not run again; its record goes to OnFailure."""
    if now < event.created + rules.maximum_event_age:
        return None
    return Decision(Action.FINISH, condition="EventAgeExceeded", destination=rules.on_failure,
                    invoke_count=event.attempts)


def decide(event: QueuedEvent, attempt: Attempt, rules: EventInvokeSettings, now: float,
           retry_delay: float) -> Decision:
    """What follows a run. Function errors use up attempts (waiting `retry_delay`, then twice
    that); throttles do not, and wait until the event's maximum age at most."""
    if attempt.outcome is Outcome.GONE:
        return Decision(Action.DROP)
    if attempt.outcome is Outcome.SUCCESS:
        return Decision(Action.FINISH, condition="Success", destination=rules.on_success,
                        invoke_count=event.attempts + 1)
    # A retry due after the deadline is claimed at the deadline, and then expires.
    deadline = event.created + rules.maximum_event_age
    if attempt.outcome is Outcome.THROTTLED:
        throttles = event.throttles + 1
        wait = min(THROTTLE_BASE * 2 ** min(throttles - 1, 16), THROTTLE_CAP)
        return Decision(Action.RETRY, min(now + wait, deadline), event.attempts, throttles)
    attempts = event.attempts + 1
    if attempts > rules.maximum_retry_attempts:
        return Decision(Action.FINISH, condition="RetriesExhausted",
                        destination=rules.on_failure, invoke_count=attempts)
    wait = retry_delay * 2 ** (attempts - 1)
    return Decision(Action.RETRY, min(now + wait, deadline), attempts, event.throttles)


def _json_or_text(data: bytes | str) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data if isinstance(data, str) else data.decode(errors="replace")


def destination_record(event: QueuedEvent, condition: str, invoke_count: int,
                       response: dict[str, Any] | None, now: float) -> bytes:
    """AWS's invocation record; without a run (an event that aged out unrun) it has no
    responseContext or responsePayload."""
    version = response["executedVersion"] if response else (event.qualifier or LATEST)
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": stamp,
        "requestContext": {
            "requestId": event.id,
            "functionArn": function_arn(event.region, event.account_id, event.function_name,
                                        version),
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(event.payload),
    }
    if response is not None:
        context: dict[str, Any] = {"statusCode": response["statusCode"],
                                   "executedVersion": response["executedVersion"]}
        if response.get("functionError"):
            context["functionError"] = response["functionError"]
        record["responseContext"] = context
        record["responsePayload"] = _json_or_text(response["payload"])
    return json.dumps(record).encode()


def destination_event(arn: str, source: QueuedEvent, record: bytes,
                      now: float) -> QueuedEvent | None:
    """The asynchronous invocation that delivers `record` to a Lambda function destination;
    None for any other kind of destination (berth has no SQS, SNS or EventBridge)."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "lambda":
        return None
    try:
        ref = parse_function_ref(arn)
    except ServiceError:
        return None
    region, account = ref.region or source.region, ref.account or source.account_id
    return QueuedEvent(str(uuid.uuid4()), region, account, ref.name, ref.qualifier,
                       function_arn(region, account, ref.name, ref.qualifier), record, now)


Runner = Callable[[QueuedEvent], Awaitable[Attempt]]


class AsyncDispatcher:
    """Runs the queue's due events, at most `max_in_flight` at a time, from this process.

    Every server with a function worker runs one; they share the queue through leases.
    """

    def __init__(self, store: Store, run: Runner, retry_delay: float = 60.0,
                 lease_ttl: float = 30.0, clock: Callable[[], float] = time.time,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.store, self.run, self.clock = store, run, clock
        self.retry_delay, self.lease_ttl, self.max_in_flight = retry_delay, lease_ttl, max_in_flight
        self.owner = uuid.uuid4().hex
        self._held: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """Look at the queue now (an event was just enqueued here)."""
        self._wake.set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._loop()), loop.create_task(self._renew_loop())]

    async def stop(self) -> None:
        """Stop running events and hand their leases back, so another server (or this one,
        restarted) runs them at once instead of after the lease lapses."""
        held = list(self._held)
        tasks = self._tasks + list(self._held.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.to_thread(queue.release, self.store, self.owner, held)
        except SQLAlchemyError:
            log.exception("could not release %d leases; they lapse in %.0f s", len(held),
                          self.lease_ttl)

    async def run_once(self) -> int:
        """Claim what is due now and run it to the end; how many events were claimed."""
        events, _ = await asyncio.to_thread(queue.claim, self.store, self.owner, self.clock(),
                                            self.lease_ttl, self.max_in_flight)
        await asyncio.gather(*(self._handle(event) for event in events))
        return len(events)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            timeout = POLL_INTERVAL
            room = min(self.max_in_flight - len(self._held), CLAIM_BATCH)
            if room > 0:
                try:
                    events, next_due = await asyncio.to_thread(
                        queue.claim, self.store, self.owner, self.clock(), self.lease_ttl, room)
                except (SQLAlchemyError, OSError):
                    log.exception("claiming asynchronous invocations failed")
                    events, next_due = [], None
                for event in events:
                    self._spawn(event)
                if len(events) == room:
                    continue        # there may be more due
                if next_due is not None:
                    timeout = min(timeout, max(0.0, next_due - self.clock()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            ids = list(self._held)
            if not ids:
                continue
            try:
                await asyncio.to_thread(queue.renew, self.store, self.owner, ids, self.clock(),
                                        self.lease_ttl)
            except (SQLAlchemyError, OSError):
                log.exception("renewing %d leases failed", len(ids))

    def _spawn(self, event: QueuedEvent) -> None:
        if event.id in self._held:
            return      # our own lease lapsed and we took it again: it is still running here
        self._held[event.id] = asyncio.get_running_loop().create_task(self._handle(event))

    async def _handle(self, event: QueuedEvent) -> None:
        try:
            await self._process(event)
        except Exception:
            # The lease lapses and the event runs again: a fault here must not lose it.
            log.exception("asynchronous invocation %s of %s failed; it will run again",
                          event.id, event.function_name)
        finally:
            self._held.pop(event.id, None)
            self._wake.set()

    async def _process(self, event: QueuedEvent) -> None:
        rules = await asyncio.to_thread(lookup, self.store, event.region, event.function_name,
                                        event.qualifier)
        attempt = None
        decision = expired(event, rules, self.clock())
        if decision is None:
            attempt = await self.run(event)
            decision = decide(event, attempt, rules, self.clock(), self.retry_delay)
        if decision.action is Action.RETRY:
            last = event.last_response
            if attempt is not None and attempt.outcome is Outcome.FUNCTION_ERROR:
                last = attempt.response(keep=ASYNC_PAYLOAD)
                log.info("event %s of %s failed (attempt %d); next try at %.3f", event.id,
                         event.function_name, decision.attempts, decision.due_at)
            held = await asyncio.to_thread(queue.reschedule, self.store, event.id, self.owner,
                                           decision.due_at, decision.attempts,
                                           decision.throttles, last)
        else:
            if decision.action is Action.DROP:
                log.info("event %s dropped: %s no longer exists", event.id, event.invoked_arn)
            follow_up = self._delivery(event, decision, attempt)
            held = await asyncio.to_thread(queue.complete, self.store, event.id, self.owner,
                                           follow_up)
        if not held:
            log.warning("event %s of %s: lease lost before it was settled; it runs again",
                        event.id, event.function_name)

    def _delivery(self, event: QueuedEvent, decision: Decision,
                  attempt: Attempt | None) -> QueuedEvent | None:
        if decision.condition is None or decision.destination is None:
            if decision.condition not in (None, "Success"):
                log.info("event %s of %s discarded: %s", event.id, event.function_name,
                         decision.condition)
            return None
        now = self.clock()
        response = attempt.response() if attempt is not None else event.last_response
        record = destination_record(event, decision.condition, decision.invoke_count,
                                    response, now)
        if len(record) > ASYNC_PAYLOAD:
            log.warning("record of event %s is %d bytes, over the %d allowed: not delivered "
                        "to %s", event.id, len(record), ASYNC_PAYLOAD, decision.destination)
            return None
        target = destination_event(decision.destination, event, record, now)
        if target is None:
            log.warning("destination %s of event %s is not a Lambda function: berth "
                        "delivers records to functions only", decision.destination, event.id)
        return target
