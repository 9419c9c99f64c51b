"""The lookups on RunTask's and StartTask's path, without a pass through SQLAlchemy per call.

Both read with `Store.rows` (prepared statements on the driver, on SQLite): the cluster's few
plain columns, and a task definition's ARN and version; the task definition's full row, whose
JSON body is the costly part, is kept per ARN and reused while its version stands (a body never
changes after registration; deregistration moves the version).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa

from ..state.store import Store
from . import arns, errors
from .lookup import Row
from .schema import clusters, task_definitions

_KEPT = 1024        # task definition rows kept per service

_CLUSTER = sa.select(clusters.c.region, clusters.c.name, clusters.c.arn, clusters.c.status).where(
    clusters.c.region == sa.bindparam("region"), clusters.c.name == sa.bindparam("name"))
_TD_KEY = (task_definitions.c.region == sa.bindparam("region"),
           task_definitions.c.family == sa.bindparam("family"))
_TD_LATEST = (sa.select(task_definitions.c.arn, task_definitions.c.version,
                        task_definitions.c.status)
              .where(*_TD_KEY, task_definitions.c.status == "ACTIVE")
              .order_by(task_definitions.c.revision.desc()).limit(1))
_TD_REVISION = (sa.select(task_definitions.c.arn, task_definitions.c.version,
                          task_definitions.c.status)
                .where(*_TD_KEY, task_definitions.c.revision == sa.bindparam("revision")))
_TD_ROW = sa.select(task_definitions).where(task_definitions.c.arn == sa.bindparam("arn"))


class ClusterRef(NamedTuple):
    region: str
    name: str
    arn: str
    status: str


def active_cluster(store: Store, region: str, ident: str | None) -> ClusterRef:
    """The ACTIVE cluster a request names (as `lookup.cluster_ref`); ClusterNotFoundException
    otherwise."""
    found = store.rows(_CLUSTER, {"region": region, "name": arns.cluster_name(ident)})
    if not found or found[0][3] != "ACTIVE":
        raise errors.cluster_not_found()
    return ClusterRef(*found[0])


class TaskDefinitionCache:
    """Usable task definitions by what a request names, their rows kept between calls."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: dict[str, Row] = {}

    def usable(self, region: str, ident: str) -> Row:
        """`family` is its latest ACTIVE revision, `family:N` and ARNs one revision; ClientException
        if there is none or it is inactive (as tasks.usable_task_definition)."""
        family, revision = arns.task_definition_ref(ident)
        params: dict[str, Any] = {"region": region, "family": family}
        if revision is None:
            found = self.store.rows(_TD_LATEST, params)
        else:
            found = self.store.rows(_TD_REVISION, {**params, "revision": revision})
        if not found:
            raise errors.client("TaskDefinition not found.")
        arn, version, status = found[0]
        if status != "ACTIVE":
            raise errors.client("TaskDefinition is inactive")
        row = self._rows.get(arn)
        if row is None or row.version != version:
            with self.store.read() as conn:
                row = conn.execute(_TD_ROW, {"arn": arn}).one()
            if len(self._rows) >= _KEPT:
                self._rows.clear()
            self._rows[arn] = row
        return row
