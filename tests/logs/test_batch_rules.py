"""The PutLogEvents batch rules (berth.logs.batch), as pure functions."""
from __future__ import annotations

import pytest

from berth.api.errors import ServiceError
from berth.logs.batch import MAX_BYTES, check_batch

NOW = 1_700_000_000_000
HOUR = 3_600_000
DAY = 24 * HOUR


def ev(ts: int, message: str = "x") -> dict[str, object]:
    return {"timestamp": ts, "message": message}


def test_all_accepted() -> None:
    batch = check_batch([ev(NOW - 2), ev(NOW - 1), ev(NOW)], NOW, None)
    assert (batch.start, batch.end, batch.rejected) == (0, 3, {})
    assert batch.sizes == [1, 1, 1]


def test_equal_timestamps_are_in_order() -> None:
    assert check_batch([ev(NOW), ev(NOW)], NOW, None).end == 2


def test_out_of_order_refuses_the_batch() -> None:
    with pytest.raises(ServiceError) as err:
        check_batch([ev(NOW), ev(NOW - 1)], NOW, None)
    assert err.value.code == "InvalidParameterException"
    assert err.value.message == ("Log events in a single PutLogEvents request must be in "
                                 "chronological order.")


def test_too_old_and_too_new_are_cut_from_the_ends() -> None:
    events = [ev(NOW - 15 * DAY), ev(NOW - 14 * DAY - 1), ev(NOW - DAY), ev(NOW),
              ev(NOW + 2 * HOUR + 1), ev(NOW + 3 * HOUR)]
    batch = check_batch(events, NOW, None)
    assert (batch.start, batch.end) == (2, 4)
    assert batch.rejected == {"tooOldLogEventEndIndex": 2, "tooNewLogEventStartIndex": 4}


def test_boundaries_are_accepted() -> None:
    assert check_batch([ev(NOW - 14 * DAY)], NOW, None).rejected == {}
    assert check_batch([ev(NOW + 2 * HOUR)], NOW, None).rejected == {}
    assert check_batch([ev(NOW - DAY), ev(NOW)], NOW, None).end == 2  # exactly 24 hours


def test_retention_expires_events_newer_than_14_days() -> None:
    events = [ev(NOW - 20 * DAY), ev(NOW - 3 * DAY), ev(NOW - 2 * DAY), ev(NOW - HOUR)]
    batch = check_batch(events, NOW, 1)
    assert batch.rejected == {"tooOldLogEventEndIndex": 1, "expiredLogEventEndIndex": 3}
    assert (batch.start, batch.end) == (3, 4)


def test_everything_rejected() -> None:
    batch = check_batch([ev(NOW - 30 * DAY), ev(NOW - 20 * DAY)], NOW, None)
    assert batch.start == batch.end == 2
    batch = check_batch([ev(NOW + 5 * HOUR)], NOW, None)
    assert batch.start == batch.end == 0
    assert batch.rejected == {"tooNewLogEventStartIndex": 0}


def test_span_of_accepted_events_over_24_hours_refuses_the_batch() -> None:
    with pytest.raises(ServiceError) as err:
        check_batch([ev(NOW - DAY - 1), ev(NOW)], NOW, None)
    assert "cannot span more than 24 hours" in err.value.message
    # Rejected events do not count towards the span.
    assert check_batch([ev(NOW - 20 * DAY), ev(NOW - DAY), ev(NOW)], NOW, None).end == 3


def test_size_counts_utf8_bytes_plus_26_per_event() -> None:
    exact = MAX_BYTES - 26
    assert check_batch([ev(NOW, "a" * exact)], NOW, None).sizes == [exact]
    with pytest.raises(ServiceError) as err:
        check_batch([ev(NOW, "a" * (exact + 1))], NOW, None)
    assert err.value.code == "InvalidParameterException"
    # "é" is two bytes in UTF-8: half as many characters reach the limit.
    with pytest.raises(ServiceError):
        check_batch([ev(NOW, "é" * (exact // 2 + 1))], NOW, None)
    assert check_batch([ev(NOW, "é" * (exact // 2))], NOW, None).end == 1


def test_more_than_10000_events_refuses_the_batch() -> None:
    assert check_batch([ev(NOW)] * 10_000, NOW, None).end == 10_000
    with pytest.raises(ServiceError):
        check_batch([ev(NOW)] * 10_001, NOW, None)
