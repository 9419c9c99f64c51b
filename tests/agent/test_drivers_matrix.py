"""One behavioural matrix for every container driver: each test runs on docker, runc and process.

Where a driver cannot do something by design (the process driver has no images, volumes or
network namespaces), the test asserts that it refuses clearly instead.
"""
from __future__ import annotations

import os
import threading
import time
import urllib.request

import pytest
from drivers_harness import ECHO_IMAGE, RUN_ID, RUN_LABEL, Harness, free_port

from berth.agent.drivers.base import (
    CannotStart,
    ContainerNotFound,
    DriverError,
    ImageNotFound,
    Mount,
    PortMapping,
    Ulimit,
)


def test_exit_code_and_both_output_streams(harness: Harness) -> None:
    st, lines = harness.run(["sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 3"])
    assert (st.status, st.exit_code, st.oom_killed) == ("exited", 3, False)
    assert harness.out(lines) == ["out1", "out2"]
    assert harness.out(lines, "stderr") == ["err1"]
    assert st.started_at is not None and st.finished_at is not None
    assert st.started_at <= st.finished_at <= time.time() + 1
    # In order within a stream (Docker reads the two streams apart, so not across them).
    for stream in ("stdout", "stderr"):
        stamps = [x.timestamp for x in lines if x.stream == stream]
        assert stamps == sorted(stamps)


def test_environment_working_dir_and_user(harness: Harness) -> None:
    st, lines = harness.run(["sh", "-c", 'echo "$A|$B"; pwd; id -u; id -g'],
                            environment={"A": "1", "B": "two words"}, working_dir="/tmp",
                            user="nobody")
    assert st.exit_code == 0
    assert harness.out(lines) == ["1|two words", "/tmp", "65534", "65534"]
    st, lines = harness.run(["id", "-u"], user="65534:0")
    assert harness.out(lines) == ["65534"]


def test_image_defaults_and_ecs_overrides(harness: Harness) -> None:
    if harness.kind == "process":
        pytest.skip("the process driver runs no images")
    base = "foo:img pwd:/srv uid:65534"
    _, lines = harness.run(None, image=ECHO_IMAGE)
    assert harness.out(lines) == [f"args:c1 c2 {base}"]
    # command replaces the image's Cmd and keeps its Entrypoint; environment adds to Env.
    _, lines = harness.run(["x"], image=ECHO_IMAGE, environment={"FOO": "task"})
    assert harness.out(lines) == ["args:x foo:task pwd:/srv uid:65534"]
    # An entryPoint without a command drops the image's Cmd (Docker's rule).
    _, lines = harness.run(None, image=ECHO_IMAGE, entrypoint=["echo", "E"])
    assert harness.out(lines) == ["E"]
    _, lines = harness.run(None, image=ECHO_IMAGE, user="root", working_dir="/")
    assert harness.out(lines) == ["args:c1 c2 foo:img pwd:/ uid:0"]


def test_memory_limit_oom_kill_is_137(harness: Harness) -> None:
    hog = 'x=$(dd if=/dev/zero bs=1M count=300 2>/dev/null | tr "\\0" a); sleep 5; echo survived'
    st, lines = harness.run(["sh", "-c", hog], memory_mib=24, timeout=30)
    assert (st.exit_code, st.oom_killed) == (137, True)
    assert "survived" not in harness.out(lines)
    st, _ = harness.run(["true"], memory_mib=24)
    assert (st.exit_code, st.oom_killed) == (0, False)


@pytest.mark.parametrize("mib", [1, 4])
def test_impossible_memory_limit_is_refused(harness: Harness, mib: int) -> None:
    began = time.monotonic()
    with pytest.raises(CannotStart, match="memory") as err:
        cid = harness.create(harness.spec(["true"], memory_mib=mib))
        harness.driver.start(cid)
    assert time.monotonic() - began < 10
    assert err.value.stopped_reason.startswith("CannotStartContainerError: ")


