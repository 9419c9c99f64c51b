"""Accepting offers: what is launched, what is refused and why, and what is filtered after."""
from __future__ import annotations

from typing import Any

from mesos.test_offers import described

from berth.mesos import status as st
from berth.mesos.claims import claim
from berth.mesos.offer_book import OfferBook
from berth.mesos.offers import instance
from berth.mesos.resources import Resources
from berth.mesos.task_book import TaskBook, Tracked
from berth.mesos.taskinfo import Defaults


def info(task_id: str, agent: str = "A", mem: float = 1000, cpus: float = 1.0) -> dict[str, Any]:
    return {"task_id": {"value": task_id}, "agent_id": {"value": agent},
            "command": {"value": "true"},
            "resources": [{"name": "cpus", "scalar": {"value": cpus}},
                          {"name": "mem", "scalar": {"value": mem}}]}


def books() -> tuple[OfferBook, TaskBook, str]:
    offers, tasks = OfferBook("fw"), TaskBook()
    a = instance(described("A", cpu=2048, memory=4000), (31000, 31000))
    _, (offer,) = offers.refresh({"A": a}, now=0)
    return offers, tasks, offer.id.value


def reasons(result: Any) -> list[tuple[str, str, str | None]]:
    return [(u.task.task_id, u.state.state, u.state.reason) for u in result.rejected]


def test_tasks_that_fit_launch_and_the_rest_is_refused_for_a_while() -> None:
    offers, tasks, offer_id = books()
    tasks.add(Tracked("running", "A", "arn", st.State(st.RUNNING)))
    got = claim(offers, tasks, [offer_id],
                [info("a"), info("too-big", mem=3500), info("b"), info("elsewhere", agent="B"),
                 info("running"), {"task_id": {}}],
                Defaults(), refuse=5, now=10)
    assert got.agent == "A" and [launch.task_id for launch in got.launches] == ["a", "b"]
    assert reasons(got) == [("too-big", st.ERROR, "REASON_TASK_INVALID"),
        ("elsewhere", st.ERROR, "REASON_TASK_INVALID"),
        ("running", st.ERROR, "REASON_TASK_INVALID")]
    assert tasks.get("a") is not None and tasks.get("too-big") is None
    # 2048 units and 4000 MiB less two tasks of 1024 and 1000: refused until t=15.
    assert not offers.filters.allows("A", Resources(0, 2000, frozenset({31000})), now=14)
    assert offers.filters.allows("A", Resources(0, 2000, frozenset({31000})), now=15)


def test_void_offers_lose_every_task() -> None:
    offers, tasks, offer_id = books()
    first = claim(offers, tasks, [offer_id], [info("a")], Defaults(), 5, 0)
    assert first.launches
    again = claim(offers, tasks, [offer_id], [info("b"), info("c")], Defaults(), 5, 0)
    assert again.agent is None and again.launches == []
    assert reasons(again) == [("b", st.LOST, "REASON_INVALID_OFFERS"),
                              ("c", st.LOST, "REASON_INVALID_OFFERS")]
    assert "is no longer valid" in (again.rejected[0].state.message or "")
