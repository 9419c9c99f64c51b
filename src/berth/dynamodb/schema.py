"""Tables of the DynamoDB service: tables, items, index entries, streams and their records.

Items are rows keyed by (table, partition hash, partition key, sort key), the keys in the
order-preserving forms of `keycodec`, so a Query is one range scan of the primary key in the
database's own order, and a Scan walks the partition-hash ring the way DynamoDB's does.
Secondary indexes are rows of `dynamodb_index_entries` pointing back at their item, written in
the item's transaction. SQLite keeps these tables WITHOUT ROWID: rows are stored in key order.

A table's uid is never reused: a deleted table's rows are purged in the background (see
`purge`), and a table created again under the same name never sees them.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..state.store import metadata

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class _SqliteBlob(sa.types.UserDefinedType):  # type: ignore[type-arg]
    """BLOB without SQLAlchemy's conversions, which sqlite3 does not need (bytes in, bytes
    out): statements on the hot paths then qualify for the store's prepared execution."""

    cache_ok = True

    def get_col_spec(self, **_: object) -> str:
        return "BLOB"


BLOB = sa.LargeBinary().with_variant(_SqliteBlob(), "sqlite")

dynamodb_tables = sa.Table(
    "dynamodb_tables", metadata,
    sa.Column("uid", _ID, primary_key=True, autoincrement=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    # Everything DescribeTable shows that is not derived: key schema, attribute definitions,
    # indexes (with the numbers of their entry rows), billing, table class, ... (`catalog`).
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("stream_id", sa.BigInteger),              # the enabled stream, if any
    sa.Column("ttl_attribute", sa.String(255)),         # TTL enabled on this attribute
    sa.Column("tags", sa.JSON, nullable=False, default=dict),
    # Moves with every change of the table: item operations keep its parsed form per version.
    sa.Column("version", sa.BigInteger, nullable=False, default=1),
    sa.UniqueConstraint("region", "name", name="uq_dynamodb_tables_name"),
    sqlite_autoincrement=True,
)

dynamodb_items = sa.Table(
    "dynamodb_items", metadata,
    sa.Column("table_uid", sa.BigInteger, primary_key=True),
    sa.Column("hk", sa.BigInteger, primary_key=True),   # keycodec.partition_hash(pk)
    sa.Column("pk", BLOB, primary_key=True),
    sa.Column("sk", BLOB, primary_key=True),  # b"" when the table has no sort key
    sa.Column("item", BLOB, nullable=False),  # the item's JSON, in wire form
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("expires", sa.BigInteger),                # TTL epoch seconds, when TTL is on
    sa.Index("ix_dynamodb_items_expiry", "table_uid", "expires",
             sqlite_where=sa.text("expires IS NOT NULL"),
             postgresql_where=sa.text("expires IS NOT NULL")),
    sqlite_with_rowid=False,
)

dynamodb_index_entries = sa.Table(
    "dynamodb_index_entries", metadata,
    sa.Column("table_uid", sa.BigInteger, primary_key=True),
    sa.Column("index_no", sa.Integer, primary_key=True),
    sa.Column("hk", sa.BigInteger, primary_key=True),   # hash of the index partition key
    sa.Column("ipk", BLOB, primary_key=True),
    sa.Column("isk", BLOB, primary_key=True),
    # The item's own key (ties among equal index keys are ordered by it).
    sa.Column("pk", BLOB, primary_key=True),
    sa.Column("sk", BLOB, primary_key=True),
    sa.Column("thk", sa.BigInteger, nullable=False),    # the item's partition hash
    sqlite_with_rowid=False,
)

dynamodb_streams = sa.Table(
    "dynamodb_streams", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("arn", sa.String(1024), nullable=False, unique=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("table_name", sa.String(255), nullable=False),
    sa.Column("table_uid", sa.BigInteger, nullable=False),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("view_type", sa.String(32), nullable=False),
    sa.Column("key_schema", sa.JSON, nullable=False),   # the table's, for DescribeStream
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("disabled", sa.Float),            # when the stream stopped taking records
    sa.Column("shard_id", sa.String(64), nullable=False),
    # The last sequence number handed out. Writers take the next ones by updating this row,
    # which also orders them: on PostgreSQL the row lock makes commit order sequence order,
    # so a reader that has seen N never later meets a record below N.
    sa.Column("last_seq", sa.BigInteger, nullable=False, default=0),
    sa.Index("ix_dynamodb_streams_table", "region", "table_name"),
    sqlite_autoincrement=True,
)

dynamodb_stream_records = sa.Table(
    "dynamodb_stream_records", metadata,
    sa.Column("stream_id", sa.BigInteger, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("record", BLOB, nullable=False),    # the record's JSON
    sqlite_with_rowid=False,
)

dynamodb_purges = sa.Table(
    "dynamodb_purges", metadata,
    sa.Column("table_uid", sa.BigInteger, primary_key=True),
    sa.Column("due", sa.Float, nullable=False),
)
