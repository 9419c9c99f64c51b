"""The `awslogs` log driver: ships a container's stdout and stderr to berth's CloudWatch Logs
with PutLogEvents, as stream `<awslogs-stream-prefix>/<container name>/<task id>`.

The container's own log (kept by its driver) is the buffer: the shipper reads lines behind a
cursor, sends them in order, and only then advances and persists the cursor. A control plane
that is away delays lines, never loses them, and a restarted agent resumes where it stopped.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .client import ApiError, ControlPlane, Unreachable
from .drivers.base import CannotStart, ContainerNotFound, Driver, LogLine

log = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 900_000           # under PutLogEvents' 1 MiB, with its 26 bytes per event
MAX_EVENT_BYTES = 256 * 1024 - 26
RETRY_MIN, RETRY_MAX = 0.5, 2.0


@dataclass(frozen=True)
class AwsLogsTarget:
    group: str
    stream: str
    region: str | None
    create_group: bool


def target(log_configuration: dict[str, Any] | None, container: str, task_id: str,
           cid: str) -> AwsLogsTarget | None:
    """Where the container's output goes; None unless its log driver is awslogs."""
    if not log_configuration or log_configuration.get("logDriver") != "awslogs":
        return None
    options = log_configuration.get("options") or {}
    group = options.get("awslogs-group")
    if not isinstance(group, str) or not group:
        raise CannotStart(f"container {container}: the awslogs log driver needs the "
                          "awslogs-group option")
    prefix = options.get("awslogs-stream-prefix")
    # Without a prefix the stream is named after the container's id, as Docker's driver does.
    stream = f"{prefix}/{container}/{task_id}" if prefix else cid
    return AwsLogsTarget(group, stream, options.get("awslogs-region") or None,
                         str(options.get("awslogs-create-group", "")).lower() == "true")


async def prepare(api: ControlPlane, t: AwsLogsTarget) -> None:
    """Create the group (when asked) and the stream. A missing group fails the container's
    start, as Docker's awslogs driver does."""
    calls = [("CreateLogGroup", {"logGroupName": t.group})] if t.create_group else []
    calls.append(("CreateLogStream", {"logGroupName": t.group, "logStreamName": t.stream}))
    for operation, body in calls:
        try:
            await _retrying(lambda op=operation, b=body: api.logs(op, b, t.region), attempts=8)
        except ApiError as exc:
            if exc.code == "ResourceAlreadyExistsException":
                continue
            raise CannotStart(f"failed to initialize logging driver: {exc}") from exc
        except Unreachable as exc:
            raise CannotStart(f"failed to initialize logging driver: {exc}") from exc


async def _retrying(call: Callable[[], Any], attempts: int) -> Any:
    delay = RETRY_MIN
    for i in range(attempts):
        try:
            return await call()
        except Unreachable:
            if i == attempts - 1:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)


def to_events(lines: list[LogLine], last_ms: int) -> tuple[list[dict[str, Any]], int]:
    """PutLogEvents events from log lines: empty lines dropped (as Docker's driver drops them),
    long ones cut, timestamps never going back (a batch must be in order)."""
    events = []
    for line in lines:
        if not line.text:
            continue
        ms = max(int(line.timestamp * 1000), last_ms)
        last_ms = ms
        text = line.text
        if len(text) > MAX_EVENT_BYTES // 4 and len(text.encode()) > MAX_EVENT_BYTES:
            text = text.encode()[:MAX_EVENT_BYTES].decode(errors="ignore")
        events.append({"timestamp": ms, "message": text})
    return events, last_ms


class LogShipper:
    """Ships one container's output until it has exited and everything is sent."""

    def __init__(self, api: ControlPlane, driver: Driver, cid: str, t: AwsLogsTarget,
                 cursor: str | None, save_cursor: Callable[[str], None],
                 interval: float = 0.5) -> None:
        self.api, self.driver, self.cid, self.target = api, driver, cid, t
        self.cursor = cursor
        self.save_cursor = save_cursor
        self.interval = interval
        self._last_ms = 0
        self.done = asyncio.Event()

    async def run(self) -> None:
        try:
            while True:
                lines, exited = await asyncio.to_thread(self._read)
                if lines:
                    await self._ship(lines)
                elif exited:
                    return
                if len(lines) < MAX_BATCH_EVENTS:
                    await asyncio.sleep(self.interval)
        finally:
            self.done.set()

    def _read(self) -> tuple[list[LogLine], bool]:
        """Lines behind the cursor (one batch at most), and whether the container had exited
        before they were read (then an empty read means everything is shipped)."""
        try:
            exited = self.driver.state(self.cid).status == "exited"
            lines, size = [], 0
            for line in self.driver.logs(self.cid, after=self.cursor):
                lines.append(line)
                size += len(line.text.encode()) + 26
                if len(lines) >= MAX_BATCH_EVENTS or size >= MAX_BATCH_BYTES:
                    break
            return lines, exited
        except ContainerNotFound:
            return [], True

    async def _ship(self, lines: list[LogLine]) -> None:
        events, last_ms = to_events(lines, self._last_ms)
        body = {"logGroupName": self.target.group, "logStreamName": self.target.stream,
                "logEvents": events}
        delay = RETRY_MIN
        while events:
            try:
                await self.api.logs("PutLogEvents", body, self.target.region)
                break
            except Unreachable as exc:
                log.info("logs of %s not shipped (%s); retrying", self.cid[:12], exc)
            except ApiError as exc:
                if exc.code != "ResourceNotFoundException":
                    # The batch itself is refused (too old, ...): skip it rather than stall.
                    log.warning("logs of %s refused, %d lines dropped: %s", self.cid[:12],
                                len(events), exc)
                    break
                try:
                    await prepare(self.api, self.target)    # deleted meanwhile: recreate
                    continue
                except CannotStart as again:
                    log.warning("logs of %s: %s; %d lines dropped", self.cid[:12], again,
                                len(events))
                    break
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
        self._last_ms = last_ms
        self.cursor = lines[-1].cursor
        self.save_cursor(self.cursor)
