"""Wake-ups from the threads that change state to the coroutines waiting on it: an agent's long
poll (its instance got work) and the service reconciler (a service or its tasks changed).

Writers run in worker threads; waiters are coroutines on the server's event loop. Before the
loop is attached (no startup yet) wake-ups are dropped: the waiters re-read on a timer anyway.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ..api.app import on_event_loop


class Wakeups:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._instances: dict[str, asyncio.Event] = {}
        self._reconciler: asyncio.Event | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._reconciler = asyncio.Event()

    # -- from any thread ---------------------------------------------------------------------

    def instances(self, arns: Iterable[str]) -> None:
        if self._loop is None:
            return
        if on_event_loop():     # an operation run inline on the loop: no wake-up to send
            self._set_instances(list(arns))
        else:
            self._loop.call_soon_threadsafe(self._set_instances, list(arns))

    def all_instances(self) -> None:
        """Wake every held poll (the server is stopping)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: self._set_instances(list(self._instances)))

    def reconciler(self) -> None:
        if self._loop is not None and self._reconciler is not None:
            self._loop.call_soon_threadsafe(self._reconciler.set)

    # -- on the loop --------------------------------------------------------------------------

    def _set_instances(self, arns: list[str]) -> None:
        for arn in arns:
            event = self._instances.get(arn)
            if event is not None:
                event.set()

    async def wait_instance(self, arn: str, timeout: float) -> bool:
        """True if woken for `arn` within `timeout` seconds."""
        event = self._instances.setdefault(arn, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            event.clear()

    async def wait_reconciler(self, timeout: float) -> None:
        assert self._reconciler is not None
        try:
            await asyncio.wait_for(self._reconciler.wait(), timeout)
        except TimeoutError:
            pass
        self._reconciler.clear()
