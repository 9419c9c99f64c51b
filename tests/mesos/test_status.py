"""ECS task states as Mesos states, and the book that decides which updates a scheduler gets."""
from __future__ import annotations

from typing import Any

import pytest

from berth.mesos import status as st
from berth.mesos.offers import Instance
from berth.mesos.resources import Resources
from berth.mesos.task_book import TaskBook, Tracked


def ecs_task(last: str, *codes: int | None, stop_code: str | None = None,
             reason: str | None = None, started: bool = True, **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"taskArn": "arn:t", "lastStatus": last, "containers": [
        {"name": f"c{i}", **({"exitCode": c} if c is not None else {})}
        for i, c in enumerate(codes)], **extra}
    if stop_code:
        task["stopCode"] = stop_code
    if reason:
        task["stoppedReason"] = reason
    if started:
        task["startedAt"] = 1.0
    return task


@pytest.mark.parametrize("task, kill, expected", [
    (ecs_task("PROVISIONING"), False, (st.STAGING, None, None)),
    (ecs_task("PENDING"), False, (st.STARTING, None, None)),
    (ecs_task("RUNNING"), False, (st.RUNNING, None, None)),
    (ecs_task("STOPPING"), True, (st.RUNNING, None, None)),
    (ecs_task("STOPPED", 0, stop_code="EssentialContainerExited"), False,
     (st.FINISHED, None, 0)),
    (ecs_task("STOPPED", 0, 3, stop_code="EssentialContainerExited"), False,
     (st.FAILED, "REASON_COMMAND_EXECUTOR_FAILED", 3)),
    (ecs_task("STOPPED", 137, stop_code="EssentialContainerExited"), False,
     (st.FAILED, "REASON_COMMAND_EXECUTOR_FAILED", 137)),
    (ecs_task("STOPPED", 143, stop_code="UserInitiated", reason="by hand"), False,
     (st.KILLED, None, 143)),
    (ecs_task("STOPPED", None, stop_code="UserInitiated", started=False), True,
     (st.KILLED, "REASON_TASK_KILLED_DURING_LAUNCH", None)),
    (ecs_task("STOPPED", 0, stop_code="TerminationNotice"), False,
     (st.LOST, "REASON_AGENT_REMOVED", 0)),
    (ecs_task("STOPPED", None, stop_code="TaskFailedToStart",
              reason="CannotStartContainerError: no image"), False,
     (st.FAILED, "REASON_CONTAINER_LAUNCH_FAILED", None)),
])
def test_states(task: dict[str, Any], kill: bool, expected: tuple[Any, ...]) -> None:
    got = st.state_of(task, kill)
    assert (got.state, got.reason, got.exit_code) == expected


def test_out_of_memory_and_the_update_message() -> None:
    task = ecs_task("STOPPED", 137, stop_code="EssentialContainerExited")
    task["containers"][0]["reason"] = "OutOfMemoryError: Container killed due to memory usage"
    state = st.state_of(task)
    assert (state.state, state.reason) == (st.FAILED, "REASON_CONTAINER_LIMITATION_MEMORY")
    update = st.update("t1", "A", state, "arn:t")
    assert update.task_id.value == "t1" and update.agent_id.value == "A"
    assert update.state == st.FAILED and update.message == "Command exited with status 137"
    assert {lab.key: lab.value for lab in update.labels.labels} == {
        "berth.task-arn": "arn:t", "berth.exit-code": "137"}
    assert update.source == st.SOURCE_EXECUTOR and update.uuid and update.timestamp > 0
    assert st.update("t1", "A", state, reason="REASON_RECONCILIATION").reason == \
        "REASON_RECONCILIATION"


def inst(arn: str, connected: bool = True) -> Instance:
    return Instance(arn, arn, True, connected, Resources(1, 1), ())


def test_the_book_reports_changes_once_and_loses_tasks_of_lost_agents() -> None:
    book = TaskBook()
    a = Tracked("a", "A", "arn:a")
    b = Tracked("b", "B", "arn:b", st.State(st.RUNNING))
    pending = Tracked("p", "A")          # StartTask under way: nothing to poll yet
    for t in (a, b, pending):
        book.add(t)
    assert book.busy()
    assert set(book.to_poll(full=False)) == {"arn:a"}
    assert set(book.to_poll(full=True)) == {"arn:a", "arn:b"}
    polled = book.to_poll(full=True)
    updates = book.apply(polled, {"arn:a": ecs_task("RUNNING"), "arn:b": ecs_task("RUNNING")})
    assert [(u.task.task_id, u.state.state) for u in updates] == [("a", st.RUNNING)]
    assert book.apply(polled, {"arn:a": ecs_task("RUNNING"), "arn:b": None})[0].state.reason \
        == "REASON_TASK_UNKNOWN"
    lost = book.lost({"A": inst("A", connected=False)})
    assert [(u.task.task_id, u.state.reason) for u in lost] == [
        ("a", "REASON_AGENT_DISCONNECTED"), ("p", "REASON_AGENT_DISCONNECTED")]
    assert book.lost({}) == []          # told once
    assert not book.busy() and book.live_arns() == []


def test_reconciliation_answers_what_was_asked() -> None:
    book = TaskBook()
    book.add(Tracked("live", "A", "arn:1", st.State(st.RUNNING)))
    book.add(Tracked("done", "A", "arn:2", st.State(st.FINISHED, exit_code=0)))
    book.ask(["done", "unknown"])
    assert book.busy()
    answers = book.apply({}, {})
    assert [(u.task.task_id, u.state.state, u.reason or u.state.reason) for u in answers] == [
        ("done", st.FINISHED, "REASON_RECONCILIATION"),
        ("unknown", st.LOST, "REASON_RECONCILIATION")]
    book.ask([])
    book.ask(["done"])          # an implicit request pending stays implicit
    assert [u.task.task_id for u in book.apply({}, {})] == ["live"]
    assert book.apply({}, {}) == []
