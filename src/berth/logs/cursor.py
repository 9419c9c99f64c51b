"""Positions in a log's event order, and reading events from one onward.

Events are ordered by (timestamp, id): the id breaks ties between events of the same
millisecond, and ids never repeat, so a position names a point between two events exactly.
`scan` walks the order with keyset pagination, so a reader that stops early (a page is full)
never made the database sort or fetch more than one chunk past what it used.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator

import sqlalchemy as sa

from ..api.errors import ServiceError
from .schema import log_events

Position = tuple[int, int]  # (timestamp, id): events strictly after/before it are read
MAX_ID = 2**63 - 1
MAX_TIME = 2**62  # later than any timestamp PutLogEvents accepts

_ORDER = sa.tuple_(log_events.c.timestamp, log_events.c.id)
_COLUMNS = (log_events.c.id, log_events.c.stream_name, log_events.c.timestamp,
            log_events.c.ingestion_time, log_events.c.message, log_events.c.size)
_TOKEN = re.compile(r"([fb])/(\d{20})(\d{20})")


def scan(conn: sa.Connection, where: Any, after: Position | None, forward: bool = True,
         chunk: int = 1000, params: dict[str, Any] | None = None) -> Iterator[sa.Row[Any]]:
    """Events matching `where` strictly past `after` (ascending when forward, else
    descending), fetched `chunk` rows per query.

    A `where` built once from bind parameters (given their values in `params`) has its
    statements built once too: on the GetLogEvents hot path, building them costs more than
    running them.
    """
    bound = dict(params or {})
    while True:
        if params is None:
            q = _statement(where, forward, after is not None)
        else:
            q = _cached_statement(where, forward, after is not None)
        if after is not None:
            bound["after_ts"], bound["after_id"] = after
        bound["chunk"] = chunk
        rows = conn.execute(q, bound).all()
        yield from rows
        if len(rows) < chunk:
            return
        after = (rows[-1].timestamp, rows[-1].id)


def _statement(where: Any, forward: bool, has_after: bool) -> sa.Select[Any]:
    q = sa.select(*_COLUMNS).where(where)
    if has_after:
        mark = sa.tuple_(sa.bindparam("after_ts"), sa.bindparam("after_id"))
        q = q.where(_ORDER > mark if forward else _ORDER < mark)
    if forward:
        q = q.order_by(log_events.c.timestamp, log_events.c.id)
    else:
        q = q.order_by(log_events.c.timestamp.desc(), log_events.c.id.desc())
    return q.limit(sa.bindparam("chunk"))


_cached_statement = lru_cache(maxsize=64)(_statement)


def position(row: sa.Row[Any]) -> Position:
    return (int(row.timestamp), int(row.id))


def successor(pos: Position) -> Position:
    """The position just after `pos`: reading backward from it includes the event at `pos`."""
    return (pos[0], pos[1] + 1)


def predecessor(pos: Position) -> Position:
    """The position just before `pos`: reading forward from it includes the event at `pos`."""
    ts, ident = pos
    if ident > 0:
        return (ts, ident - 1)
    return (ts - 1, MAX_ID) if ts > 0 else (0, 0)


def stream_token(forward: bool, pos: Position) -> str:
    """GetLogEvents' nextForwardToken / nextBackwardToken: `f/<digits>` or `b/<digits>`."""
    return f"{'f' if forward else 'b'}/{pos[0]:020d}{min(pos[1], MAX_ID):020d}"


def parse_stream_token(token: str) -> tuple[bool, Position]:
    """(forward?, position) of a GetLogEvents token."""
    m = _TOKEN.fullmatch(token)
    if m is None or int(m[2]) > MAX_TIME or int(m[3]) > MAX_ID:
        raise ServiceError("InvalidParameterException", "The specified nextToken is invalid.")
    return m[1] == "f", (int(m[2]), int(m[3]))
