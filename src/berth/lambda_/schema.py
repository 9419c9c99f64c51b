"""Tables of the Lambda control plane: functions, their versions, aliases, event-invoke configs.

`$LATEST` is a row of `lambda_versions` like any published version; it alone changes in place.
Everything hangs off `lambda_functions` with ON DELETE CASCADE, so deleting a function removes
its versions, aliases and configs in one statement on SQLite and PostgreSQL.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..state.store import metadata, versioned

lambda_functions = versioned(
    "lambda_functions",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False, default=dict),
    sa.Column("reserved_concurrency", sa.Integer),
    # The number of the last published version; versions are never reused, even after a delete.
    sa.Column("last_version", sa.Integer, nullable=False, default=0),
)

lambda_versions = versioned(
    "lambda_versions",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("function_name", sa.String(64), primary_key=True),
    sa.Column("function_version", sa.String(16), primary_key=True),   # "$LATEST", "1", ...
    sa.Column("runtime", sa.String(32), nullable=False),
    sa.Column("handler", sa.String(128)),
    sa.Column("role", sa.String(2048), nullable=False),
    sa.Column("description", sa.String(256), nullable=False, default=""),
    sa.Column("memory_size", sa.Integer, nullable=False),
    sa.Column("timeout", sa.Integer, nullable=False),
    sa.Column("environment", sa.JSON, nullable=False, default=dict),
    sa.Column("ephemeral_storage", sa.Integer, nullable=False, default=512),
    sa.Column("architectures", sa.JSON, nullable=False),
    sa.Column("code_sha256", sa.String(64), nullable=False),
    sa.Column("code_size", sa.BigInteger, nullable=False),
    sa.Column("revision_id", sa.String(64), nullable=False),
    sa.Column("last_modified", sa.Float, nullable=False),
    # Settings berth keeps and echoes but does not act on (TracingConfig, VpcConfig, ...).
    sa.Column("extra", sa.JSON, nullable=False, default=dict),
    # Digest of code + configuration: PublishVersion publishes only when $LATEST's differs
    # from the last version's.
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.ForeignKeyConstraint(["region", "function_name"],
                            ["lambda_functions.region", "lambda_functions.name"],
                            ondelete="CASCADE"),
)

lambda_aliases = versioned(
    "lambda_aliases",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("function_name", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("function_version", sa.String(16), nullable=False),
    sa.Column("description", sa.String(256), nullable=False, default=""),
    sa.Column("weights", sa.JSON, nullable=False, default=dict),   # version -> weight
    sa.Column("revision_id", sa.String(64), nullable=False),
    sa.ForeignKeyConstraint(["region", "function_name"],
                            ["lambda_functions.region", "lambda_functions.name"],
                            ondelete="CASCADE"),
)

lambda_event_invoke_configs = versioned(
    "lambda_event_invoke_configs",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("function_name", sa.String(64), primary_key=True),
    sa.Column("qualifier", sa.String(128), primary_key=True),     # "$LATEST", "3", alias
    sa.Column("maximum_retry_attempts", sa.Integer),
    sa.Column("maximum_event_age", sa.Integer),
    sa.Column("on_success", sa.String(350)),
    sa.Column("on_failure", sa.String(350)),
    sa.Column("last_modified", sa.Float, nullable=False),
    sa.ForeignKeyConstraint(["region", "function_name"],
                            ["lambda_functions.region", "lambda_functions.name"],
                            ondelete="CASCADE"),
)

# The zips themselves, by hex SHA-256: the store is the source of truth, so every replica
# sharing the database can serve and run every function (data dirs only cache them).
lambda_code = sa.Table(
    "lambda_code", metadata,
    sa.Column("hex", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
