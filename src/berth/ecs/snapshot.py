"""The scheduler's in-process view of each cluster's container instances, kept between
placements and checked against the store with one cheap query before each use.

Why one query suffices: every change to an instance row moves its version up (the store's
rule), and instance rows are never deleted. So the sum of a cluster's instance versions grows
with every change by anyone, in this process or another, and equals the sum the cache holds only
if every row is still at the version cached. A mismatch re-reads the (ARN, version) listing and
the full rows of only what moved. Staleness between this check and the commit is what the
commit's compare-and-swap catches (Nomad's optimistic scheduling on a snapshot).

On SQLite even that query is skipped while the store's change token (Store.change_token) is the
one the cache was last found exact under: then nothing at all has been written since, or only
the scheduler's own commits, which it hands to `learn`.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..state.store import ChangeToken, Store
from .placement import InstanceView, udp
from .schema import instances

_WHERE = (instances.c.region == sa.bindparam("region"),
          instances.c.cluster == sa.bindparam("cluster"))
_PROBE = sa.select(sa.func.count(), sa.cast(sa.func.coalesce(sa.func.sum(instances.c.version), 0),
                                           sa.BigInteger)).where(*_WHERE)
_LISTING = sa.select(instances.c.arn, instances.c.version, instances.c.status).where(*_WHERE)
_ROWS = sa.select(instances).where(instances.c.arn.in_(sa.bindparam("arns", expanding=True)))
_CHUNK = 500


def view_of(row: Any) -> InstanceView:
    """An instance row as placement sees it."""
    return InstanceView(
        arn=row.arn, instance_id=row.arn.rsplit("/", 1)[-1], version=row.version,
        remaining_cpu=row.remaining_cpu, remaining_memory=row.remaining_memory,
        used_ports=frozenset(row.used_ports),
        reserved_ports=frozenset([*row.reserved_ports, *map(udp, row.reserved_udp_ports)]),
        attributes=row.attributes, running_tasks_count=row.task_count,
        task_groups=row.task_groups, ec2_instance_id=row.ec2_instance_id,
        agent_connected=bool(row.agent_connected),
        agent_version=(row.version_info or {}).get("agentVersion", ""),
        registered_at=row.registered_at)


@dataclass(frozen=True)
class Snapshot:
    """A cluster's ACTIVE instances as the cache holds them, by ARN.

    Not a copy: at 10,000 instances copying them for every RunTask would cost more than the
    placement. It stays exact while the cache does not change, and only `snapshot` and `learn`
    change it: the scheduler holds its per-cluster lock from taking a snapshot to learning the
    commit it placed from it. Whoever keeps one longer keeps `dict(by_arn)`.

    `generation` counts the changes the cache has taken in for the cluster; `changes(since)`
    names the instances that changed between generation `since` and this snapshot's (None when
    that is too far back to tell), so a placer kept from an earlier snapshot can catch up."""
    by_arn: Mapping[str, InstanceView]
    generation: int = 0
    changes: Callable[[int], Sequence[str] | None] = lambda since: None

    @property
    def views(self) -> list[InstanceView]:
        return list(self.by_arn.values())


_LOG_LIMIT = 4096     # changes remembered per cluster; older generations must start afresh


class _Cluster:
    """What the cache holds for one cluster. Invariant: `versions` has every row of the cluster
    (any status) at a version it really had; `active` has, for each row that was ACTIVE at
    that version, its view at exactly that version; `total` is the sum of `versions`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.versions: dict[str, int] = {}
        self.active: dict[str, InstanceView] = {}
        self.total = 0
        self._published = Snapshot(self.active)
        self.token: ChangeToken | None = None     # the store's, when last found exact
        self._log: list[str] = []      # the ARN of each change, oldest first
        self._log_start = 0            # the generation of _log[0]

    @property
    def generation(self) -> int:
        return self._log_start + len(self._log)

    def record(self, arn: str, version: int, view: InstanceView | None) -> None:
        self.total += version - self.versions.get(arn, 0)
        self.versions[arn] = version
        if view is None:
            self.active.pop(arn, None)
        else:
            self.active[arn] = view
        if len(self._log) >= _LOG_LIMIT:
            half = _LOG_LIMIT // 2
            del self._log[:half]
            self._log_start += half
        self._log.append(arn)

    def _changes(self, since: int, until: int) -> Sequence[str] | None:
        with self.lock:
            if since < self._log_start or since > until:
                return None
            return self._log[since - self._log_start:until - self._log_start]

    def forget(self, arn: str) -> None:
        self.record(arn, 0, None)
        del self.versions[arn]

    @property
    def snapshot(self) -> Snapshot:
        until = self.generation
        if self._published.generation != until:
            self._published = Snapshot(self.active, until,
                                       lambda since: self._changes(since, until))
        return self._published


