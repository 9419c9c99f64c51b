"""Delivers task state changes (SubmitTaskStateChange) to the control plane, in the background,
until each is acknowledged.

A report carries the whole task (status and every container), so a newer report of a task
replaces one not yet sent: nothing is lost by coalescing, and a control plane that was away
for a while gets the latest truth once it is back.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from .client import ApiError, ControlPlane, Unreachable

log = logging.getLogger(__name__)

BACKOFF_MIN, BACKOFF_MAX = 0.2, 3.0


@dataclass
class TaskReport:
    task_arn: str
    status: str
    containers: list[dict[str, Any]]
    reason: str | None = None
    times: dict[str, float] = field(default_factory=dict)   # pullStartedAt, ...

    def body(self, cluster: str) -> dict[str, Any]:
        out: dict[str, Any] = {"cluster": cluster, "task": self.task_arn, "status": self.status,
                               "containers": self.containers, **self.times}
        if self.reason:
            out["reason"] = self.reason[:1024]
        return out


class Reporter:
    def __init__(self, api: ControlPlane, cluster: str) -> None:
        self.api = api
        self.cluster = cluster
        self._pending: dict[str, TaskReport] = {}
        self._wake = asyncio.Event()
        self._idle: dict[str, asyncio.Event] = {}
        self._health: dict[str, dict[str, str]] = {}
        self._health_supported = True

    def submit_health(self, task_arn: str, health: dict[str, str]) -> None:
        """The health of the task's containers with health checks (name -> status)."""
        if self._health_supported:
            self._health[task_arn] = health
            self._wake.set()

    def submit(self, report: TaskReport) -> None:
        self._pending[report.task_arn] = report
        self._idle.setdefault(report.task_arn, asyncio.Event()).clear()
        self._wake.set()

    def latest(self, task_arn: str) -> TaskReport | None:
        """The report of the task waiting to be sent, if any."""
        return self._pending.get(task_arn)

    async def delivered(self, task_arn: str) -> None:
        """Until nothing of the task waits to be sent."""
        event = self._idle.get(task_arn)
        if event is not None and task_arn in self._pending:
            await event.wait()

    async def run(self) -> None:
        backoff = BACKOFF_MIN
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending or self._health:
                if not self._pending:
                    backoff = await self._send_health(backoff)
                    continue
                arn = next(iter(self._pending))
                report = self._pending.pop(arn)
                try:
                    await self.api.ecs("SubmitTaskStateChange", report.body(self.cluster))
                except Unreachable as exc:
                    # Keep it, unless a newer report of the task came in meanwhile.
                    self._pending.setdefault(arn, report)
                    log.info("state change of %s not delivered (%s); retrying in %.1fs",
                             arn.rsplit("/", 1)[-1], exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                except ApiError as exc:
                    log.warning("control plane refused the state change of %s: %s", arn, exc)
                backoff = BACKOFF_MIN
                if arn not in self._pending:
                    self._idle.setdefault(arn, asyncio.Event()).set()

    async def _send_health(self, backoff: float) -> float:
        arn = next(iter(self._health))
        health = self._health.pop(arn)
        body = {"cluster": self.cluster, "task": arn, "containers": [
            {"containerName": name, "healthStatus": status} for name, status in health.items()]}
        try:
            await self.api.health(body)
        except Unreachable:
            self._health.setdefault(arn, health)
            await asyncio.sleep(backoff)
            return min(backoff * 2, BACKOFF_MAX)
        except ApiError as exc:
            if exc.status in (404, 405):
                log.warning("the control plane takes no container health reports (%s); "
                            "healthStatus stays UNKNOWN there", exc)
                self._health_supported = False
                self._health.clear()
            else:
                log.warning("control plane refused the health of %s: %s", arn, exc)
        return BACKOFF_MIN

    def forget(self, task_arn: str) -> None:
        self._idle.pop(task_arn, None)
        self._health.pop(task_arn, None)
