"""GetLogEvents pages: where a page ends (the event limit, the 1 MB cap) when its events come
from several store queries, and that following the tokens reads every event exactly once."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from logs_harness import Clock, Logs

from berth.api.errors import ServiceError
from berth.config import Settings
from berth.logs.batch import EVENT_OVERHEAD, MAX_BYTES
from berth.logs.schema import log_groups
from berth.logs.service import LogsService
from berth.state.store import Store

GROUP, STREAM = "/pages", "s"


def fill(logs: Any, clock: Clock, count: int, message_bytes: int) -> list[str]:
    """`count` events of `message_bytes` each, one per millisecond, in batches under 1 MB."""
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    start = clock.now - count
    per_batch = max(1, min(10_000, MAX_BYTES // (message_bytes + EVENT_OVERHEAD)))
    messages = [f"{i:06d}".ljust(message_bytes, "x") for i in range(count)]
    for first in range(0, count, per_batch):
        logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=[
            {"timestamp": start + i, "message": messages[i]}
            for i in range(first, min(count, first + per_batch))])
    return messages


def read(logs: Any, **kw: Any) -> dict[str, Any]:
    return logs.get_log_events(logGroupName=GROUP, logStreamName=STREAM, **kw)


def texts(page: dict[str, Any]) -> list[str]:
    return [e["message"] for e in page["events"]]


def forward_pages(logs: Any, **kw: Any) -> list[list[str]]:
    """Every page from the head onward, until the token comes back unchanged."""
    pages = []
    page = read(logs, startFromHead=True, **kw)
    for _ in range(100):
        pages.append(texts(page))
        token = page["nextForwardToken"]
        page = read(logs, nextToken=token, **kw)
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            return pages
    raise AssertionError("paging did not end")


def test_a_page_spans_several_store_queries(logs: Any, fake_clock: Clock) -> None:
    messages = fill(logs, fake_clock, 2_500, 8)  # the store is read 1,000 events at a time
    assert texts(read(logs, startFromHead=True)) == messages
    assert texts(read(logs, limit=1_500)) == messages[-1_500:]  # backward, still in order
    assert [len(p) for p in forward_pages(logs, limit=1_200)] == [1_200, 1_200, 100]


def test_a_page_stops_at_one_megabyte(logs: Any, fake_clock: Clock) -> None:
    messages = fill(logs, fake_clock, 25, 100_000)
    per_page = MAX_BYTES // (100_000 + EVENT_OVERHEAD)  # 10
    pages = forward_pages(logs)
    assert [len(p) for p in pages] == [per_page, per_page, 25 - 2 * per_page]
    assert [m for page in pages for m in page] == messages
    # The limit, when lower, ends the page first.
    assert [len(p) for p in forward_pages(logs, limit=4)] == [4] * 6 + [1]


def test_the_megabyte_cap_falls_inside_a_later_store_query(logs: Any,
                                                          fake_clock: Clock) -> None:
    messages = fill(logs, fake_clock, 1_100, 1_000)
    per_page = MAX_BYTES // (1_000 + EVENT_OVERHEAD)  # 1,022: past the first 1,000-row read
    pages = forward_pages(logs)
    assert [len(p) for p in pages] == [per_page, 1_100 - per_page]
    assert [m for page in pages for m in page] == messages
    backward = read(logs)
    assert texts(backward) == messages[-per_page:]


@pytest.fixture(params=["sqlite", "postgres"])
def any_logs(request: pytest.FixtureRequest, tmp_path: Path,
             fake_clock: Clock) -> Iterator[Logs]:
    """The service on either store: GetLogEvents applies retention in its SQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'berth.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    store = Store(url)
    service = LogsService(store, Settings(data_dir=tmp_path))
    store.create_all()
    yield Logs(service)
    with store.write() as conn:  # the PostgreSQL database outlives the test
        conn.execute(log_groups.delete().where(log_groups.c.name == GROUP))
    store.dispose()


def test_retention_bounds_pages_on_both_stores(any_logs: Logs, fake_clock: Clock) -> None:
    day = 86_400_000
    t0 = fake_clock.now
    any_logs.create_log_group(logGroupName=GROUP)
    any_logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    any_logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=[
        {"timestamp": t0 - 20 * 3_600_000, "message": "older"},
        {"timestamp": t0 - 3_600_000, "message": "newer"}])
    any_logs.put_retention_policy(logGroupName=GROUP, retentionInDays=3653)  # > 2**31 ms
    assert texts(read(any_logs, startFromHead=True)) == ["older", "newer"]
    any_logs.put_retention_policy(logGroupName=GROUP, retentionInDays=1)
    fake_clock.now += 6 * 3_600_000  # "older" is 26 hours old: hidden, not yet purged
    assert texts(read(any_logs, startFromHead=True)) == ["newer"]
    assert texts(read(any_logs)) == ["newer"]
    # A window before the cutoff holds nothing; its tokens start at the cutoff.
    empty = read(any_logs, startFromHead=True, endTime=t0 - 2 * 3_600_000)
    assert empty["events"] == []
    cutoff = fake_clock.now - day
    assert empty["nextForwardToken"] == f"f/{cutoff:020d}{0:020d}"
    fake_clock.now += day
    assert read(any_logs, startFromHead=True)["events"] == []
    with pytest.raises(ServiceError) as info:
        any_logs.get_log_events(logGroupName=GROUP, logStreamName="missing")
    assert info.value.code == "ResourceNotFoundException"
