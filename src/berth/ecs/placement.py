"""Task placement as a pure function: from a snapshot of ACTIVE container instances, one task's
requirements, strategies and constraints, to claims on instances (committed elsewhere with CAS).

ECS's process: keep the instances with enough CPU, memory and free ports, then those that satisfy
the constraints, then let the strategies, in order, choose among them; each placed task is
counted before the next one is placed. Strategies chain lexicographically: the first decides, the
next breaks its ties, and the instance ARN breaks what ties remain (random leaves none).
"""
from __future__ import annotations

import heapq
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .placement_rules import Level, Rules, constraint_spec, strategy_spec
from .placement_rules import levels as compile_levels
from .placement_rules import rules as compile_rules


NO_INSTANCES = "No Container Instances were found in your cluster."
REASON_AGENT = "AGENT"
REASON_CPU = "RESOURCE:CPU"
REASON_MEMORY = "RESOURCE:MEMORY"
REASON_PORTS = "RESOURCE:PORTS"
REASON_PORTS_UDP = "RESOURCE:PORTS_UDP"
REASON_MEMBER_OF = "MemberOf placement constraint unsatisfied."
REASON_DISTINCT = "DistinctInstance placement constraint unsatisfied."
# Checks in ECS's order; the instance that passes the most of them is the "closest matching" one.
_REASONS = (REASON_AGENT, REASON_CPU, REASON_MEMORY, REASON_PORTS, REASON_PORTS_UDP,
            REASON_MEMBER_OF, REASON_DISTINCT)
_FITS = len(_REASONS)

# Host ports are one set of integers per instance: a TCP port as itself, a UDP port plus UDP,
# so TCP 53 and UDP 53 are different resources and every port set works as one.
UDP = 1 << 16


def udp(port: int) -> int:
    """UDP host port `port` in a port set."""
    return port + UDP

_RNG = random.Random()   # for callers that bring no rng of their own
DEFAULT_STRATEGIES: tuple[Mapping[str, str], ...] = (
    {"type": "spread", "field": "attribute:ecs.availability-zone"},
    {"type": "spread", "field": "instanceId"},
)


@dataclass(frozen=True, slots=True)
class InstanceView:
    """A snapshot of one ACTIVE container instance. Also a `query.QueryTarget`."""
    arn: str
    instance_id: str            # the 32-hex id at the end of the ARN (spread field `instanceId`)
    version: int                # the store row's version, for compare-and-swap on commit
    remaining_cpu: int
    remaining_memory: int
    used_ports: frozenset[int] = frozenset()      # host ports taken by tasks (UDP: udp(p))
    reserved_ports: frozenset[int] = frozenset()  # host ports the instance declared reserved
    attributes: Mapping[str, str | None] = field(default_factory=dict)
    running_tasks_count: int = 0
    task_groups: Mapping[str, int] = field(default_factory=dict)  # group -> non-stopped tasks
    ec2_instance_id: str = ""
    agent_connected: bool = True
    agent_version: str = ""
    registered_at: float | None = None


@dataclass(frozen=True, slots=True)
class Requirements:
    """One task's needs. `ports` are static host ports, UDP ones as udp(p); dynamic ones
    (hostPort 0) are left out."""
    cpu: int
    memory: int
    ports: tuple[int, ...] = ()
    group: str | None = None    # "family:NAME" by default, "service:NAME", or the user's group


@dataclass
class Claim:
    """One task placed on one instance. Several claims of one call may name the same instance;
    they all carry the version read in the snapshot, so commit them together per instance."""
    instance_arn: str
    instance_version: int
    cpu: int
    memory: int
    ports: tuple[int, ...]


@dataclass
class PlacementResult:
    claims: list[Claim]
    failures: list[tuple[str, str]]   # (instance arn or "", ECS reason), one per unplaced task