def test_pids_limit(harness: Harness) -> None:
    spawn = "i=0; while [ $i -lt 24 ]; do sleep 3 & i=$((i+1)); done; echo spawned-all"
    st, lines = harness.run(["sh", "-c", spawn], user="nobody", pids_limit=8)
    assert "spawned-all" not in harness.out(lines)
    assert st.exit_code != 0
    assert any("fork" in line.lower() for line in harness.out(lines, "stderr"))
    st, lines = harness.run(["sh", "-c", spawn + "; kill $(jobs -p)"], user="nobody",
                            pids_limit=64)
    assert "spawned-all" in harness.out(lines)


def test_cpu_shares(harness: Harness) -> None:
    if harness.kind == "process":
        # No cgroups: shares become a nice value (512 = half the weight = 3 steps nicer),
        # added to the niceness the container inherits (`nice make test` starts at 10).
        _, lines = harness.run(["sh", "-c", "cut -d' ' -f19 /proc/self/stat"], cpu_shares=512)
        assert harness.out(lines) == [str(min(19, os.nice(0) + 3))]
        return
    show = "cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight"
    _, lines = harness.run(["sh", "-c", show], cpu_shares=512)
    assert harness.out(lines) in (["512"], ["20"])      # cgroup v1 shares, or v2 weight


def test_ulimits(harness: Harness) -> None:
    _, lines = harness.run(["sh", "-c", "ulimit -n; ulimit -Hn"],
                           ulimits=[Ulimit("nofile", 256, 512)])
    assert harness.out(lines) == ["256", "512"]


def test_stop_sends_sigterm_first(harness: Harness) -> None:
    cid = harness.start(["sh", "-c", 'trap "echo got-term; exit 0" TERM; echo ready; '
                                     'while true; do sleep 0.1; done'])
    _wait_output(harness, cid, "ready")
    began = time.monotonic()
    harness.driver.stop(cid, timeout=10)
    st = harness.driver.state(cid)
    assert time.monotonic() - began < 5
    assert (st.status, st.exit_code) == ("exited", 0)
    assert "got-term" in [line.text for line in harness.driver.logs(cid)]


def test_stop_kills_after_timeout(harness: Harness) -> None:
    cid = harness.start(["sh", "-c", 'trap "" TERM; echo ready; while true; do sleep 0.1; done'])
    _wait_output(harness, cid, "ready")
    began = time.monotonic()
    harness.driver.stop(cid, timeout=1)
    took = time.monotonic() - began
    st = harness.driver.state(cid)
    assert (st.status, st.exit_code) == ("exited", 137)
    assert 0.9 <= took < 8


def test_exec_for_health_checks(harness: Harness) -> None:
    cid = harness.start(["sleep", "30"])
    harness.wait_running(cid)
    result = harness.driver.exec(cid, ["sh", "-c", "echo hi; exit 4"], timeout=10)
    assert (result.exit_code, result.output.strip()) == (4, "hi")
    assert harness.driver.exec(cid, ["true"], timeout=10).exit_code == 0
    began = time.monotonic()
    assert harness.driver.exec(cid, ["sleep", "20"], timeout=0.5).exit_code is None
    assert time.monotonic() - began < 5
    harness.driver.stop(cid, timeout=0)
    with pytest.raises(DriverError):
        harness.driver.exec(cid, ["true"], timeout=5)


def test_logs_follow_and_cursor(harness: Harness) -> None:
    cid = harness.start(["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done; "
                                     "echo done >&2"])
    followed: list = []
    reader = threading.Thread(target=lambda: followed.extend(
        harness.driver.logs(cid, follow=True)), daemon=True)
    reader.start()
    reader.join(20)
    assert not reader.is_alive(), "follow did not end when the container exited"
    assert [(x.stream, x.text) for x in followed] == [
        ("stdout", "line1"), ("stdout", "line2"), ("stdout", "line3"), ("stderr", "done")]
    rest = list(harness.driver.logs(cid, after=followed[1].cursor))
    assert [x.text for x in rest] == ["line3", "done"]
    assert list(harness.driver.logs(cid, after=followed[-1].cursor)) == []


