"""The scheduler's commit path: take a snapshot of a cluster's instances (kept in process and
checked with one query, snapshot.py), let the pure placement decide, commit the claims with
compare-and-swap on each instance's version, and insert the task rows in the same transaction.
A conflicting instance drops only its own claims; what is left is planned again on fresh state,
a bounded number of times. The answer is built from what was written: nothing is read back.

RunTask, StartTask (the caller names the instances: custom schedulers) and the service
reconciler all place tasks through here, so any number of them can work on one cluster without
over-committing an instance.
"""
from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..api.app import on_event_loop
from ..state.store import ChangeToken, Store
from . import arns
from .client_tokens import ClientToken
from .client_tokens import record as record_token
from .clock import now
from .placement import (
    Claim,
    InstanceView,
    PlacementResult,
    Requirements,
    apply_claim,
    place,
    udp,
)
from .placement_warm import WarmPlacers
from .schema import instances, tasks
from .snapshot import SnapshotCache
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
    client_token: ClientToken | None = None   # RunTask's, recorded with the tasks it places

    @property
    def requirements(self) -> Requirements:
        ports = (*self.needs.ports, *(udp(p) for p in self.needs.udp_ports))
        return Requirements(self.needs.cpu, self.needs.memory, ports, self.group)


@dataclass
class Outcome:
    tasks: list[dict[str, Any]]               # the inserted rows, as dicts
    failures: list[dict[str, str]]


# -- commit --------------------------------------------------------------------------------------

def _containers(spec: TaskSpec) -> list[dict[str, Any]]:
    """The task's containers as the Task shape lists them, less the ARNs (the same for every
    task of one call)."""
    by_name = {o.get("name"): o for o in spec.overrides.get("containerOverrides") or []}
    out = []
    for c in spec.containers:
        o = by_name.get(c["name"], {})
        item: dict[str, Any] = {
            "containerArn": "", "taskArn": "", "name": c["name"], "image": c["image"],
            "lastStatus": "PENDING", "networkBindings": [], "networkInterfaces": [],
            "cpu": str(o.get("cpu", c.get("cpu") or 0))}
        memory = o.get("memory", c.get("memory"))
        reservation = o.get("memoryReservation", c.get("memoryReservation"))
        if memory is not None:
            item["memory"] = str(memory)
        if reservation is not None:
            item["memoryReservation"] = str(reservation)
        out.append(item)
    return out


def task_rows(spec: TaskSpec, claims: Sequence[Claim], at: float) -> list[dict[str, Any]]:
    """The new task rows for `claims`, as inserted (and answered: RunTask reads nothing back)."""
    region, account, cluster = spec.region, spec.account, spec.cluster
    templates = _containers(spec)
    rows = []
    for claim in claims:
        ident = arns.new_id()
        arn = arns.task_arn(region, account, cluster, ident)
        containers = [{**t, "containerArn": arns.container_arn(region, account, cluster, ident),
                       "taskArn": arn} for t in templates]
        rows.append({
            "arn": arn, "region": region, "cluster": cluster,
            "instance_arn": claim.instance_arn, "task_definition_arn": spec.task_definition_arn,
            "family": spec.family, "last_status": "PROVISIONING", "desired_status": "RUNNING",
            "cpu": claim.cpu, "memory": claim.memory, "ports": list(claim.ports),
            "group": spec.group, "started_by": spec.started_by,
            "service_name": spec.service_name, "deployment_id": spec.deployment_id,
            "launch_type": spec.launch_type, "overrides": spec.overrides,
            "containers": containers, "tags": spec.tags, "created_at": at, "version": 1})
    return rows


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


@dataclass
class _Committed:
    rows: list[dict[str, Any]]          # the inserted task rows
    refused: list[Claim]                # claims whose instance had moved on
    views: list[InstanceView]           # the claimed instances as the commit left them
    tokens: tuple[ChangeToken | None, ChangeToken | None] = (None, None)   # Store.commit_tokens


