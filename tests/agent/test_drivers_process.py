"""What only the process driver does: its stand-ins for isolation, and saying it has none."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from berth.agent.drivers.base import ContainerSpec
from berth.agent.drivers.process import ProcessDriver, nice_for_shares
from berth.agent.drivers.shim import session_members


def test_nice_for_shares() -> None:
    assert [nice_for_shares(s) for s in (None, 4096, 1024, 512, 256, 128, 2)] == \
        [0, 0, 0, 3, 6, 9, 19]


def test_warns_that_nothing_is_isolated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        ProcessDriver(tmp_path)
    assert "NO isolation" in caplog.text


def test_environment_is_clean_and_background_children_end_with_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_AGENT_SECRET", "leak")
    driver = ProcessDriver(tmp_path)
    cid = driver.create(ContainerSpec(name="t", image="host", network="host", command=[
        "sh", "-c", "env; sleep 60 & echo child=$!"]))
    driver.start(cid)
    st = driver.wait(cid, 20)
    out = [line.text for line in driver.logs(cid)]
    assert st.exit_code == 0
    assert not any("BERTH_AGENT_SECRET" in line for line in out)
    assert any(line.startswith("PATH=") for line in out)
    child = int(next(line for line in out if line.startswith("child="))[6:])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.02)
    assert not _alive(child), "a background child outlived its container"
    pid = json.loads((tmp_path / "containers" / cid / "run.json").read_text())["pid"]
    # A member that ended may linger as a zombie until init reaps it: only the living count.
    assert [member for member, _ in session_members(pid) if _alive(member)] == []
    driver.remove(cid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False

