"""Positions in a log's event order, and reading events from one onward.

Events are ordered by (timestamp, id): the id breaks ties between events of the same
millisecond, and ids never repeat, so a position names a point between two events exactly.
`scan` walks the order with keyset pagination, so a reader that stops early (a page is full)
never made the database sort or fetch more than one chunk past what it used.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, Iterator, Sequence

import sqlalchemy as sa

from ..api.errors import ServiceError
from .schema import log_events

Position = tuple[int, int]  # (timestamp, id): events strictly after/before it are read
MAX_ID = 2**63 - 1
MAX_TIME = 2**62  # later than any timestamp PutLogEvents accepts

_ORDER = sa.tuple_(log_events.c.timestamp, log_events.c.id)
# What a scan reads: every column set starts with (id, timestamp), so a row's position is
# known from any of them without names (rows may be plain tuples, see Store.rows).
EVENT_COLUMNS = (log_events.c.id, log_events.c.timestamp, log_events.c.ingestion_time,
                 log_events.c.message, log_events.c.size)
_TOKEN = re.compile(r"([fb])/(\d{20})(\d{20})")

# Runs one statement with its bind values and returns its rows.
Fetch = Callable[[sa.Select[Any], dict[str, Any]], Sequence[Any]]


def scan(fetch: Fetch, where: Any, after: Position | None, forward: bool = True,
         chunk: int = 1000, params: dict[str, Any] | None = None,
         columns: tuple[Any, ...] = EVENT_COLUMNS) -> Iterator[Any]:
    """Events matching `where` strictly past `after` (ascending when forward, else
    descending), one row at a time: see `scan_chunks`."""
    for rows in scan_chunks(fetch, where, after, forward, chunk, params, columns):
        yield from rows


def scan_chunks(fetch: Fetch, where: Any, after: Position | None, forward: bool = True,
                chunk: int = 1000, params: dict[str, Any] | None = None,
                columns: tuple[Any, ...] = EVENT_COLUMNS) -> Iterator[Sequence[Any]]:
    """Events matching `where` strictly past `after` (ascending when forward, else
    descending), fetched and handed out `chunk` rows per query: rows of `columns`,
    (id, timestamp) first. The next query runs only if the reader asks for more.

    A `where` built once from bind parameters (given their values in `params`) has its
    statements built once too: on the GetLogEvents hot path, building them costs more than
    running them.
    """
    bound = dict(params or {})
    while True:
        if params is None:
            q = _statement(where, forward, after is not None, columns)
        else:
            q = _cached_statement(where, forward, after is not None, columns)
        if after is not None:
            bound["after_ts"], bound["after_id"] = after
        bound["chunk"] = chunk
        rows = fetch(q, bound)
        if rows:
            yield rows
        if len(rows) < chunk:
            return
        after = position(rows[-1])


def _statement(where: Any, forward: bool, has_after: bool,
               columns: tuple[Any, ...]) -> sa.Select[Any]:
    q = sa.select(*columns).where(where)
    if has_after:
        mark = sa.tuple_(sa.bindparam("after_ts"), sa.bindparam("after_id"))
        q = q.where(_ORDER > mark if forward else _ORDER < mark)
    if forward:
        q = q.order_by(log_events.c.timestamp, log_events.c.id)
    else:
        q = q.order_by(log_events.c.timestamp.desc(), log_events.c.id.desc())
    return q.limit(sa.bindparam("chunk"))


_cached_statement = lru_cache(maxsize=64)(_statement)


def event_id(ident: int) -> str:
    """An event's id as AWS spells event ids: 56 decimal digits (FilterLogEvents' eventId,
    a subscription's logEvents[].id)."""
    return f"{ident:056d}"


def position(row: Any) -> Position:
    """The position of a row read by `scan`."""
    return (int(row[1]), int(row[0]))


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
