"""Ships function output to CloudWatch Logs off the invocation's path.

Lines are appended to an in-memory batch on the event loop (no I/O); a background task hands
each batch to a `LogSink` in a thread every `interval` seconds. Under `berth up` the sink
writes through the Logs provider in-process; a remote agent's sink would call PutLogEvents.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from ...api.errors import ServiceError

log = logging.getLogger(__name__)

StreamKey = tuple[str, str, str]   # region, log group, log stream
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 900_000          # under PutLogEvents' 1 MiB, with its per-event overhead
MAX_EVENT_BYTES = 256 * 1024 - 26


class LogSink(Protocol):
    def put(self, key: StreamKey, events: list[dict[str, Any]]) -> None:
        """Store events (chronological) in the stream, creating group and stream if missing.
        Called in a worker thread."""


class LocalLogsSink:
    """Writes through berth's Logs provider in this process, as PutLogEvents would."""

    def __init__(self, logs: Any, account_id: str) -> None:
        self.logs = logs
        self.account_id = account_id
        self.known: set[StreamKey] = set()

    def _ctx(self, region: str) -> Any:
        from ...api.app import RequestContext
        return RequestContext("berth-function-worker", region, self.account_id, "logs",
                              "PutLogEvents", "", "")

    def _ensure(self, key: StreamKey) -> None:
        region, group, stream = key
        ctx = self._ctx(region)
        for create, req in ((self.logs.create_log_group, {"logGroupName": group}),
                            (self.logs.create_log_stream,
                             {"logGroupName": group, "logStreamName": stream})):
            try:
                create(ctx, req)
            except ServiceError as exc:
                if exc.code != "ResourceAlreadyExistsException":
                    raise
        self.known.add(key)

    def put(self, key: StreamKey, events: list[dict[str, Any]]) -> None:
        if key not in self.known:
            self._ensure(key)
        req = {"logGroupName": key[1], "logStreamName": key[2], "logEvents": events}
        try:
            self.logs.put_log_events(self._ctx(key[0]), req)
        except ServiceError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
            # Someone deleted the group or stream: Lambda recreates them on the next write.
            self._ensure(key)
            self.logs.put_log_events(self._ctx(key[0]), req)


class LogShipper:
    def __init__(self, sink: LogSink, interval: float = 0.2) -> None:
        self.sink = sink
        self.interval = interval
        self._pending: dict[StreamKey, list[dict[str, Any]]] = {}
        self._last_ts: dict[StreamKey, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._flushing: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()

    def append(self, key: StreamKey, message: str, timestamp_ms: int | None = None) -> None:
        ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        # PutLogEvents wants each batch in order; a clock stepping back must not reorder.
        last = self._last_ts.get(key, 0)
        if ts < last:
            ts = last
        self._last_ts[key] = ts
        if len(message) > MAX_EVENT_BYTES // 4:
            message = message.encode()[:MAX_EVENT_BYTES].decode(errors="ignore")
        events = self._pending.get(key)
        if events is None:
            events = self._pending[key] = []
        events.append({"timestamp": ts, "message": message})

    def forget(self, key: StreamKey) -> None:
        self._last_ts.pop(key, None)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._flushing is not None:
            # A batch in flight finishes: cancelled before its thread ran, it would be lost.
            await asyncio.wait([self._flushing])
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._flushing = asyncio.ensure_future(self.flush())
            try:
                await asyncio.shield(self._flushing)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("shipping function logs failed")

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        await asyncio.to_thread(self._ship, batch)

    def _ship(self, batch: dict[StreamKey, list[dict[str, Any]]]) -> None:
        for key, events in batch.items():
            start = 0
            while start < len(events):
                size, end = 0, start
                while end < len(events) and end - start < MAX_BATCH_EVENTS:
                    size += len(events[end]["message"].encode()) + 26
                    if size > MAX_BATCH_BYTES and end > start:
                        break
                    end += 1
                try:
                    self.sink.put(key, events[start:end])
                except Exception:
                    log.exception("could not store %d log events in %s", end - start, key)
                start = end
