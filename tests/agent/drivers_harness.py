"""Fixtures that give a test one container driver of each kind, with the test images present.

tests/agent/conftest.py makes the fixtures available to the agent's tests. `harness` is
parametrized over the three drivers, so one test body runs against docker, runc and process;
a driver is skipped only where it cannot run at all (docker and runc need root).
"""
from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
from images import TEST_IMAGE, busybox_archive

from berth.agent.drivers.base import ContainerSpec, ContainerState, Driver, LogLine
from berth.agent.images import ImageStore

ECHO_IMAGE = "berth-test/echo:1"
RUN_LABEL = "berth.test-run"
RUN_ID = uuid.uuid4().hex[:8]
# The echo image's defaults, each visible in its one line of output.
ECHO_ENTRYPOINT = ["sh", "-c", 'echo "args:$* foo:$FOO pwd:$(pwd) uid:$(id -u)"', "ep"]
ECHO_CONFIG = {"Entrypoint": ECHO_ENTRYPOINT, "Cmd": ["c1", "c2"], "WorkingDir": "/srv",
               "User": "nobody", "Env": ["PATH=/bin:/usr/bin", "FOO=img"]}


@pytest.fixture(scope="session")
def image_archives(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("images")
    return [busybox_archive(out / "busybox.tar"),
            busybox_archive(out / "echo.tar", name=ECHO_IMAGE, **ECHO_CONFIG)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"the {what} driver needs root")


@pytest.fixture(scope="session")
def docker_images(docker_host: str, image_archives: list[Path]) -> str:
    """The private engine with the test images loaded; its URL."""
    import docker
    client = docker.DockerClient(base_url=docker_host)
    for archive in image_archives:
        client.images.load(archive.read_bytes())
    client.close()
    return docker_host


@pytest.fixture(scope="session")
def runc_data(tmp_path_factory: pytest.TempPathFactory, image_archives: list[Path]) -> Path:
    """A data dir whose image store holds the test images."""
    _need_root("runc")
    if shutil.which("runc") is None:
        pytest.fail("runc not found; `make install` installs it", pytrace=False)
    data = tmp_path_factory.mktemp("runc-data")
    store = ImageStore(data)
    for archive in image_archives:
        store.import_archive(archive)
    return data


class Harness:
    """One driver plus bookkeeping: every container a test makes is removed afterwards."""

    def __init__(self, kind: str, open_driver: Callable[[], Driver]) -> None:
        self.kind = kind
        self._open = open_driver
        self.driver: Driver = open_driver()
        self.created: list[str] = []
        # Per driver: the network mode every driver here can run a plain container in.
        self.network = {"docker": "bridge", "runc": "none", "process": "host"}[kind]

    def reopen(self) -> Driver:
        """A second driver instance on the same state, as after an agent restart."""
        return self._open()

    def spec(self, command: list[str] | None, **kw: object) -> ContainerSpec:
        labels = {RUN_LABEL: RUN_ID, **kw.pop("labels", {})}        # type: ignore[dict-item]
        kw.setdefault("image", TEST_IMAGE if self.kind != "process" else "host")
        kw.setdefault("network", self.network)
        return ContainerSpec(name=f"t-{uuid.uuid4().hex[:6]}", command=command, labels=labels,
                             **kw)                                  # type: ignore[arg-type]

    def create(self, spec: ContainerSpec) -> str:
        cid = self.driver.create(spec)
        self.created.append(cid)
        return cid

    def start(self, command: list[str] | None, **kw: object) -> str:
        cid = self.create(self.spec(command, **kw))
        self.driver.start(cid)
        return cid

    def run(self, command: list[str] | None, timeout: float = 30,
            **kw: object) -> tuple[ContainerState, list[LogLine]]:
        """Create, start and wait for a container; its final state and output."""
        cid = self.start(command, **kw)
        st = self.driver.wait(cid, timeout)
        assert st.status == "exited", f"still {st.status} after {timeout}s"
        return st, list(self.driver.logs(cid))

    def out(self, lines: list[LogLine], stream: str = "stdout") -> list[str]:
        return [line.text for line in lines if line.stream == stream]

    def wait_running(self, cid: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.driver.state(cid).status != "running":
            assert time.monotonic() < deadline, "container never ran"
            time.sleep(0.02)

    def cleanup(self) -> None:
        for cid in self.created:
            self.driver.remove(cid)
        self.driver.close()


@pytest.fixture(params=["docker", "runc", "process"])
def harness(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    kind = request.param
    if kind == "docker":
        _need_root("docker")
        from berth.agent.drivers.docker import DockerDriver
        url = request.getfixturevalue("docker_images")
        h = Harness(kind, lambda: DockerDriver(url, pull=False))
    elif kind == "runc":
        from berth.agent.drivers.runc import RuncDriver
        data = request.getfixturevalue("runc_data")
        h = Harness(kind, lambda: RuncDriver(data))
    else:
        from berth.agent.drivers.process import ProcessDriver
        data = tmp_path_factory.mktemp("process-data")
        h = Harness(kind, lambda: ProcessDriver(data))
    yield h
    h.cleanup()
