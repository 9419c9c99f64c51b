"""One invocation as the worker sees it, its outcome, and AWS's texts for how it ended."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import math
import os
import time
from dataclasses import dataclass, field

TAIL_BYTES = 4096


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    invoked_arn: str
    client_context: str | None = None   # the decoded JSON text, as the runtime receives it
    identity: str | None = None
    trace_id: str = ""
    want_tail: bool = False

    def __post_init__(self) -> None:
        if not self.trace_id:
            self.trace_id = (f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()};"
                             f"Parent={os.urandom(8).hex()};Sampled=0")


@dataclass
class InvocationResult:
    payload: bytes
    function_error: str | None = None   # "Unhandled" when the body is an error
    log_tail: str | None = None         # base64 of the last 4 KB of the invocation's log


@dataclass
class Call:
    """An invocation on its way through one execution environment."""

    invocation: Invocation
    future: asyncio.Future[InvocationResult]
    started: float = 0.0                # perf_counter() when handed to the runtime
    started_wall: float = 0.0
    deadline_ms: int = 0
    tail: list[str] = field(default_factory=list)

    def log(self, line: str) -> None:
        if self.invocation.want_tail:
            self.tail.append(line)

    def finish(self, payload: bytes, function_error: str | None) -> None:
        if self.future.done():
            return
        tail = None
        if self.invocation.want_tail:
            text = "".join(line + "\n" for line in self.tail).encode()
            tail = base64.b64encode(text[-TAIL_BYTES:]).decode()
        self.future.set_result(InvocationResult(payload, function_error, tail))


def error_payload(message: str, error_type: str | None = None) -> bytes:
    body: dict[str, str] = {}
    if error_type:
        body["errorType"] = error_type
    body["errorMessage"] = message
    return json.dumps(body).encode()


def timeout_message(request_id: str, timeout: int) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{now} {request_id} Task timed out after {timeout:.2f} seconds"


def exit_message(request_id: str, status: str) -> str:
    return f"RequestId: {request_id} Error: Runtime exited with error: {status}"


def report_line(request_id: str, duration_ms: float, memory_mb: int, used_mb: int | None,
                init_ms: float | None) -> str:
    line = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\t"
            f"Memory Size: {memory_mb} MB\tMax Memory Used: {used_mb or 0} MB")
    if init_ms is not None:
        line += f"\tInit Duration: {init_ms:.2f} ms"
    return line
