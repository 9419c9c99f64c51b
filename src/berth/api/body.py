"""Request bodies: read only once the headers have passed authentication, hashed as they
arrive, and held within one memory budget shared by every request in flight.

A request past the budget is refused with the service's throttling error, which every AWS
SDK retries.
"""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .errors import ServiceError

Receive = Callable[[], Awaitable[dict[str, Any]]]


class ClientGone(Exception):
    """The client went away before its body arrived: there is no one left to answer."""


class BodyBudget:
    """How many bytes of request bodies the server holds at once (taken before reading,
    given back when the request is done). The event loop is the only user: no lock."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.capacity:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size


@dataclass(frozen=True)
class BodyLimits:
    budget: BodyBudget
    idle_timeout: float     # seconds a body may keep the server waiting between two reads


class RequestBody:
    """One request's body, read on demand. (A response to a request whose body was left
    unread ends the connection: api/http.py.)"""

    def __init__(self, receive: Receive, headers: dict[str, str], limits: BodyLimits) -> None:
        self._receive = receive
        self._limits = limits
        self._held = 0
        declared = headers.get("content-length")
        self.declared = int(declared) if declared and declared.isdigit() else None
        self.sha256 = ""

    async def read(self, limit: int, throttled: Callable[[], ServiceError]) -> bytes:
        """The body, its SHA-256 left in `sha256`. Refused with a 413 past `limit` bytes,
        with `throttled()` when the budget cannot hold it."""
        if self.declared is not None and self.declared > limit:
            raise _too_large(limit)
        if self.declared:
            self._take(self.declared, throttled)
        hasher = hashlib.sha256()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._next()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            if size > self._held:       # no Content-Length: taken as it comes
                self._take(size - self._held, throttled)
            hasher.update(chunk)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        self.sha256 = hasher.hexdigest()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def release(self) -> None:
        """The request is done with its body: give its share of the budget back."""
        self._limits.budget.give(self._held)
        self._held = 0

    def _take(self, size: int, throttled: Callable[[], ServiceError]) -> None:
        if not self._limits.budget.take(size):
            raise throttled()
        self._held += size

    async def _next(self) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._limits.idle_timeout):
                message = await self._receive()
        except TimeoutError:
            raise ServiceError(
                "RequestTimeout", "Your socket connection to the server was not read from or "
                "written to within the timeout period. Idle connections will be closed.",
                status=400) from None
        if message["type"] == "http.disconnect":
            raise ClientGone
        return message


def _too_large(limit: int) -> ServiceError:
    return ServiceError("RequestEntityTooLargeException",
                        f"Request must be smaller than {limit} bytes.", status=413)
