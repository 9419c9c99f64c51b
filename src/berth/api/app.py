"""The ASGI application: one generic path from an AWS request to a handler method and back.

Route by X-Amz-Target (JSON 1.1), by method + URI template (REST-JSON) or by the credential
scope and the form's Action (query), verify SigV4, parse and validate the input from the model,
call `provider.<operation_in_snake_case>(ctx, params)`, serialize the result or the
ServiceError. A service berth does not serve gets an error in its own protocol that says so.
No service knowledge lives here.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol
from urllib.parse import unquote

from botocore import xform_name
from botocore.model import OperationModel, ServiceModel

from . import cors, eventstream, protocol, query, sigv4, unserved
from .body import BodyLimits, ClientGone, RequestBody
from .errors import ServiceError
from .models import RestRouter, service_model
from .principal import Principal
from .validation import Amendments, validate

# Threads for the blocking operations (as many as anyio's default pool has).
_WORKERS = 40

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def quick_read(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a sync operation as a short read that never waits on a lock or the network when
    the store is embedded (SQLite in WAL mode: readers never wait for writers). Such calls run
    on the event loop instead of hopping to a thread, which costs more than the read itself;
    with a networked database they still run in a thread."""
    fn.__berth_quick__ = "read"  # type: ignore[attr-defined]
    return fn


