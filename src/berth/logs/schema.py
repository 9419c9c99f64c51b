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
    sa.Column("deletion_protection", sa.Boolean, nullable=False, default=False),
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


def _group_key() -> list[sa.schema.SchemaItem]:
    """The columns and cascade of a table whose rows belong to one log group."""
    return [sa.Column("region", sa.String(32), primary_key=True),
            sa.Column("group_name", sa.String(512), primary_key=True),
            sa.ForeignKeyConstraint(["region", "group_name"],
                                    ["log_groups.region", "log_groups.name"],
                                    ondelete="CASCADE")]


# Metric filters and subscription filters: kept per group, in name order.
log_metric_filters = versioned(
    "log_metric_filters", *_group_key(),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("pattern", sa.Text, nullable=False),
    sa.Column("transformations", sa.JSON, nullable=False),
    # The one transformation's metric, kept apart for DescribeMetricFilters' filters.
    sa.Column("metric_name", sa.String(255), nullable=False),
    sa.Column("metric_namespace", sa.String(255), nullable=False),
    sa.Column("options", sa.JSON, nullable=False, default=dict),   # echoed members
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

log_subscription_filters = versioned(
    "log_subscription_filters", *_group_key(),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("pattern", sa.Text, nullable=False),
    sa.Column("destination_arn", sa.String(2048), nullable=False),
    sa.Column("role_arn", sa.String(2048)),
    sa.Column("distribution", sa.String(16), nullable=False),
    sa.Column("options", sa.JSON, nullable=False, default=dict),   # echoed members
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

# Policies a log group carries, by kind: DATA_PROTECTION, FIELD_INDEX, TRANSFORMER.
log_group_policies = versioned(
    "log_group_policies", *_group_key(),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

# Resource policies (account-wide, or on one resource), account policies, destinations.
log_resource_policies = versioned(
    "log_resource_policies",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("resource_arn", sa.String(2048)),      # None: the account's
    sa.Column("revision_id", sa.String(64), nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

log_account_policies = versioned(
    "log_account_policies",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("policy_type", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("selection_criteria", sa.Text),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

log_destinations = versioned(
    "log_destinations",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("target_arn", sa.String(2048), nullable=False),
    sa.Column("role_arn", sa.String(2048), nullable=False),
    sa.Column("access_policy", sa.Text),
    sa.Column("tags", sa.JSON, nullable=False, default=dict),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

# Saved Logs Insights queries (PutQueryDefinition).
log_query_definitions = versioned(
    "log_query_definitions",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("query_string", sa.Text, nullable=False),
    sa.Column("log_group_names", sa.JSON, nullable=False, default=list),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("parameters", sa.JSON),
    sa.Column("modified_ms", sa.BigInteger, nullable=False),
)

# Logs Insights queries: what was asked, and, once run, what was found. A query is run by the
# server that started it, which keeps `heartbeat_ms` fresh while it runs (see query_runner).
log_queries = versioned(
    "log_queries",
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("query_string", sa.Text, nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("group_names", sa.JSON, nullable=False),
    sa.Column("start_ms", sa.BigInteger, nullable=False),
    sa.Column("end_ms", sa.BigInteger, nullable=False),
    sa.Column("result_limit", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("heartbeat_ms", sa.BigInteger, nullable=False),
    sa.Column("finished_ms", sa.BigInteger),
    sa.Column("statistics", sa.JSON, nullable=False, default=dict),
    sa.Column("results", sa.JSON),
    sa.Column("error", sa.Text),
    sa.Index("ix_log_queries_region_created", "region", "created_ms"),
)
