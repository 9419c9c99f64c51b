"""uvicorn's httptools protocol, with what berth changes about it.

- Each response's head and body leave in one write. uvicorn writes the status line and
  headers as soon as the app starts a response, and the body in a second write. On loopback
  each write is a system call that also wakes the reader, and a client that reads the head
  first then wakes again for the body: for berth's small JSON answers the second round costs
  as much as the rest of the HTTP layer. Here the head is held until the body's first bytes
  (or the end of the response, or the connection) and leaves with them.
- No request body is read before the app asks for it. uvicorn reads ahead until 64 KiB are
  buffered; berth authenticates a request from its headers first, and refuses most bad ones
  without reading their bodies at all. What a connection holds unasked is the one read that
  brought the end of the headers.
- Slow clients are cut off: a request's headers must arrive within `header_timeout` seconds
  of its first byte (of the connection's start, for the first request); past
  `max_connections` open connections a new one is answered 503 and closed at once. (The
  pause between requests is uvicorn's keep-alive timeout; a body that stalls is the app's to
  time out, since only the app knows when it is waiting for one.)
- A response to a request whose body was left unread says `connection: close` and ends the
  connection (reading the rest to find the next request would let a client make the server
  read all it sends). uvicorn decides both by the cycle's `keep_alive`, so that is held False
  for as long as a request's body has not fully arrived. The close lingers: the server stops
  writing, drops what still arrives for LINGER seconds, then closes, so the client reads the
  answer instead of a reset.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LINGER = 2.0       # seconds a connection ended with an unread body drops its data

_BUSY_BODY = json.dumps({"__type": "ServiceUnavailableException",
                         "message": "Too many open connections; retry later."}).encode()
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
         b"x-amzn-errortype: ServiceUnavailableException\r\nconnection: close\r\n"
         b"content-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)

_HEAD_END = b"\r\n\r\n"
_INTERIM = b"HTTP/1.1 1"       # 100 Continue: the client waits for it before sending a body


class _OneWriteResponses:
    """A transport that holds a response head until the next write, then sends both at once.
    Everything else is the wrapped transport's own."""

    def __init__(self, transport: asyncio.Transport,
                 linger: Callable[[], bool] = lambda: False) -> None:
        self._transport = transport
        self._held = b""
        self._linger = linger       # asked on close: True when the protocol closes later

    def write(self, data: bytes) -> None:
        if self._held:
            data, self._held = self._held + data, b""
        elif data.endswith(_HEAD_END) and data.startswith(b"HTTP/") \
                and not data.startswith(_INTERIM):
            self._held = data
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._held:
            data, self._held = self._held, b""
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        if not self._linger():
            self._transport.close()

    @property
    def raw(self) -> asyncio.Transport:
        return self._transport

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float       # seconds a request's headers may take to arrive
    max_connections: int        # connections open at once; past it, 503 and close


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's protocol with berth's changes; uvicorn makes one per connection (give it
    the limits with functools.partial)."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._refused = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._lingering: asyncio.TimerHandle | None = None
        self._linger_over = False
        self._keep_alive = False        # the parsed request's keep-alive, once its body is in

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            transport.write(_BUSY)
            transport.close()
            return
        super().connection_made(_OneWriteResponses(transport, self._linger))  # type: ignore[arg-type]
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._linger_over = True
        for timer in (self._lingering, self._header_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self._lingering is not None:
            return      # the rest of a body the app never read: dropped unparsed
        super().data_received(data)
        cycle = self.cycle
        if cycle is not None and cycle.more_body and cycle.body and not cycle.response_complete:
            # Body bytes the app has not taken yet: read no more until it asks (receive()
            # resumes reading).
            self.flow.pause_reading()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()      # the next request on the connection: its own bound

    def on_headers_complete(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:
            self._keep_alive, cycle.keep_alive = cycle.keep_alive, False

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = self._keep_alive

    def shutdown(self) -> None:
        self._keep_alive = False
        super().shutdown()

    def on_response_complete(self) -> None:
        # A response with no body bytes (HEAD, an empty body) wrote no body: send its head.
        self.transport.flush()  # type: ignore[attr-defined]
        super().on_response_complete()
        if self._lingering is not None:
            self._unset_keepalive_if_required()

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.limits.header_timeout,
                                                      self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self.transport.close()

    def _linger(self) -> bool:
        """Asked when the connection is to close: True to linger first (the request's body
        is still arriving), and then the protocol closes it itself."""
        if self._linger_over:
            return False
        if self._lingering is not None:
            return True
        cycle = self.cycle
        # Only after a whole response: a close mid-response (uvicorn's own 400 for a request
        # it cannot parse) is no answer to wait for.
        if cycle is None or not cycle.more_body or cycle.disconnected \
                or not cycle.response_complete:
            return False
        raw: asyncio.Transport = self.transport.raw  # type: ignore[attr-defined]
        if raw.is_closing():
            return False
        raw.write_eof()         # after the answer: the client sees it, then the end
        self.flow.resume_reading()
        self._lingering = self.loop.call_later(LINGER, self._end_linger)
        return True

    def _end_linger(self) -> None:
        self._linger_over = True
        self.transport.close()
