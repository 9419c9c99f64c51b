"""The pure placement path: RunTask-like calls of count=10 against a simulated cluster, one process,
with a naive full-scan scheduler measured in the same run as the floor. Each scenario is measured
twice: the pure function alone, and through the warm placers RunTask uses (placement_warm.py),
which give the same answers and keep their structures between calls. The calls rotate through
50 task families (warm placers then mostly leave the call to the pure function: a placer per
family would be rebuilt more often than reused), and once more with a single family.

    .venv/bin/python bench/placement.py

Targets: >= 5,000 placements/s for 10,000 tasks on 1,000 instances, >= 1,000/s on 10,000.
"""
from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from berth.ecs.placement import Claim, InstanceView, Requirements, apply_claim, place
from berth.ecs.placement_warm import WarmPlacers
from berth.ecs.snapshot import Snapshot

CALLS = 1_000
COUNT = 10
GROUPS = 50             # task families the calls rotate through
TARGETS = {1_000: 5_000.0, 10_000: 1_000.0}
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
TYPES = ("m5.large", "m5.xlarge", "c5.xlarge", "t3.medium")

SCENARIOS: list[tuple[str, list[dict[str, str]], list[dict[str, str]]]] = [
    ("binpack(memory)", [{"type": "binpack", "field": "memory"}], []),
    ("spread(az)+spread(instanceId)", [], []),   # ECS's default chain
    ("random", [{"type": "random"}], []),
    ("spread(az)+binpack(cpu), memberOf(type =~ m5.*)",
     [{"type": "spread", "field": "attribute:ecs.availability-zone"},
      {"type": "binpack", "field": "cpu"}],
     [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ m5.*"}]),
    ("spread(instanceId), distinctInstance",
     [{"type": "spread", "field": "instanceId"}], [{"type": "distinctInstance"}]),
]


def cluster(size: int, seed: int = 7) -> list[InstanceView]:
    """`size` instances, a third per zone, some already running tasks of the bench's groups."""
    rnd = random.Random(seed)
    views = []
    for n in range(size):
        groups = {f"family:app{rnd.randrange(GROUPS)}": 1 for _ in range(rnd.randrange(3))}
        hex_id = f"{rnd.getrandbits(128):032x}"
        views.append(InstanceView(
            arn=f"arn:aws:ecs:us-east-1:000000000000:container-instance/bench/{hex_id}",
            instance_id=hex_id, version=1,
            remaining_cpu=rnd.choice((8192, 16384)) - 256 * len(groups),
            remaining_memory=rnd.choice((32768, 65536)) - 512 * len(groups),
            used_ports=frozenset({8080}) if groups else frozenset(),
            reserved_ports=frozenset({22, 2375, 2376, 51678, 51679}),
            attributes={"ecs.availability-zone": ZONES[n % 3], "ecs.instance-type": rnd.choice(TYPES),
                        "ecs.os-type": "linux"},
            running_tasks_count=len(groups), task_groups=groups))
    return views


def naive_place(instances: Sequence[InstanceView], req: Requirements, count: int,
                field: str) -> list[str]:
    """The floor: binpack by a full scan over every instance for every task."""
    used: dict[str, int] = {}
    out = []
    for _ in range(count):
        best: tuple[Any, ...] | None = None
        for v in instances:
            k = used.get(v.arn, 0)
            cpu, mem = v.remaining_cpu - k * req.cpu, v.remaining_memory - k * req.memory
            if cpu < req.cpu or mem < req.memory:
                continue
            key = (mem if field == "memory" else cpu, v.arn)
            if best is None or key < best:
                best = key
        if best is None:
            break
        used[best[1]] = used.get(best[1], 0) + 1
        out.append(best[1])
    return out


def _measure(size: int, strategies: list[dict[str, str]],
             constraints: list[dict[str, str]], calls: int,
             families: int = GROUPS) -> tuple[float, int, int]:
    views = cluster(size)
    index = {v.arn: n for n, v in enumerate(views)}
    rng = random.Random(1)
    placed = failed = 0
    started = time.perf_counter()
    for call in range(calls):
        req = Requirements(cpu=256, memory=512, group=f"family:app{call % families}")
        result = place(views, req, COUNT, strategies, constraints, rng)
        for claim in result.claims:   # commit, as the store would, so the next call sees it
            n = index[claim.instance_arn]
            views[n] = apply_claim(views[n], claim, req.group)
        placed += len(result.claims)
        failed += len(result.failures)
    return time.perf_counter() - started, placed, failed


def _measure_warm(size: int, strategies: list[dict[str, str]],
                  constraints: list[dict[str, str]], calls: int,
                  families: int = GROUPS) -> tuple[float, int, int]:
    """As `_measure`, through warm placers fed with snapshots as the scheduler's cache hands
    them out (the live instance map, and the log of what changed)."""
    views = {v.arn: v for v in cluster(size)}
    log: list[str] = []
    placers = WarmPlacers()
    rng = random.Random(1) if any(s.get("type") == "random" for s in strategies) else None
    placed = failed = 0
    started = time.perf_counter()
    for call in range(calls):
        req = Requirements(cpu=256, memory=512, group=f"family:app{call % families}")
        until = len(log)
        snap = Snapshot(views, until,
                        lambda since, until=until: log[since:until] if since <= until else None)
        result = placers.place(("us-east-1", "bench"), snap, req, COUNT, strategies,
                               constraints, rng)
        for claim in result.claims:
            views[claim.instance_arn] = apply_claim(views[claim.instance_arn], claim, req.group)
        log.extend(dict.fromkeys(c.instance_arn for c in result.claims))
        placed += len(result.claims)
        failed += len(result.failures)
    return time.perf_counter() - started, placed, failed


def _measure_naive(size: int, calls: int) -> tuple[float, int, int]:
    views = cluster(size)
    index = {v.arn: n for n, v in enumerate(views)}
    placed = 0
    started = time.perf_counter()
    for call in range(calls):
        req = Requirements(cpu=256, memory=512, group=f"family:app{call % GROUPS}")
        for arn in naive_place(views, req, COUNT, "memory"):
            n = index[arn]
            v = views[n]
            claim = Claim(v.arn, v.version, req.cpu, req.memory, req.ports)
            views[n] = apply_claim(v, claim, req.group)
            placed += 1
    return time.perf_counter() - started, placed, 0


def run(print_table: bool = True, **_ignored: Any) -> list[dict[str, Any]]:
    """Measure every scenario on 1,000 and 10,000 instances; return one row per measurement."""
    rows: list[dict[str, Any]] = []
    for size, target in TARGETS.items():
        for name, strategies, constraints in SCENARIOS:
            seconds, placed, failed = _measure(size, strategies, constraints, CALLS)
            rows.append(_row(name, size, placed, failed, seconds, target))
            seconds, placed, failed = _measure_warm(size, strategies, constraints, CALLS)
            rows.append(_row(f"  warm: {name}", size, placed, failed, seconds, target))
        # One task family throughout (the API benchmark's RunTask): where warm placers shine.
        name = "spread(az)+spread(instanceId), one family"
        for label, measure in ((name, _measure), (f"  warm: {name}", _measure_warm)):
            seconds, placed, failed = measure(size, [], [], CALLS, families=1)
            rows.append(_row(label, size, placed, failed, seconds, target))
        # The floor runs fewer calls: a full scan per task is slow by design.
        calls = CALLS if size <= 1_000 else CALLS // 10
        seconds, placed, failed = _measure_naive(size, calls)
        rows.append(_row("floor: naive full scan, binpack(memory)", size, placed, failed,
                         seconds, None))
    if print_table:
        _print(rows)
    return rows


def _row(name: str, size: int, placed: int, failed: int, seconds: float,
         target: float | None) -> dict[str, Any]:
    rate = placed / seconds if seconds > 0 else 0.0
    return {"strategy": name, "instances": size, "tasks": placed, "failures": failed,
            "seconds": round(seconds, 3), "placements_per_s": round(rate),
            "target_per_s": target, "met": None if target is None else rate >= target}


def _print(rows: Sequence[Mapping[str, Any]]) -> None:
    header = f"{'strategy':<58} {'instances':>9} {'tasks':>7} {'fail':>5} {'placements/s':>13} {'target':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        target = "" if r["target_per_s"] is None else \
            f"{'ok' if r['met'] else 'MISS'} {r['target_per_s']:,.0f}"
        print(f"{r['strategy']:<58} {r['instances']:>9,} {r['tasks']:>7,} {r['failures']:>5} "
              f"{r['placements_per_s']:>13,} {target:>8}")


if __name__ == "__main__":
    run()
