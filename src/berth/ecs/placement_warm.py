"""Placement kept warm between calls: the same choices as `placement.place`, without rebuilding
its structures over every instance of the cluster for each call.

A `_WarmPlacer` holds, for one cluster and one kind of request (requirements, strategies,
constraints), the partitions and heaps of `placement._Placer` over the whole snapshot. Between
calls only the instances that changed since (the snapshot cache keeps their ARNs, snapshot.py)
and those the previous call placed on are brought up to date: each gets a fresh heap entry
(its old one is voided by a stamp) if it still fits. Heaps stay correct because the lazy rule
of `_Placer` still holds: a stored key never exceeds the instance's real key, except where an
instance changed, and those were re-entered. The one change that would lower the keys of
instances that did *not* change, fewer tasks under a value of an attribute spread below the
leading strategies, makes the placer start afresh instead, as does a long gap between calls.

A `random` strategy draws afresh every call, so it always takes the pure path.
"""
from __future__ import annotations

import heapq
import random
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from .placement import (
    _FITS,
    DEFAULT_STRATEGIES,
    Claim,
    InstanceView,
    PlacementResult,
    Requirements,
    _closest,
    _order,
    _Placer,
    _stage,
    place,
)
from .placement_rules import Level, Rules, constraint_spec, strategy_spec
from .placement_rules import levels as compile_levels
from .placement_rules import rules as compile_rules
from .snapshot import Snapshot

# Instance slots the kept placers may hold in all (about 200 bytes each), and kinds of request
# remembered as seen.
_BUDGET = 200_000
_SEEN = 1024


class _WarmPlacer(_Placer):
    """A `_Placer` over every instance of a snapshot (positions never move; an instance gone
    from the cluster is marked dead), whose heaps hold only the instances that fit one task.
    Re-entering an instance bumps its stamp, which voids its older entries."""

    def __init__(self, snap: Snapshot, req: Requirements, levels: tuple[Level, ...],
                 rules: Rules) -> None:
        self.generation = snap.generation
        views = snap.views
        self.alive = [True] * len(views)
        super().__init__(views, views, req, levels, rules, None)

    # -- building ------------------------------------------------------------------------------

    def _build_heaps(self, inner: list[Level]) -> None:
        self.inner_spread = tuple(level.name for level in inner if level.kind == "attribute")
        self.stamp = [0] * len(self.pool)
        self.index = {v.arn: i for i, v in enumerate(self.pool)}
        self.pvalues: list[tuple[Any, ...]] = []
        self.parts: list[list[tuple[Any, ...]]] = []
        self.ptiebreak: list[tuple[Any, ...]] = []
        self.part_of: dict[tuple[Any, ...], int] = {}
        self.entries = 0        # heap entries, void ones included
        for i, v in enumerate(self.pool):
            if self._fits(v):
                self.parts_for(v).append(self._entry(i))
                self.entries += 1
        for heap in self.parts:
            heapq.heapify(heap)

    def _fits(self, v: InstanceView) -> bool:
        return _stage(v, 0, self.req, self.rules) == _FITS

    def parts_for(self, v: InstanceView) -> list[tuple[Any, ...]]:
        """The heap of the partition `v`'s leading attribute values put it in."""
        values = tuple(v.attributes.get(name) for name in self.lead)
        n = self.part_of.get(values)
        if n is None:
            n = self.part_of[values] = len(self.parts)
            self.pvalues.append(values)
            self.parts.append([])
            self.ptiebreak.append(tuple(_order(value) for value in values))
        return self.parts[n]

    def _contribution(self, v: InstanceView) -> int:
        group = self.req.group
        return v.running_tasks_count if group is None else v.task_groups.get(group, 0)

    # -- catching up -----------------------------------------------------------------------------

    def refresh(self, snap: Snapshot) -> bool:
        """Bring the placer to `snap`; False if it must be built afresh instead."""
        changed = snap.changes(self.generation)
        if changed is None or len(changed) > _catch_up_limit(len(self.pool)):
            return False
        before = {name: dict(self.counts[name]) for name in self.inner_spread}
        # Undo the previous call's own placements: committed, they come back as changes.
        for i, extra in self.placed.items():
            v = self.pool[i]
            for name, counts in self.counts.items():
                counts[v.attributes.get(name)] -= extra
        touched = set(self.placed)
        self.placed.clear()     # in place: the key functions hold this dict, as they hold pool
        for arn in dict.fromkeys(changed):
            new = snap.by_arn.get(arn)
            i = self.index.get(arn)
            if i is None:
                if new is None:
                    continue
                i = self.index[arn] = len(self.pool)
                self.pool.append(new)
                self.alive.append(True)
                self.base.append(0)
                self.stamp.append(0)
            elif self.alive[i]:
                self._count(self.pool[i], -self._contribution(self.pool[i]))
            if new is None:
                self.alive[i] = False
            else:
                self.pool[i], self.alive[i] = new, True
                self.base[i] = self._contribution(new)
                self._count(new, self.base[i])
            touched.add(i)
        for name, counts in before.items():
            if any(self.counts[name][value] < n for value, n in counts.items()):
                return False
        for i in touched:
            self.stamp[i] += 1
            v = self.pool[i]
            if self.alive[i] and self._fits(v):
                heapq.heappush(self.parts_for(v), self._entry(i))
                self.entries += 1
        self.generation = snap.generation
        # Void entries surface and go in time; start afresh before they outnumber live ones.
        return self.entries <= 2 * len(self.pool) + 64

    def _count(self, v: InstanceView, n: int) -> None:
        for name, counts in self.counts.items():
            counts[v.attributes.get(name)] += n

    # -- choosing ----------------------------------------------------------------------------------

    def run(self, count: int) -> list[Claim]:
        # The partition heap is a handful of entries: rebuilt each call, it needs no upkeep.
        self.pheap = [(self._part_key(n) if self.lead else (), n)
                      for n, heap in enumerate(self.parts) if heap]
        heapq.heapify(self.pheap)
        return super().run(count)

    def _drop(self, heap: list[tuple[Any, ...]]) -> None:
        heapq.heappop(heap)
        self.entries -= 1