def place(instances: Sequence[InstanceView], req: Requirements, count: int,
          strategies: Sequence[Mapping[str, str]] = (),
          constraints: Sequence[Mapping[str, str]] = (),
          rng: random.Random | None = None) -> PlacementResult:
    """Place `count` tasks; raises PlacementError for an invalid strategy or constraint.

    With no strategies, ECS's default applies: spread over `ecs.availability-zone`, then over
    instances. With no instances at all every task fails with NO_INSTANCES (RunTask answers that
    as an InvalidParameterException; a service records it as an event)."""
    levels = compile_levels(strategy_spec(strategies or DEFAULT_STRATEGIES))
    rules = compile_rules(constraint_spec(constraints))
    if count <= 0:
        return PlacementResult([], [])
    if not instances:
        return PlacementResult([], [("", NO_INSTANCES)] * count)
    pool = _feasible(instances, req, rules)
    placer = _Placer(instances, pool, req, levels, rules, rng)
    claims = placer.run(count)
    failures: list[tuple[str, str]] = []
    if len(claims) < count:
        failures = [_closest(instances, req, rules, placer.placed_by_arn())] * (count - len(claims))
    return PlacementResult(claims, failures)


def apply_claim(view: InstanceView, claim: Claim, group: str | None,
                version: int | None = None) -> InstanceView:
    """The instance as it looks once `claim` is committed (for callers that keep a snapshot);
    `version` is the row's new version (default: one more, as Store.cas_update does)."""
    return replace(
        _with_tasks(view, group, 1),
        version=view.version + 1 if version is None else version,
        remaining_cpu=view.remaining_cpu - claim.cpu,
        remaining_memory=view.remaining_memory - claim.memory,
        used_ports=view.used_ports | frozenset(claim.ports) if claim.ports else view.used_ports)


# -- filtering -----------------------------------------------------------------------------------
def _feasible(instances: Sequence[InstanceView], req: Requirements,
              rules: Rules) -> list[InstanceView]:
    """The instances one task fits on, one cheap pass per kind of check."""
    cpu, mem = req.cpu, req.memory
    pool = [v for v in instances
            if v.remaining_cpu >= cpu and v.remaining_memory >= mem and v.agent_connected]
    if req.ports:
        want = frozenset(req.ports)
        pool = [v for v in pool
                if want.isdisjoint(v.used_ports) and want.isdisjoint(v.reserved_ports)]
    for pred in rules.member_of:
        pool = [v for v in pool if pred(v)]
    if rules.distinct and req.group is not None:
        group = req.group
        pool = [v for v in pool if not v.task_groups.get(group)]
    return pool


def _with_tasks(view: InstanceView, group: str | None, extra: int) -> InstanceView:
    groups = view.task_groups
    if group is not None:
        groups = {**groups, group: groups.get(group, 0) + extra}
    return replace(view, running_tasks_count=view.running_tasks_count + extra,
                   task_groups=groups)


def _stage(view: InstanceView, extra: int, req: Requirements, rules: Rules) -> int:
    """How many of ECS's checks `view` passes with `extra` tasks of this call already on it."""
    if not view.agent_connected:
        return 0
    if view.remaining_cpu - extra * req.cpu < req.cpu:
        return 1
    if view.remaining_memory - extra * req.memory < req.memory:
        return 2
    if req.ports:
        taken = view.used_ports | view.reserved_ports
        for stage, wanted in ((3, [p for p in req.ports if p < UDP]),
                              (4, [p for p in req.ports if p >= UDP])):
            if wanted and (extra or not taken.isdisjoint(wanted)):
                return stage
    if rules.member_of:
        target = _with_tasks(view, req.group, extra) if extra else view
        if not all(pred(target) for pred in rules.member_of):
            return 5
    if rules.distinct and (extra or (req.group is not None and view.task_groups.get(req.group))):
        return 6
    return _FITS


def _closest(instances: Sequence[InstanceView], req: Requirements, rules: Rules,
             placed: Mapping[str, int]) -> tuple[str, str]:
    """ECS's "closest matching container instance" and the check it failed."""
    best_stage, best_arn = -1, ""
    for v in instances:
        stage = _stage(v, placed.get(v.arn, 0), req, rules)
        if stage < _FITS and (stage > best_stage or (stage == best_stage and v.arn < best_arn)):
            best_stage, best_arn = stage, v.arn
    if best_stage < 0:   # cannot happen: placement stops only when nothing fits
        return "", REASON_CPU
    return best_arn, _REASONS[best_stage]


