"""Tables of CloudWatch Logs: groups, streams, events. Kept per region, as AWS does.

Streams and events hang off their group with ON DELETE CASCADE, so deleting a group (or a
stream) removes what it holds in the same statement, on SQLite (foreign_keys=ON) and PostgreSQL.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..state.store import metadata, versioned

log_groups = versioned(
    "log_groups",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("retention_days", sa.Integer),
    sa.Column("kms_key_id", sa.String(256)),
    sa.Column("log_group_class", sa.String(32), nullable=False, default="STANDARD"),
    sa.Column("tags", sa.JSON, nullable=False, default=dict),
)

log_streams = versioned(
    "log_streams",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("group_name", sa.String(512), primary_key=True),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("first_event_ms", sa.BigInteger),
    sa.Column("last_event_ms", sa.BigInteger),
    sa.Column("last_ingestion_ms", sa.BigInteger),
    sa.Column("stored_bytes", sa.BigInteger, nullable=False, default=0),
    sa.ForeignKeyConstraint(["region", "group_name"],
                            ["log_groups.region", "log_groups.name"], ondelete="CASCADE"),
)

log_events = sa.Table(
    "log_events", metadata,
    # Ids only grow (AUTOINCREMENT on SQLite: no reuse after deletes), so (timestamp, id) is a
    # stable position for pagination tokens and eventIds stay unique for `logs tail` dedupe.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("group_name", sa.String(512), nullable=False),
    sa.Column("stream_name", sa.String(512), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("ingestion_time", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    # UTF-8 size of the message, kept so a purge can lower the stream's storedBytes without
    # re-reading messages (SQL length() counts characters, not bytes).
    sa.Column("size", sa.Integer, nullable=False, default=0),
    sa.ForeignKeyConstraint(["region", "group_name", "stream_name"],
                            ["log_streams.region", "log_streams.group_name",
                             "log_streams.name"], ondelete="CASCADE"),
    sa.Index("ix_log_events_stream_time", "region", "group_name", "stream_name",
             "timestamp", "id"),
    sa.Index("ix_log_events_group_time", "region", "group_name", "timestamp", "id"),
    sqlite_autoincrement=True,
)
