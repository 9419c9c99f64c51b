"""One execution environment: a sandbox, its Runtime API listener, its log stream, and the
state machine of the invocations it serves, one at a time.

    STARTING --/next--> IDLE (frozen) --assign--> BUSY --/response|/error--> FINISHING
    FINISHING --/next--> IDLE, or straight to BUSY when an invocation was assigned meanwhile
    any state --exit, timeout, init error, retire--> DEAD (never reused)
"""
from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

from ...lambda_.model import FunctionConfig
from ..client import Credentials
from . import credentials as role_credentials
from . import runtime_api
from .invocation import Call, error_payload, exit_message, report_line, timeout_message
from .logs_shipper import LogShipper, StreamKey
from .runtime_api import RuntimeConnection
from .runtimes import build_spec
from .sandbox import ExitStatus, Sandbox, SandboxDriver

log = logging.getLogger(__name__)

INIT_TIMEOUT = 10.0   # seconds an init may take beyond the function's own timeout
NEXT_GRACE = 2.0      # seconds between a runtime's answer and its next request, at most


class State(enum.Enum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    FINISHING = "finishing"
    DEAD = "dead"


class ExecutionEnvironment:
    def __init__(self, config: FunctionConfig, shipper: LogShipper,
                 on_idle: Callable[["ExecutionEnvironment"], None],
                 on_dead: Callable[["ExecutionEnvironment", Call | None], None]) -> None:
        self.config = config
        self.id = uuid.uuid4().hex
        day = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
        self.log_stream = f"{day}/[{config.version}]{self.id}"
        self.log_key: StreamKey = (config.region, config.log_group, self.log_stream)
        self.shipper = shipper
        self.on_idle, self.on_dead = on_idle, on_dead
        self.state = State.STARTING
        self.sandbox: Sandbox | None = None
        self.server: asyncio.AbstractServer | None = None
        self.conn: RuntimeConnection | None = None
        self.current: Call | None = None
        self.pending: Call | None = None
        self.retired = False
        self.last_used = time.monotonic()
        self.tmp_dir: Path | None = None
        self.cleaned: asyncio.Task[None] | None = None   # releasing what the sandbox held
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._init_started = time.perf_counter()
        self._init_ms: float | None = None
        self._partial = b""
        # The role credentials in the sandbox's environment, and a newer set it takes with
        # its next invocation (credentials.py).
        self.credentials: Credentials | None = None
        self._newer: Credentials | None = None

    async def start(self, driver: SandboxDriver, code_dir: Path, work_dir: Path,
                    first: Call, endpoint: str | None = None,
                    credentials: Credentials | None = None) -> None:
        """Spawn the sandbox; `first` runs as soon as the runtime has initialised. The
        sandbox calls berth at `endpoint` with `credentials`, its role's."""
        self.pending = first
        self.credentials = credentials
        self.server, port = await runtime_api.listen(self)
        if not driver.private_mounts:
            # Isolated sandboxes have a /tmp of their own; others a directory of the host.
            self.tmp_dir = work_dir / self.id / "tmp"
            self.tmp_dir.mkdir(parents=True)
        spec = build_spec(self.config, code_dir, self.tmp_dir, port, self.log_stream,
                          driver.private_mounts, endpoint, credentials)
        self._init_started = time.perf_counter()
        # Known, and timed, before it runs the function: its runtime's first call may come
        # before `specialise` returns.
        self.sandbox = await driver.acquire(spec)
        self.sandbox.exited.add_done_callback(self._exited)
        self._timer = self._loop.call_later(INIT_TIMEOUT + self.config.timeout,
                                            self._init_timed_out)
        await driver.specialise(self.sandbox, spec, self._output)

    # Assignment, from the pool.

    @property
    def accepts(self) -> bool:
        """Whether an invocation can be given to this environment now."""
        return (not self.retired and self.pending is None
                and self.state in (State.IDLE, State.FINISHING))

    @property
    def outlived(self) -> bool:
        """Whether its credentials may expire during an invocation and it cannot take newer
        ones: such an environment is retired rather than used."""
        return (not role_credentials.refreshes(self.config)
                and role_credentials.expiring(self.credentials, self.config))

    def assign(self, call: Call, credentials: Credentials | None = None) -> None:
        """Run `call` here; `credentials`, when newer than the sandbox's, go with it."""
        if credentials is not None and credentials is not self.credentials \
                and role_credentials.refreshes(self.config):
            self._newer = credentials
        if self.state is State.IDLE:
            assert self.sandbox is not None
            self.sandbox.thaw()
            self._deliver(call)
        else:
            self.pending = call
            if self.state is State.FINISHING:
                # A runtime that answered but never asks for more must not hold the call.
                self._timer = self._loop.call_later(NEXT_GRACE, self._stalled)

    def _stalled(self) -> None:
        self._timer = None
        if self.state is State.FINISHING and self.pending is not None:
            log.warning("runtime of %s answered but did not ask for its next event in %.0f s: "
                        "replacing it", self.config.name, NEXT_GRACE)
            self.kill()     # its exit hands the pending invocation to a fresh environment

    def _deliver(self, call: Call) -> None:
        self._cancel_timer()
        inv = call.invocation
        call.started = time.perf_counter()
        call.started_wall = time.time()
        call.deadline_ms = int(call.started_wall * 1000) + self.config.timeout * 1000
        assert self.conn is not None
        extra = ""
        if self._newer is not None:
            extra = role_credentials.refresh_header(self._newer)
            self.credentials, self._newer = self._newer, None
        response = runtime_api.next_response(
            inv.request_id, call.deadline_ms, inv.invoked_arn, inv.trace_id,
            inv.client_context, inv.identity, inv.payload or b"{}", extra)
        self.current = call
        self.state = State.BUSY
        self._line(f"START RequestId: {inv.request_id} Version: {self.config.version}")
        # If the runtime hung up, its exit (or else the timeout) ends the call.
        self.conn.deliver(response)
        self._timer = self._loop.call_later(self.config.timeout, self._timed_out)

    # The Runtime API.

    def admits(self, peer: tuple[str, int], local: tuple[str, int]) -> bool:
        """Only this environment's own sandbox may use its Runtime API."""
        return self.sandbox is not None and self.sandbox.admits(peer, local)

    def on_next(self, conn: RuntimeConnection) -> None:
        self.conn = conn
        if self.state is State.DEAD:
            return
        if self.state is State.STARTING:
            self._init_ms = (time.perf_counter() - self._init_started) * 1000
            self._cancel_timer()
        if self.retired:
            self.kill()
            return
        if self.pending is not None:
            call, self.pending = self.pending, None
            self._deliver(call)
            return
        self.state = State.IDLE
        self.last_used = time.monotonic()
        assert self.sandbox is not None
        self.sandbox.freeze()
        self.on_idle(self)

    def on_response(self, request_id: str, body: bytes, size: int) -> tuple[int, bytes]:
        call = self.current
        if call is None or call.invocation.request_id != request_id:
            return 400, runtime_api.error_json("InvalidRequestID", "Invalid request ID")
        if size > runtime_api.MAX_RESPONSE:
            self._finish(call, error_payload(
                f"Response payload size ({size} bytes) exceeded maximum allowed payload "
                f"size ({runtime_api.MAX_RESPONSE} bytes).", "Function.ResponseSizeTooLarge"),
                "Unhandled")
            return 413, runtime_api.error_json(
                "RequestEntityTooLarge",
                f"Exceeded maximum allowed payload size ({runtime_api.MAX_RESPONSE} bytes).")
        self._finish(call, body, None)
        return 202, b""

    def on_error(self, request_id: str, body: bytes, error_type: str) -> tuple[int, bytes]:
        call = self.current
        if call is None or call.invocation.request_id != request_id:
            return 400, runtime_api.error_json("InvalidRequestID", "Invalid request ID")
        self._finish(call, body or error_payload("Unknown error", error_type), "Unhandled")
        return 202, b""

    def on_init_error(self, body: bytes, error_type: str) -> tuple[int, bytes]:
        if self.state is not State.STARTING:
            return 403, runtime_api.error_json("InvalidStateTransition",
                                               "State transition from Ready to InitError "
                                               "failed for runtime.")
        self._init_ms = (time.perf_counter() - self._init_started) * 1000
        call, self.pending = self.pending, None
        if call is not None:
            # The invocation that started this environment reports the init error, as on
            # Lambda; the environment is not reused, the next invocation initialises anew.
            call.started = time.perf_counter()
            self.current = call
            self._line(f"START RequestId: {call.invocation.request_id} "
                       f"Version: {self.config.version}")
            self._finish(call, body or error_payload("Init error", error_type), "Unhandled")
        self.kill()
        return 202, b""

    # Ends.

    def _finish(self, call: Call, payload: bytes, function_error: str | None) -> None:
        self._cancel_timer()
        assert self.sandbox is not None
        # What the function printed before answering is already in the pipe: read it now so
        # it lands in this invocation's log and tail.
        self.sandbox.drain_output()
        self._flush_partial()
        rid = call.invocation.request_id
        duration = (time.perf_counter() - call.started) * 1000
        self._line(f"END RequestId: {rid}")
        self._line(report_line(rid, duration, self.config.memory_size,
                               self.sandbox.peak_memory_mb(), self._init_ms))
        self._init_ms = None
        self.current = None
        if self.state is not State.DEAD:
            self.state = State.FINISHING
        self.last_used = time.monotonic()
        call.finish(payload, function_error)
        self.check_process_limit()

    def check_process_limit(self) -> bool:
        """A sandbox that hit its process limit (a fork bomb) is killed, never reused."""
        if self.sandbox is None or self.state is State.DEAD:
            return False
        limit = self.sandbox.hit_process_limit()
        if limit is None:
            return False
        log.warning("sandbox %s of %s reached its limit of %d processes: killing it",
                    self.sandbox.id, self.config.name, limit)
        self._line(f"berth: the sandbox reached its limit of {limit} processes and threads "
                   "and was stopped")
        self.kill()
        return True

    def _timed_out(self) -> None:
        self._timer = None
        call = self.current
        if call is None:
            return
        self.state = State.DEAD
        self.kill()
        self._line(timeout_message(call.invocation.request_id, self.config.timeout))
        self._finish(call, error_payload(timeout_message(call.invocation.request_id,
                                                         self.config.timeout)), "Unhandled")

    def _init_timed_out(self) -> None:
        self._timer = None
        if self.state is not State.STARTING:
            return
        call, self.pending = self.pending, None
        self.state = State.DEAD
        self.kill()
        if call is not None:
            call.started = time.perf_counter()
            rid = call.invocation.request_id
            self._line(f"START RequestId: {rid} Version: {self.config.version}")
            self._line(timeout_message(rid, self.config.timeout))
            self._finish(call, error_payload(timeout_message(rid, self.config.timeout)),
                         "Unhandled")

    def _exited(self, future: asyncio.Future[ExitStatus]) -> None:
        status = future.result()
        was, self.state = self.state, State.DEAD
        self._cancel_timer()
        call = self.current
        if call is not None:
            message = exit_message(call.invocation.request_id, status.describe())
            self._line(message)
            self._finish(call, error_payload(message, "Runtime.ExitError"), "Unhandled")
        elif was is State.STARTING and self.pending is not None:
            # It died while initialising: its first invocation learns why.
            call, self.pending = self.pending, None
            call.started = time.perf_counter()
            self.current = call
            rid = call.invocation.request_id
            self._line(f"START RequestId: {rid} Version: {self.config.version}")
            message = exit_message(rid, status.describe())
            self._line(message)
            self._finish(call, error_payload(message, "Runtime.ExitError"), "Unhandled")
        self._flush_partial()
        lost, self.pending = self.pending, None
        self.on_dead(self, lost)
        self.cleaned = self._loop.create_task(self._cleanup())

    def kill(self) -> None:
        self.state = State.DEAD
        self._cancel_timer()
        if self.sandbox is not None:
            self.sandbox.kill()

    def retire(self) -> None:
        """Code or configuration changed: finish what runs, then go."""
        self.retired = True
        if self.state in (State.IDLE, State.STARTING) and self.pending is None:
            self.kill()

    async def abort(self) -> None:
        """Undo a `start` that failed before the sandbox ran its function."""
        self.state = State.DEAD
        self._cancel_timer()
        if self.sandbox is not None and not self.sandbox.exited.done():
            self.sandbox.kill()
            try:
                await asyncio.wait_for(asyncio.shield(self.sandbox.exited), 5)
            except TimeoutError:
                log.warning("sandbox %s did not exit after SIGKILL", self.sandbox.id)
        # Its exit, if it came, has started the cleanup already.
        await (self.cleaned if self.cleaned is not None else self._cleanup())

    async def _cleanup(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.sandbox is not None:
            await self.sandbox.destroy()
        self.shipper.forget(self.log_key)
        if self.tmp_dir is not None:
            await asyncio.to_thread(shutil.rmtree, self.tmp_dir.parent, True)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # Output and log lines.

    def _output(self, data: bytes) -> None:
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            self._line(raw.decode("utf-8", "replace"))

    def _flush_partial(self) -> None:
        if self._partial:
            raw, self._partial = self._partial, b""
            self._line(raw.decode("utf-8", "replace"))

    def _line(self, text: str) -> None:
        self.shipper.append(self.log_key, text)
        if self.current is not None:
            self.current.log(text)
