"""The agent's pure parts: dependsOn conditions and stop order, the health state machine, the
state file, awslogs naming and batching, and the host's resources."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from berth.agent import resources
from berth.agent.awslogs import MAX_EVENT_BYTES, target, to_events
from berth.agent.dependencies import (
    FAILED,
    MET,
    WAITING,
    Progress,
    condition,
    resolve,
    stop_order,
)
from berth.agent.drivers.base import CannotStart, LogLine
from berth.agent.health import HealthTracker
from berth.agent.state_file import AgentState
from berth.agent.task_plan import Dependency, HealthCheck

NOT_STARTED = Progress(False, False, None, "UNKNOWN")
RUNNING = Progress(True, False, None, "UNKNOWN")
HEALTHY = Progress(True, False, None, "HEALTHY")
EXIT_0 = Progress(True, True, 0, "UNKNOWN")
EXIT_1 = Progress(True, True, 1, "UNKNOWN")


@pytest.mark.parametrize("cond, target, expected", [
    ("START", NOT_STARTED, WAITING), ("START", RUNNING, MET), ("START", EXIT_1, MET),
    ("COMPLETE", RUNNING, WAITING), ("COMPLETE", EXIT_1, MET),
    ("SUCCESS", RUNNING, WAITING), ("SUCCESS", EXIT_0, MET), ("SUCCESS", EXIT_1, FAILED),
    ("HEALTHY", RUNNING, WAITING), ("HEALTHY", HEALTHY, MET), ("HEALTHY", EXIT_0, FAILED),
])
def test_dependency_conditions(cond: str, target: Progress, expected: str) -> None:
    assert condition(Dependency("t", cond), target) == expected


def test_resolve_says_why() -> None:
    deps = [Dependency("a", "START"), Dependency("b", "SUCCESS")]
    assert resolve(deps, {"a": RUNNING, "b": RUNNING}) == (WAITING, "waiting for b to be SUCCESS")
    assert resolve(deps, {"a": RUNNING, "b": EXIT_0}) == (MET, "")
    state, why = resolve(deps, {"a": RUNNING, "b": EXIT_1})
    assert state == FAILED and "SUCCESS on container b" in why and "code 1" in why


def test_stop_order_is_the_reverse_of_dependencies() -> None:
    deps = {"app": [Dependency("db", "HEALTHY")], "proxy": [Dependency("app", "START")]}
    assert stop_order(["db", "app", "proxy", "side"], deps) == [
        ["proxy", "side"], ["app"], ["db"]]


def test_health_retries_and_recovery() -> None:
    h = HealthTracker(HealthCheck(["true"], retries=2), started_at=0.0)
    assert h.status == "UNKNOWN"
    assert h.record(False, 1) is False and h.status == "UNKNOWN"
    assert h.record(False, 2) is True and h.status == "UNHEALTHY"
    assert h.record(True, 3) is True and h.status == "HEALTHY"
    assert h.record(True, 4) is False
    h.record(False, 5)
    assert h.status == "HEALTHY"        # one failure of two allowed
    h.record(False, 6)
    assert h.status == "UNHEALTHY"


def test_failures_in_the_start_period_do_not_count_until_a_check_passed() -> None:
    h = HealthTracker(HealthCheck(["true"], retries=1, start_period=10), started_at=100.0)
    h.record(False, 105)
    assert h.status == "UNKNOWN" and h.failures == 0
    h.record(True, 106)
    h.record(False, 107)                # passed once: now failures count
    assert h.status == "UNHEALTHY"
    late = HealthTracker(HealthCheck(["true"], retries=1, start_period=10), started_at=100.0)
    late.record(False, 111)
    assert late.status == "UNHEALTHY"


def test_state_file_round_trip_and_damage(tmp_path: Path) -> None:
    st = AgentState.load(tmp_path)
    assert st.instance_arn is None and st.cursors == {}
    st.instance_arn, st.cluster = "arn:x", "c"
    st.set_cursor("cid1", "120")
    st.set_cursor("cid2", "7")
    again = AgentState.load(tmp_path)
    assert (again.instance_arn, again.cluster, again.cursors) == (
        "arn:x", "c", {"cid1": "120", "cid2": "7"})
    again.forget(["cid1"])
    assert AgentState.load(tmp_path).cursors == {"cid2": "7"}
    assert (tmp_path / "agent").stat().st_mode & 0o777 == 0o700
    (tmp_path / "agent" / "state.json").write_text("{not json")
    assert AgentState.load(tmp_path).instance_arn is None


def test_awslogs_stream_names_and_options() -> None:
    config = {"logDriver": "awslogs", "options": {
        "awslogs-group": "g", "awslogs-stream-prefix": "web", "awslogs-region": "eu-west-1",
        "awslogs-create-group": "true"}}
    t = target(config, "app", "abc123", "cid")
    assert (t.group, t.stream, t.region, t.create_group) == (
        "g", "web/app/abc123", "eu-west-1", True)
    bare = target({"logDriver": "awslogs", "options": {"awslogs-group": "g"}}, "app", "t", "cid")
    assert bare is not None and (bare.stream, bare.create_group, bare.region) == (
        "cid", False, None)
    assert target({"logDriver": "json-file"}, "app", "t", "cid") is None
    assert target(None, "app", "t", "cid") is None
    with pytest.raises(CannotStart, match="awslogs-group"):
        target({"logDriver": "awslogs", "options": {}}, "app", "t", "cid")


def test_log_events_keep_order_and_fit_the_api() -> None:
    lines = [LogLine(10.0, "stdout", "a", "1"), LogLine(9.5, "stderr", "b", "2"),
             LogLine(11.0, "stdout", "", "3"), LogLine(12.0, "stdout", "x" * 300_000, "4")]
    events, last = to_events(lines, 0)
    assert [e["timestamp"] for e in events] == [10000, 10000, 12000]     # never backwards
    assert [e["message"][:1] for e in events] == ["a", "b", "x"]         # the empty line dropped
    assert len(events[2]["message"].encode()) <= MAX_EVENT_BYTES and last == 12000
    assert to_events([LogLine(1.0, "stdout", "late", "5")], last)[0][0]["timestamp"] == 12000


def test_host_resources(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        8388608 kB\nMemFree:  1 kB\n")
    assert resources.memory_mib(meminfo) == 8192
    host = resources.detect(256, [9000], 4750)
    assert {22, 2375, 2376, 51678, 51679, 9000, 4750} <= set(host.ports)
    assert host.cpu % 1024 == 0 and host.memory > 0
    body = host.as_ecs()
    assert [r["name"] for r in body] == ["CPU", "MEMORY", "PORTS", "PORTS_UDP"]
    assert "22" in body[2]["stringSetValue"]
    assert resources.cpu_architecture("aarch64") == "arm64"
    assert resources.cpu_architecture("x86_64") == "x86_64"
    attrs = resources.attributes("runc")
    assert attrs["berth.driver"] == "runc" and attrs["ecs.os-type"] == "linux"
    assert "com.amazonaws.ecs.capability.logging-driver.awslogs" in attrs
    json.dumps(attrs)
