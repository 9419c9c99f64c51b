"""The service rollout decision, as a pure function."""
from __future__ import annotations

from berth.ecs.rollout import LiveTask, plan


def tasks(dep: str, n: int, running: bool = True, draining: bool = False,
          start: int = 0) -> list[LiveTask]:
    return [LiveTask(f"{dep}-{start + i}", dep, running, draining, float(start + i))
            for i in range(n)]


def test_scale_out_and_steady() -> None:
    assert plan(3, 100, 200, "p", []).start == 3
    assert plan(3, 100, 200, "p", tasks("p", 1)).start == 2
    done = plan(3, 100, 200, "p", tasks("p", 3))
    assert (done.start, done.stop, done.steady) == (0, [], True)
    assert not plan(3, 100, 200, "p", tasks("p", 3, running=False)).steady


def test_scale_in_stops_pending_then_newest() -> None:
    live = tasks("p", 2) + tasks("p", 1, running=False, start=2)
    out = plan(1, 100, 200, "p", live)
    assert out.stop == ["p-2", "p-1"] and out.start == 0


def test_rolling_with_room_starts_first_and_stops_when_healthy() -> None:
    old = tasks("old", 4)
    first = plan(4, 100, 200, "new", old)
    assert (first.start, first.stop) == (4, [])
    pending_new = tasks("new", 4, running=False)
    assert plan(4, 100, 200, "new", old + pending_new).stop == []
    running_new = tasks("new", 4)
    out = plan(4, 100, 200, "new", old + running_new)
    assert sorted(out.stop) == [f"old-{i}" for i in range(4)] and out.start == 0


def test_rolling_without_room_stops_down_to_min_healthy() -> None:
    old = tasks("old", 4)
    out = plan(4, 50, 100, "new", old)
    assert out.start == 0 and len(out.stop) == 2       # keep 2 of 4 healthy
    after = old[2:]
    out = plan(4, 50, 100, "new", after)
    assert out.start == 2 and out.stop == []           # refill to maximumPercent


def test_draining_instance_tasks_are_replaced_like_old_ones() -> None:
    live = tasks("p", 2, draining=True)
    out = plan(2, 100, 200, "p", live)
    assert (out.start, out.stop) == (2, [])
    out = plan(2, 100, 200, "p", live + tasks("p", 2, start=5))
    assert sorted(out.stop) == ["p-0", "p-1"]


def test_pending_tasks_to_replace_go_at_once_and_zero_stops_all() -> None:
    out = plan(2, 100, 100, "new", tasks("old", 2, running=False))
    assert sorted(out.stop) == ["old-0", "old-1"]
    out = plan(0, 100, 200, "p", tasks("p", 3))
    assert len(out.stop) == 3 and out.start == 0
