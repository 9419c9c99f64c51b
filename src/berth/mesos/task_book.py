"""The tasks a framework launched, by Mesos task id: their ECS task, the state the scheduler was
last told, and what changes it. Pure bookkeeping: the driver reads ECS and sends the updates
this returns (each already recorded as the task's last state)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import status as st
from .offers import Instance

TAG_TASK_ID = "mesos.task-id"           # ECS tag holding a task's Mesos id


@dataclass
class Tracked:
    task_id: str
    agent_id: str
    arn: str | None = None          # None while its StartTask is under way
    last: st.State = st.State(st.STAGING)
    kill_requested: bool = False

    @property
    def state(self) -> str:
        return self.last.state

    @property
    def live(self) -> bool:
        return self.state not in st.TERMINAL

    @property
    def moving(self) -> bool:
        """Watched closely: about to change state on its own or by a kill."""
        return self.live and (self.state != st.RUNNING or self.kill_requested)


@dataclass(frozen=True)
class Update:
    task: Tracked
    state: st.State
    reason: str | None = None       # overrides the state's (REASON_RECONCILIATION)


class TaskBook:
    def __init__(self) -> None:
        self.tasks: dict[str, Tracked] = {}
        self._reconcile: set[str] | None = None     # empty: every live task

    def get(self, task_id: str) -> Tracked | None:
        return self.tasks.get(task_id)

    def add(self, task: Tracked) -> None:
        self.tasks[task.task_id] = task

    def adopt(self, ecs_tasks: Iterable[Mapping[str, Any]]) -> None:
        """Track ECS tasks found by their tags (a driver taking over after a failover)."""
        for t in ecs_tasks:
            task_id = next((tag["value"] for tag in t.get("tags") or []
                            if tag.get("key") == TAG_TASK_ID), None)
            if task_id is not None:
                self.add(Tracked(task_id, t["containerInstanceArn"], t["taskArn"],
                                 st.state_of(t), t.get("desiredStatus") == "STOPPED"))

    def set(self, task: Tracked, state: st.State, reason: str | None = None) -> Update:
        task.last = state
        return Update(task, state, reason)

    def live_arns(self) -> list[str]:
        return [t.arn for t in self.tasks.values() if t.arn and t.live]

    def busy(self) -> bool:
        """Whether the status source should be read at the fast interval."""
        return self._reconcile is not None or any(t.moving for t in self.tasks.values())

    def lost(self, instances: Mapping[str, Instance]) -> list[Update]:
        """LOST for every live task whose instance is gone or whose agent is disconnected."""
        out = []
        for t in self.tasks.values():
            inst = instances.get(t.agent_id)
            if t.live and (inst is None or not inst.connected):
                out.append(self.set(t, st.State(
                    st.LOST, st.SOURCE_MASTER,
                    "REASON_AGENT_REMOVED" if inst is None else "REASON_AGENT_DISCONNECTED",
                    f"Agent {t.agent_id} lost")))
        return out

    def to_poll(self, full: bool) -> dict[str, Tracked]:
        """The tasks to read now: the moving ones, or every live one."""
        everything = full or self._reconcile is not None
        return {t.arn: t for t in self.tasks.values()
                if t.arn and t.live and (everything or t.moving)}

    def apply(self, polled: Mapping[str, Tracked],
              found: Mapping[str, Mapping[str, Any] | None]) -> list[Update]:
        """Updates for the polled tasks whose state moved (None: ECS knows it no more), then
        the answers to a pending reconciliation."""
        out = []
        for arn, t in polled.items():
            if not t.live:
                continue            # decided meanwhile (its agent was lost)
            ecs_task = found.get(arn)
            state = (st.state_of(ecs_task, t.kill_requested) if ecs_task is not None
                     else st.State(st.LOST, st.SOURCE_MASTER, "REASON_TASK_UNKNOWN",
                                   "ECS no longer knows the task"))
            if state.state != t.state:
                out.append(self.set(t, state))
        asked, self._reconcile = self._reconcile, None
        if asked is not None:
            for task_id in sorted(asked) or list(self.tasks):
                known = self.tasks.get(task_id)
                if known is None:
                    out.append(self.set(Tracked(task_id, ""), st.State(
                        st.LOST, st.SOURCE_MASTER, "REASON_RECONCILIATION",
                        "Reconciliation: task unknown")))
                elif asked or known.live:
                    out.append(Update(known, known.last, "REASON_RECONCILIATION"))
        return out

    def ask(self, task_ids: Iterable[str]) -> None:
        """Reconcile these tasks (every live one, given none) at the next poll."""
        ids = set(task_ids)
        if not ids or self._reconcile == set():
            self._reconcile = set()
        else:
            self._reconcile = (self._reconcile or set()) | ids