def _cas_params(spec: TaskSpec, view: InstanceView, group: list[Claim]) -> dict[str, Any]:
    groups = dict(view.task_groups)
    groups[spec.group] = groups.get(spec.group, 0) + len(group)
    return {"b_arn": view.arn, "b_version": group[0].instance_version,
            "b_new_version": group[0].instance_version + 1,
            "b_cpu": view.remaining_cpu - sum(c.cpu for c in group),
            "b_memory": view.remaining_memory - sum(c.memory for c in group),
            "b_ports": sorted([*view.used_ports, *(p for c in group for p in c.ports)]),
            "b_groups": groups, "b_count": view.running_tasks_count + len(group)}


def _after(view: InstanceView, p: dict[str, Any]) -> InstanceView | None:
    """The row as the compare-and-swap with params `p` left it, if `view` is the row at the
    version the swap expected (then every column the swap did not write is as in `view`)."""
    if view.version != p["b_version"]:
        return None
    # Built whole, not with dataclasses.replace: this runs for every claimed instance of every
    # commit, and replace costs twice as much.
    return InstanceView(
        arn=view.arn, instance_id=view.instance_id, version=p["b_new_version"],
        remaining_cpu=p["b_cpu"], remaining_memory=p["b_memory"],
        used_ports=frozenset(p["b_ports"]), reserved_ports=view.reserved_ports,
        attributes=view.attributes, running_tasks_count=p["b_count"],
        task_groups=p["b_groups"], ec2_instance_id=view.ec2_instance_id,
        agent_connected=view.agent_connected, agent_version=view.agent_version,
        registered_at=view.registered_at)


def _commit(store: Store, spec: TaskSpec, claims: Sequence[Claim],
            views: Mapping[str, InstanceView]) -> _Committed:
    by_instance: dict[str, list[Claim]] = defaultdict(list)
    for c in claims:
        by_instance[c.instance_arn].append(c)
    order = sorted(by_instance)       # one lock order for every committer
    params = [_cas_params(spec, views[arn], by_instance[arn]) for arn in order]
    at = now()
    multi_ok = store.engine.dialect.supports_sane_multi_rowcount
    if multi_ok or len(params) == 1:
        rows = task_rows(spec, [c for arn in order for c in by_instance[arn]], at)
        try:
            with store.write() as conn:
                tokens = store.commit_tokens(conn)
                if store.execute_many(conn, _CAS, params) != len(params):
                    raise _Conflict
                store.execute_many(conn, _INSERT_TASKS, rows)
                if spec.client_token is not None:
                    record_token(store, conn, spec.client_token, [r["arn"] for r in rows])
        except _Conflict:
            pass
        else:
            return _Committed(rows, [], [v for arn, p in zip(order, params)
                                         if (v := _after(views[arn], p)) is not None], tokens)
    done = _Committed([], [], [])
    with store.write() as conn:
        done.tokens = store.commit_tokens(conn)
        for arn, p in zip(order, params):
            if store.execute_many(conn, _CAS, [p]) != 1:
                done.refused.extend(by_instance[arn])
                continue
            rows = task_rows(spec, by_instance[arn], at)
            store.execute_many(conn, _INSERT_TASKS, rows)
            if spec.client_token is not None:
                record_token(store, conn, spec.client_token, [r["arn"] for r in rows])
            done.rows.extend(rows)
            if (v := _after(views[arn], p)) is not None:
                done.views.append(v)
    return done


def commit(store: Store, spec: TaskSpec, claims: Sequence[Claim],
           views: Mapping[str, InstanceView]) -> tuple[list[dict[str, Any]], list[Claim]]:
    """Commit what still holds; returns (inserted task rows, claims refused by a conflict).

    Each instance's claims apply only if the row is still at the version the snapshot read.
    Usually all hold: one statement per table. Otherwise the commit is redone per instance,
    keeping what holds, so a scheduler progresses even while rivals commit around it."""
    done = _commit(store, spec, claims, views)
    return done.rows, done.refused


# -- the loops -----------------------------------------------------------------------------------

def _less(view: InstanceView, held: Sequence[Requirements]) -> InstanceView:
    """The instance as placement may see it while `held` waits for room on it."""
    return dataclasses.replace(
        view, remaining_cpu=view.remaining_cpu - sum(r.cpu for r in held),
        remaining_memory=view.remaining_memory - sum(r.memory for r in held),
        used_ports=view.used_ports | frozenset(p for r in held for p in r.ports))


