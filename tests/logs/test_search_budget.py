"""FilterLogEvents pagination when a scan stops early (berth.logs.search)."""
from __future__ import annotations

import pytest

from berth.logs import search
from logs_harness import Clock, Logs


@pytest.fixture
def busy_group(logs: Logs, fake_clock: Clock) -> Logs:
    logs.create_log_group(logGroupName="g")
    for stream in ("a", "b"):
        logs.create_log_stream(logGroupName="g", logStreamName=stream)
    now = fake_clock.now
    for i, stream in enumerate(["a", "b"] * 25):
        logs.put_log_events(logGroupName="g", logStreamName=stream, logEvents=[
            {"timestamp": now - 1000 + i, "message": f"event {i} {'hit' if i % 23 == 0 else ''}"}])
    return logs


def pages(logs: Logs, **req: object) -> list[dict[str, object]]:
    out, token = [], None
    while True:
        page = logs.filter_log_events(logGroupName="g", **req,
                                      **({"nextToken": token} if token else {}))
        out.append(page)
        token = page.get("nextToken")
        if not token:
            return out


def test_scan_budget_answers_partial_pages_and_resumes(
        busy_group: Logs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "SCAN_BUDGET", 10)
    got = pages(busy_group, filterPattern="hit")
    assert len(got) >= 5  # 50 rows at 10 per request
    assert any(not p["events"] for p in got)  # a stretch with no match still moves on
    messages = [e["message"] for p in got for e in p["events"]]
    assert messages == [f"event {i} hit" for i in range(0, 50, 23)]


def test_limit_pages_are_exact_without_a_pattern(busy_group: Logs) -> None:
    got = pages(busy_group, limit=10)
    assert [len(p["events"]) for p in got] == [10] * 5
    ids = [e["eventId"] for p in got for e in p["events"]]
    assert len(set(ids)) == 50 and ids == sorted(ids)
