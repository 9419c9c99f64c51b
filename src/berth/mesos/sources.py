"""Where task states come from. The driver asks its status source for the ECS tasks it tracks;
the source here reads them with DescribeTasks. A source fed by EventBridge's "ECS Task State
Change" events can take its place once berth has EventBridge: it answers the same question
from the events it has seen."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

PAGE = 100      # DescribeTasks' limit


class StatusSource(Protocol):
    def tasks(self, arns: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """The ECS Task (DescribeTasks' shape) of each ARN; None where ECS knows it no more."""
        ...


class DescribeTasksSource:
    def __init__(self, ecs: Any, cluster: str) -> None:
        self.ecs, self.cluster = ecs, cluster

    def tasks(self, arns: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        out: dict[str, dict[str, Any] | None] = {}
        arns = list(arns)
        for i in range(0, len(arns), PAGE):
            page = self.ecs.describe_tasks(cluster=self.cluster, tasks=arns[i:i + PAGE])
            for t in page["tasks"]:
                out[t["taskArn"]] = t
            for f in page.get("failures") or []:
                out.setdefault(f["arn"], None)
        for arn in arns:
            out.setdefault(arn, None)
        return out
