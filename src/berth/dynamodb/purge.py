"""Removing what outlived its use: the rows of deleted tables, and stream records past their
24 hours (with the streams themselves once disabled that long). Both work in small
transactions, so a big table or stream never holds the writer for long."""
from __future__ import annotations

import time

import sqlalchemy as sa

from ..state.store import Store
from .schema import dynamodb_index_entries, dynamodb_items, dynamodb_purges, \
    dynamodb_stream_records, dynamodb_streams
from .streams import RETENTION

BATCH = 1000


def purge_deleted_tables(store: Store, now: float | None = None) -> int:
    """Delete the rows of tables deleted a while ago; how many rows went."""
    now = time.time() if now is None else now
    with store.read() as conn:
        due = conn.execute(sa.select(dynamodb_purges.c.table_uid)
                           .where(dynamodb_purges.c.due <= now)).scalars().all()
    removed = 0
    for uid in due:
        for table, order in ((dynamodb_items, ("hk", "pk", "sk")),
                             (dynamodb_index_entries, ("index_no", "hk", "ipk", "isk", "pk",
                                                       "sk"))):
            while True:
                cols = [table.c[n] for n in order]
                batch = sa.select(*cols).where(table.c.table_uid == uid).limit(BATCH)
                with store.write() as conn:
                    gone = conn.execute(table.delete().where(
                        table.c.table_uid == uid,
                        sa.tuple_(*cols).in_(batch))).rowcount
                removed += gone
                if gone < BATCH:
                    break
        with store.write() as conn:
            conn.execute(dynamodb_purges.delete().where(dynamodb_purges.c.table_uid == uid))
    return removed


def trim_streams(store: Store, now: float | None = None) -> int:
    """Delete stream records older than 24 hours, and streams disabled that long ago; how
    many records went."""
    now = time.time() if now is None else now
    cutoff = now - RETENTION
    with store.read() as conn:
        streams = conn.execute(sa.select(dynamodb_streams.c.id, dynamodb_streams.c.disabled)
                               ).all()
    removed = 0
    for stream_id, disabled in streams:
        while True:
            with store.read() as conn:
                old = conn.execute(
                    sa.select(dynamodb_stream_records.c.seq, dynamodb_stream_records.c.created)
                    .where(dynamodb_stream_records.c.stream_id == stream_id)
                    .order_by(dynamodb_stream_records.c.seq).limit(BATCH)).all()
            expired = [seq for seq, created in old if created < cutoff]
            if not expired:
                break
            with store.write() as conn:
                removed += conn.execute(dynamodb_stream_records.delete().where(
                    dynamodb_stream_records.c.stream_id == stream_id,
                    dynamodb_stream_records.c.seq <= max(expired),
                    dynamodb_stream_records.c.created < cutoff)).rowcount
            if len(expired) < BATCH:
                break
        if disabled is not None and disabled < cutoff:
            with store.write() as conn:
                conn.execute(dynamodb_stream_records.delete().where(
                    dynamodb_stream_records.c.stream_id == stream_id))
                conn.execute(dynamodb_streams.delete().where(dynamodb_streams.c.id == stream_id))
    return removed
