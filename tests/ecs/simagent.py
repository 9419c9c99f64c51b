"""A simulated ECS agent for tests: joins a cluster through RegisterContainerInstance, learns its
work through the public API, and reports task states with SubmitTaskStateChange on command.
No containers run; the point is to drive the control plane the way a real agent does."""
from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

RESERVED_PORTS = ("22",)


def resources(cpu: int, memory: int, ports: tuple[str, ...] = RESERVED_PORTS
              ) -> list[dict[str, Any]]:
    return [{"name": "CPU", "type": "INTEGER", "integerValue": cpu},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": list(ports)},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []}]


def identity_document(zone: str = "us-east-1a", instance_type: str = "t3.small") -> str:
    import json
    return json.dumps({"instanceId": "i-" + uuid.uuid4().hex[:17], "region": "us-east-1",
                       "availabilityZone": zone, "instanceType": instance_type,
                       "imageId": "ami-12345678"})


class SimAgent:
    def __init__(self, ecs: Any, cluster: str, cpu: int = 1024, memory: int = 2048,
                 zone: str = "us-east-1a", attributes: dict[str, str] | None = None) -> None:
        self.ecs, self.cluster = ecs, cluster
        resp = ecs.register_container_instance(
            cluster=cluster, totalResources=resources(cpu, memory),
            instanceIdentityDocument=identity_document(zone),
            versionInfo={"agentVersion": "1.80.0", "agentHash": "sim", "dockerVersion": "none"},
            attributes=[{"name": k, "value": v} for k, v in (attributes or {}).items()])
        self.arn: str = resp["containerInstance"]["containerInstanceArn"]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- on command ---------------------------------------------------------------------------

    def heartbeat(self) -> None:
        self.ecs.discover_poll_endpoint(cluster=self.cluster, containerInstance=self.arn)

    def my_tasks(self) -> list[dict[str, Any]]:
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            arns += self.ecs.list_tasks(cluster=self.cluster, containerInstance=self.arn,
                                        desiredStatus=desired)["taskArns"]
        if not arns:
            return []
        out = []
        for i in range(0, len(arns), 100):
            out += self.ecs.describe_tasks(cluster=self.cluster, tasks=arns[i:i + 100])["tasks"]
        return [t for t in out if t["lastStatus"] != "STOPPED"]

    def report(self, task: dict[str, Any], status: str, exit_code: int | None = None,
               reason: str | None = None) -> None:
        containers = []
        for c in task["containers"]:
            change: dict[str, Any] = {"containerName": c["name"], "status": status,
                                      "runtimeId": "sim-" + c["name"]}
            if exit_code is not None:
                change["exitCode"] = exit_code
            containers.append(change)
        kw: dict[str, Any] = {"cluster": self.cluster, "task": task["taskArn"],
                              "status": status, "containers": containers}
        if reason:
            kw["reason"] = reason
        self.ecs.submit_task_state_change(**kw)

    def converge(self) -> int:
        """Do what the control plane asks: start what should run, stop what should stop.
        Returns how many reports were sent."""
        n = 0
        for task in self.my_tasks():
            if task["desiredStatus"] == "STOPPED":
                self.report(task, "STOPPED", exit_code=0)
                n += 1
            elif task["lastStatus"] != "RUNNING":
                self.report(task, "RUNNING")
                n += 1
        return n

    # -- in the background -------------------------------------------------------------------

    def start(self, every: float = 0.2, converge: bool = True) -> SimAgent:
        def loop() -> None:
            deadline = time.monotonic() + 120   # bounded even if a test forgets to stop it
            while not self._stop.is_set() and time.monotonic() < deadline:
                # The server may be going away at the end of a test.
                with contextlib.suppress(BotoCoreError, ClientError):
                    self.heartbeat()
                    if converge:
                        self.converge()
                self._stop.wait(every)
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def wait_for(predicate: Any, timeout: float = 10.0, every: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met in {timeout}s (last value: {last!r})")