class WarmPlacers:
    """The warm placers of one scheduler. Callers serialise the calls for one cluster (the
    scheduler's per-cluster lock).

    A placer is built only where it will pay: for a kind of request seen shortly before (few
    enough changes since for a catch-up), and only while the kinds in use fit the budget of
    instance slots. Otherwise (many task families in turn, a first call) the pure function
    serves the call: it costs less than building a placer that would not be used again."""

    def __init__(self, budget: int = _BUDGET) -> None:
        self._budget = budget
        self._placers: OrderedDict[tuple[Any, ...], _WarmPlacer] = OrderedDict()
        self._seen: OrderedDict[tuple[Any, ...], int] = OrderedDict()   # key -> generation

    def place(self, cluster: tuple[str, str], snap: Snapshot, req: Requirements, count: int,
              strategies: Sequence[Mapping[str, str]] = (),
              constraints: Sequence[Mapping[str, str]] = (),
              rng: random.Random | None = None) -> PlacementResult:
        """`placement.place` over `snap.views`, with the same answer."""
        levels = compile_levels(strategy_spec(strategies or DEFAULT_STRATEGIES))
        rules = compile_rules(constraint_spec(constraints))
        if (count <= 0 or not snap.by_arn or rng is not None
                or any(level.kind == "random" for level in levels)):
            return place(snap.views, req, count, strategies, constraints, rng)
        key = (cluster, req, levels, rules)
        placer = self._placers.pop(key, None)
        if placer is not None and not placer.refresh(snap):
            placer = None
        if placer is None:
            if not self._worth_building(key, snap):
                return place(snap.views, req, count, strategies, constraints)
            placer = _WarmPlacer(snap, req, levels, rules)
        self._placers[key] = placer
        self._seen.pop(key, None)
        while sum(len(p.pool) for p in self._placers.values()) > self._budget:
            self._placers.popitem(last=False)
        claims = placer.run(count)
        failures: list[tuple[str, str]] = []
        if len(claims) < count:
            failures = [_closest(snap.views, req, rules, placer.placed_by_arn())] * (
                count - len(claims))
        return PlacementResult(claims, failures)

    def _worth_building(self, key: tuple[Any, ...], snap: Snapshot) -> bool:
        """Whether a placer for `key` would likely serve the next call of its kind: the last
        call of the kind was recent, and the kinds recently in use fit the budget."""
        size = len(snap.by_arn)
        recent = snap.generation - _catch_up_limit(size)
        last = self._seen.pop(key, None)
        self._seen[key] = snap.generation
        while len(self._seen) > _SEEN:
            self._seen.popitem(last=False)
        if last is None or last < recent:
            return False
        in_use = 1 + len(self._placers) + sum(1 for g in self._seen.values() if g >= recent)
        return in_use * size <= self._budget


def _catch_up_limit(size: int) -> int:
    """How many changes a placer over `size` instances catches up on rather than start afresh."""
    return size // 4 + 16