def _order(value: Any) -> tuple[int, str]:
    """How equal spread counts are ordered: by attribute value, a missing one first."""
    return (0, "") if value is None else (1, str(value))


# -- choosing ------------------------------------------------------------------------------------
class _Placer:
    """Chooses instances task by task.

    Leading `spread(attribute:...)` strategies partition the candidates by attribute value; a heap
    of partitions, keyed by how many tasks of the group each value has, picks the partition, and
    a heap inside it, keyed by the remaining strategies, picks the instance. Keys only grow when
    *other* instances receive tasks (spread counts), so stale heap entries are refreshed lazily
    when they surface; the instance that received the task is re-keyed at once.
    """

    def __init__(self, instances: Sequence[InstanceView], pool: list[InstanceView],
                 req: Requirements, levels: tuple[Level, ...], rules: Rules,
                 rng: random.Random | None) -> None:
        self.pool, self.req, self.rules = pool, req, rules
        self.placed: dict[int, int] = {}
        group = req.group
        lead: list[str] = []
        inner: list[Level] = []
        for level in levels:
            if level.kind == "attribute" and not inner:
                lead.append(level.name)
            else:
                inner.append(level)
        self.lead = tuple(lead)
        self.random = any(level.kind == "random" for level in levels)
        self.rng = rng if rng is not None else _RNG
        # Tasks of this group per instance (all tasks when there is no group), which spread evens.
        if group is None:
            self.base = [v.running_tasks_count for v in pool]
        else:
            self.base = [v.task_groups.get(group, 0) for v in pool]
        # Per spread attribute: tasks of the group per value, over every instance of the cluster.
        self.counts: dict[str, dict[Any, int]] = {}
        for level in levels:
            if level.kind == "attribute" and level.name not in self.counts:
                self.counts[level.name] = self._bucket_counts(instances, level.name, group)
        self.clock: list[float] = []
        if self.random:
            expo = self.rng.expovariate
            self.clock = [expo(1.0) for _ in pool]
        self.key = self._key_function(inner)
        self._build_heaps(inner)

    @staticmethod
    def _bucket_counts(instances: Sequence[InstanceView], name: str,
                       group: str | None) -> dict[Any, int]:
        counts: dict[Any, int] = defaultdict(int)
        if group is None:
            for v in instances:
                counts[v.attributes.get(name)] += v.running_tasks_count
        else:
            for v in instances:
                if group in v.task_groups:   # most instances run nothing of the group
                    counts[v.attributes.get(name)] += v.task_groups[group]
        return counts

    def _getter(self, level: Level) -> Callable[[int], Any]:
        pool, placed, req = self.pool, self.placed, self.req
        if level.kind == "cpu":
            cpu = req.cpu
            return lambda i: pool[i].remaining_cpu - placed.get(i, 0) * cpu
        if level.kind == "memory":
            mem = req.memory
            return lambda i: pool[i].remaining_memory - placed.get(i, 0) * mem
        if level.kind == "instance":
            base = self.base
            return lambda i: base[i] + placed.get(i, 0)
        if level.kind == "attribute":
            counts, name = self.counts[level.name], level.name

            def spread(i: int) -> tuple[int, tuple[int, str]]:
                value = pool[i].attributes.get(name)
                return counts[value], _order(value)
            return spread
        clock = self.clock
        return lambda i: clock[i]

    def _key_function(self, inner: list[Level]) -> Callable[[int], tuple[Any, ...]]:
        getters = [self._getter(level) for level in inner]
        if not getters:
            return lambda i: ()
        if len(getters) == 1:
            g = getters[0]
            return lambda i: (g(i),)
        if len(getters) == 2:
            g1, g2 = getters
            return lambda i: (g1(i), g2(i))
        return lambda i: tuple(g(i) for g in getters)

    def _column(self, level: Level) -> list[Any]:
        pool = self.pool
        if level.kind == "cpu":
            return [v.remaining_cpu for v in pool]
        if level.kind == "memory":
            return [v.remaining_memory for v in pool]
        if level.kind == "instance":
            return self.base
        if level.kind == "attribute":
            counts, name = self.counts[level.name], level.name
            return [(counts[value], _order(value))
                    for value in [v.attributes.get(name) for v in pool]]
        return self.clock

    def _build_heaps(self, inner: list[Level]) -> None:
        pool = self.pool
        columns = [self._column(level) for level in inner]
        self.stamp = [0] * len(pool)
        entries = list(zip(*columns, [v.arn for v in pool], self.stamp, range(len(pool))))
        if not self.lead:
            heapq.heapify(entries)
            self.parts = [entries]
            self.pheap: list[tuple[tuple[Any, ...], int]] = [((), 0)]
            return
        grouped: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        if len(self.lead) == 1:
            name = self.lead[0]
            for v, entry in zip(pool, entries):
                grouped[(v.attributes.get(name),)].append(entry)
        else:
            names = self.lead
            for v, entry in zip(pool, entries):
                grouped[tuple(v.attributes.get(n) for n in names)].append(entry)
        self.pvalues = list(grouped)
        self.parts = list(grouped.values())
        for heap in self.parts:
            heapq.heapify(heap)
        # Equal counts go by attribute value (a missing value first), or by chance when a random
        # strategy is in the chain; drawn once per call, like the value order is fixed.
        if self.random:
            rnd = self.rng.random
            self.ptiebreak = [tuple(rnd() for _ in values) for values in self.pvalues]
        else:
            self.ptiebreak = [tuple(_order(v) for v in values) for values in self.pvalues]
        self.pheap = [(self._part_key(n), n) for n in range(len(self.parts))]
        heapq.heapify(self.pheap)

    def _part_key(self, n: int) -> tuple[Any, ...]:
        values, tiebreak = self.pvalues[n], self.ptiebreak[n]
        if len(values) == 1:
            return (self.counts[self.lead[0]][values[0]], tiebreak[0])
        key: list[Any] = []
        for name, value, tb in zip(self.lead, values, tiebreak):
            key += (self.counts[name][value], tb)
        return tuple(key)

    def _pick(self) -> tuple[list[tuple[Any, ...]], int] | None:
        pheap, parts, key, stamp = self.pheap, self.parts, self.key, self.stamp
        while pheap:
            pkey, n = pheap[0]
            if self.lead:
                current = self._part_key(n)
                if current != pkey:
                    heapq.heapreplace(pheap, (current, n))
                    continue
            heap = parts[n]
            while heap:
                entry = heap[0]
                i = entry[-1]
                if entry[-2] != stamp[i]:      # void (placement_warm.py re-enters instances)
                    self._drop(heap)
                    continue
                current_key = key(i)
                if current_key != entry[:-3]:
                    heapq.heapreplace(heap, (*current_key, entry[-3], entry[-2], i))
                    continue
                return heap, i
            heapq.heappop(pheap)
        return None

    def run(self, count: int) -> list[Claim]:
        req, pool = self.req, self.pool
        claims: list[Claim] = []
        for _ in range(count):
            picked = self._pick()
            if picked is None:
                break
            heap, i = picked
            v = pool[i]
            claims.append(Claim(v.arn, v.version, req.cpu, req.memory, req.ports))
            self.placed[i] = self.placed.get(i, 0) + 1
            for name, counts in self.counts.items():
                counts[v.attributes.get(name)] += 1
            if self.random:
                # Memoryless clocks: after the earliest fires, the others' remaining times are
                # again independent Exp(1), so every pick is uniform among its tied candidates.
                self.clock[i] += self.rng.expovariate(1.0)
            if _stage(v, self.placed[i], req, self.rules) == _FITS:
                heapq.heapreplace(heap, self._entry(i))
            else:
                self._drop(heap)
        return claims

    def _entry(self, i: int) -> tuple[Any, ...]:
        """Instance `i`'s heap entry as its key stands now: (*key, ARN, stamp, i). An entry
        whose stamp is not the instance's current one is void."""
        return (*self.key(i), self.pool[i].arn, self.stamp[i], i)

    def _drop(self, heap: list[tuple[Any, ...]]) -> None:
        """Take the top entry out of `heap`: its instance fits no further task."""
        heapq.heappop(heap)

    def placed_by_arn(self) -> dict[str, int]:
        return {self.pool[i].arn: n for i, n in self.placed.items()}
