"""A kill -9 of `berth up` leaves no sandbox behind: its sandboxes (frozen ones included) die
with it, and a restart of the same data dir ends whatever a dead run left, without touching
the sandboxes of another berth on the same host."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import botocore.exceptions
import pytest
from berth_process import BerthProcess
from lambda_packages import ROLE, create_python, python_zip, zip_of
from sandbox_procs import Proc, alive, descendants

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandbox isolation needs root")

WHERE = ("import time\n"
         "def handler(event, context):\n"
         "    time.sleep(event.get('sleep', 0))\n"
         "    return open('/proc/self/cgroup').read()\n")
WHERE_JS = ("exports.handler = async () => "
            "require('fs').readFileSync('/proc/self/cgroup', 'utf8');\n")


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def warm_sandboxes(berth: BerthProcess, count: int) -> list[str]:
    """`count` functions invoked once each (their sandboxes now idle and frozen), one of them
    left busy in a long invocation; returns their names."""
    lam = berth.client("lambda")
    names = []
    for i in range(count):
        name = f"k9-{uuid.uuid4().hex[:8]}"
        if i % 5 == 4:
            lam.create_function(FunctionName=name, Runtime="nodejs20.x", Role=ROLE,
                                Handler="index.handler",
                                Code={"ZipFile": zip_of({"index.js": WHERE_JS})})
        else:
            create_python(lam, name, Code={"ZipFile": python_zip(WHERE)})
        assert "FunctionError" not in lam.invoke(FunctionName=name, Payload=b"{}")
        names.append(name)

    def busy() -> None:
        try:
            lam.invoke(FunctionName=names[0], Payload=json.dumps({"sleep": 60}).encode())
        except botocore.exceptions.BotoCoreError:
            pass        # the server is killed under it
    threading.Thread(target=busy, daemon=True).start()
    return names


def snapshot(berth: BerthProcess, at_least: int) -> set[Proc]:
    """The server's zygotes and sandboxes, once the busy invocation has its own."""
    assert berth.proc is not None
    pid = berth.proc.pid
    assert wait_for(lambda: len(descendants(pid)) >= at_least, 10), (
        f"only {len(descendants(pid))} sandbox processes")
    return descendants(pid)


def restart(berth: BerthProcess) -> BerthProcess:
    again = BerthProcess(berth.data_dir, command="up")
    again.port, again.endpoint, again.args = berth.port, berth.endpoint, berth.args
    return again.start()


@pytest.fixture
def neighbour(tmp_path: Path) -> Iterator[tuple[BerthProcess, str]]:
    """Another berth on this host, with a warm sandbox of its own."""
    other = BerthProcess(tmp_path / "neighbour", command="up").start()
    lam = other.client("lambda")
    create_python(lam, "theirs", Code={"ZipFile": python_zip(WHERE)})
    cgroup = json.loads(lam.invoke(FunctionName="theirs")["Payload"].read())
    yield other, cgroup
    other.stop()


def still_warm(other: BerthProcess, cgroup: str) -> bool:
    lam = other.client("lambda")
    return json.loads(lam.invoke(FunctionName="theirs")["Payload"].read()) == cgroup


def test_sandboxes_die_with_the_server_and_a_restart_finds_none(
        tmp_path: Path, neighbour: tuple[BerthProcess, str]) -> None:
    berth = BerthProcess(tmp_path / "data", command="up").start()
    names = warm_sandboxes(berth, 25)
    procs = snapshot(berth, 2 * len(names))
    berth.kill9()
    assert wait_for(lambda: not alive(procs), 5), (
        f"{len(alive(procs))} of {len(procs)} sandbox processes outlived the server by 5 s")
    again = restart(berth)
    try:
        lam = again.client("lambda")
        assert "FunctionError" not in lam.invoke(FunctionName=names[1], Payload=b"{}")
        assert still_warm(*neighbour)
    finally:
        again.stop()


def test_a_restart_ends_what_a_dead_run_left_even_without_its_zygotes(
        tmp_path: Path, neighbour: tuple[BerthProcess, str]) -> None:
    berth = BerthProcess(tmp_path / "data", command="up").start()
    warm_sandboxes(berth, 15)
    procs = snapshot(berth, 30)
    assert berth.proc is not None
    # The server and its zygotes at once (as a kill of the whole tree would): nothing is left
    # to thaw the frozen sandboxes, whose SIGKILL waits for a thaw.
    zygotes = {p for p in procs if _parent(p[0]) == berth.proc.pid}
    for pid, _ in zygotes:
        os.kill(pid, signal.SIGSTOP)
    berth.kill9()
    for pid, _ in zygotes:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    left = alive(procs)
    assert left, "frozen sandboxes outlive their zygote until someone thaws them"
    started = time.monotonic()
    again = restart(berth)
    try:
        assert wait_for(lambda: not alive(procs), max(0.0, 5 - (time.monotonic() - started))), (
            f"{len(alive(procs))} processes of the dead run alive 5 s after the restart")
        assert still_warm(*neighbour)
    finally:
        again.stop()


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1
