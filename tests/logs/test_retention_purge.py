"""Retention in-process, with the clock moved forward: reads hide, purges delete."""
from __future__ import annotations

import sqlalchemy as sa

from berth.logs.schema import log_events
from logs_harness import Clock, Logs

HOUR = 3_600_000


def setup(logs: Logs, now: int) -> None:
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[
        {"timestamp": now - 6 * HOUR, "message": "older"},
        {"timestamp": now - HOUR, "message": "newer"}])


def messages(logs: Logs) -> tuple[list[str], list[str]]:
    got = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True)
    found = logs.filter_log_events(logGroupName="g")
    return [e["message"] for e in got["events"]], [e["message"] for e in found["events"]]


def stored(logs: Logs) -> int:
    with logs.service.store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(log_events)).scalar())


def test_events_that_age_past_retention_are_hidden_before_any_purge(
        logs: Logs, fake_clock: Clock) -> None:
    setup(logs, fake_clock.now)
    logs.put_retention_policy(logGroupName="g", retentionInDays=1)
    assert messages(logs) == (["older", "newer"], ["older", "newer"])
    fake_clock.now += 20 * HOUR  # "older" is now 26 hours old, "newer" 21
    assert messages(logs) == (["newer"], ["newer"])
    assert stored(logs) == 2  # hidden, not yet deleted


def test_purge_deletes_expired_events_and_their_bytes(logs: Logs, fake_clock: Clock) -> None:
    setup(logs, fake_clock.now)
    logs.put_retention_policy(logGroupName="g", retentionInDays=1)
    fake_clock.now += 20 * HOUR
    assert logs.service.purge_expired() == 1
    assert stored(logs) == 1
    stream = logs.describe_log_streams(logGroupName="g")["logStreams"][0]
    assert stream["storedBytes"] == len("newer")
    assert logs.describe_log_groups()["logGroups"][0]["storedBytes"] == len("newer")
    assert logs.service.purge_expired() == 0  # idempotent
    # Without a policy nothing expires, however old.
    logs.delete_retention_policy(logGroupName="g")
    fake_clock.advance_days(13)
    assert logs.service.purge_expired() == 0
    assert messages(logs) == (["newer"], ["newer"])


def test_background_purger_runs_until_stopped(logs: Logs, fake_clock: Clock) -> None:
    from berth.logs.retention import Purger
    setup(logs, fake_clock.now)
    logs.put_retention_policy(logGroupName="g", retentionInDays=1)
    fake_clock.advance_days(2)
    purger = Purger(logs.service.store, interval=0.01)
    purger.start()
    try:
        import time
        deadline = time.monotonic() + 10
        while stored(logs) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        purger.stop()
    assert stored(logs) == 0
    assert purger._thread is None
