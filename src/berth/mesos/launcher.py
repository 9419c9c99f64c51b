"""Launching one planned task: the task definition it runs, then StartTask on the offered
instance, tagged so that the task can be found again by its Mesos id (after a failover too).

On-the-fly definitions are registered once per distinct content and process, in the family
`mesos-<framework name>`; a named definition is read once, to check that the host ports it
claims are ports the TaskInfo took from its offer."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .task_book import TAG_TASK_ID
from .taskinfo import InvalidTask, Launch

TAG_FRAMEWORK_ID = "mesos.framework-id"


@dataclass(frozen=True)
class Started:
    task: dict[str, Any] | None         # the ECS Task, when StartTask placed it
    failure: str | None = None          # else ECS's reason (RESOURCE:MEMORY, ...)


def _host_ports(body: dict[str, Any]) -> set[int]:
    return {pm["hostPort"] for c in body.get("containerDefinitions") or []
            for pm in c.get("portMappings") or [] if pm.get("hostPort")}


class Launcher:
    def __init__(self, ecs: Any, cluster: str, family: str, framework_id: str,
                 group: str) -> None:
        self.ecs, self.cluster, self.family = ecs, cluster, family
        self.framework_id, self.group = framework_id, group
        self._lock = threading.Lock()
        self._registered: dict[str, str] = {}           # content digest -> ARN
        self._named: dict[str, tuple[str, set[int]]] = {}  # name -> (ARN, host ports)

    def task_definition(self, launch: Launch) -> str:
        """The ARN `launch` runs; InvalidTask if a named definition does not fit it."""
        if launch.named is not None:
            return self._named_definition(launch)
        assert launch.body is not None
        digest = launch.digest
        with self._lock:
            known = self._registered.get(digest)
        if known:
            return known
        out = self.ecs.register_task_definition(
            family=self.family, **launch.body,
            tags=[{"key": TAG_FRAMEWORK_ID, "value": self.framework_id}])
        arn: str = out["taskDefinition"]["taskDefinitionArn"]
        with self._lock:
            self._registered[digest] = arn
        return arn

    def _named_definition(self, launch: Launch) -> str:
        assert launch.named is not None
        with self._lock:
            known = self._named.get(launch.named)
        if known is None:
            body = self.ecs.describe_task_definition(
                taskDefinition=launch.named)["taskDefinition"]
            known = (body["taskDefinitionArn"], _host_ports(body))
            with self._lock:
                self._named[launch.named] = known
        arn, ports = known
        if not ports <= launch.needs.ports:
            missing = ", ".join(map(str, sorted(ports - launch.needs.ports)))
            raise InvalidTask(f"task definition {launch.named} claims host ports {missing}, "
                              "which are not in the task's ports resource")
        return arn

    def start(self, launch: Launch, task_definition: str) -> Started:
        """StartTask on the offered instance (raises botocore's errors)."""
        kw: dict[str, Any] = {}
        if launch.overrides:
            kw["overrides"] = launch.overrides
        out = self.ecs.start_task(
            cluster=self.cluster, taskDefinition=task_definition,
            containerInstances=[launch.agent_id], startedBy=self.framework_id,
            group=self.group,
            tags=[{"key": TAG_TASK_ID, "value": launch.task_id},
                  {"key": TAG_FRAMEWORK_ID, "value": self.framework_id}], **kw)
        if out["tasks"]:
            return Started(out["tasks"][0])
        failures = out.get("failures") or [{"reason": "UNKNOWN"}]
        return Started(None, failures[0].get("reason") or "UNKNOWN")

    def stop(self, task_arn: str, reason: str) -> None:
        self.ecs.stop_task(cluster=self.cluster, task=task_arn, reason=reason[:255])

    def live_tasks(self) -> list[dict[str, Any]]:
        """This framework's tasks that are not yet STOPPED, with their tags (for a failover)."""
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            token: str | None = None
            for _ in range(1000):
                page = self.ecs.list_tasks(cluster=self.cluster, startedBy=self.framework_id,
                                           desiredStatus=desired, maxResults=100,
                                           **({"nextToken": token} if token else {}))
                arns += page["taskArns"]
                token = page.get("nextToken")
                if not token:
                    break
        out: list[dict[str, Any]] = []
        for i in range(0, len(arns), 100):
            out += self.ecs.describe_tasks(cluster=self.cluster, tasks=arns[i:i + 100],
                                           include=["TAGS"])["tasks"]
        return [t for t in out if t["lastStatus"] != "STOPPED"]
