"""Positions and GetLogEvents tokens (berth.logs.cursor)."""
from __future__ import annotations

import pytest

from berth.api.errors import ServiceError
from berth.logs.cursor import (MAX_ID, parse_stream_token, predecessor, stream_token,
                               successor)


def test_tokens_round_trip() -> None:
    for forward in (True, False):
        for pos in [(0, 0), (1_700_000_000_123, 42), (2**62, MAX_ID)]:
            token = stream_token(forward, pos)
            assert token.startswith("f/" if forward else "b/")
            assert token[2:].isdigit()
            assert parse_stream_token(token) == (forward, pos)


@pytest.mark.parametrize("token", ["", "f/", "x/" + "0" * 40, "f/" + "0" * 39, "f/abc",
                                   "f/" + "9" * 40, "b/" + "0" * 40 + "/s"])
def test_bad_tokens(token: str) -> None:
    with pytest.raises(ServiceError) as err:
        parse_stream_token(token)
    assert err.value.code == "InvalidParameterException"


def test_neighbours() -> None:
    assert successor((5, 7)) == (5, 8)
    assert predecessor((5, 7)) == (5, 6)
    assert predecessor((5, 0)) == (4, MAX_ID)
    assert predecessor((0, 0)) == (0, 0)