def quick_write(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a sync operation as a short write that, with an embedded store, also runs on the
    event loop. Its transaction is short, and what it can wait for is brief: this process's
    own write lock and, should another process write the same SQLite file, that process's
    transaction. When the write lock is taken as the call arrives (another transaction, maybe
    a long one, is under way) the call runs in a thread instead. The operation must never
    sleep (see `on_event_loop`). For RunTask the hop to a thread and back costs a quarter of
    the call, and more under concurrent requests, where the loop and the workers trade the
    GIL."""
    fn.__berth_quick__ = "write"  # type: ignore[attr-defined]
    return fn


def on_event_loop() -> bool:
    """Whether the caller runs on an event loop's thread (an operation run inline there must
    not sleep: every other request would wait)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def random_uuid() -> str:
    """A random (version 4) UUID: what AWS hands out as request ids and ECS puts in container
    ARNs. From `random`, not `uuid.uuid4()`: an id only has to be unique, and this costs a
    quarter of the time (no system call); `random` is reseeded in a forked child, so ids do
    not repeat there."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_UUID_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


@dataclass
class Service:
    """A service berth serves: its botocore name, the provider with its operations, the
    error code the service uses for input that breaks the model's constraints, and what its
    signatures may name in place of the body's hash (nothing but S3's may)."""

    name: str
    provider: Any
    validation_code: str = "InvalidParameterException"
    max_body: int = 6 * 1024 * 1024
    payload_policy: sigv4.PayloadPolicy = sigv4.BODY_SIGNED
    inline_quick_calls: bool = False    # the store is embedded: quick calls run inline
    writer_busy: Callable[[], bool] = lambda: False     # whether the store's writer is taken
    amendments: Amendments = field(default_factory=dict)    # see validation.Amendments
    model: ServiceModel = field(init=False)

    def __post_init__(self) -> None:
        self.model = service_model(self.name)
        self.protocol = self.model.metadata["protocol"]
        # The service a request's credential scope names.
        self.signing_name = self.model.metadata.get("signingName",
                                                    self.model.metadata["endpointPrefix"])
        self.router = RestRouter.for_model(self.model) if self.protocol == "rest-json" else None
        self.operations = {n: self.model.operation_model(n) for n in self.model.operation_names}
        # Operations whose output is an event stream: the member the handler hands it in.
        self.event_streams = {n: next(k for k, m in op.output_shape.members.items()
                                      if m.serialization.get("eventstream"))
                              for n, op in self.operations.items()
                              if op.has_event_stream_output}
        # JSON services answer in their protocol version's content type (DynamoDB and SQS
        # speak 1.0, most others 1.1).
        self.json_content_type = (
            f"application/x-amz-json-{self.model.metadata.get('jsonVersion', '1.1')}".encode())
        self._handlers: dict[str, tuple[Callable[..., Any], str] | None] = {}

    def handler(self, operation: str) -> tuple[Callable[..., Any], str] | None:
        """The provider's method for an operation and how to call it: "async" on the loop,
        "inline" (a quick read, with an embedded store), "write" (a quick write: inline while
        the store's writer is free) or "thread"; None if unimplemented."""
        if operation not in self._handlers:
            method = getattr(self.provider, xform_name(operation), None)
            if method is None:
                found = None
            elif inspect.iscoroutinefunction(method):
                found = (method, "async")
            elif self.inline_quick_calls and getattr(method, "__berth_quick__", None):
                found = (method, "inline" if method.__berth_quick__ == "read" else "write")
            else:
                found = (method, "thread")
            self._handlers[operation] = found
        return self._handlers[operation]


@dataclass
class RequestContext:
    request_id: str
    region: str
    account_id: str
    service: str
    operation: str
    access_key: str
    endpoint: str
    # Who signed, what an authorization layer would decide on; None for berth's own calls
    # made in process (the function worker storing log lines).
    caller: Principal | None = None


class KeyStore(Protocol):
    """The access keys requests may be signed with. `token` is the request's session token
    (X-Amz-Security-Token), None without one."""

    def secret(self, access_key: str, token: str | None) -> str | None:
        """The key's secret; None for an unknown key. Raises the AWS error for a session
        token that is invalid or expired."""

    def principal(self, access_key: str, token: str | None) -> Principal:
        """Who signed with a key whose signature has been verified."""


@dataclass
class _Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    stream: AsyncIterator[bytes] | None = None   # an event stream's encoded messages


class ApiApp:
    def __init__(self, services: list[Service], keys: KeyStore, account_id: str,
                 body_limits: BodyLimits, mounts: dict[str, ASGIApp] | None = None) -> None:
        """`keys` knows the access keys that may sign, and who each names; `body_limits`
        bound the request bodies in flight. `mounts` maps path prefixes to berth's own
        (non-AWS) ASGI apps, such as the Lambda code download and the ECS agent channel."""
        self.services = services
        self.keys = keys
        self.body_limits = body_limits
        # Operations that block (store writes, most reads) run here, off the event loop.
        self._workers = ThreadPoolExecutor(_WORKERS, thread_name_prefix="berth-api")
        self.account_id = account_id
        self.mounts = dict(mounts or {})
        self.mount_prefixes = tuple(self.mounts)
        self.by_target: dict[str, Service] = {}
        self.rest: list[Service] = []
        self.by_signing_name = {svc.signing_name: svc for svc in services}
        self.served = [svc.model.metadata.get("serviceId", svc.name) for svc in services]
        for svc in services:
            if svc.protocol == "json":
                self.by_target[svc.model.metadata["targetPrefix"]] = svc
            elif svc.protocol == "rest-json":
                self.rest.append(svc)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith(self.mount_prefixes):
            prefix = next(p for p in self.mount_prefixes if path.startswith(p))
            await self.mounts[prefix](scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = random_uuid()
        method = scope["method"]
        if cors.is_preflight(method, headers):
            await _send(send, _Response(200, cors.preflight_headers(headers) + [
                (b"x-amzn-requestid", request_id.encode()), (b"content-length", b"0")], b""))
            return
        svc: Service | None = None
        body = RequestBody(receive, headers, self.body_limits)
        try:
            route = self._route(method, path, scope, headers)
            svc = route[0] if route else None
            response = await self._handle(route, scope, headers, body, request_id)
        except ClientGone:
            return
        except ServiceError as exc:
            response = _error_response(svc, exc, headers, scope, request_id)
        except Exception:
            log.exception("request %s failed", request_id)
            response = _error_response(svc, ServiceError(
                "InternalFailure", f"An internal error occurred (request {request_id}).",
                status=500), headers, scope, request_id)
        finally:
            body.release()
        response.headers.append((b"x-amzn-requestid", request_id.encode()))
        response.headers.extend(cors.response_headers(headers))
        if response.stream is not None:
            await _send_stream(send, receive, response)
        else:
            await _send(send, response)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Providers with background work (reconcilers, dispatchers, workers) define
        `async startup()` and `async shutdown()`; they run on the server's event loop."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for svc in self.services:
                        if hasattr(svc.provider, "startup"):
                            await svc.provider.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for svc in reversed(self.services):
                    if hasattr(svc.provider, "shutdown"):
                        try:
                            await svc.provider.shutdown()
                        except Exception:
                            log.exception("shutdown of %s failed", svc.name)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _route(self, method: str, path: str, scope: Scope, headers: dict[str, str]
               ) -> tuple[Service, OperationModel | None, dict[str, str]] | None:
        """The operation a request names, or None (answered after authentication). A query
        protocol request names its service in its credential scope and its operation in its
        form body: the operation is found once the body is read."""
        raw_query = scope.get("query_string", b"").decode("latin-1")
        if unserved.request_protocol(headers, raw_query, None) == "query":
            svc = self.by_signing_name.get(_scoped_service(headers, raw_query) or "")
            return (svc, None, {}) if svc is not None and svc.protocol == "query" else None
        target = headers.get("x-amz-target")
        if target:
            prefix, _, name = target.rpartition(".")
            svc = self.by_target.get(prefix)
            op = svc.operations.get(name) if svc is not None else None
            if svc is None or op is None:
                return None
            return svc, op, {}
        raw_path = scope.get("raw_path") or path.encode()
        raw = raw_path.decode("latin-1").split("?", 1)[0]
        query_keys = [p.split("=", 1)[0] for p in
                      scope.get("query_string", b"").decode("latin-1").split("&") if p]
        for svc in self.rest:
            assert svc.router is not None
            found = svc.router.match(method, raw, query_keys)
            if found:
                return svc, found[0], found[1]
        return None

    async def _handle(self, route: tuple[Service, OperationModel | None, dict[str, str]] | None,
                      scope: Scope, headers: dict[str, str], request_body: RequestBody,
                      request_id: str) -> _Response:
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        raw_query = scope.get("query_string", b"").decode("latin-1")
        # Authenticate before anything else, as AWS does: an unsigned probe learns nothing.
        # All that the headers decide is refused before a byte of the body is read: an
        # unserved service and an unknown operation too, once the caller's key and date
        # have passed.
        token = headers.get("x-amz-security-token") or _query_value(
            raw_query, "X-Amz-Security-Token")
        pending = sigv4.check(scope["method"], raw_path.split("?", 1)[0], raw_query, headers,
                              lambda key: self.keys.secret(key, token),
                              policy=route[0].payload_policy if route else sigv4.BODY_SIGNED)
        if pending.service not in self.by_signing_name:
            raise ServiceError(unserved.CODE, unserved.message(pending.service, self.served),
                               status=unserved.STATUS)
        if route is None:
            target = headers.get("x-amz-target")
            if target:
                raise ServiceError("UnknownOperationException", f"Unknown operation {target}")
            raise ServiceError("UnknownOperationException",
                               f"No operation matches {scope['method']} {scope['path']}",
                               status=404)
        svc, op, groups = route
        sigv4.check_scope(pending.service, svc.signing_name)
        body = await request_body.read(svc.max_body, throttled=lambda: _throttled(svc))
        identity = pending.verify(request_body.sha256)
        if svc.protocol == "query":
            pairs = query.form_pairs(body) if scope["method"] == "POST" else \
                query.form_pairs(raw_query.encode("latin-1"))
            action = query.action_of(pairs) or ""
            op = svc.operations.get(action)
            if op is None:
                raise ServiceError("UnknownOperationException",
                                   f"Could not find operation {action or '(none)'} for "
                                   f"version {svc.model.metadata['apiVersion']}")
            params = query.parse(op.input_shape, pairs, svc.validation_code)
        elif svc.protocol == "json":
            assert op is not None
            params = protocol.parse_json_body(body)
        else:
            assert op is not None
            params = protocol.parse_rest(op, groups, raw_query, headers, body)
        params = validate(op.input_shape, params, svc.validation_code, svc.amendments)
        ctx = RequestContext(request_id, identity.region, self.account_id, svc.name, op.name,
                             identity.access_key, f"http://{headers.get('host', 'localhost')}",
                             self.keys.principal(identity.access_key, token))
        found = svc.handler(op.name)
        if found is None:
            raise ServiceError("UnknownOperationException",
                               f"{op.name} is not supported by berth yet.")
        method, how = found
        if how == "async":
            result = await method(ctx, params)
        elif how == "inline" or (how == "write" and not svc.writer_busy()):
            result = method(ctx, params)
        else:
            result = await asyncio.get_running_loop().run_in_executor(
                self._workers, method, ctx, params)
        result = result or {}
        if svc.protocol == "query":
            return _Response(200, [(b"content-type", query.CONTENT_TYPE)],
                             query.serialize(svc.model, op, result, request_id))
        if op.name in svc.event_streams:
            member = svc.event_streams[op.name]
            stream = result[member]
            if svc.protocol == "json":   # the output's other members come first
                stream = _prepend(eventstream.initial_response(
                    {k: v for k, v in result.items() if k != member}), stream)
            return _Response(200, [(b"content-type", b"application/vnd.amazon.eventstream")],
                             b"", stream=stream)
        if svc.protocol == "json":
            return _Response(200, [(b"content-type", svc.json_content_type)],
                             protocol.dumps(result))
        status, extra, payload, ctype = protocol.serialize_rest(op, result)
        hdrs = [(b"content-type", ctype.encode())]
        hdrs += [(k.encode(), v.encode()) for k, v in extra.items()]
        return _Response(status, hdrs, payload)


def _throttled(svc: Service) -> ServiceError:
    """The service's own throttling error, as its model names it (every SDK retries it)."""
    names = svc.model.shape_names
    if "ThrottlingException" in names or "TooManyRequestsException" not in names:
        return ServiceError("ThrottlingException", "Rate exceeded")
    reason = svc.model.shape_for("TooManyRequestsException").members.get("Reason")
    fields = {"Reason": "CallerRateLimitExceeded"} if reason is not None and \
        "CallerRateLimitExceeded" in (reason.enum or []) else {}
    return ServiceError("TooManyRequestsException", "Rate exceeded", **fields)


def _query_value(raw_query: str, name: str) -> str | None:
    at = raw_query.find(name + "=")
    if at < 0 or (at > 0 and raw_query[at - 1] != "&"):
        return None
    return unquote(raw_query[at + len(name) + 1:].split("&", 1)[0])


def _scoped_service(headers: dict[str, str], raw_query: str) -> str | None:
    """The service a request's credential scope names (not yet verified)."""
    auth = headers.get("authorization", "")
    at = auth.find("Credential=")
    if at >= 0:
        scope = auth[at + 11:].split(",", 1)[0]
    else:
        scope = _query_value(raw_query, "X-Amz-Credential") or ""
    parts = scope.split("/")
    return parts[3] if len(parts) == 5 else None


def _error_response(svc: Service | None, exc: ServiceError, headers: dict[str, str],
                    scope: Scope, request_id: str) -> _Response:
    """The error in the protocol of the service called: the service's own, else the one the
    request is spoken in (an unserved service's, or a query request's before it is routed)."""
    raw_query = scope.get("query_string", b"").decode("latin-1")
    kind = svc.protocol if svc is not None else unserved.request_protocol(
        headers, raw_query, _scoped_service(headers, raw_query))
    if kind in ("query", "rest-xml"):
        return _xml_error(svc, exc, kind, headers, raw_query, request_id)
    shape = None
    if svc is not None and exc.code in svc.model.shape_names:
        shape = svc.model.shape_for(exc.code)
    status = exc.status or (shape.metadata.get("error", {}).get("httpStatusCode")
                            if shape is not None else None) or 400
    body: dict[str, Any] = dict(exc.fields)
    members = shape.members if shape is not None else {}
    if "Message" in members:
        body["Message"] = exc.message
    body["message"] = exc.message
    if svc is not None and svc.protocol == "rest-json":
        if "Type" in members and "Type" not in body:
            body["Type"] = "User" if status < 500 else "Service"
        ctype = b"application/json"
    else:
        body["__type"] = exc.code
        ctype = svc.json_content_type if svc is not None else b"application/x-amz-json-1.1"
    return _Response(int(status), [(b"content-type", ctype),
                                   (b"x-amzn-errortype", exc.code.encode())],
                     protocol.dumps(body))


def _xml_error(svc: Service | None, exc: ServiceError, kind: str, headers: dict[str, str],
               raw_query: str, request_id: str) -> _Response:
    model = svc.model if svc is not None else None
    status = exc.status or 400
    if model is not None and exc.code in model.shape_names:
        status = exc.status or model.shape_for(exc.code).metadata.get(
            "error", {}).get("httpStatusCode") or 400
    code = query.wire_code(model, exc.code)
    if kind == "rest-xml":
        body = query.rest_xml_error_body(code, exc.message, request_id)
    else:
        space = model.metadata.get("xmlNamespace", "") if model is not None else \
            unserved.namespace(_scoped_service(headers, raw_query) or "")
        body = query.error_body(space, code, exc.message, status, request_id)
    return _Response(int(status), [(b"content-type", query.CONTENT_TYPE)], body)


async def _send(send: Send, response: _Response) -> None:
    headers = response.headers
    if not any(k == b"content-length" for k, _ in headers):
        headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()


async def _send_stream(send: Send, receive: Receive, response: _Response) -> None:
    """An event stream: its messages as they come, until it ends or the client goes away
    (which closes the stream, so its producer stops)."""
    assert response.stream is not None
    stream = response.stream
    await send({"type": "http.response.start", "status": response.status,
                "headers": response.headers})

    async def pump() -> None:
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pumping, watching = asyncio.ensure_future(pump()), asyncio.ensure_future(disconnected())
    try:
        done, _ = await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pumping, watching):
            task.cancel()
        await asyncio.gather(pumping, watching, return_exceptions=True)
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    if pumping in done:
        if pumping.exception() is not None:     # the producer failed: end what was sent
            log.error("event stream failed", exc_info=pumping.exception())
        await send({"type": "http.response.body", "body": b"", "more_body": False})
