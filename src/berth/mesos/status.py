"""Mesos task states from ECS tasks, and the status updates that carry them.

    PROVISIONING                      -> TASK_STAGING   (placed, not yet handed to the agent)
    PENDING, ACTIVATING               -> TASK_STARTING  (the agent is starting it)
    RUNNING ... STOPPING              -> TASK_RUNNING
    STOPPED, stopped by a user        -> TASK_KILLED    (killTask, StopTask, the console)
    STOPPED, its agent lost           -> TASK_LOST
    STOPPED, failed to start          -> TASK_FAILED    (REASON_CONTAINER_LAUNCH_FAILED)
    STOPPED, exit code 0              -> TASK_FINISHED
    STOPPED, other exit code          -> TASK_FAILED    (REASON_COMMAND_EXECUTOR_FAILED)

Mesos's TaskStatus has no exit code member: the message says it as Mesos's command executor
does ("Command exited with status 3") and the labels carry it (`berth.exit-code`), with the ECS
task ARN (`berth.task-arn`).
"""
from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .messages import Message

STAGING, STARTING, RUNNING = "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"
FINISHED, FAILED, KILLED, LOST, ERROR = ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED",
                                         "TASK_LOST", "TASK_ERROR")
TERMINAL = frozenset({FINISHED, FAILED, KILLED, LOST, ERROR})

SOURCE_MASTER, SOURCE_AGENT, SOURCE_EXECUTOR = "SOURCE_MASTER", "SOURCE_AGENT", "SOURCE_EXECUTOR"

_KILLED_BY = frozenset({"UserInitiated", "ServiceSchedulerInitiated", "SpotInterruption"})
_LOST_BY = frozenset({"TerminationNotice"})


@dataclass(frozen=True)
class State:
    """A task's Mesos state and what the update about it says."""
    state: str
    source: str = SOURCE_MASTER
    reason: str | None = None
    message: str | None = None
    exit_code: int | None = None


def _exit(task: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """The exit code that ended the task (its first essential container's with one, which is
    what stopped it) and that container's reason."""
    containers = task.get("containers") or []
    for c in containers:
        if c.get("exitCode") is not None and c.get("exitCode") != 0:
            return int(c["exitCode"]), c.get("reason")
    for c in containers:
        if c.get("exitCode") is not None:
            return int(c["exitCode"]), c.get("reason")
    return None, next((c.get("reason") for c in containers if c.get("reason")), None)


def state_of(task: Mapping[str, Any], kill_requested: bool = False) -> State:
    """The Mesos state of an ECS Task (DescribeTasks' shape)."""
    last = task.get("lastStatus")
    if last == "PROVISIONING":
        return State(STAGING)
    if last in ("PENDING", "ACTIVATING"):
        return State(STARTING, SOURCE_AGENT)
    if last != "STOPPED":
        return State(RUNNING, SOURCE_EXECUTOR)
    stop_code = task.get("stopCode")
    reason = task.get("stoppedReason")
    code, container_reason = _exit(task)
    if stop_code in _LOST_BY:
        return State(LOST, SOURCE_MASTER, "REASON_AGENT_REMOVED", reason, code)
    if kill_requested or stop_code in _KILLED_BY:
        started = task.get("startedAt") is not None
        return State(KILLED, SOURCE_EXECUTOR if started else SOURCE_AGENT,
                     None if started else "REASON_TASK_KILLED_DURING_LAUNCH",
                     reason or "Task killed", code)
    if stop_code == "TaskFailedToStart" or code is None:
        return State(FAILED, SOURCE_AGENT, "REASON_CONTAINER_LAUNCH_FAILED",
                     container_reason or reason or "The container did not start", code)
    if code == 0:
        return State(FINISHED, SOURCE_EXECUTOR, None, "Command exited with status 0", 0)
    memory = (container_reason or "").startswith("OutOfMemoryError")
    return State(FAILED, SOURCE_EXECUTOR,
                 "REASON_CONTAINER_LIMITATION_MEMORY" if memory
                 else "REASON_COMMAND_EXECUTOR_FAILED",
                 f"Command exited with status {code}", code)


def update(task_id: str, agent_id: str, state: State, task_arn: str | None = None,
           reason: str | None = None) -> Message:
    """A TaskStatus message; `reason` overrides the state's (REASON_RECONCILIATION)."""
    labels = []
    if task_arn:
        labels.append({"key": "berth.task-arn", "value": task_arn})
    if state.exit_code is not None:
        labels.append({"key": "berth.exit-code", "value": str(state.exit_code)})
    status = Message(task_id={"value": task_id}, agent_id={"value": agent_id},
                     slave_id={"value": agent_id}, state=state.state, source=state.source,
                     timestamp=time.time(),
                     uuid=base64.b64encode(uuid.uuid4().bytes).decode())
    if reason or state.reason:
        status.reason = reason or state.reason
    if state.message:
        status.message = state.message
    if labels:
        status.labels = {"labels": labels}
    return status
