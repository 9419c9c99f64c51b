"""Invoke: run a function version now (RequestResponse), later (Event), or only check
that it could run (DryRun). A mixin of LambdaService.

The worker is the agent's; under `berth up` (settings.local_worker) it runs in this process
and this mixin starts and stops it, with the async-invoke dispatcher that runs queued Event
invocations through the same path. The warm path does no database work: resolved function
configurations are cached for `lambda_config_ttl` seconds and dropped at once when this server
changes the function (`function_changed`).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ..agent.client import Credentials
from ..api.app import RequestContext
from ..api.errors import ServiceError
from ..config import Settings
from ..state.store import Store
from ..sts.principals import assumed_role, parse_role
from ..sts.sessions import Sessions
from . import async_queue, limits
from .arns import LATEST, function_ref
from .async_dispatch import AsyncDispatcher, Attempt, Outcome
from .async_queue import ASYNC_PAYLOAD, QueuedEvent
from .code import CodeStore
from .model import FunctionConfig
from .queries import current_revisions
from .resolve import resolve

log = logging.getLogger(__name__)

MAX_SYNC_PAYLOAD = 6_291_456
CODE_SWEEP_INTERVAL = 60.0
# How soon sandboxes of a function changed or deleted through another server end (s).
RECLAIM_INTERVAL = 10.0


class InFlight:
    """Invocations running now, per function and per region: what concurrency limits count."""

    def __init__(self, account_limit: int) -> None:
        self.account_limit = account_limit
        self.functions: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.regions: defaultdict[str, int] = defaultdict(int)

    def acquire(self, config: FunctionConfig) -> None:
        key = (config.region, config.name)
        reserved = config.reserved_concurrency
        if reserved is not None and self.functions[key] >= reserved:
            raise ServiceError("TooManyRequestsException", "Rate Exceeded.",
                               Reason="ReservedFunctionConcurrentInvocationLimitExceeded")
        if reserved is None and self.regions[config.region] >= self.account_limit:
            raise ServiceError("TooManyRequestsException", "Rate Exceeded.",
                               Reason="ConcurrentInvocationLimitExceeded")
        self.functions[key] += 1
        self.regions[config.region] += 1

    def release(self, config: FunctionConfig) -> None:
        key = (config.region, config.name)
        self.functions[key] -= 1
        if not self.functions[key]:
            del self.functions[key]
        self.regions[config.region] -= 1


class InvokeMixin:
    store: Store
    settings: Settings
    sessions: Sessions
    code: CodeStore
    _worker: Any = None
    _dispatcher: AsyncDispatcher | None = None
    _in_flight: InFlight | None = None
    _resolved: dict[tuple[str, str, str, str | None], tuple[float, FunctionConfig, str]]
    _unpacked: dict[str, Path]
    _background: set[asyncio.Task[Any]]
    _loop: asyncio.AbstractEventLoop | None = None

    def _init_invoke(self) -> None:
        self._resolved, self._unpacked, self._background = {}, {}, set()
        self._in_flight = InFlight(limits.ACCOUNT_CONCURRENCY)

    async def startup(self) -> None:
        self._init_invoke()
        if self.settings.local_worker:
            from ..agent.functions.credentials import Callback, RoleCredentials
            from ..agent.functions.logs_shipper import LocalLogsSink
            from ..agent.functions.worker import FunctionWorker
            from ..logs.service import LogsService
            sink = LocalLogsSink(LogsService(self.store, self.settings),
                                 self.settings.account_id)
            cfg = self.settings
            await asyncio.to_thread(self.sessions.load)
            worker = FunctionWorker(cfg.data_dir / "sandboxes", sink,
                                    idle_ttl=cfg.lambda_idle_ttl, isolate=cfg.lambda_isolation,
                                    prewarm_python=cfg.lambda_prewarm_python,
                                    prewarm_node=cfg.lambda_prewarm_node,
                                    pids_max=cfg.lambda_pids_max,
                                    memory_reserve_mb=cfg.lambda_memory_reserve_mb,
                                    callback=Callback(cfg.local_endpoint, RoleCredentials(
                                        self._role_credentials,
                                        cfg.lambda_credentials_lifetime)))
            await worker.start()
            self._worker = worker
            self._loop = asyncio.get_running_loop()
            self._background.add(self._loop.create_task(self._reclaim_changed()))
            # Only a server that can run functions takes events off the queue; without one
            # they wait there for a server that can.
            self._dispatcher = AsyncDispatcher(
                self.store, self._run_event, retry_delay=self.settings.lambda_async_retry_delay,
                lease_ttl=self.settings.lambda_async_lease)
            await self._dispatcher.start()
        self._background.add(asyncio.get_running_loop().create_task(self._sweep_code()))
        parent = getattr(super(), "startup", None)
        if parent is not None:
            await parent()

    def _role_credentials(self, role_arn: str, session: str, seconds: float
                          ) -> Credentials | None:
        """Temporary credentials of a function's execution role, issued in this process."""
        try:
            role = parse_role(role_arn)
        except ServiceError:
            log.warning("functions with role %r run without credentials: not a role ARN",
                        role_arn)
            return None
        issued = self.sessions.issue(assumed_role(role, session), seconds)
        return Credentials(issued.access_key_id, issued.secret_access_key,
                           issued.session_token, issued.expiration)

    async def _sweep_code(self) -> None:
        """Remove unpacked trees of code no version refers to any more (the control plane
        deleted its zip) once no sandbox runs from them."""
        while True:
            await asyncio.sleep(CODE_SWEEP_INTERVAL)
            in_use = self._worker.pools.code_in_use() if self._worker is not None else set()
            try:
                await asyncio.to_thread(self._discard_unused_code, in_use)
            except OSError:
                log.exception("sweeping unpacked code failed")

    def _discard_unused_code(self, in_use: set[Path]) -> None:
        for tree in self.code.unpacked_dir.iterdir():
            if len(tree.name) != 64 or tree.name.startswith(".") or tree in in_use:
                continue
            if not self.code.known(tree.name):
                self.code.discard_unpacked(base64.b64encode(bytes.fromhex(tree.name)).decode())
                self._unpacked = {k: v for k, v in self._unpacked.items() if v != tree}

    async def shutdown(self) -> None:
        parent = getattr(super(), "shutdown", None)
        if parent is not None:
            await parent()
        for task in list(getattr(self, "_background", ())):
            task.cancel()
        if self._dispatcher is not None:
            await self._dispatcher.stop()
            self._dispatcher = None
        if self._worker is not None:
            await self._worker.stop()
            self._worker = None

    def function_changed(self, region: str, name: str) -> None:
        """Forget cached configurations of `name`: its next invocation reads the store; and
        end the sandboxes of its versions that changed or went. Called in the operation's
        thread, after its commit."""
        resolved = getattr(self, "_resolved", None)
        if resolved:
            for key in [k for k, v in resolved.items() if k[0] == region and v[1].name == name]:
                resolved.pop(key, None)
        worker, loop = self._worker, getattr(self, "_loop", None)
        if worker is not None and loop is not None:
            revisions = self._revisions({(region, name)})
            loop.call_soon_threadsafe(worker.pools.reclaim, region, name, revisions)

    def _revisions(self, functions: set[tuple[str, str]]) -> dict[tuple[str, str, str], str]:
        with self.store.read() as conn:
            return current_revisions(conn, functions)

    async def _reclaim_changed(self) -> None:
        """End sandboxes of functions changed or deleted through another server."""
        while True:
            await asyncio.sleep(RECLAIM_INTERVAL)
            held = self._worker.pools.functions()
            if not held:
                continue
            try:
                revisions = await asyncio.to_thread(self._revisions, held)
            except SQLAlchemyError:
                log.exception("looking for changed functions failed")
                continue
            for region, name in held:
                self._worker.pools.reclaim(region, name, revisions)

    async def _resolve(self, ctx: RequestContext, name: str, qualifier: str | None
                       ) -> tuple[FunctionConfig, str]:
        key = (ctx.region, ctx.account_id, name, qualifier)
        hit = self._resolved.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        config, invoked = await asyncio.to_thread(resolve, self.store, ctx.region,
                                                  ctx.account_id, name, qualifier)
        ref = function_ref(name, ctx.region, ctx.account_id, qualifier)
        # An alias may route by weight on every call: only fixed versions are cached.
        if ref.qualifier is None or ref.qualifier == LATEST or ref.qualifier.isdigit():
            self._resolved[key] = (now + self.settings.lambda_config_ttl, config, invoked)
        return config, invoked

    async def _code_dir(self, config: FunctionConfig) -> Path:
        path = self._unpacked.get(config.code_sha256)
        if path is None or not path.is_dir():
            path = await asyncio.to_thread(self.code.unpacked, config.code_sha256)
            self._unpacked[config.code_sha256] = path
        return path

    async def invoke(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        if self._in_flight is None:
            self._init_invoke()
        kind = req.get("InvocationType") or "RequestResponse"
        payload: bytes = req.get("Payload") or b""
        if kind == "Event" and len(payload) > ASYNC_PAYLOAD:
            raise ServiceError("RequestEntityTooLargeException",
                               f"{len(payload)} byte payload is too large for the Event "
                               f"invocation type (limit {ASYNC_PAYLOAD} bytes)", status=413)
        if len(payload) > MAX_SYNC_PAYLOAD:
            raise ServiceError("RequestTooLargeException",
                               f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the "
                               "InvokeFunction operation")
        config, invoked = await self._resolve(ctx, req["FunctionName"], req.get("Qualifier"))
        if kind == "DryRun":
            return {"StatusCode": 204, "ExecutedVersion": config.version}
        if len(payload) > 256 * 1024:
            await asyncio.to_thread(_check_json, payload)
        else:
            _check_json(payload)
        if kind == "Event":
            self._invocation(ctx, req, invoked, payload, False)   # checks ClientContext
            await self._enqueue(ctx, req, config, invoked, payload)
            return {"StatusCode": 202}
        invocation = self._invocation(ctx, req, invoked, payload,
                                      want_tail=req.get("LogType") == "Tail")
        result = await self._run(config, invocation)
        out: dict[str, Any] = {"StatusCode": 200, "Payload": result.payload,
                               "ExecutedVersion": config.version}
        if result.function_error:
            out["FunctionError"] = result.function_error
        if result.log_tail is not None:
            out["LogResult"] = result.log_tail
        return out

    async def invoke_async(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        """The deprecated InvokeAsync: an Event invocation answered with Status 202."""
        args = req.get("InvokeArgs") or b""
        if isinstance(args, str):
            args = args.encode()
        await self.invoke(ctx, {"FunctionName": req["FunctionName"],
                                "InvocationType": "Event", "Payload": args})
        return {"Status": 202}

    async def _run(self, config: FunctionConfig, invocation: Any) -> Any:
        """One run in the worker, within the concurrency limits (TooManyRequestsException)."""
        worker = self._require_worker()
        assert self._in_flight is not None
        self._in_flight.acquire(config)
        from ..agent.functions.pool import SandboxStartError
        try:
            code_dir = await self._code_dir(config)
            return await worker.invoke(config, code_dir, invocation)
        except SandboxStartError as exc:
            raise ServiceError("ServiceException", str(exc), status=500) from None
        finally:
            self._in_flight.release(config)

    async def _enqueue(self, ctx: RequestContext, req: dict[str, Any], config: FunctionConfig,
                       invoked: str, payload: bytes) -> None:
        """Make an Event invocation durable before it is answered 202. (AWS passes no
        ClientContext to asynchronous invocations, so none is kept.)"""
        qualifier = function_ref(req["FunctionName"], ctx.region, ctx.account_id,
                                 req.get("Qualifier")).qualifier
        event = QueuedEvent(ctx.request_id, ctx.region, ctx.account_id, config.name, qualifier,
                            invoked, payload, time.time())
        await asyncio.to_thread(async_queue.enqueue, self.store, event)
        if self._dispatcher is not None:
            self._dispatcher.wake()

    async def _run_event(self, event: QueuedEvent) -> Attempt:
        """The dispatcher's way to run a queued event: as RequestResponse would, from the
        function as it is now (an alias routes again on every attempt)."""
        try:
            config, _ = await asyncio.to_thread(resolve, self.store, event.region,
                                                event.account_id, event.function_name,
                                                event.qualifier)
        except ServiceError:
            return Attempt(Outcome.GONE)
        from ..agent.functions.invocation import Invocation
        try:
            result = await self._run(config, Invocation(event.id, event.payload,
                                                        event.invoked_arn))
        except (ServiceError, OSError):
            # Throttled, or this host could not run it (no sandbox, no code here): AWS's
            # "system errors", retried without using up the event's attempts.
            return Attempt(Outcome.THROTTLED, config.version)
        # The run is settled in the queue only once its log lines are as durable as that.
        await self._require_worker().logs_stored()
        outcome = Outcome.FUNCTION_ERROR if result.function_error else Outcome.SUCCESS
        return Attempt(outcome, config.version, result.function_error, result.payload)

    def _require_worker(self) -> Any:
        if self._worker is None:
            raise ServiceError("ServiceException",
                               "No function worker is available to run this function: "
                               "start berth with `berth up`, or attach an agent.", status=503)
        return self._worker

    @staticmethod
    def _invocation(ctx: RequestContext, req: dict[str, Any], invoked: str, payload: bytes,
                    want_tail: bool) -> Any:
        from ..agent.functions.invocation import Invocation
        client_context = req.get("ClientContext")
        if client_context:
            try:
                client_context = base64.b64decode(client_context, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise ServiceError("InvalidRequestContentException",
                                   "Client context must be a valid Base64-encoded JSON "
                                   "object.") from None
        return Invocation(ctx.request_id, payload, invoked, client_context or None,
                          want_tail=want_tail)


def _check_json(payload: bytes) -> None:
    if not payload:
        return
    try:
        json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError("InvalidRequestContentException",
                           "Could not parse request body into json: Could not parse payload "
                           f"into json: {exc}") from None
