"""The pure placement function: filters, strategies and their chaining, constraints, failures."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from berth.ecs.placement import (
    NO_INSTANCES, REASON_AGENT, REASON_CPU, REASON_DISTINCT, REASON_MEMBER_OF, REASON_MEMORY,
    REASON_PORTS, REASON_PORTS_UDP, Claim, InstanceView, Requirements, apply_claim, place, udp)
from berth.ecs.placement_rules import PlacementError, validate

GROUP = "family:web"
BINPACK_MEM = [{"type": "binpack", "field": "memory"}]
BINPACK_CPU = [{"type": "binpack", "field": "cpu"}]
SPREAD_HOST = [{"type": "spread", "field": "instanceId"}]
SPREAD_AZ = [{"type": "spread", "field": "attribute:ecs.availability-zone"}]
SPREAD_RACK = [{"type": "spread", "field": "attribute:rack"}]
RANDOM = [{"type": "random"}]


def inst(name: str, cpu: int = 4096, mem: int = 8192, az: str | None = None,
         groups: dict[str, int] | None = None, **kw: Any) -> InstanceView:
    attrs = dict(kw.pop("attributes", {}))
    if az is not None:
        attrs["ecs.availability-zone"] = az
    groups = groups or {}
    return InstanceView(arn=f"arn:aws:ecs:us-east-1:000000000000:container-instance/c/{name}",
                        instance_id=name, version=kw.pop("version", 3), remaining_cpu=cpu,
                        remaining_memory=mem, attributes=attrs, task_groups=groups,
                        running_tasks_count=kw.pop("running", sum(groups.values())), **kw)


def req(cpu: int = 256, mem: int = 512, ports: tuple[int, ...] = (),
        group: str | None = GROUP) -> Requirements:
    return Requirements(cpu=cpu, memory=mem, ports=ports, group=group)


def names(result: Any) -> list[str]:
    return [c.instance_arn.rsplit("/", 1)[1] for c in result.claims]


# -- filters and the working copy ----------------------------------------------------------------
def test_claims_carry_the_snapshot_version_and_the_requirements() -> None:
    result = place([inst("a", version=7)], req(cpu=300, mem=600, ports=(80,)), 1)
    assert result.claims == [Claim(inst("a").arn, 7, 300, 600, (80,))]
    assert result.failures == []


def test_later_tasks_of_a_call_see_the_resources_earlier_ones_took() -> None:
    # Each instance fits exactly two tasks by memory; binpack would pile everything on one.
    views = [inst("a", mem=1024), inst("b", mem=1024), inst("c", mem=1024)]
    result = place(views, req(mem=512), 5, BINPACK_MEM)
    assert names(result) == ["a", "a", "b", "b", "c"]
    assert result.failures == []


def test_cpu_and_memory_filter_out_instances() -> None:
    views = [inst("small-cpu", cpu=100), inst("small-mem", mem=100), inst("ok")]
    assert names(place(views, req(), 3, BINPACK_MEM)) == ["ok", "ok", "ok"]


def test_disconnected_agents_get_no_tasks() -> None:
    views = [inst("a", agent_connected=False), inst("b")]
    assert names(place(views, req(), 2, SPREAD_HOST)) == ["b", "b"]


def test_static_ports_must_be_free_and_not_reserved() -> None:
    views = [inst("used", used_ports=frozenset({80})),
             inst("reserved", reserved_ports=frozenset({22, 80})),
             inst("other-port", used_ports=frozenset({8080})), inst("free")]
    result = place(views, req(ports=(80,)), 2, BINPACK_MEM)
    assert sorted(names(result)) == ["free", "other-port"]


def test_a_static_port_takes_one_task_per_instance_in_a_call() -> None:
    views = [inst("a"), inst("b")]
    result = place(views, req(ports=(80, 443)), 3, BINPACK_MEM)
    assert sorted(names(result)) == ["a", "b"]
    assert result.failures == [(inst("a").arn, REASON_PORTS)]


def test_dynamic_ports_do_not_limit_tasks_per_instance() -> None:
    assert names(place([inst("a")], req(ports=()), 3)) == ["a", "a", "a"]


def test_zero_count_places_nothing() -> None:
    assert place([inst("a")], req(), 0) == place([], req(), 0)
    assert place([inst("a")], req(), 0).claims == []


# -- strategies ----------------------------------------------------------------------------------
def test_binpack_memory_picks_the_least_remaining_memory_that_still_fits() -> None:
    views = [inst("roomy", mem=8192), inst("tight", mem=1024), inst("too-small", mem=256),
             inst("middle", mem=2048)]
    assert names(place(views, req(mem=512), 1, BINPACK_MEM)) == ["tight"]
    # after two tasks "tight" is full; the next least is "middle"
    assert names(place(views, req(mem=512), 4, BINPACK_MEM)) == ["tight", "tight", "middle",
                                                                 "middle"]


def test_binpack_cpu_ignores_memory() -> None:
    views = [inst("low-cpu", cpu=512, mem=8192), inst("low-mem", cpu=4096, mem=1024)]
    assert names(place(views, req(cpu=256, mem=256), 1, BINPACK_CPU)) == ["low-cpu"]
    assert names(place(views, req(cpu=256, mem=256), 1, BINPACK_MEM)) == ["low-mem"]


def test_binpack_field_is_case_insensitive() -> None:
    views = [inst("a", mem=4096), inst("b", mem=1024)]
    assert names(place(views, req(), 1, [{"type": "binpack", "field": "MEMORY"}])) == ["b"]


def test_spread_instance_counts_existing_tasks_of_the_group_only() -> None:
    views = [inst("a", groups={GROUP: 2}), inst("b", groups={"family:other": 5}),
             inst("c", groups={GROUP: 1})]
    result = place(views, req(), 4, SPREAD_HOST)
    # b has none of the group: it catches up with c, then c and b with a
    assert names(result) == ["b", "b", "c", "a"]
    assert names(place(views, req(), 1, [{"type": "spread", "field": "host"}])) == ["b"]


def test_spread_without_a_group_counts_all_running_tasks() -> None:
    views = [inst("a", running=3), inst("b", running=1)]
    assert names(place(views, req(group=None), 3, SPREAD_HOST)) == ["b", "b", "a"]


def test_spread_attribute_evens_tasks_across_values_not_instances() -> None:
    views = [inst("a1", az="a", groups={GROUP: 2}), inst("a2", az="a"), inst("a3", az="a"),
             inst("b1", az="b"), inst("c1", az="c", groups={GROUP: 1})]
    result = place(views, req(), 4, SPREAD_AZ)
    zones = [v.attributes["ecs.availability-zone"] for n in names(result)
             for v in views if v.instance_id == n]
    # zone counts start a=2, b=0, c=1: b; then b and c tie at 1 and the value breaks it; then
    # c is behind; then all three tie at 2
    assert zones == ["b", "b", "c", "a"]


def test_spread_attribute_counts_tasks_on_instances_that_cannot_take_more() -> None:
    # zone a's only instance is full, but its tasks still count for the spread
    views = [inst("a-full", az="a", mem=0, groups={GROUP: 3}), inst("a2", az="a"),
             inst("b1", az="b", groups={GROUP: 1})]
    assert names(place(views, req(), 2, SPREAD_AZ)) == ["b1", "b1"]


def test_instances_without_the_spread_attribute_form_their_own_value() -> None:
    views = [inst("a1", az="a", groups={GROUP: 1}), inst("none")]
    assert names(place(views, req(), 1, SPREAD_AZ)) == ["none"]


def test_default_strategy_spreads_by_zone_then_instance() -> None:
    views = [inst("a1", az="a"), inst("a2", az="a"), inst("a3", az="a"), inst("b1", az="b")]
    # zones tie at first and go by name; inside zone a the instances take turns
    assert names(place(views, req(), 4)) == ["a1", "b1", "a2", "b1"]
    # without zones the default degrades to spreading over instances
    flat = [inst("x"), inst("y"), inst("z")]
    assert sorted(names(place(flat, req(), 3))) == ["x", "y", "z"]


def test_chain_spread_zone_then_binpack_within_the_zone() -> None:
    views = [inst("a-roomy", az="a", mem=8192), inst("a-tight", az="a", mem=1024),
             inst("b-roomy", az="b", mem=8192), inst("b-tight", az="b", mem=2048),
             inst("c-busy", az="c", mem=600, groups={GROUP: 5})]
    result = place(views, req(mem=512), 4, SPREAD_AZ + BINPACK_MEM)
    assert names(result) == ["a-tight", "b-tight", "a-tight", "b-tight"]


def test_chain_binpack_then_spread_breaks_binpack_ties() -> None:
    views = [inst("a", mem=2048, groups={GROUP: 1}), inst("b", mem=2048), inst("c", mem=4096)]
    assert names(place(views, req(mem=512), 1, BINPACK_MEM + SPREAD_HOST)) == ["b"]
    # without the spread the ARN breaks the tie
    assert names(place(views, req(mem=512), 1, BINPACK_MEM)) == ["a"]


def test_ties_break_by_arn_whatever_the_input_order() -> None:
    views = [inst(f"i{n:02d}") for n in range(20)]
    expected = names(place(views, req(), 12, SPREAD_HOST))
    assert expected == [f"i{n:02d}" for n in range(12)]
    shuffled = views[:]
    random.Random(3).shuffle(shuffled)
    for strategies in ([], SPREAD_HOST, BINPACK_MEM, SPREAD_AZ + BINPACK_CPU):
        assert names(place(shuffled, req(), 12, strategies)) == names(place(views, req(), 12,
                                                                            strategies))


def test_random_is_reproducible_with_a_seeded_rng_and_varies_across_seeds() -> None:
    views = [inst(f"i{n:02d}") for n in range(30)]
    first = names(place(views, req(), 10, RANDOM, rng=random.Random(42)))
    assert first == names(place(views, req(), 10, RANDOM, rng=random.Random(42)))
    others = {tuple(names(place(views, req(), 10, RANDOM, rng=random.Random(s))))
              for s in range(5)}
    assert len(others) > 1
    assert len(set(first)) > 1   # random does not pile one call onto one instance


def test_random_picks_uniformly_each_task() -> None:
    # Two roomy instances, two tasks: independent uniform picks land on one instance half the time
    views = [inst("a"), inst("b"), inst("c")]
    rng = random.Random(5)
    first = Counter()
    same = 0
    trials = 3000
    for _ in range(trials):
        picked = names(place(views, req(), 2, RANDOM, rng=rng))
        first[picked[0]] += 1
        same += picked[0] == picked[1]
    assert all(abs(n / trials - 1 / 3) < 0.04 for n in first.values())
    assert abs(same / trials - 1 / 3) < 0.04


def test_random_only_chooses_instances_that_fit() -> None:
    views = [inst("full", mem=100), inst("ok1"), inst("ok2")]
    for seed in range(20):
        assert "full" not in names(place(views, req(), 3, RANDOM, rng=random.Random(seed)))


def test_strategies_after_random_are_ignored() -> None:
    views = [inst(f"i{n}") for n in range(5)]
    a = place(views, req(), 4, RANDOM + BINPACK_MEM, rng=random.Random(1))
    b = place(views, req(), 4, RANDOM, rng=random.Random(1))
    assert names(a) == names(b)


def test_spread_zone_then_random_keeps_zones_even() -> None:
    views = [inst(f"a{n}", az="a") for n in range(6)] + [inst("b0", az="b")]
    result = place(views, req(), 6, SPREAD_AZ + RANDOM, rng=random.Random(9))
    assert Counter(n[0] for n in names(result)) == Counter({"a": 3, "b": 3})


# -- constraints ---------------------------------------------------------------------------------
def test_member_of_restricts_to_matching_instances() -> None:
    views = [inst("t2", attributes={"ecs.instance-type": "t2.small"}),
             inst("m5", attributes={"ecs.instance-type": "m5.large"}), inst("bare")]
    result = place(views, req(), 3, SPREAD_HOST,
                   [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t2.*"}])
    assert names(result) == ["t2", "t2", "t2"]


def test_member_of_task_group_affinity_and_anti_affinity() -> None:
    views = [inst("db", groups={"database": 1}), inst("web", groups={"family:web": 1}),
             inst("empty")]
    near = place(views, req(), 1, SPREAD_HOST,
                 [{"type": "memberOf", "expression": "task:group == database"}])
    assert names(near) == ["db"]
    away = place(views, req(group="family:api"), 2, SPREAD_HOST,
                 [{"type": "memberOf", "expression": "not(task:group == database)"}])
    assert sorted(names(away)) == ["empty", "web"]


def test_member_of_sees_the_tasks_placed_earlier_in_the_call() -> None:
    views = [inst("a"), inst("b")]
    result = place(views, req(), 3, BINPACK_MEM,
                   [{"type": "memberOf", "expression": "runningTasksCount < 1"}])
    assert sorted(names(result)) == ["a", "b"]
    assert result.failures == [(inst("a").arn, REASON_MEMBER_OF)]


def test_several_member_of_constraints_all_apply() -> None:
    views = [inst("a", az="x", attributes={"stack": "prod"}), inst("b", az="y"),
             inst("c", az="x")]
    result = place(views, req(), 2, SPREAD_HOST, [
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone == x"},
        {"type": "memberOf", "expression": "attribute:stack !exists"}])
    assert names(result) == ["c", "c"]


def test_distinct_instance_places_each_task_of_the_group_on_its_own_instance() -> None:
    views = [inst("has-group", groups={GROUP: 1}), inst("other-group", groups={"x": 4}),
             inst("empty1"), inst("empty2")]
    result = place(views, req(), 4, BINPACK_MEM, [{"type": "distinctInstance"}])
    assert sorted(names(result)) == ["empty1", "empty2", "other-group"]
    assert result.failures == [(inst("empty1").arn, REASON_DISTINCT)]


def test_distinct_instance_without_a_group_separates_the_call_s_tasks() -> None:
    views = [inst("a", running=3), inst("b")]
    result = place(views, req(group=None), 2, BINPACK_MEM, [{"type": "distinctInstance"}])
    assert sorted(names(result)) == ["a", "b"]


# -- failures ------------------------------------------------------------------------------------
def test_no_instances_at_all() -> None:
    result = place([], req(), 2)
    assert result.claims == [] and result.failures == [("", NO_INSTANCES)] * 2


@pytest.mark.parametrize("views, request_, expected", [
    ([inst("a", cpu=100)], req(cpu=256), ("a", REASON_CPU)),
    ([inst("a", mem=100)], req(mem=512), ("a", REASON_MEMORY)),
    ([inst("a", used_ports=frozenset({80}))], req(ports=(80,)), ("a", REASON_PORTS)),
    ([inst("a", agent_connected=False)], req(), ("a", REASON_AGENT)),
])
def test_a_single_blocking_reason(views: list[InstanceView], request_: Requirements,
                                  expected: tuple[str, str]) -> None:
    result = place(views, request_, 1)
    assert result.claims == []
    assert result.failures == [(inst(expected[0]).arn, expected[1])]


def test_the_closest_matching_instance_names_the_reason() -> None:
    # a fails at CPU, b passes CPU but fails memory, c passes resources but not the constraint
    views = [inst("a", cpu=10), inst("b", mem=10), inst("c", attributes={"stack": "dev"})]
    constraint = [{"type": "memberOf", "expression": "attribute:stack == prod"}]
    assert place(views, req(), 1, (), constraint).failures == [(inst("c").arn, REASON_MEMBER_OF)]
    assert place(views[:2], req(), 1, (), constraint).failures == [(inst("b").arn,
                                                                    REASON_MEMORY)]
    assert place(views[:1], req(), 1).failures == [(inst("a").arn, REASON_CPU)]


def test_partial_placement_reports_one_failure_per_missing_task() -> None:
    views = [inst("a", mem=1024), inst("b", mem=512)]
    result = place(views, req(mem=512), 5)
    assert len(result.claims) == 3
    assert result.failures == [(inst("a").arn, REASON_MEMORY)] * 2


# -- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("strategies, constraints, message", [
    ([{"type": "binpack", "field": "disk"}], [], "binpack"),
    ([{"type": "binpack"}], [], "binpack"),
    ([{"type": "spread"}], [], "spread"),
    ([{"type": "spread", "field": "attribute:"}], [], "spread"),
    ([{"type": "spread", "field": "memory"}], [], "spread"),
    ([{"type": "roundrobin"}], [], "roundrobin"),
    ([{"type": "random"}] * 6, [], "maximum of 5"),
    ([], [{"type": "distinctInstance", "expression": "attribute:x exists"}], "distinctInstance"),
    ([], [{"type": "memberOf"}], "expression is required"),
    ([], [{"type": "memberOf", "expression": "attribute:x =="}], "Invalid query expression"),
    ([], [{"type": "sameZone"}], "sameZone"),
    ([], [{"type": "distinctInstance"}] * 11, "maximum of 10"),
])
def test_invalid_strategies_and_constraints(strategies: list[dict[str, str]],
                                            constraints: list[dict[str, str]],
                                            message: str) -> None:
    with pytest.raises(PlacementError, match=message):
        place([inst("a")], req(), 1, strategies, constraints)
    with pytest.raises(PlacementError):
        validate(strategies, constraints)
    with pytest.raises(ValueError):   # what the API layer can rely on
        place([], req(), 1, strategies, constraints)


def test_valid_placement_options_pass_validation() -> None:
    validate(SPREAD_AZ + SPREAD_HOST + BINPACK_CPU + RANDOM,
             [{"type": "distinctInstance"},
              {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}])


# -- apply_claim ---------------------------------------------------------------------------------
def test_apply_claim_returns_the_committed_view() -> None:
    view = inst("a", cpu=1000, mem=2000, used_ports=frozenset({22}), groups={"x": 1})
    claim = Claim(view.arn, view.version, 100, 200, (80,))
    after = apply_claim(view, claim, GROUP)
    assert (after.remaining_cpu, after.remaining_memory) == (900, 1800)
    assert after.used_ports == {22, 80}
    assert after.task_groups == {"x": 1, GROUP: 1} and after.running_tasks_count == 2
    assert after.version == view.version + 1 and apply_claim(view, claim, GROUP, 9).version == 9
    assert view.task_groups == {"x": 1}   # the snapshot is untouched


# -- the heaps agree with a plain scan -----------------------------------------------------------
def _reference(views: list[InstanceView], r: Requirements, count: int,
               strategies: list[dict[str, str]]) -> list[str]:
    """The obvious scheduler: for each task, score every instance, take the smallest."""
    views = list(views)
    chosen = []
    for _ in range(count):
        def group_count(v: InstanceView) -> int:
            return v.task_groups.get(r.group, 0) if r.group else v.running_tasks_count

        value_counts: Counter = Counter()
        for v in views:
            for name, value in v.attributes.items():
                value_counts[name, value] += group_count(v)
            for name in ("ecs.availability-zone", "rack"):
                if name not in v.attributes:
                    value_counts[name, None] += group_count(v)
        best = None
        for n, v in enumerate(views):
            if v.remaining_cpu < r.cpu or v.remaining_memory < r.memory:
                continue
            key: list[Any] = []
            for s in strategies or [{"type": "spread", "field": "attribute:ecs.availability-zone"},
                                    {"type": "spread", "field": "instanceId"}]:
                fld = s.get("field", "")
                if s["type"] == "binpack":
                    key.append(v.remaining_cpu if fld == "cpu" else v.remaining_memory)
                elif fld == "instanceId":
                    key.append(group_count(v))
                else:
                    name = fld[len("attribute:"):]
                    value = v.attributes.get(name)
                    key.append((value_counts[name, value], "" if value is None else "~" + value))
            candidate = (key, v.arn, n)
            if best is None or candidate < best:
                best = candidate
        if best is None:
            break
        n = best[2]
        chosen.append(views[n].instance_id)
        views[n] = apply_claim(views[n], Claim(views[n].arn, 0, r.cpu, r.memory, ()), r.group)
    return chosen


@pytest.mark.parametrize("strategies", [
    [], BINPACK_MEM, BINPACK_CPU, SPREAD_HOST, SPREAD_AZ + SPREAD_HOST, SPREAD_AZ + BINPACK_MEM,
    BINPACK_MEM + SPREAD_HOST, BINPACK_CPU + BINPACK_MEM, SPREAD_HOST + BINPACK_MEM,
    BINPACK_MEM + SPREAD_AZ, SPREAD_HOST + SPREAD_AZ, SPREAD_RACK + SPREAD_AZ + BINPACK_CPU,
    SPREAD_AZ + SPREAD_RACK, BINPACK_CPU + SPREAD_RACK + SPREAD_AZ,
])
@pytest.mark.parametrize("seed", range(4))
def test_matches_a_plain_scan(strategies: list[dict[str, str]], seed: int) -> None:
    rnd = random.Random(seed)
    views = [inst(f"i{n:03d}", cpu=rnd.choice((512, 1024, 2048)), mem=rnd.choice((1024, 2048)),
                  az=rnd.choice(("a", "b", "c", None)),
                  attributes={"rack": rnd.choice("xyz")} if rnd.random() < 0.8 else {},
                  groups={GROUP: rnd.randrange(3)} if rnd.random() < 0.5 else {})
             for n in range(40)]
    r = req(cpu=256, mem=256)
    count = rnd.randrange(20, 90)   # past capacity in some runs
    result = place(views, r, count, strategies)
    assert names(result) == _reference(views, r, count, strategies)
    assert len(result.claims) + len(result.failures) == count


def test_views_are_not_modified() -> None:
    views = [inst("a", groups={GROUP: 1}), inst("b")]
    before = [replace(v) for v in views]
    place(views, req(), 5, SPREAD_AZ + SPREAD_HOST, [{"type": "distinctInstance"}])
    assert views == before


def test_udp_and_tcp_host_ports_are_separate_resources() -> None:
    views = [inst("a", used_ports=frozenset({udp(53)}), reserved_ports=frozenset({udp(161)})),
             inst("b", used_ports=frozenset({53}))]
    # UDP 53 is taken on a, TCP 53 on b: each protocol's request goes where its port is free.
    assert names(place(views, req(ports=(udp(53),)), 1)) == ["b"]
    assert names(place(views, req(ports=(53,)), 1)) == ["a"]
    both = place(views, req(ports=(53, udp(53))), 1)
    assert both.claims == [] and both.failures[0][1] in (REASON_PORTS, REASON_PORTS_UDP)
    reserved = place([views[0]], req(ports=(udp(161),)), 1)
    assert reserved.failures == [(views[0].arn, REASON_PORTS_UDP)]
    # Two tasks of one call never share a static UDP port on one instance either.
    two = place([views[1]], req(ports=(udp(5353),)), 2)
    assert names(two) == ["b"] and two.failures == [(views[1].arn, REASON_PORTS_UDP)]
