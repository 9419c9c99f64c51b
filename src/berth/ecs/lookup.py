"""From what a request names (short name, id or ARN) to the stored row, within one region."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..state.store import Store
from . import arns, errors
from .clock import now
from .schema import clusters, instances, services, task_definitions, tasks

Row = sa.Row[Any]

DEFAULT_SETTINGS = [{"name": "containerInsights", "value": "disabled"}]


# Statements on every request's path are built once: building one costs more than running it.
_CLUSTER_KEY = (clusters.c.region == sa.bindparam("region"),
                clusters.c.name == sa.bindparam("name"))
_CLUSTER = sa.select(clusters).where(*_CLUSTER_KEY)
_CLUSTER_REF = sa.select(clusters.c.region, clusters.c.name, clusters.c.arn,
                         clusters.c.status).where(*_CLUSTER_KEY)
_TD_BY_FAMILY = sa.select(task_definitions).where(
    task_definitions.c.region == sa.bindparam("region"),
    task_definitions.c.family == sa.bindparam("family"))
_TD_LATEST = (_TD_BY_FAMILY.where(task_definitions.c.status == "ACTIVE")
              .order_by(task_definitions.c.revision.desc()).limit(1))
_TD_REVISION = _TD_BY_FAMILY.where(task_definitions.c.revision == sa.bindparam("revision"))


def find_cluster(conn: Connection, region: str, ident: str | None) -> Row | None:
    return conn.execute(_CLUSTER, {"region": region,
                                   "name": arns.cluster_name(ident)}).first()


def get_cluster(conn: Connection, region: str, ident: str | None) -> Row:
    """The ACTIVE cluster a request names; ClusterNotFoundException otherwise."""
    row = find_cluster(conn, region, ident)
    if row is None or row.status != "ACTIVE":
        raise errors.cluster_not_found()
    return row


def cluster_ref(conn: Connection, region: str, ident: str | None) -> Row:
    """Like get_cluster, but only the cluster's region, name, ARN and status: what the task
    operations need, without decoding its settings and tags on every call."""
    row = conn.execute(_CLUSTER_REF, {"region": region,
                                      "name": arns.cluster_name(ident)}).first()
    if row is None or row.status != "ACTIVE":
        raise errors.cluster_not_found()
    return row


def ensure_cluster(conn: Connection, region: str, account: str, ident: str | None) -> Row:
    """The cluster `default` springs into being on first use (an agent joining it, as the ECS
    agent does); any other name must exist."""
    name = arns.cluster_name(ident)
    row = find_cluster(conn, region, name)
    if row is not None and row.status == "ACTIVE":
        return row
    if name != "default":
        raise errors.cluster_not_found()
    values = {"status": "ACTIVE", "settings": DEFAULT_SETTINGS, "configuration": None,
              "service_connect": None, "capacity_providers": [], "tags": {},
              "created_at": now()}
    if row is None:
        Store.insert(conn, clusters, {"region": region, "name": name,
                                      "arn": arns.cluster_arn(region, account, name), **values})
    else:
        Store.bump(conn, clusters, {"region": region, "name": name}, values)
    return get_cluster(conn, region, name)


def instance_arn_for(region: str, cluster: Row, ident: str) -> str:
    arn_cluster, ident_id = arns.member_id(ident, "container-instance")
    if ident.startswith(arns.PREFIX):
        return ident
    account = cluster.arn.split(":")[4]
    return arns.instance_arn(region, account, arn_cluster or cluster.name, ident_id)


def _member(conn: Connection, table: sa.Table, arn: str, region: str,
            cluster: Row) -> Row | None:
    """The row of `table` at `arn`, if it belongs to `cluster` in `region`."""
    row = conn.execute(sa.select(table).where(table.c.arn == arn)).first()
    if row is None or row.region != region or row.cluster != cluster.name:
        return None
    return row


def find_instance(conn: Connection, region: str, cluster: Row, ident: str) -> Row | None:
    return _member(conn, instances, instance_arn_for(region, cluster, ident), region, cluster)


def task_arn_for(region: str, cluster: Row, ident: str) -> str:
    if ident.startswith(arns.PREFIX):
        arns.member_id(ident, "task")      # validates the form
        return ident
    account = cluster.arn.split(":")[4]
    return arns.task_arn(region, account, cluster.name, ident)


def find_task(conn: Connection, region: str, cluster: Row, ident: str) -> Row | None:
    return _member(conn, tasks, task_arn_for(region, cluster, ident), region, cluster)


def find_task_definition(conn: Connection, region: str, ident: str) -> Row | None:
    """`family` means its latest ACTIVE revision; `family:N` and ARNs name one revision."""
    family, revision = arns.task_definition_ref(ident)
    if revision is None:
        return conn.execute(_TD_LATEST, {"region": region, "family": family}).first()
    return conn.execute(_TD_REVISION, {"region": region, "family": family,
                                       "revision": revision}).first()


def service_arn_for(region: str, cluster: Row, ident: str) -> str:
    arn_cluster, name = arns.service_name(ident)
    if ident.startswith(arns.PREFIX):
        if arn_cluster is None:   # old form service/name
            account = cluster.arn.split(":")[4]
            return arns.service_arn(region, account, cluster.name, name)
        return ident
    account = cluster.arn.split(":")[4]
    return arns.service_arn(region, account, cluster.name, name)


def find_service(conn: Connection, region: str, cluster: Row, ident: str) -> Row | None:
    return _member(conn, services, service_arn_for(region, cluster, ident), region, cluster)
