"""What only the runc driver does: the `host` image, overlay root file systems, bundles on disk,
and containers that outlive the agent."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from images import TEST_IMAGE
from syscall_probe import SOURCE, assert_sealed, needs_x86_64

from berth.agent.drivers.base import CannotStart, ContainerSpec, LogLine
from berth.agent.drivers.runc import CGROUP_PARENT, RuncDriver
from berth.agent.images import ImageStore
from berth.agent.oci import oom_counter


class Runc:
    """A runc driver whose containers are removed after the test."""

    def __init__(self, data: Path) -> None:
        self.driver = RuncDriver(data)
        self.made: list[str] = []

    def run(self, command: list[str], **kw: object) -> tuple[str, list[LogLine]]:
        kw.setdefault("image", TEST_IMAGE)
        kw.setdefault("network", "none")
        cid = self.driver.create(ContainerSpec(name="t", command=command, **kw))  # type: ignore[arg-type]
        self.made.append(cid)
        self.driver.start(cid)
        st = self.driver.wait(cid, 30)
        assert st.status == "exited"
        return cid, list(self.driver.logs(cid))


@pytest.fixture
def runc(runc_data: Path) -> Iterator[Runc]:
    r = Runc(runc_data)
    yield r
    for cid in r.made:
        r.driver.remove(cid)


def test_host_image_runs_python_on_a_read_only_host_with_private_tmp(runc: Runc) -> None:
    script = ("import os; open('/tmp/berth-private', 'w').write('x'); print(os.listdir('/tmp'));"
              "\ntry:\n open('/usr/berth-nope', 'w')\nexcept OSError as e: print(e.strerror)")
    cid, lines = runc.run(["/usr/bin/python3", "-c", script], image="host", network="host")
    assert [x.text for x in lines if x.stream == "stdout"] == [
        "['berth-private']", "Read-only file system"]
    assert not Path("/tmp/berth-private").exists()


@needs_x86_64
def test_containers_get_the_seccomp_profile_and_no_new_privileges(runc: Runc) -> None:
    # As root with Docker's capabilities: the filter, not the missing CAP_SYS_ADMIN, refuses.
    _, lines = runc.run(["/usr/bin/python3", "-c", SOURCE], image="host", network="host")
    out = [x.text for x in lines if x.stream == "stdout"]
    assert len(out) == 1, [x.text for x in lines]
    assert_sealed(json.loads(out[0]))


def test_writes_stay_in_the_container_layer(runc: Runc, runc_data: Path) -> None:
    image = ImageStore(runc_data).get(TEST_IMAGE)
    cid, _ = runc.run(["sh", "-c", "echo changed > /etc/hostname; rm /bin/ls"])
    assert (image.rootfs / "etc/hostname").read_text() == "busybox\n"
    assert (image.rootfs / "bin/ls").is_symlink()
    cdir = runc_data / "containers" / cid
    assert json.loads((cdir / "config.json").read_text())["linux"]["cgroupsPath"] == \
        f"{CGROUP_PARENT}/{cid}"
    runc.driver.remove(cid)
    assert not cdir.exists()
    assert not any(cid in line for line in Path("/proc/self/mounts").read_text().splitlines())
    oom_file = oom_counter(f"{CGROUP_PARENT}/{cid}")
    assert oom_file is None or not oom_file.parent.exists()     # runc deleted its cgroup


def test_missing_working_dir_is_created(runc: Runc) -> None:
    _, lines = runc.run(["pwd"], working_dir="/srv/app")
    assert [x.text for x in lines] == ["/srv/app"]


def test_failed_create_leaves_nothing_behind(runc: Runc, runc_data: Path) -> None:
    before = set(os.listdir(runc_data / "containers"))
    with pytest.raises(CannotStart, match="no/such"):
        runc.driver.create(ContainerSpec(name="t", image=TEST_IMAGE, command=["/no/such"],
                                     network="none"))
    assert set(os.listdir(runc_data / "containers")) == before


def test_container_outlives_the_agent(runc: Runc, runc_data: Path) -> None:
    """The shim, not the agent, holds the container: kill an agent process mid-run and a new
    one still gets the output and the exit code."""
    script = f"""
import sys
sys.path[:0] = {[str(Path(__file__).parents[2] / "src")]!r}
from berth.agent.drivers.runc import RuncDriver
from berth.agent.drivers.base import ContainerSpec
d = RuncDriver({str(runc_data)!r})
cid = d.create(ContainerSpec(name="t", image={TEST_IMAGE!r}, network="none",
               command=["sh", "-c", "echo before; sleep 1; echo after; exit 9"]))
d.start(cid)
print(cid, flush=True)
import os, signal; os.kill(os.getpid(), signal.SIGKILL)
"""
    agent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=60)
    assert agent.returncode == -9, agent.stderr
    cid = agent.stdout.strip()
    runc.made.append(cid)
    st = runc.driver.wait(cid, 20)
    assert (st.status, st.exit_code) == ("exited", 9)
    assert [x.text for x in runc.driver.logs(cid)] == ["before", "after"]
