"""Reading a cluster's container instances through the public ECS API: every instance that is
not INACTIVE (ACTIVE and DRAINING), described 100 at a time."""
from __future__ import annotations

from typing import Any

from .offers import Instance, instance

PAGE = 100      # ListContainerInstances' and DescribeContainerInstances' limit
MAX_PAGES = 1000


def read_instances(ecs: Any, cluster: str, port_range: tuple[int, int]) -> dict[str, Instance]:
    """The cluster's live instances by ARN. Raises botocore's errors."""
    arns: list[str] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        page = ecs.list_container_instances(cluster=cluster, maxResults=PAGE,
                                            **({"nextToken": token} if token else {}))
        arns += page["containerInstanceArns"]
        token = page.get("nextToken")
        if not token:
            break
    out: dict[str, Instance] = {}
    for i in range(0, len(arns), PAGE):
        described = ecs.describe_container_instances(cluster=cluster,
                                                     containerInstances=arns[i:i + PAGE])
        for desc in described["containerInstances"]:
            if desc.get("status") in ("ACTIVE", "DRAINING"):
                inst = instance(desc, port_range)
                out[inst.arn] = inst
    return out
