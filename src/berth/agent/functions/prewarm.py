"""Blank sandboxes kept ready per runtime, so that a cold start only specialises one.

A blank is forked, isolated and waiting, its runtime loaded but no function known. `take`
hands out a ready blank of a kind (or makes one at once when none is ready) and a background
task refills each kind to its target, one blank at a time. Kinds that are not pre-warmed by
configuration get a target of one after their first use.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Awaitable, Callable

from .sandbox import ForkedSandbox

log = logging.getLogger(__name__)

REFILL_BACKOFF = 1.0    # seconds before a refill tries again after a blank failed to start
# A refill waits this long after a take, so the cold start that took the blank has the CPU
# to itself: making a blank (fork, namespaces, rehearsal) costs about as much as the start.
REFILL_DELAY = 0.05


@dataclass(frozen=True)
class BlankKind:
    kind: str           # "python" (in place), "node", or "exec"
    python: str         # the interpreter whose zygote forks it
    runtime_dir: str    # host path of berth's runtime shown at /var/runtime


MakeBlank = Callable[[BlankKind], Awaitable[ForkedSandbox]]


class BlankPool:
    def __init__(self, make: MakeBlank, targets: dict[BlankKind, int],
                 on_demand_target: int = 1) -> None:
        self.make = make
        self.targets = dict(targets)
        self.on_demand_target = on_demand_target
        self.ready: dict[BlankKind, deque[ForkedSandbox]] = {}
        self._refills: dict[BlankKind, asyncio.Task[None]] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self._stopped = False

    def start(self) -> None:
        for kind, target in self.targets.items():
            if target > 0:
                self._refill(kind)

    async def take(self, kind: BlankKind) -> ForkedSandbox:
        ready = self.ready.get(kind)
        blank = None
        while ready:
            candidate = ready.popleft()
            if not candidate.exited.done():
                blank = candidate
                break
        if kind not in self.targets:
            self.targets[kind] = self.on_demand_target
        asyncio.get_running_loop().call_later(REFILL_DELAY, self._refill, kind)
        if blank is None:
            blank = await self.make(kind)
        return blank

    def size(self, kind: BlankKind) -> int:
        return len(self.ready.get(kind, ()))

    def _refill(self, kind: BlankKind) -> None:
        task = self._refills.get(kind)
        if self._stopped or (task is not None and not task.done()):
            return
        if self.size(kind) < self.targets.get(kind, 0):
            self._refills[kind] = asyncio.get_running_loop().create_task(self._fill(kind))

    async def _fill(self, kind: BlankKind) -> None:
        ready = self.ready.setdefault(kind, deque())
        while not self._stopped and len(ready) < self.targets.get(kind, 0):
            try:
                blank = await self.make(kind)
            except Exception:
                log.exception("could not pre-warm a %s sandbox", kind.kind)
                await asyncio.sleep(REFILL_BACKOFF)
                continue
            if self._stopped:
                self.discard(blank)
                return
            ready.append(blank)
            blank.exited.add_done_callback(lambda _, b=blank: self._died(kind, b))

    def _died(self, kind: BlankKind, blank: ForkedSandbox) -> None:
        ready = self.ready.get(kind)
        if ready is not None and blank in ready:
            # Only blanks still in the pool are the pool's to clean up.
            log.warning("a pre-warmed %s sandbox exited while waiting", kind.kind)
            ready.remove(blank)
            self.discard(blank)
            self._refill(kind)

    def discard(self, blank: ForkedSandbox) -> None:
        """Kill a sandbox and release what it held once it has exited."""
        blank.kill()
        task = asyncio.get_running_loop().create_task(_destroy_after_exit(blank))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def stop(self) -> None:
        self._stopped = True
        for task in self._refills.values():
            task.cancel()
        await asyncio.gather(*self._refills.values(), return_exceptions=True)
        for ready in self.ready.values():
            while ready:
                self.discard(ready.popleft())
        if self._cleanups:
            await asyncio.wait(list(self._cleanups), timeout=5)


async def _destroy_after_exit(sandbox: ForkedSandbox) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(sandbox.exited), 5)
    except TimeoutError:
        log.warning("sandbox %s did not exit after SIGKILL", sandbox.id)
    await sandbox.destroy()
