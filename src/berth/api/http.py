"""uvicorn's httptools protocol, sending each response's head and body in one write.

uvicorn writes the status line and headers as soon as the app starts a response, and the body
in a second write. On loopback each write is a system call that also wakes the reader, and a
client that reads the head first then wakes again for the body: for berth's small JSON answers
the second round costs as much as the rest of the HTTP layer. Here the head is held until the
body's first bytes (or the end of the response, or the connection) and leaves with them.
"""
from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD_END = b"\r\n\r\n"
_INTERIM = b"HTTP/1.1 1"       # 100 Continue: the client waits for it before sending a body


class _OneWriteResponses:
    """A transport that holds a response head until the next write, then sends both at once.
    Everything else is the wrapped transport's own."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held = b""

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
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_OneWriteResponses(transport))  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        # A response with no body bytes (HEAD, an empty body) wrote no body: send its head.
        self.transport.flush()  # type: ignore[attr-defined]
        super().on_response_complete()
