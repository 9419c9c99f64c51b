"""Starts a real `berth agent` process for tests, joined to a BerthProcess, and waits for what
its tasks do through the ECS API."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from berth_process import ACCESS_KEY, BERTH, SECRET_KEY, BerthProcess, stop_process
from images import busybox_archive

from berth.agent.drivers.runc import RuncDriver
from berth.agent.images import ImageStore
from berth.agent.task_plan import LABEL_INSTANCE


class AgentProcess:
    def __init__(self, berth: BerthProcess, data_dir: Path, cluster: str, driver: str,
                 env: dict[str, str] | None = None) -> None:
        self.berth, self.data_dir, self.cluster, self.driver = berth, data_dir, cluster, driver
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-agent.log"
        self.instance_arn = ""

    def start(self, timeout: float = 20) -> AgentProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [*BERTH, "agent", "--endpoint", self.berth.endpoint, "--cluster", self.cluster,
                "--driver", self.driver, "--data-dir", str(self.data_dir),
                "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)
        state = self.data_dir / "agent" / "state.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berth agent exited early:\n{self.log()}")
            try:
                arn = json.loads(state.read_text()).get("instance_arn")
            except (OSError, ValueError):
                arn = None
            if arn:
                self.instance_arn = arn
                return self
            time.sleep(0.05)
        raise RuntimeError(f"berth agent did not register in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self, timeout: float = 15) -> int:
        assert self.proc is not None
        return stop_process(self.proc, timeout=timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def http_get(url: str, timeout: float = 10) -> str:
    """The body at `url`, retried until a task's server answers (or `timeout` passes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def remove_task_containers(data_dir: Path, task_arns: list[str] | None = None) -> None:
    """Remove what the tasks (None: every task of the data dir's agent) left on the driver
    `berth up` chose for `data_dir` (its agent keeps a task's containers a while after they
    stop, and a test's data dir goes)."""
    from berth.agent.drivers.detect import detect_driver
    if task_arns is None:
        state = json.loads((data_dir / "agent" / "state.json").read_text())
        selections = [{LABEL_INSTANCE: state["instance_arn"]}]
    else:
        selections = [{"berth.task-arn": arn} for arn in task_arns]
    driver = detect_driver(data_dir)
    try:
        for labels in selections:
            for st in driver.list(labels):
                driver.remove(st.id)
    finally:
        driver.close()


def describe(ecs: Any, cluster: str, arn: str) -> dict[str, Any]:
    return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]


def wait_task(ecs: Any, cluster: str, arn: str, predicate: Any, timeout: float = 20,
              agent: AgentProcess | None = None) -> dict[str, Any]:
    """Poll DescribeTasks until `predicate(task)`; fail with the task and the agent's log."""
    deadline = time.monotonic() + timeout
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = describe(ecs, cluster, arn)
        if predicate(task):
            return task
        time.sleep(0.1)
    raise AssertionError(f"task never got there in {timeout}s: {task}\n"
                         f"{agent.log() if agent else ''}")


def stopped(task: dict[str, Any]) -> bool:
    return task["lastStatus"] == "STOPPED"


def running(task: dict[str, Any]) -> bool:
    return task["lastStatus"] == "RUNNING"


def container(task: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in task["containers"] if c["name"] == name)


def run_task(ecs: Any, cluster: str, family: str,
             containers: list[dict[str, Any]] | None = None, **td: Any) -> str:
    """Register `containers` as `family` (unless None: its latest revision) and run it."""
    if containers is not None:
        ecs.register_task_definition(family=family, containerDefinitions=containers, **td)
    out = ecs.run_task(cluster=cluster, taskDefinition=family)
    assert not out["failures"], out["failures"]
    return out["tasks"][0]["taskArn"]


@contextmanager
def docker_agent(berth: BerthProcess, docker_host: str, tmp: Path, cluster: str,
                 env: dict[str, str] | None = None) -> Iterator[AgentProcess]:
    """An agent on the docker driver of the engine at `docker_host` (more of its environment
    in `env`), with the busybox test image loaded, joined to `cluster` (created here); its
    containers are removed afterwards."""
    import docker
    client = docker.DockerClient(base_url=docker_host)
    client.images.load(busybox_archive(tmp / "busybox.tar").read_bytes())
    berth.client("ecs").create_cluster(clusterName=cluster)
    proc = AgentProcess(berth, tmp / "data", cluster, "docker",
                        env={"DOCKER_HOST": docker_host, **(env or {})}).start()
    try:
        yield proc
    finally:
        proc.stop()
        for c in client.containers.list(all=True, filters={
                "label": f"{LABEL_INSTANCE}={proc.instance_arn}"}):
            c.remove(force=True)
        client.close()


@contextmanager
def runc_agent(berth: BerthProcess, data: Path, cluster: str) -> Iterator[AgentProcess]:
    """An agent on the runc driver, with the busybox test image imported, joined to `cluster`
    (created here); its containers are removed afterwards."""
    data.mkdir(parents=True, exist_ok=True)
    ImageStore(data).import_archive(busybox_archive(data.parent / "busybox.tar"))
    berth.client("ecs").create_cluster(clusterName=cluster)
    proc = AgentProcess(berth, data, cluster, "runc").start()
    try:
        yield proc
    finally:
        proc.stop()
        driver = RuncDriver(data)
        for st in driver.list({LABEL_INSTANCE: proc.instance_arn}):
            driver.remove(st.id)


def check_pid1_sleep_stops(ecs: Any, cluster: str, image: str, family: str,
                           agent: AgentProcess) -> None:
    """`sleep` as PID 1 ignores SIGTERM (the kernel drops signals PID 1 has no handler for),
    so StopTask waits out stopTimeout and kills it; with initProcessEnabled an init is PID 1,
    passes SIGTERM on, and the sleep ends at once."""
    for init, timeout in ((True, 30), (False, 2)):
        arn = run_task(ecs, cluster, f"{family}-{'init' if init else 'noinit'}", [{
            "name": "sleeper", "image": image, "memory": 16, "stopTimeout": timeout,
            "command": ["sleep", "300"], "linuxParameters": {"initProcessEnabled": init}}])
        wait_task(ecs, cluster, arn, running, agent=agent)
        began = time.monotonic()
        ecs.stop_task(cluster=cluster, task=arn)
        task = wait_task(ecs, cluster, arn, stopped, agent=agent)
        took = time.monotonic() - began
        assert task["stopCode"] == "UserInitiated"
        if init:
            assert took < 10, took                  # not the 30 s stopTimeout
            assert container(task, "sleeper")["exitCode"] == 143     # 128 + SIGTERM
        else:
            assert took >= 2, took                  # SIGTERM ignored: killed at stopTimeout
            assert container(task, "sleeper")["exitCode"] == 137
