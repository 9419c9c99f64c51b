"""The DAEMON scheduling strategy's decisions, as a pure function."""
from __future__ import annotations

from berth.ecs.daemon import DaemonTask, plan


def task(arn: str, inst: str, dep: str = "p", running: bool = True, stopping: bool = False,
         at: float = 0.0) -> DaemonTask:
    return DaemonTask(arn, inst, dep, running, stopping, at)


def test_one_task_on_every_eligible_instance() -> None:
    out = plan(["i1", "i2", "i3"], frozenset(), {}, "p", 0, [task("t1", "i1")])
    assert (out.start_on, out.stop, out.desired, out.steady) == (["i2", "i3"], [], 3, False)
    out = plan(["i1"], frozenset(), {}, "p", 0, [task("t1", "i1")])
    assert (out.start_on, out.stop, out.steady) == ([], [], True)
    # A pending task holds its instance; the service is not steady until it runs.
    out = plan(["i1"], frozenset(), {}, "p", 0, [task("t1", "i1", running=False)])
    assert (out.start_on, out.stop, out.steady) == ([], [], False)


def test_duplicates_go_keeping_the_running_oldest() -> None:
    live = [task("new", "i1", at=5), task("pending", "i1", running=False, at=1),
            task("old", "i1", at=2)]
    out = plan(["i1"], frozenset(), {}, "p", 0, live)
    assert sorted(out.stop) == ["new", "pending"] and not out.start_on


def test_instances_that_leave_or_stop_qualifying_lose_their_task() -> None:
    live = [task("t1", "i1"), task("t2", "gone")]
    out = plan(["i1"], frozenset(), {}, "p", 0, live)
    assert out.stop == ["t2"] and not out.steady


def test_on_a_draining_instance_the_daemon_stops_last() -> None:
    live = [task("t1", "i1"), task("t2", "d1")]
    out = plan(["i1"], frozenset({"d1"}), {"d1": 2}, "p", 0, live)
    assert out.stop == [] and not out.steady        # replica tasks still there
    out = plan(["i1"], frozenset({"d1"}), {"d1": 0}, "p", 0, live)
    assert out.stop == ["t2"]


def test_a_stopping_task_holds_its_slot_until_stopped() -> None:
    live = [task("t1", "i1", stopping=True)]
    out = plan(["i1"], frozenset(), {}, "p", 0, live)
    assert (out.start_on, out.stop, out.steady) == ([], [], False)


def test_new_deployment_replaces_within_minimum_healthy_percent() -> None:
    live = [task(f"o{i}", f"i{i}", dep="old", at=i) for i in range(4)]
    eligible = [f"i{i}" for i in range(4)]
    out = plan(eligible, frozenset(), {}, "p", 0, live)          # ECS's default: 0 %
    assert sorted(out.stop) == ["o0", "o1", "o2", "o3"] and out.start_on == []
    out = plan(eligible, frozenset(), {}, "p", 50, live)
    assert out.stop == ["o0", "o1"]                              # oldest first, 2 stay up
    # Once an old task is gone its instance gets the new one.
    out = plan(eligible, frozenset(), {}, "p", 50, live[2:])
    assert out.start_on == ["i0", "i1"] and out.stop == []
