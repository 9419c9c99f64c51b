"""The rules a PutLogEvents batch must satisfy, as CloudWatch Logs states them.

Pure: given the events, the time and the group's retention, decide which slice of the batch is
stored and which ends are rejected, or raise the error that refuses the whole batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..api.errors import ServiceError
from .retention import DAY_MS, cutoff_ms

MAX_EVENTS = 10_000
MAX_BYTES = 1_048_576
EVENT_OVERHEAD = 26  # bytes AWS counts per event on top of its UTF-8 message
MAX_AGE_MS = 14 * DAY_MS
MAX_AHEAD_MS = 2 * 3_600_000
MAX_SPAN_MS = DAY_MS


@dataclass(frozen=True)
class Batch:
    """`events[start:end]` are stored; `rejected` is PutLogEvents' rejectedLogEventsInfo."""

    start: int
    end: int
    sizes: list[int]
    rejected: dict[str, int] = field(default_factory=dict)


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def check_batch(events: Sequence[dict[str, Any]], now: int,
                retention_days: int | None) -> Batch:
    if len(events) > MAX_EVENTS:
        raise invalid(f"The batch of log events exceeds the maximum of {MAX_EVENTS} events.")
    sizes = [len(e["message"].encode("utf-8", "surrogatepass")) for e in events]
    total = sum(sizes) + EVENT_OVERHEAD * len(events)
    if total > MAX_BYTES:
        raise invalid(f"Upload too large: {total} bytes exceeds limit of {MAX_BYTES}")
    stamps = [int(e["timestamp"]) for e in events]
    if any(b < a for a, b in zip(stamps, stamps[1:])):
        raise invalid("Log events in a single PutLogEvents request must be in "
                      "chronological order.")
    # The batch is sorted, so each kind of rejection is a run at one end of it.
    too_old_before = now - MAX_AGE_MS
    expired_before = max(too_old_before, cutoff_ms(retention_days, now) or too_old_before)
    too_new_after = now + MAX_AHEAD_MS
    n = len(stamps)
    too_old = _count_while(stamps, lambda t: t < too_old_before)
    expired = too_old + _count_while(stamps[too_old:], lambda t: t < expired_before)
    too_new = n - _count_while(stamps[::-1], lambda t: t > too_new_after)
    too_new = max(too_new, expired)
    if too_new > expired and stamps[too_new - 1] - stamps[expired] > MAX_SPAN_MS:
        raise invalid("The batch of log events in a single PutLogEvents request cannot span "
                      "more than 24 hours.")
    rejected: dict[str, int] = {}
    if too_old:
        rejected["tooOldLogEventEndIndex"] = too_old
    if expired > too_old:
        rejected["expiredLogEventEndIndex"] = expired
    if too_new < n:
        rejected["tooNewLogEventStartIndex"] = too_new
    return Batch(expired, too_new, sizes, rejected)


def _count_while(values: Sequence[int], pred: Callable[[int], bool]) -> int:
    count = 0
    for v in values:
        if not pred(v):
            break
        count += 1
    return count
