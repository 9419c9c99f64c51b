"""DynamoDB Streams in the store: a stream's lifecycle (created with its table or by
UpdateTable, disabled by UpdateTable or DeleteTable, readable for 24 hours after), and reading
its records.

A stream has one shard for its whole life: every record of the table, in commit order, with
per-item order as a consequence. The shard closes (gets an EndingSequenceNumber) when the
stream is disabled.
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..state.store import Store
from .schema import dynamodb_stream_records, dynamodb_streams

RETENTION = 24 * 3600.0
SEQUENCE_DIGITS = 21

_STREAM_BY_ARN = sa.select(dynamodb_streams).where(dynamodb_streams.c.arn == sa.bindparam("arn"))
_RECORDS = (sa.select(dynamodb_stream_records.c.seq, dynamodb_stream_records.c.record)
            .where(dynamodb_stream_records.c.stream_id == sa.bindparam("stream_id"),
                   dynamodb_stream_records.c.seq > sa.bindparam("after"))
            .order_by(dynamodb_stream_records.c.seq).limit(sa.bindparam("limit")))
_BOUNDS = (sa.select(sa.func.min(dynamodb_stream_records.c.seq),
                     sa.func.max(dynamodb_stream_records.c.seq))
           .where(dynamodb_stream_records.c.stream_id == sa.bindparam("stream_id")))


@dataclass(frozen=True)
class StreamRow:
    id: int
    arn: str
    region: str
    table_name: str
    table_uid: int
    label: str
    view_type: str
    key_schema: list[dict[str, str]]
    created: float
    disabled: float | None
    shard_id: str
    last_seq: int

    @property
    def status(self) -> str:
        return "ENABLED" if self.disabled is None else "DISABLED"


def sequence_number(seq: int) -> str:
    return f"{seq:0{SEQUENCE_DIGITS}d}"


def parse_sequence_number(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 40 else None


def _label(now: float) -> str:
    stamp = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"


def create(conn: Connection, *, region: str, account: str, table_name: str, table_uid: int,
           view_type: str, key_schema: list[dict[str, str]], now: float) -> int:
    """A new enabled stream for a table; its id."""
    taken = {row[0] for row in conn.execute(
        sa.select(dynamodb_streams.c.label).where(dynamodb_streams.c.table_uid == table_uid))}
    while _label(now) in taken:     # two streams in one millisecond: labels stay unique
        now += 0.001
    label = _label(now)
    shard = f"shardId-{int(now * 1000):020d}-{random.getrandbits(32):08x}"
    result = conn.execute(dynamodb_streams.insert().values(
        arn=f"arn:aws:dynamodb:{region}:{account}:table/{table_name}/stream/{label}",
        region=region, table_name=table_name, table_uid=table_uid, label=label,
        view_type=view_type, key_schema=key_schema, created=now, shard_id=shard, last_seq=0))
    return int(result.inserted_primary_key[0])


def disable(conn: Connection, stream_id: int, now: float) -> None:
    conn.execute(dynamodb_streams.update().where(dynamodb_streams.c.id == stream_id)
                 .values(disabled=now))


def find(store: Store, arn: str) -> StreamRow | None:
    with store.read() as conn:
        row = conn.execute(_STREAM_BY_ARN, {"arn": arn}).mappings().first()
    return _row(row) if row is not None else None


def _row(row: Any) -> StreamRow:
    return StreamRow(**{f: row[f] for f in StreamRow.__dataclass_fields__})


def listed(store: Store, region: str, table_name: str | None, now: float) -> list[StreamRow]:
    """The region's streams still readable (enabled, or disabled less than 24 h ago), oldest
    first; of one table if `table_name` is given."""
    stmt = sa.select(dynamodb_streams).where(dynamodb_streams.c.region == region)
    if table_name is not None:
        stmt = stmt.where(dynamodb_streams.c.table_name == table_name)
    stmt = stmt.where(sa.or_(dynamodb_streams.c.disabled.is_(None),
                             dynamodb_streams.c.disabled > now - RETENTION))
    with store.read() as conn:
        rows = conn.execute(stmt.order_by(dynamodb_streams.c.id)).mappings().all()
    return [_row(r) for r in rows]


def bounds(store: Store, stream_id: int) -> tuple[int | None, int | None]:
    """The lowest and highest sequence numbers still held (None, None when none are)."""
    found = store.rows(_BOUNDS, {"stream_id": stream_id})
    return found[0][0], found[0][1]


def records_after(store: Store, stream: StreamRow, after: int, limit: int
                  ) -> list[tuple[int, dict[str, Any]]]:
    """Up to `limit` records with sequence numbers above `after`, in order, each with its
    SequenceNumber filled in."""
    out = []
    for seq, raw in store.rows(_RECORDS, {"stream_id": stream.id, "after": after,
                                          "limit": limit}):
        record = orjson.loads(raw)
        record["dynamodb"]["SequenceNumber"] = sequence_number(seq)
        out.append((seq, record))
    return out
