"""Accepting offers, as Mesos's master validates an ACCEPT: the offers named are taken together
(all of one agent, all still outstanding), then each TaskInfo is checked against what they hold.
What passes is recorded as launched and goes to StartTask; what does not is answered at once
(TASK_LOST for void offers, TASK_ERROR for an invalid task). The unused rest is refused for
`refuse_seconds`. Pure: the driver does the calls."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import status as st
from .messages import id_value
from .offer_book import InvalidOffers, OfferBook
from .resources import Resources
from .task_book import TaskBook, Tracked, Update
from .taskinfo import Defaults, InvalidTask, Launch, plan


@dataclass
class Claim:
    agent: str | None = None                # the offers' agent, when they could be taken
    launches: list[Launch] = field(default_factory=list)
    rejected: list[Update] = field(default_factory=list)


def rejection(info: Mapping[str, Any], state: str, reason: str, message: str
              ) -> list[Update]:
    """The update refusing a TaskInfo (none if it has no task id to address one to)."""
    try:
        task_id = id_value(info.get("task_id"))
    except ValueError:
        return []
    agent = (info.get("agent_id") or info.get("slave_id") or {}).get("value", "")
    return [Update(Tracked(task_id, agent), st.State(state, st.SOURCE_MASTER, reason, message))]


def _check(tasks: TaskBook, launch: Launch, agent: str, left: Resources) -> Launch:
    if launch.agent_id != agent:
        raise InvalidTask(f"Task uses agent {launch.agent_id}, not the offers' agent {agent}")
    known = tasks.get(launch.task_id)
    if known is not None and known.live:
        raise InvalidTask(f"Task {launch.task_id} is already running")
    if not left.contains(launch.needs):
        raise InvalidTask("Task uses more resources than offered")
    return launch


def claim(offers: OfferBook, tasks: TaskBook, offer_ids: list[str],
          infos: list[Mapping[str, Any]], defaults: Defaults, refuse: float,
          now: float) -> Claim:
    out = Claim()
    try:
        out.agent, left = offers.take(offer_ids)
    except InvalidOffers as exc:
        for info in infos:
            out.rejected += rejection(info, st.LOST, "REASON_INVALID_OFFERS", str(exc))
        return out
    for info in infos:
        try:
            launch = _check(tasks, plan(info, defaults), out.agent, left)
        except InvalidTask as exc:
            out.rejected += rejection(info, st.ERROR, "REASON_TASK_INVALID", str(exc))
            continue
        left = left - launch.needs
        tasks.add(Tracked(launch.task_id, out.agent))
        out.launches.append(launch)
    offers.filters.refuse(out.agent, left, refuse, now)
    return out
