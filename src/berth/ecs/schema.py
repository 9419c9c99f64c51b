"""Tables of the ECS control plane: clusters, container instances, task definitions, tasks,
services, agent heartbeats and the scheduler lease. Kept per region, as AWS does.

A container instance row carries what placement must never get wrong: its remaining CPU and
memory, the host ports in use and the count of non-stopped tasks per group. Claims change them
only by compare-and-swap on the row's version, in the same transaction that inserts the tasks.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..state.store import metadata, versioned

clusters = versioned(
    "ecs_clusters",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("arn", sa.String(512), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),           # ACTIVE | INACTIVE
    sa.Column("settings", sa.JSON, nullable=False, default=list),
    sa.Column("configuration", sa.JSON),
    sa.Column("service_connect", sa.JSON),
    sa.Column("capacity_providers", sa.JSON, nullable=False, default=list),
    sa.Column("default_strategy", sa.JSON, nullable=False, default=list),
    sa.Column("tags", sa.JSON, nullable=False, default=dict),
    sa.Column("created_at", sa.Float, nullable=False),
)

instances = versioned(
    "ecs_instances",
    sa.Column("arn", sa.String(512), primary_key=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("cluster", sa.String(255), nullable=False),
    sa.Column("ec2_instance_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),           # ACTIVE | DRAINING | INACTIVE
    sa.Column("agent_connected", sa.Boolean, nullable=False),
    sa.Column("disconnected_at", sa.Float),
    sa.Column("registered_cpu", sa.Integer, nullable=False),
    sa.Column("registered_memory", sa.Integer, nullable=False),
    sa.Column("reserved_ports", sa.JSON, nullable=False, default=list),
    sa.Column("reserved_udp_ports", sa.JSON, nullable=False, default=list),
    sa.Column("other_resources", sa.JSON, nullable=False, default=list),
    sa.Column("remaining_cpu", sa.Integer, nullable=False),
    sa.Column("remaining_memory", sa.Integer, nullable=False),
    sa.Column("used_ports", sa.JSON, nullable=False, default=list),
    sa.Column("task_groups", sa.JSON, nullable=False, default=dict),   # group -> live tasks
    sa.Column("task_count", sa.Integer, nullable=False, default=0),    # live (non-stopped)
    sa.Column("attributes", sa.JSON, nullable=False, default=dict),
    sa.Column("version_info", sa.JSON, nullable=False, default=dict),
    sa.Column("tags", sa.JSON, nullable=False, default=dict),
    sa.Column("registered_at", sa.Float, nullable=False),
)
# With the version in it, the scheduler's per-call check of a cluster's instances (snapshot.py:
# count and sum of versions) reads this index alone, not every wide instance row.
sa.Index("ix_ecs_instances_cluster", instances.c.region, instances.c.cluster, instances.c.status,
         instances.c.version)

# Heartbeats live apart from the instance row so that an agent saying "still here" never
# moves the version a scheduler's compare-and-swap depends on.
heartbeats = sa.Table(
    "ecs_heartbeats", metadata,
    sa.Column("arn", sa.String(512), primary_key=True),
    sa.Column("seen_at", sa.Float, nullable=False),
)

task_definitions = versioned(
    "ecs_task_definitions",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("family", sa.String(255), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("arn", sa.String(512), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),  # ACTIVE | INACTIVE | DELETE_IN_PROGRESS
    sa.Column("body", sa.JSON, nullable=False),          # the TaskDefinition shape, sans status
    sa.Column("tags", sa.JSON, nullable=False, default=dict),
    sa.Column("registered_at", sa.Float, nullable=False),
    sa.Column("deregistered_at", sa.Float),
    sa.Column("delete_requested_at", sa.Float),
)

tasks = versioned(
    "ecs_tasks",
    sa.Column("arn", sa.String(512), primary_key=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("cluster", sa.String(255), nullable=False),
    sa.Column("instance_arn", sa.String(512), nullable=False),
    sa.Column("task_definition_arn", sa.String(512), nullable=False),
    sa.Column("family", sa.String(255), nullable=False),
    sa.Column("last_status", sa.String(16), nullable=False),
    sa.Column("desired_status", sa.String(16), nullable=False),
    sa.Column("cpu", sa.Integer, nullable=False),
    sa.Column("memory", sa.Integer, nullable=False),
    sa.Column("ports", sa.JSON, nullable=False, default=list),     # static host ports claimed
    sa.Column("group", sa.String(255), nullable=False),
    sa.Column("started_by", sa.String(128)),
    sa.Column("service_name", sa.String(255)),
    sa.Column("deployment_id", sa.String(64)),
    sa.Column("launch_type", sa.String(16), nullable=False),
    sa.Column("overrides", sa.JSON, nullable=False, default=dict),
    sa.Column("containers", sa.JSON, nullable=False, default=list),
    sa.Column("tags", sa.JSON, nullable=False, default=dict),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("stopping_at", sa.Float),
    sa.Column("stopped_at", sa.Float),
    sa.Column("pull_started_at", sa.Float),
    sa.Column("pull_stopped_at", sa.Float),
    sa.Column("execution_stopped_at", sa.Float),
    sa.Column("stopped_reason", sa.String(1024)),
    sa.Column("stop_code", sa.String(32)),
    # ListTasks pages through a cluster's tasks in ARN order, straight off this index.
    sa.Index("ix_ecs_tasks_cluster", "region", "cluster", "desired_status", "arn"),
    sa.Index("ix_ecs_tasks_instance", "instance_arn", "last_status"),
    # DescribeClusters counts a cluster's tasks by status from this index alone.
    sa.Index("ix_ecs_tasks_cluster_status", "region", "cluster", "last_status"),
)
# Only a service's tasks are looked up by service: the tasks of RunTask and StartTask stay out.
sa.Index("ix_ecs_tasks_service", tasks.c.region, tasks.c.cluster, tasks.c.service_name,
         tasks.c.last_status, sqlite_where=tasks.c.service_name.isnot(None),
         postgresql_where=tasks.c.service_name.isnot(None))

services = versioned(
    "ecs_services",
    sa.Column("arn", sa.String(512), primary_key=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("cluster", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),            # ACTIVE | DRAINING | INACTIVE
    sa.Column("desired_count", sa.Integer, nullable=False),
    sa.Column("task_definition", sa.String(512), nullable=False),
    sa.Column("deployment_config", sa.JSON, nullable=False),
    sa.Column("placement_constraints", sa.JSON, nullable=False, default=list),
    sa.Column("placement_strategy", sa.JSON, nullable=False, default=list),
    sa.Column("deployments", sa.JSON, nullable=False, default=list),
    sa.Column("events", sa.JSON, nullable=False, default=list),    # newest first, at most 100
    sa.Column("extra", sa.JSON, nullable=False, default=dict),     # echoed members
    sa.Column("tags", sa.JSON, nullable=False, default=dict),
    sa.Column("launch_type", sa.String(16), nullable=False),
    sa.Column("scheduling_strategy", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # The reconciler's memory: whether the last pass found the service steady, and the last
    # placement failure it reported (so an event is not repeated every pass).
    sa.Column("steady", sa.Boolean, nullable=False, default=False),
    sa.Column("last_failure", sa.String(1024)),
    sa.Index("ix_ecs_services_cluster", "region", "cluster", "status"),
)

# The reconciler's memory of each service's failing tasks and last completed deployment
# (throttle.Streak as JSON). A table of its own, not service columns: UpdateService and the
# reconciler then never conflict over it, and existing stores gain it with create_all.
service_throttle = sa.Table(
    "ecs_service_throttle", metadata,
    sa.Column("arn", sa.String(512), primary_key=True),
    sa.Column("state", sa.JSON, nullable=False),
)

# RunTask's client tokens (client_tokens.py): what the first request with a token placed.
client_tokens = sa.Table(
    "ecs_client_tokens", metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("cluster", sa.String(255), primary_key=True),
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),       # the request that holds it
    sa.Column("task_arns", sa.JSON, nullable=False),
    sa.Column("failures", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Account settings (account_settings.py): per principal, or the account's default.
account_settings = versioned(
    "ecs_account_settings",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("principal", sa.String(512), primary_key=True),   # an IAM ARN, or "default"
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(64), nullable=False),
)

# Capacity providers (capacity_providers.py), kept by name; deleted ones stay INACTIVE.
capacity_providers = versioned(
    "ecs_capacity_providers",
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("arn", sa.String(512), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),            # ACTIVE | INACTIVE
    sa.Column("kind", sa.String(32), nullable=False),              # EC2_AUTOSCALING | ...
    sa.Column("cluster", sa.String(255)),                          # managed instances' own
    sa.Column("asg_arn", sa.String(1600)),
    sa.Column("config", sa.JSON, nullable=False, default=dict),    # the provider's members
    sa.Column("update_status", sa.String(32)),
    sa.Column("tags", sa.JSON, nullable=False, default=dict),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Scale-in protection of tasks (UpdateTaskProtection), apart from the busy task rows.
task_protection = sa.Table(
    "ecs_task_protection", metadata,
    sa.Column("arn", sa.String(512), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False),
)

# One row per background duty ("ecs-scheduler"): the replica holding an unexpired lease runs
# the reconciler and failure detector; the others stand by.
leases = sa.Table(
    "ecs_leases", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
