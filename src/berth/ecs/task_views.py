"""A task row (or a freshly inserted row dict) as the ECS `Task` shape."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .tags import tag_list

_TIMES = (("created_at", "createdAt"), ("started_at", "startedAt"),
          ("stopping_at", "stoppingAt"), ("stopped_at", "stoppedAt"),
          ("pull_started_at", "pullStartedAt"), ("pull_stopped_at", "pullStoppedAt"),
          ("execution_stopped_at", "executionStoppedAt"))


def cluster_arn_of(task_arn: str, cluster: str) -> str:
    return task_arn[:task_arn.index(":task/") + 1] + "cluster/" + cluster


def task_health(containers: list[dict[str, Any]]) -> str:
    """UNHEALTHY if a container with a health check is, HEALTHY if all of them are."""
    found = [c["healthStatus"] for c in containers if c.get("healthStatus")]
    if "UNHEALTHY" in found:
        return "UNHEALTHY"
    return "HEALTHY" if found and all(s == "HEALTHY" for s in found) else "UNKNOWN"


def task_view(t: Mapping[str, Any], with_tags: bool = True) -> dict[str, Any]:
    overrides = t["overrides"] or {}
    view: dict[str, Any] = {
        "taskArn": t["arn"], "clusterArn": cluster_arn_of(t["arn"], t["cluster"]),
        "taskDefinitionArn": t["task_definition_arn"],
        "containerInstanceArn": t["instance_arn"],
        "overrides": {"containerOverrides": [], "inferenceAcceleratorOverrides": [],
                      **overrides},
        "lastStatus": t["last_status"], "desiredStatus": t["desired_status"],
        "cpu": str(t["cpu"]), "memory": str(t["memory"]), "containers": t["containers"],
        "version": t["version"], "group": t["group"], "launchType": t["launch_type"],
        "attachments": [], "attributes": [{"name": "ecs.cpu-architecture",
                                           "value": "x86_64"}],
        "enableExecuteCommand": False, "healthStatus": task_health(t["containers"]),
    }
    for column, member in _TIMES:
        if t.get(column) is not None:
            view[member] = t[column]
    if t["last_status"] in ("RUNNING",) or t.get("started_at") is not None:
        view["connectivity"] = "CONNECTED"
        view["connectivityAt"] = t.get("started_at") or t["created_at"]
    if t.get("started_by"):
        view["startedBy"] = t["started_by"]
    if t.get("stopped_reason"):
        view["stoppedReason"] = t["stopped_reason"]
    if t.get("stop_code"):
        view["stopCode"] = t["stop_code"]
    if with_tags:
        view["tags"] = tag_list(t["tags"] or {})
    return view


def row_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)
