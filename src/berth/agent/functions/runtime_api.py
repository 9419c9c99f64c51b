"""The Lambda Runtime API, served to one sandbox on a listener of its own.

The official clients (awslambdaric, aws-lambda-cpp) know the API only by `host:port`, so each
sandbox gets its own 127.0.0.1 port and every request on it belongs to that sandbox. Requests
are parsed with httptools on asyncio streams and answered synchronously by the sandbox's
`RuntimeApiHandler`; only `GET .../invocation/next` waits, until the worker hands it an event.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Protocol

import httptools

log = logging.getLogger(__name__)

PREFIX = "/2018-06-01/runtime/"
INVOCATION = PREFIX + "invocation/"
MAX_RESPONSE = 6_291_556  # the size AWS checks function responses against
_REASONS = {200: b"OK", 202: b"Accepted", 400: b"Bad Request", 403: b"Forbidden",
            404: b"Not Found", 413: b"Request Entity Too Large", 500: b"Internal Server Error"}
ACCEPTED = (b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
            b"Content-Length: 15\r\n\r\n{\"status\":\"OK\"}")


class RuntimeApiHandler(Protocol):
    """What a sandbox answers; each returns the HTTP status and JSON body for the runtime.
    A handler may also define `admits(peer, local) -> bool` to refuse connections that do
    not come from its own sandbox."""

    def on_next(self, conn: "RuntimeConnection") -> None: ...

    def on_response(self, request_id: str, body: bytes, size: int) -> tuple[int, bytes]: ...

    def on_error(self, request_id: str, body: bytes, error_type: str) -> tuple[int, bytes]: ...

    def on_init_error(self, body: bytes, error_type: str) -> tuple[int, bytes]: ...


def error_json(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def next_response(request_id: str, deadline_ms: int, function_arn: str, trace_id: str,
                  client_context: str | None, identity: str | None, body: bytes,
                  extra_headers: str = "") -> bytes:
    """The whole HTTP response that hands one invocation to the runtime; `extra_headers`
    are whole header lines (berth's own, such as newer credentials)."""
    head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Lambda-Runtime-Aws-Request-Id: {request_id}\r\n"
            f"Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n"
            f"Lambda-Runtime-Invoked-Function-Arn: {function_arn}\r\n"
            f"Lambda-Runtime-Trace-Id: {trace_id}\r\n")
    if client_context:
        head += f"Lambda-Runtime-Client-Context: {client_context}\r\n"
    if identity:
        head += f"Lambda-Runtime-Cognito-Identity: {identity}\r\n"
    return (head + extra_headers + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class RuntimeConnection(asyncio.Protocol):
    def __init__(self, handler: RuntimeApiHandler) -> None:
        self.handler = handler
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.error_type = ""
        self.body: list[bytes] = []
        self.size = 0
        self.waiting = False     # a GET next is parked on this connection
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        admits = getattr(self.handler, "admits", None)
        if admits is not None and not admits(transport.get_extra_info("peername"),
                                             transport.get_extra_info("sockname")):
            log.warning("refused a Runtime API connection from %s: not from its sandbox",
                        transport.get_extra_info("peername"))
            transport.close()
            self.transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.waiting = False

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(400, error_json("InvalidRequest", "malformed HTTP request"))
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.url, self.error_type, self.body, self.size = b"", "", [], 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"lambda-runtime-function-error-type":
            self.error_type = value.decode("latin-1")
        elif lower == b"expect" and value.lower() == b"100-continue" and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= MAX_RESPONSE:
            self.body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        body = b"".join(self.body)
        self.body = []
        if path.startswith(INVOCATION):
            rest = path[len(INVOCATION):]
            if rest == "next" and method == b"GET":
                self.waiting = True
                self.handler.on_next(self)
                return
            request_id, _, action = rest.partition("/")
            if method == b"POST" and action == "response":
                self._write(*self.handler.on_response(request_id, body, self.size))
                return
            if method == b"POST" and action == "error":
                self._write(*self.handler.on_error(request_id, body,
                                                   self.error_type or "Unhandled"))
                return
        elif path == PREFIX + "init/error" and method == b"POST":
            self._write(*self.handler.on_init_error(body, self.error_type or "Unhandled"))
            return
        self._write(404, error_json("NotFound", f"no such Runtime API resource: {path}"))

    # answers

    def deliver(self, response: bytes) -> bool:
        """Answer the parked GET next with an invocation; False if the runtime is gone."""
        if self.transport is None or not self.waiting:
            return False
        self.waiting = False
        self.transport.write(response)
        return True

    def _write(self, status: int, body: bytes) -> None:
        if self.transport is None:
            return
        if status == 202 and body == b"":
            self.transport.write(ACCEPTED)
        else:
            self.transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n" % (
                                     status, _REASONS.get(status, b"Error"), len(body)) + body)
        if not self.keep_alive:
            self.transport.close()


async def listen(handler: RuntimeApiHandler) -> tuple[asyncio.AbstractServer, int]:
    """A listener for one sandbox on a free port of 127.0.0.1."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RuntimeConnection(handler), "127.0.0.1", 0,
                                      backlog=16)
    port = server.sockets[0].getsockname()[1]
    return server, int(port)