def test_list_by_label_after_restart(harness: Harness) -> None:
    task_a, task_b = f"arn:task/{RUN_ID}-a", f"arn:task/{RUN_ID}-b"
    one = harness.start(["sh", "-c", "sleep 0.5; exit 7"], labels={"berth.task-arn": task_a})
    two = harness.create(harness.spec(["true"], labels={"berth.task-arn": task_a}))
    harness.create(harness.spec(["true"], labels={"berth.task-arn": task_b}))
    harness.driver.close()
    again = harness.reopen()      # as a restarted agent
    try:
        found = {st.id: st for st in again.list({"berth.task-arn": task_a, RUN_LABEL: RUN_ID})}
        assert set(found) == {one, two}
        assert found[one].labels["berth.task-arn"] == task_a
        assert found[two].status == "created"
        st = again.wait(one, 20)
        assert (st.status, st.exit_code) == ("exited", 7)
    finally:
        harness.driver = again


def test_missing_image(harness: Harness) -> None:
    if harness.kind == "process":
        pytest.skip("the process driver ignores images")
    with pytest.raises(ImageNotFound) as err:
        harness.create(harness.spec(["true"], image="berth-test/no-such-image:1"))
    assert err.value.stopped_reason.startswith("CannotPullContainerError: ")


def test_command_that_cannot_start(harness: Harness) -> None:
    for spec in (harness.spec(["/no/such/binary"]), harness.spec(["true"], user="nosuchuser")):
        with pytest.raises(CannotStart) as err:
            cid = harness.create(spec)
            harness.driver.start(cid)
        assert err.value.stopped_reason.startswith("CannotStartContainerError: ")
        message = str(err.value)
        assert "/no/such/binary" in message or "nosuchuser" in message


def test_published_port(harness: Harness) -> None:
    port = free_port()
    if harness.kind == "docker":
        mapping, network, listen = PortMapping(8080, port, host_ip="127.0.0.1"), "bridge", 8080
    else:
        mapping, network, listen = PortMapping(port, port), "host", port
    cid = harness.start(["busybox", "httpd", "-f", "-p", str(listen), "-h", "/etc"],
                        ports=[mapping], network=network)
    harness.wait_running(cid)
    deadline, body = time.monotonic() + 10, ""
    while time.monotonic() < deadline and not body:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/passwd", timeout=2) as r:
                body = r.read().decode()
        except OSError:
            time.sleep(0.1)
    assert body.startswith("root:")


def test_network_none_has_only_loopback(harness: Harness) -> None:
    if harness.kind == "process":
        with pytest.raises(CannotStart, match="network mode 'none'"):
            harness.create(harness.spec(["true"], network="none"))
        return
    _, lines = harness.run(["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1"],
                           network="none")
    assert [x.strip() for x in harness.out(lines)] == ["lo"]


def test_volumes(harness: Harness, tmp_path) -> None:       # type: ignore[no-untyped-def]
    (tmp_path / "in.txt").write_text("from the host")
    mounts = [Mount("/data", str(tmp_path), read_only=True), Mount("/scratch")]
    if harness.kind == "process":
        with pytest.raises(CannotStart, match="volumes"):
            harness.create(harness.spec(["true"], mounts=mounts))
        return
    st, lines = harness.run(["sh", "-c", "cat /data/in.txt; echo; touch /data/x || echo ro; "
                                         "echo w > /scratch/f && cat /scratch/f"], mounts=mounts)
    assert harness.out(lines) == ["from the host", "ro", "w"]
    assert not (tmp_path / "x").exists()


def test_read_only_root(harness: Harness) -> None:
    if harness.kind == "process":
        with pytest.raises(CannotStart, match="read-only"):
            harness.create(harness.spec(["true"], read_only_root=True))
        return
    _, lines = harness.run(["sh", "-c", "touch /etc/x 2>/dev/null || echo ro"],
                           read_only_root=True)
    assert harness.out(lines) == ["ro"]


def test_remove_is_idempotent(harness: Harness) -> None:
    cid = harness.start(["sleep", "30"])
    harness.wait_running(cid)
    harness.driver.remove(cid)
    harness.driver.remove(cid)
    with pytest.raises(ContainerNotFound):
        harness.driver.state(cid)
    assert cid not in {st.id for st in harness.driver.list({RUN_LABEL: RUN_ID})}


def _wait_output(harness: Harness, cid: str, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in [line.text for line in harness.driver.logs(cid)]:
        assert time.monotonic() < deadline, f"never printed {text!r}"
        time.sleep(0.05)
