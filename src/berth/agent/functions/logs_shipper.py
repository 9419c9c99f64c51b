"""Ships function output to CloudWatch Logs off the invocation's path.

Lines are appended to an in-memory batch on the event loop (no I/O); a background task hands
each batch to a `LogSink` in a thread every `interval` seconds. Under `berth up` the sink
writes through the Logs provider in-process; a remote agent's sink would call PutLogEvents.

Lines are counted as they come (`mark`), and `shipped(mark)` waits until every line up to a
mark is in the store: what an asynchronous invocation waits for before its event leaves the
queue, so that no kill -9 loses the lines of an invocation counted as done. A waiter makes
the next batch go at once (batches keep forming while one is written); a batch the sink
refused is kept and tried again, ahead of newer lines.
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


Batch = dict[StreamKey, list[dict[str, Any]]]
MAX_TRIES = 20      # a batch the sink keeps refusing is dropped (and logged) after this many


class LogShipper:
    def __init__(self, sink: LogSink, interval: float = 0.2) -> None:
        self.sink = sink
        self.interval = interval
        self._pending: Batch = {}
        self._last_ts: dict[StreamKey, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._flushing: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._appended = 0          # lines appended so far
        self._shipped = 0           # of those, how many are in the store (or given up on)
        self._tries = 0             # failed attempts at the oldest pending lines
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

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
        self._appended += 1

    def forget(self, key: StreamKey) -> None:
        self._last_ts.pop(key, None)

    def mark(self) -> int:
        """How many lines have been appended until now."""
        return self._appended

    async def shipped(self, mark: int) -> None:
        """Return once every line up to `mark` is stored."""
        if self._shipped >= mark:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((mark, future))
        self._wake.set()
        await future

    def _advance(self, shipped: int) -> None:
        self._shipped = max(self._shipped, shipped)
        waiting = []
        for mark, future in self._waiters:
            if mark <= self._shipped:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((mark, future))
        self._waiters = waiting

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
            if not self._waiters:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                except TimeoutError:
                    pass
            self._wake.clear()
            self._flushing = asyncio.ensure_future(self.flush())
            try:
                await asyncio.shield(self._flushing)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("shipping function logs failed")
            if self._waiters and self._pending and self._tries:
                await asyncio.sleep(self.interval)     # the sink refused: not in a tight loop

    async def flush(self) -> None:
        if not self._pending:
            self._advance(self._appended)
            return
        batch, self._pending, mark = self._pending, {}, self._appended
        failed = await asyncio.to_thread(self._ship, batch)
        if not failed:
            self._tries = 0
            self._advance(mark)
            return
        self._tries += 1
        if self._tries >= MAX_TRIES:
            log.error("dropping %d function log events the store refused %d times",
                      sum(len(e) for e in failed.values()), self._tries)
            self._tries = 0
            self._advance(mark)
            return
        # Kept, ahead of what came meanwhile; the mark stays where it was.
        for key, events in failed.items():
            self._pending[key] = events + self._pending.get(key, [])

    def _ship(self, batch: Batch) -> Batch:
        """Store a batch; returns what could not be stored."""
        failed: Batch = {}
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
                    failed[key] = events[start:]
                    break
                start = end
        return failed