def _failure(arn: str, reason: str) -> dict[str, str]:
    return {"arn": arn, "reason": reason} if arn else {"reason": reason}


def _backoff(attempt: int) -> None:
    """A short random wait after a conflict, so rivals drift apart. Not on an event loop
    (RunTask and StartTask run inline there with SQLite), where every other request would
    wait too: there the re-plan follows at once, on the rows the conflict showed had moved."""
    if not on_event_loop():
        time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))


class Scheduler:
    """The commit path with its process-local helpers: the snapshot cache, and one lock per
    cluster so this process's own placements queue instead of racing each other (their
    deterministic tie-breaks would otherwise pick the same instances). Rivals in other
    processes are still kept honest by the compare-and-swap alone."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cache = SnapshotCache()
        self.placers = WarmPlacers()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, region: str, cluster: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((region, cluster), threading.Lock())

    def run_tasks(self, spec: TaskSpec, count: int,
                  strategies: Sequence[Mapping[str, str]] = (),
                  constraints: Sequence[Mapping[str, str]] = (),
                  rng: random.Random | None = None,
                  reserved: Mapping[str, Sequence[Requirements]] | None = None) -> Outcome:
        """RunTask's path: berth's placement chooses among the cluster's ACTIVE instances.

        `reserved` is held back from placement on those instances (the reconciler's daemon
        tasks still waiting for room there); the commit still swaps on the real rows."""
        placed: list[dict[str, Any]] = []
        deadline = time.monotonic() + MAX_SECONDS
        req = spec.requirements
        result = PlacementResult([], [])
        suspects: list[str] = []
        for attempt in range(MAX_ATTEMPTS):
            with self._lock(spec.region, spec.cluster):
                snap = self.cache.snapshot(self.store, spec.region, spec.cluster, suspects)
                if reserved:
                    result = place([_less(v, reserved[v.arn]) if v.arn in reserved else v
                                    for v in snap.views], req, count - len(placed),
                                   strategies, constraints, rng)
                else:
                    result = self.placers.place((spec.region, spec.cluster), snap, req,
                                                count - len(placed), strategies, constraints,
                                                rng)
                if not result.claims:
                    break
                done = _commit(self.store, spec, result.claims, snap.by_arn)
                self.cache.learn(spec.region, spec.cluster, done.views, done.tokens)
            placed.extend(done.rows)
            if not done.refused:
                break
            if attempt == MAX_ATTEMPTS - 1 or time.monotonic() > deadline:
                # Out of tries (rivals kept winning): what is left is reported, never dropped.
                result = PlacementResult([], [*result.failures,
                                              *[("", "RESOURCE:CPU")] * len(done.refused)])
                break
            suspects = [c.instance_arn for c in done.refused]
            _backoff(attempt)
        return Outcome(placed, [_failure(a, r) for a, r in result.failures])

    def start_tasks(self, spec: TaskSpec, instance_arns: Sequence[str]) -> Outcome:
        """StartTask's path: one task on each named instance (the caller is the scheduler);
        the same checks and the same compare-and-swap commit as RunTask."""
        placed: list[dict[str, Any]] = []
        failures: list[dict[str, str]] = []
        todo = list(instance_arns)
        suspects: list[str] = []
        req = spec.requirements
        deadline = time.monotonic() + MAX_SECONDS
        for attempt in range(MAX_ATTEMPTS):
            with self._lock(spec.region, spec.cluster):
                snap = self.cache.snapshot(self.store, spec.region, spec.cluster, suspects)
                with self.store.read() as conn:
                    found = {a: snap.by_arn[a] for a in todo if a in snap.by_arn}
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
                done = _commit(self.store, spec, claims, found)
                self.cache.learn(spec.region, spec.cluster, done.views, done.tokens)
            placed.extend(done.rows)
            todo = suspects = [c.instance_arn for c in done.refused]
            if not todo:
                break
            if attempt == MAX_ATTEMPTS - 1 or time.monotonic() > deadline:
                failures.extend(_failure(a, "RESOURCE:CPU") for a in todo)
                break
            _backoff(attempt)
        return Outcome(placed, failures)
