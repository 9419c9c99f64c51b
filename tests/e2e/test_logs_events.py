"""PutLogEvents, GetLogEvents and retention against a real server, through boto3 and the CLI."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from berth_process import BerthProcess, error_of

HOUR = 3_600_000
DAY = 24 * HOUR
MAX_BATCH = 1_048_576


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def stream(logs: Any) -> tuple[str, str]:
    group = "/events/" + uuid.uuid4().hex[:12]
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    return group, "s"


def put(logs: Any, where: tuple[str, str], events: list[tuple[int, str]]) -> dict[str, Any]:
    return logs.put_log_events(logGroupName=where[0], logStreamName=where[1],
                               logEvents=[{"timestamp": t, "message": m} for t, m in events])


def get(logs: Any, where: tuple[str, str], **kw: Any) -> dict[str, Any]:
    return logs.get_log_events(logGroupName=where[0], logStreamName=where[1], **kw)


def messages(page: dict[str, Any]) -> list[str]:
    return [e["message"] for e in page["events"]]


# -------------------------------------------------------------------- PutLogEvents


def test_put_then_get_round_trip(logs: Any, stream: tuple[str, str]) -> None:
    t = now_ms() - 1000
    result = put(logs, stream, [(t, "one"), (t, "two"), (t + 5, "ünïcode ✓")])
    assert result["nextSequenceToken"]
    assert "rejectedLogEventsInfo" not in result
    page = get(logs, stream, startFromHead=True)
    assert [(e["timestamp"], e["message"]) for e in page["events"]] == [
        (t, "one"), (t, "two"), (t + 5, "ünïcode ✓")]
    assert all(abs(e["ingestionTime"] - now_ms()) < 10_000 for e in page["events"])


def test_rejects_too_old_expired_and_too_new_and_keeps_the_rest(
        logs: Any, stream: tuple[str, str]) -> None:
    now = now_ms()
    result = put(logs, stream, [(now - 15 * DAY, "15 days old"), (now - 14 * DAY - HOUR, "old"),
                                (now - 2 * HOUR, "ok 1"), (now, "ok 2"),
                                (now + 3 * HOUR, "future 1"), (now + 4 * HOUR, "future 2")])
    assert result["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2,
                                               "tooNewLogEventStartIndex": 4}
    assert messages(get(logs, stream, startFromHead=True)) == ["ok 1", "ok 2"]
    # Retention also bounds what is accepted: older than the policy is "expired".
    logs.put_retention_policy(logGroupName=stream[0], retentionInDays=1)
    result = put(logs, stream, [(now - 20 * DAY, "too old"), (now - 2 * DAY, "expired"),
                                (now - HOUR, "kept")])
    assert result["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1,
                                               "expiredLogEventEndIndex": 2}
    assert messages(get(logs, stream, startFromHead=True)) == ["ok 1", "kept", "ok 2"]


def test_all_rejected_still_answers_a_token(logs: Any, stream: tuple[str, str]) -> None:
    result = put(logs, stream, [(now_ms() + 5 * HOUR, "future")])
    assert result["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 0}
    assert result["nextSequenceToken"]
    assert get(logs, stream)["events"] == []


def test_batch_errors(logs: Any, stream: tuple[str, str]) -> None:
    now = now_ms()
    err = error_of(put, logs=logs, where=stream, events=[(now, "b"), (now - 1, "a")])
    assert (err["Code"], err["Message"]) == (
        "InvalidParameterException",
        "Log events in a single PutLogEvents request must be in chronological order.")
    err = error_of(put, logs=logs, where=stream, events=[(now - DAY - 1000, "a"), (now, "b")])
    assert err["Code"] == "InvalidParameterException"
    assert "24 hours" in err["Message"]
    half = MAX_BATCH // 2
    err = error_of(put, logs=logs, where=stream, events=[(now, "a" * half), (now, "b" * half)])
    assert err["Code"] == "InvalidParameterException"
    err = error_of(put, logs=logs, where=stream, events=[(now, "x")] * 10_001)
    assert err["Code"] == "InvalidParameterException"
    assert "10000" in err["Message"]
    # None of the refused batches stored anything.
    assert get(logs, stream)["events"] == []


def test_batch_limits_are_inclusive(logs: Any, stream: tuple[str, str]) -> None:
    now = now_ms()
    put(logs, stream, [(now - 2000, "a" * (MAX_BATCH - 26))])
    put(logs, stream, [(now - 1000 + i // 1000, f"{i}") for i in range(10_000)])
    page = get(logs, stream, startFromHead=True)
    # One page holds at most 1 MB: the big event alone, then the 10,000 small ones.
    assert len(page["events"]) == 1 and len(page["events"][0]["message"]) == MAX_BATCH - 26
    page = get(logs, stream, startFromHead=True, nextToken=page["nextForwardToken"])
    assert messages(page) == [str(i) for i in range(10_000)]


def test_missing_group_or_stream(logs: Any, stream: tuple[str, str]) -> None:
    event = [(now_ms(), "x")]
    err = error_of(put, logs=logs, where=(stream[0] + "-nope", "s"), events=event)
    assert (err["Code"], err["Message"]) == ("ResourceNotFoundException",
                                             "The specified log group does not exist.")
    err = error_of(put, logs=logs, where=(stream[0], "nope"), events=event)
    assert (err["Code"], err["Message"]) == ("ResourceNotFoundException",
                                             "The specified log stream does not exist.")
    assert error_of(get, logs=logs, where=(stream[0], "nope"))["Code"] == \
        "ResourceNotFoundException"


# -------------------------------------------------------------------- GetLogEvents


@pytest.fixture
def hundred(logs: Any, stream: tuple[str, str]) -> tuple[tuple[str, str], int]:
    base = now_ms() - 100_000
    put(logs, stream, [(base + i * 1000, f"m{i:02d}") for i in range(100)])
    return stream, base


def test_default_returns_the_latest_events(logs: Any, hundred: Any) -> None:
    stream, _ = hundred
    assert messages(get(logs, stream, limit=3)) == ["m97", "m98", "m99"]
    assert messages(get(logs, stream, limit=3, startFromHead=True)) == ["m00", "m01", "m02"]
    assert len(get(logs, stream)["events"]) == 100


def test_forward_paging_ends_with_the_same_token(logs: Any, hundred: Any) -> None:
    stream, base = hundred
    seen: list[str] = []
    page = get(logs, stream, limit=30, startFromHead=True)
    while page["events"]:
        seen += messages(page)
        token = page["nextForwardToken"]
        assert token.startswith("f/")
        page = get(logs, stream, limit=30, startFromHead=True, nextToken=token)
    assert seen == [f"m{i:02d}" for i in range(100)]
    assert page["nextForwardToken"] == token  # at the end: the same token comes back
    # ... and it picks up events written later, as a tailing reader expects.
    put(logs, stream, [(base + 100_500, "late")])
    assert messages(get(logs, stream, startFromHead=True, nextToken=token)) == ["late"]


def test_backward_paging(logs: Any, hundred: Any) -> None:
    stream, _ = hundred
    seen: list[str] = []
    page = get(logs, stream, limit=40)
    while page["events"]:
        seen = messages(page) + seen
        token = page["nextBackwardToken"]
        assert token.startswith("b/")
        page = get(logs, stream, limit=40, nextToken=token)
    assert seen == [f"m{i:02d}" for i in range(100)]
    assert page["nextBackwardToken"] == token
    # Turning around at the start reads forward from the first event again.
    assert messages(get(logs, stream, limit=2, nextToken=page["nextForwardToken"])) == [
        "m00", "m01"]


def test_time_window_is_start_inclusive_end_exclusive(logs: Any, hundred: Any) -> None:
    stream, base = hundred
    page = get(logs, stream, startTime=base + 10_000, endTime=base + 13_000, startFromHead=True)
    assert messages(page) == ["m10", "m11", "m12"]
    page = get(logs, stream, startTime=base + 10_000, endTime=base + 13_000, limit=1)
    assert messages(page) == ["m12"]
    empty = get(logs, stream, startTime=base + 500_000)
    assert empty["events"] == []
    assert empty["nextForwardToken"].startswith("f/")
    assert empty["nextBackwardToken"].startswith("b/")


def test_log_group_identifier_and_bad_tokens(logs: Any, hundred: Any) -> None:
    (group, name), _ = hundred
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    page = logs.get_log_events(logGroupIdentifier=arn, logStreamName=name, limit=1)
    assert messages(page) == ["m99"]
    for token in ("f/123", "nonsense", "b/" + "9" * 40):
        assert error_of(get, logs=logs, where=(group, name), nextToken=token)["Code"] == \
            "InvalidParameterException"


# ----------------------------------------------------------------------- retention


def test_retention_hides_and_purges_old_events(logs: Any, stream: tuple[str, str]) -> None:
    group = stream[0]
    now = now_ms()
    # Two days old is inside the 14-day window, so these are accepted without a policy.
    put(logs, stream, [(now - 2 * DAY - 2000, "2 days old"), (now - 2 * DAY, "also old")])
    put(logs, stream, [(now - HOUR, "recent")])
    assert messages(get(logs, stream)) == ["2 days old", "also old", "recent"]
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    assert messages(get(logs, stream)) == ["recent"]
    assert messages(logs.filter_log_events(logGroupName=group)) == ["recent"]
    # The policy purged them: taking it away does not bring them back.
    logs.delete_retention_policy(logGroupName=group)
    assert messages(get(logs, stream, startFromHead=True)) == ["recent"]
    [s] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert s["storedBytes"] == len("recent")


# ------------------------------------------------------------------------- AWS CLI


def test_events_through_the_aws_cli(berth: BerthProcess, stream: tuple[str, str]) -> None:
    group, name = stream
    t = now_ms() - 1000
    out = berth.aws_cli("logs", "put-log-events", "--log-group-name", group,
                        "--log-stream-name", name, "--log-events",
                        f"timestamp={t},message=hello from cli",
                        f"timestamp={t + 1},message=second line")
    assert json.loads(out.stdout)["nextSequenceToken"]
    got = json.loads(berth.aws_cli("logs", "get-log-events", "--log-group-name", group,
                                   "--log-stream-name", name, "--start-from-head").stdout)
    assert [e["message"] for e in got["events"]] == ["hello from cli", "second line"]
    found = json.loads(berth.aws_cli("logs", "filter-log-events", "--log-group-name", group,
                                     "--filter-pattern", "second").stdout)
    assert [e["message"] for e in found["events"]] == ["second line"]
    bad = berth.aws_cli("logs", "put-log-events", "--log-group-name", group,
                        "--log-stream-name", name, "--log-events",
                        f"timestamp={t},message=b", f"timestamp={t - 1},message=a", check=False)
    assert bad.returncode != 0 and "chronological order" in bad.stderr
