"""Warm placement gives exactly the answers of the pure placement function, call after call, while
the cluster changes under it in every way a cluster changes."""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

import pytest

from berth.ecs.placement import InstanceView, Requirements, apply_claim, place, udp
from berth.ecs import placement_warm
from berth.ecs.placement_warm import WarmPlacers
from berth.ecs.snapshot import Snapshot

CLUSTER = ("us-east-1", "c")
KINDS = [
    ([], []),
    ([{"type": "binpack", "field": "memory"}], []),
    ([{"type": "binpack", "field": "cpu"}, {"type": "spread", "field": "instanceId"}], []),
    ([{"type": "spread", "field": "attribute:rack"},
      {"type": "spread", "field": "attribute:ecs.availability-zone"}], []),
    ([{"type": "binpack", "field": "cpu"},
      {"type": "spread", "field": "attribute:ecs.availability-zone"}], []),
    ([{"type": "spread", "field": "instanceId"}, {"type": "spread", "field": "attribute:rack"}],
     []),
    ([{"type": "spread", "field": "instanceId"}],
     [{"type": "memberOf", "expression": "attribute:ecs.availability-zone in [a, b]"}]),
    ([], [{"type": "distinctInstance"}]),
    ([{"type": "spread", "field": "attribute:ecs.availability-zone"},
      {"type": "binpack", "field": "memory"}],
     [{"type": "memberOf", "expression": "runningTasksCount < 6"}]),
]
REQS = [Requirements(256, 512, (), "family:web"), Requirements(1024, 300, (), "family:db"),
        Requirements(128, 128, (8080,), "family:web"), Requirements(64, 64, (), None),
        Requirements(64, 64, (udp(8080),), "family:dns")]


class Cluster:
    """Instance views with a change log, handing out snapshots as the snapshot cache does."""

    def __init__(self, rng: random.Random, n: int) -> None:
        self.rng = rng
        self.views: dict[str, InstanceView] = {}
        self.log: list[str] = []
        self.serial = 0
        for _ in range(n):
            self.add()

    def add(self) -> None:
        self.serial += 1
        name = f"i{self.serial:04d}"
        attrs = {"ecs.availability-zone": self.rng.choice("abc")}
        if self.rng.random() < 0.8:
            attrs["rack"] = self.rng.choice(["r1", "r2", "r3", "r4"])
        self.put(InstanceView(arn=f"arn:aws:ecs:us-east-1:0:container-instance/c/{name}",
                              instance_id=name, version=1,
                              remaining_cpu=self.rng.choice([1024, 2048, 4096]),
                              remaining_memory=self.rng.choice([1024, 4096, 8192]),
                              attributes=attrs))

    def put(self, view: InstanceView) -> None:
        self.views[view.arn] = view
        self.log.append(view.arn)

    def remove(self, arn: str) -> None:
        del self.views[arn]
        self.log.append(arn)

    def snapshot(self) -> Snapshot:
        log, until = list(self.log), len(self.log)
        return Snapshot(dict(self.views), until,
                        lambda since: log[since:until] if since <= until else None)

    def commit(self, claims: Sequence, group: str | None) -> None:
        for claim in claims:
            view = self.views[claim.instance_arn]
            self.views[claim.instance_arn] = apply_claim(view, claim, group)
        for arn in dict.fromkeys(c.instance_arn for c in claims):
            self.log.append(arn)

    def churn(self) -> None:
        """One change that is not a placement."""
        arn = self.rng.choice(list(self.views))
        view = self.views[arn]
        what = self.rng.randrange(5)
        grouped = [g for g, n in view.task_groups.items() if n]
        if what == 0 and view.running_tasks_count:  # a task stops
            groups = dict(view.task_groups)
            if (sum(view.task_groups.values()) == view.running_tasks_count
                    or (grouped and self.rng.random() < .7)):
                group = self.rng.choice(grouped)
                groups[group] -= 1
            self.put(replace(view, version=view.version + 1,
                             running_tasks_count=view.running_tasks_count - 1,
                             task_groups=groups, remaining_cpu=view.remaining_cpu + 64,
                             remaining_memory=view.remaining_memory + 64))
        elif what == 1:
            self.add()
        elif what == 2 and len(self.views) > 3:     # deregistered or draining
            self.remove(arn)
        elif what == 3:                             # moved to another zone or rack
            attrs = {**view.attributes, "ecs.availability-zone": self.rng.choice("abcd")}
            self.put(replace(view, version=view.version + 1, attributes=attrs))
        else:
            self.put(replace(view, version=view.version + 1,
                             agent_connected=not view.agent_connected))


@pytest.mark.parametrize("seed", range(24))
def test_warm_placement_matches_the_pure_function_through_a_changing_cluster(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    warm_calls: list[int] = []
    run = placement_warm._WarmPlacer.run

    def counted(self: placement_warm._WarmPlacer, count: int) -> list:
        warm_calls.append(count)
        return run(self, count)

    monkeypatch.setattr(placement_warm._WarmPlacer, "run", counted)
    rng = random.Random(seed)
    cluster = Cluster(rng, rng.choice([5, 30, 120]))
    placers = WarmPlacers(budget=3000)    # room for some placers: eviction happens too
    placed = 0
    strategies, constraints = rng.choice(KINDS)
    req = rng.choice(REQS)
    for _ in range(400):
        if rng.random() < 0.4:    # a new kind of request; runs of one kind are what warms
            strategies, constraints = rng.choice(KINDS)
            req = rng.choice(REQS)
        count = rng.randint(1, 10)
        snap = cluster.snapshot()
        warm = placers.place(CLUSTER, snap, req, count, strategies, constraints)
        pure = place(snap.views, req, count, strategies, constraints)
        assert warm == pure
        placed += len(warm.claims)
        if rng.random() < 0.85:     # otherwise the commit lost a race: nothing changes
            cluster.commit(warm.claims, req.group)
        for _ in range(rng.choice([0, 0, 1, 3])):
            cluster.churn()
    assert placed > 400    # the runs really placed tasks (not just failures throughout)
    assert len(warm_calls) > 100    # and warm placers served many of them


def test_a_random_strategy_takes_the_pure_path_with_the_callers_generator() -> None:
    cluster = Cluster(random.Random(1), 20)
    snap = cluster.snapshot()
    warm = WarmPlacers().place(CLUSTER, snap, REQS[0], 5, [{"type": "random"}], [],
                               random.Random(7))
    assert warm == place(snap.views, REQS[0], 5, [{"type": "random"}], [], random.Random(7))
