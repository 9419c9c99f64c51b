"""Sandboxes are reclaimed, under a real `berth up` through boto3: deleting a function, or
changing its code or configuration, ends its sandboxes' processes soon after, without
another invocation; idle sandboxes go after the idle TTL. Each sandbox's processes are read
from its own cgroup on the host, which the function reports from inside."""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from berth_process import BerthProcess
from lambda_packages import create_python, python_zip, zip_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandbox cgroups need root")

WHERE = "def handler(event, context):\n    return open('/proc/self/cgroup').read()\n"
WHERE_JS = ("exports.handler = async () => "
            "require('fs').readFileSync('/proc/self/cgroup', 'utf8');\n")


def sandbox_procs(cgroup_text: str) -> Path:
    """The host's cgroup.procs of the sandbox a function reported from inside."""
    for line in cgroup_text.splitlines():
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            return Path("/sys/fs/cgroup/pids") / path.lstrip("/") / "cgroup.procs"
    raise AssertionError(f"no pids cgroup in {cgroup_text!r}")


def alive(procs: Path) -> list[str]:
    try:
        return procs.read_text().split()
    except OSError:
        return []       # the cgroup itself is gone


def where(lam: Any, name: str, **kw: Any) -> Path:
    resp = lam.invoke(FunctionName=name, Payload=b"{}", **kw)
    assert "FunctionError" not in resp
    procs = sandbox_procs(json.loads(resp["Payload"].read()))
    assert alive(procs), f"{name}'s sandbox has processes while warm"
    return procs


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def lam(berth_up: BerthProcess) -> Any:
    return berth_up.client("lambda")


def test_deleted_functions_leave_no_process(lam: Any) -> None:
    names = [f"reclaim-{uuid.uuid4().hex[:8]}-{i}" for i in range(60)]
    sandboxes = []
    for i, name in enumerate(names):
        if i % 6 == 5:
            lam.create_function(FunctionName=name, Runtime="nodejs20.x", Handler="index.handler",
                                Role="arn:aws:iam::000000000000:role/r",
                                Code={"ZipFile": zip_of({"index.js": WHERE_JS})})
        else:
            create_python(lam, name, Code={"ZipFile": python_zip(WHERE)})
        sandboxes.append(where(lam, name))
    assert len(set(sandboxes)) == len(names)
    for name in names:
        lam.delete_function(FunctionName=name)
    wait_for(lambda: not any(alive(p) for p in sandboxes), 10,
             "the deleted functions' sandbox processes are gone")


def test_a_change_of_code_or_configuration_ends_the_old_sandboxes(lam: Any) -> None:
    name = f"change-{uuid.uuid4().hex[:8]}"
    create_python(lam, name, Code={"ZipFile": python_zip(WHERE)}, Publish=True)
    version_one = where(lam, name, Qualifier="1")
    first = where(lam, name)

    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"STAGE": "two"}})
    wait_for(lambda: not alive(first), 10, "the sandbox of the old configuration is gone")
    second = where(lam, name)
    assert second != first

    lam.update_function_code(FunctionName=name, ZipFile=python_zip(WHERE + "# v2\n"))
    wait_for(lambda: not alive(second), 10, "the sandbox of the old code is gone")
    # A published version is not changed by either: its sandbox stays warm.
    assert alive(version_one) and where(lam, name, Qualifier="1") == version_one

    lam.delete_function(FunctionName=name, Qualifier="1")
    wait_for(lambda: not alive(version_one), 10, "the deleted version's sandbox is gone")
    assert where(lam, name) != second


@pytest.fixture
def short_ttl_berth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BerthProcess]:
    monkeypatch.setenv("BERTH_LAMBDA_IDLE_TTL", "2")
    proc = BerthProcess(tmp_path / "data", command="up").start()
    yield proc
    proc.stop()


def test_idle_sandboxes_are_evicted_after_the_idle_ttl(short_ttl_berth: BerthProcess) -> None:
    lam = short_ttl_berth.client("lambda")
    idle, busy = f"idle-{uuid.uuid4().hex[:8]}", f"busy-{uuid.uuid4().hex[:8]}"
    for name in (idle, busy):
        create_python(lam, name, Code={"ZipFile": python_zip(WHERE)})
    idle_box, busy_box = where(lam, idle), where(lam, busy)
    started = time.monotonic()
    # One kept in use for twice the TTL stays the same sandbox; the other goes.
    while time.monotonic() - started < 4:
        assert where(lam, busy) == busy_box
        time.sleep(0.5)
    wait_for(lambda: not alive(idle_box), 10, "the idle sandbox is evicted")
    wait_for(lambda: not alive(busy_box), 10, "the no-longer-used sandbox is evicted")
