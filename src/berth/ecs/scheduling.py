"""The scheduler's commit path: read a snapshot of a cluster's instances, let the pure placement
decide, commit the claims with compare-and-swap on each instance's version, and insert the task
rows in the same transaction. A conflicting instance drops only its own claims; what is left is
planned again on fresh state, a bounded number of times.

RunTask, StartTask (the caller names the instances: custom schedulers) and the service
reconciler all place tasks through here, so any number of them can work on one cluster without
over-committing an instance.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..state.store import Store, VersionConflict
from . import arns
from .clock import now
from .placement import (
    Claim,
    InstanceView,
    PlacementResult,
    Requirements,
    apply_claim,
    place,
)
from .schema import instances, tasks
from .taskdef_spec import Needs

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 200          # re-plans after conflicts; each conflict means a rival progressed
MAX_SECONDS = 20.0
REASON_MISSING = "MISSING"
REASON_INACTIVE = "INACTIVE"


@dataclass
class TaskSpec:
    """Everything a new task row needs besides the instance it lands on."""
    region: str
    account: str
    cluster: str
    task_definition_arn: str
    family: str
    containers: list[dict[str, Any]]          # container definitions (name, image, cpu, ...)
    needs: Needs
    group: str
    launch_type: str = "EC2"
    overrides: dict[str, Any] = field(default_factory=dict)
    started_by: str | None = None
    service_name: str | None = None
    deployment_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def requirements(self) -> Requirements:
        return Requirements(self.needs.cpu, self.needs.memory, self.needs.ports, self.group)


@dataclass
class Outcome:
    tasks: list[dict[str, Any]]               # the inserted rows, as dicts
    failures: list[dict[str, str]]


# -- snapshot ------------------------------------------------------------------------------------

_VERSIONS = sa.select(instances.c.arn, instances.c.version).where(
    instances.c.region == sa.bindparam("region"), instances.c.cluster == sa.bindparam("cluster"),
    instances.c.status == "ACTIVE")      # unordered: placement breaks ties by ARN itself


def _view(row: Any) -> InstanceView:
    return InstanceView(
        arn=row.arn, instance_id=row.arn.rsplit("/", 1)[-1], version=row.version,
        remaining_cpu=row.remaining_cpu, remaining_memory=row.remaining_memory,
        used_ports=frozenset(row.used_ports), reserved_ports=frozenset(row.reserved_ports),
        attributes=row.attributes, running_tasks_count=row.task_count,
        task_groups=row.task_groups, ec2_instance_id=row.ec2_instance_id,
        agent_connected=bool(row.agent_connected),
        agent_version=(row.version_info or {}).get("agentVersion", ""),
        registered_at=row.registered_at)


class SnapshotCache:
    """Instance views by ARN, each exact for its version: a row never changes without its
    version moving. A snapshot reads (ARN, version) of every ACTIVE instance and the full rows
    of only those that changed, so 1,000 instances cost one narrow query."""

    def __init__(self) -> None:
        self._views: dict[str, InstanceView] = {}
        self._lock = threading.Lock()

    def snapshot(self, conn: Connection, region: str, cluster: str,
                 only: Sequence[str] | None = None) -> list[InstanceView]:
        """ACTIVE instances of a cluster (or just `only`), connected or not: placement reports
        a disconnected agent itself."""
        q = _VERSIONS if only is None else _VERSIONS.where(
            instances.c.arn.in_(sorted(set(only))))
        current = conn.execute(q, {"region": region, "cluster": cluster}).all()
        with self._lock:
            views = self._views
            stale = [arn for arn, version in current
                     if (v := views.get(arn)) is None or v.version != version]
        fresh: dict[str, InstanceView] = {}
        gone: set[str] = set()
        for i in range(0, len(stale), 500):
            for row in conn.execute(sa.select(instances).where(
                    instances.c.arn.in_(stale[i:i + 500]))):
                if row.status == "ACTIVE":
                    fresh[row.arn] = _view(row)
                else:
                    gone.add(row.arn)
        with self._lock:
            views.update(fresh)
            # A row that moved on between the two reads is taken at its newer version.
            return [fresh.get(arn) or views[arn] for arn, _ in current if arn not in gone]

    def learn(self, spec: TaskSpec, views: Mapping[str, InstanceView],
              rows: Sequence[dict[str, Any]]) -> None:
        """Remember the instances as a commit that just succeeded left them: the row is
        exactly what the compare-and-swap wrote, so the next snapshot need not re-read it."""
        by_instance: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_instance[r["instance_arn"]].append(r)
        with self._lock:
            for arn, placed in by_instance.items():
                v = views[arn]
                groups = dict(v.task_groups)
                groups[spec.group] = groups.get(spec.group, 0) + len(placed)
                cached = self._views.get(arn)
                if cached is not None and cached.version > v.version + 1:
                    continue
                self._views[arn] = replace(
                    v, version=v.version + 1,
                    remaining_cpu=v.remaining_cpu - sum(r["cpu"] for r in placed),
                    remaining_memory=v.remaining_memory - sum(r["memory"] for r in placed),
                    used_ports=v.used_ports | {p for r in placed for p in r["ports"]},
                    running_tasks_count=v.running_tasks_count + len(placed),
                    task_groups=groups)


# -- commit --------------------------------------------------------------------------------------

def task_row(spec: TaskSpec, claim: Claim, at: float) -> dict[str, Any]:
    ident = arns.new_id()
    arn = arns.task_arn(spec.region, spec.account, spec.cluster, ident)
    by_name = {o.get("name"): o for o in spec.overrides.get("containerOverrides") or []}
    containers = []
    for c in spec.containers:
        o = by_name.get(c["name"], {})
        item: dict[str, Any] = {
            "containerArn": arns.container_arn(spec.region, spec.account, spec.cluster, ident),
            "taskArn": arn, "name": c["name"], "image": c["image"], "lastStatus": "PENDING",
            "networkBindings": [], "networkInterfaces": [],
            "cpu": str(o.get("cpu", c.get("cpu") or 0))}
        memory = o.get("memory", c.get("memory"))
        reservation = o.get("memoryReservation", c.get("memoryReservation"))
        if memory is not None:
            item["memory"] = str(memory)
        if reservation is not None:
            item["memoryReservation"] = str(reservation)
        containers.append(item)
    return {"arn": arn, "region": spec.region, "cluster": spec.cluster,
            "instance_arn": claim.instance_arn, "task_definition_arn": spec.task_definition_arn,
            "family": spec.family, "last_status": "PROVISIONING", "desired_status": "RUNNING",
            "cpu": claim.cpu, "memory": claim.memory, "ports": list(claim.ports),
            "group": spec.group, "started_by": spec.started_by,
            "service_name": spec.service_name, "deployment_id": spec.deployment_id,
            "launch_type": spec.launch_type, "overrides": spec.overrides,
            "containers": containers, "tags": spec.tags, "created_at": at, "version": 1}


# One compare-and-swap statement, built once: the claims of one commit run as an executemany.
_CAS = (instances.update()
        .where(instances.c.arn == sa.bindparam("b_arn"),
               instances.c.version == sa.bindparam("b_version"))
        .values(version=sa.bindparam("b_new_version"),
                remaining_cpu=sa.bindparam("b_cpu"), remaining_memory=sa.bindparam("b_memory"),
                used_ports=sa.bindparam("b_ports", type_=instances.c.used_ports.type),
                task_groups=sa.bindparam("b_groups", type_=instances.c.task_groups.type),
                task_count=sa.bindparam("b_count")))
_INSERT_TASKS = tasks.insert()


class _Conflict(Exception):
    """The all-or-nothing fast path lost a race; redo the commit claim by claim."""


def _cas_params(spec: TaskSpec, view: InstanceView, group: list[Claim]) -> dict[str, Any]:
    groups = dict(view.task_groups)
    groups[spec.group] = groups.get(spec.group, 0) + len(group)
    return {"b_arn": view.arn, "b_version": group[0].instance_version,
            "b_new_version": group[0].instance_version + 1,
            "b_cpu": view.remaining_cpu - sum(c.cpu for c in group),
            "b_memory": view.remaining_memory - sum(c.memory for c in group),
            "b_ports": sorted([*view.used_ports, *(p for c in group for p in c.ports)]),
            "b_groups": groups, "b_count": view.running_tasks_count + len(group)}


def commit(store: Store, spec: TaskSpec, claims: Sequence[Claim],
           views: Mapping[str, InstanceView]) -> tuple[list[dict[str, Any]], list[Claim]]:
    """Commit what still holds; returns (inserted task rows, claims refused by a conflict).

    Each instance's claims apply only if the row is still at the version the snapshot read.
    Usually all hold: one statement per table. Otherwise the commit is redone per instance,
    keeping what holds, so a scheduler progresses even while rivals commit around it."""
    by_instance: dict[str, list[Claim]] = defaultdict(list)
    for c in claims:
        by_instance[c.instance_arn].append(c)
    order = sorted(by_instance)       # one lock order for every committer
    params = [_cas_params(spec, views[arn], by_instance[arn]) for arn in order]
    at = now()
    multi_ok = store.engine.dialect.supports_sane_multi_rowcount
    if multi_ok or len(params) == 1:
        rows = [task_row(spec, c, at) for arn in order for c in by_instance[arn]]
        try:
            with store.write() as conn:
                if conn.execute(_CAS, params).rowcount != len(params):
                    raise _Conflict
                conn.execute(_INSERT_TASKS, rows)
            return rows, []
        except _Conflict:
            pass
    inserted: list[dict[str, Any]] = []
    refused: list[Claim] = []
    with store.write() as conn:
        for arn, p in zip(order, params):
            try:
                Store.cas_update(conn, instances, {"arn": arn}, p["b_version"], {
                    "remaining_cpu": p["b_cpu"], "remaining_memory": p["b_memory"],
                    "used_ports": p["b_ports"], "task_groups": p["b_groups"],
                    "task_count": p["b_count"]})
            except VersionConflict:
                refused.extend(by_instance[arn])
                continue
            rows = [task_row(spec, c, at) for c in by_instance[arn]]
            conn.execute(_INSERT_TASKS, rows)
            inserted.extend(rows)
    return inserted, refused


# -- the loops -----------------------------------------------------------------------------------

def _failure(arn: str, reason: str) -> dict[str, str]:
    return {"arn": arn, "reason": reason} if arn else {"reason": reason}


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))


class Scheduler:
    """The commit path with its process-local helpers: the snapshot cache, and one lock per
    cluster so this process's own placements queue instead of racing each other (their
    deterministic tie-breaks would otherwise pick the same instances). Rivals in other
    processes are still kept honest by the compare-and-swap alone."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cache = SnapshotCache()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, region: str, cluster: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((region, cluster), threading.Lock())

    def run_tasks(self, spec: TaskSpec, count: int,
                  strategies: Sequence[Mapping[str, str]] = (),
                  constraints: Sequence[Mapping[str, str]] = (),
                  rng: random.Random | None = None) -> Outcome:
        """RunTask's path: berth's placement chooses among the cluster's ACTIVE instances."""
        placed: list[dict[str, Any]] = []
        deadline = time.monotonic() + MAX_SECONDS
        req = spec.requirements
        result = PlacementResult([], [])
        for attempt in range(MAX_ATTEMPTS):
            with self._lock(spec.region, spec.cluster):
                with self.store.read() as conn:
                    views = self.cache.snapshot(conn, spec.region, spec.cluster)
                result = place(views, req, count - len(placed), strategies, constraints, rng)
                if not result.claims:
                    break
                by_arn = {v.arn: v for v in views}
                rows, refused = commit(self.store, spec, result.claims, by_arn)
                self.cache.learn(spec, by_arn, rows)
            placed.extend(rows)
            if not refused:
                break
            if time.monotonic() > deadline:
                result = PlacementResult([], [("", "RESOURCE:CPU")] * len(refused))
                break
            _backoff(attempt)
        return Outcome(placed, [_failure(a, r) for a, r in result.failures])

    def start_tasks(self, spec: TaskSpec, instance_arns: Sequence[str]) -> Outcome:
        """StartTask's path: one task on each named instance (the caller is the scheduler);
        the same checks and the same compare-and-swap commit as RunTask."""
        placed: list[dict[str, Any]] = []
        failures: list[dict[str, str]] = []
        todo = list(instance_arns)
        req = spec.requirements
        deadline = time.monotonic() + MAX_SECONDS
        for attempt in range(MAX_ATTEMPTS):
            with self._lock(spec.region, spec.cluster):
                with self.store.read() as conn:
                    found = {v.arn: v for v in self.cache.snapshot(
                        conn, spec.region, spec.cluster, todo)}
                    missing = sorted({a for a in todo if a not in found})
                    inactive = set(conn.execute(sa.select(instances.c.arn).where(
                        instances.c.arn.in_(missing))).scalars()) if missing else set()
                current = dict(found)
                claims: list[Claim] = []
                for arn in todo:
                    view = current.get(arn)
                    if view is None:
                        failures.append(_failure(arn, REASON_INACTIVE if arn in inactive
                                                 else REASON_MISSING))
                        continue
                    result = place([view], req, 1, [{"type": "random"}], [])
                    if result.claims:
                        claims.append(result.claims[0])
                        # Later claims on the same instance see this one (same version: the
                        # commit applies them together).
                        current[arn] = apply_claim(view, result.claims[0], spec.group,
                                                   view.version)
                    else:
                        failures.extend(_failure(a or arn, r) for a, r in result.failures)
                if not claims:
                    break
                rows, refused = commit(self.store, spec, claims, found)
                self.cache.learn(spec, found, rows)
            placed.extend(rows)
            todo = [c.instance_arn for c in refused]
            if not todo:
                break
            if time.monotonic() > deadline:
                failures.extend(_failure(a, "RESOURCE:CPU") for a in todo)
                break
            _backoff(attempt)
        return Outcome(placed, failures)