class SnapshotCache:
    """Instance views per cluster, each exact for its version."""

    def __init__(self) -> None:
        self._clusters: dict[tuple[str, str], _Cluster] = {}
        self._lock = threading.Lock()      # guards the dict; each cluster has its own lock

    def snapshot(self, store: Store, region: str, cluster: str,
                 suspects: Iterable[str] = ()) -> Snapshot:
        """The ACTIVE instances of a cluster (connected or not: placement reports a
        disconnected agent itself). `suspects` are rows known to have moved (a refused
        compare-and-swap): re-read first, they often explain the whole difference."""
        key = {"region": region, "cluster": cluster}
        entry = self._entry(region, cluster)
        with entry.lock:
            suspects = [a for a in suspects if a in entry.versions]
            # Nothing written anywhere since the cache was last found exact: it still is.
            token = store.change_token()
            if token is not None and token == entry.token and not suspects:
                return entry.snapshot
            entry.token = None
            if suspects:
                with store.read() as conn:
                    self._reread(conn, entry, suspects)
            count, total = store.rows(_PROBE, key)[0]
            if count == len(entry.versions) and total == entry.total:
                entry.token = token
                return entry.snapshot
            with store.read() as conn:
                listing = conn.execute(_LISTING, key).all()
                stale = []
                for arn, version, status in listing:
                    if status != "ACTIVE":
                        entry.record(arn, version, None)
                    elif entry.versions.get(arn) != version or arn not in entry.active:
                        stale.append(arn)
                self._reread(conn, entry, stale)
            if len(entry.versions) != len(listing):     # rows are never deleted; be sure
                listed = {arn for arn, _, _ in listing}
                for arn in [a for a in entry.versions if a not in listed]:
                    entry.forget(arn)
            # Rows re-read after the listing may be newer than it: exact only if none moved.
            if token is not None and store.change_token() == token:
                entry.token = token
            return entry.snapshot

    def _entry(self, region: str, cluster: str) -> _Cluster:
        with self._lock:
            return self._clusters.setdefault((region, cluster), _Cluster())

    @staticmethod
    def _reread(conn: Connection, entry: _Cluster, arns: Sequence[str]) -> None:
        # A row may have moved on since the listing: it is taken at its newer version; the
        # next probe then differs from the listing's sum and looks again.
        for i in range(0, len(arns), _CHUNK):
            for row in conn.execute(_ROWS, {"arns": list(arns[i:i + _CHUNK])}):
                entry.record(row.arn, row.version,
                             view_of(row) if row.status == "ACTIVE" else None)

    def learn(self, region: str, cluster: str, committed: Iterable[InstanceView],
              tokens: tuple[ChangeToken | None, ChangeToken | None] = (None, None)) -> None:
        """Take in the rows as a commit that just succeeded wrote them (each view is the row at
        its new version), so the next snapshot need not read them back. `tokens` are the
        store's change tokens before and after that commit (Store.commit_tokens): if the
        cache was exact just before it, it is exact after it too."""
        entry = self._entry(region, cluster)
        with entry.lock:
            for view in committed:
                if view.version > entry.versions.get(view.arn, 0):
                    entry.record(view.arn, view.version, view)
            before, after = tokens
            entry.token = after if before is not None and entry.token == before else None
