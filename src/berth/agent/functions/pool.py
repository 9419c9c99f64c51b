"""Execution environments per function version: reuse, scale-out, retirement, eviction.

An invocation goes to an idle environment of its version (the most recently used, so the
fewest stay warm), else to one that has just answered and is about to ask for its next
event, else to a new one. A new revision of the version retires the old environments, as
does a change or deletion the control plane reports (`reclaim`); idle ones past the TTL are
evicted, and under memory pressure (the host's available memory
below a reserve) the least recently used idle ones go first. Busy sandboxes are watched for
their process limit, so a fork bomb is stopped while it runs.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...lambda_.model import FunctionConfig
from .credentials import Callback
from .environment import ExecutionEnvironment, State
from .invocation import Call, error_payload
from .logs_shipper import LogShipper
from .runtimes import RuntimeUnavailable
from .sandbox import SandboxDriver

log = logging.getLogger(__name__)

VersionKey = tuple[str, str, str]   # region, function name, version
WATCH_INTERVAL = 0.25                # seconds between looks at busy sandboxes and memory
PRESSURE_BATCH = 0.05                # share of the idle sandboxes evicted per look, at least 1


def default_memory_reserve_mb() -> int:
    """5% of the host's memory, at least 256 MiB."""
    try:
        with open("/proc/meminfo", "rb") as f:
            total_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return 256
    return max(256, total_kb // 1024 // 20)


class SandboxStartError(Exception):
    """The host could not start a sandbox (not the function's fault)."""


@dataclass
class VersionPool:
    revision_id: str
    envs: list[ExecutionEnvironment] = field(default_factory=list)
    idle: list[ExecutionEnvironment] = field(default_factory=list)


def available_memory_mb() -> int:
    """MemAvailable of /proc/meminfo: what the host can still give without swapping."""
    with open("/proc/meminfo", "rb") as f:
        for line in f:
            if line.startswith(b"MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 1 << 30


def lru_victims(idle: list[ExecutionEnvironment], count: int) -> list[ExecutionEnvironment]:
    """The `count` idle environments used longest ago."""
    return sorted(idle, key=lambda env: env.last_used)[:count]


class Pools:
    def __init__(self, driver: SandboxDriver, shipper: LogShipper, work_dir: Path,
                 idle_ttl: float, memory_reserve_mb: int | None = None,
                 watch_interval: float = WATCH_INTERVAL, callback: Callback | None = None
                 ) -> None:
        self.driver = driver
        self.callback = callback
        self.shipper = shipper
        self.work_dir = work_dir
        self.idle_ttl = idle_ttl
        # Idle sandboxes are evicted while the host has less than this available.
        self.memory_reserve_mb = (memory_reserve_mb if memory_reserve_mb is not None
                                  else default_memory_reserve_mb())
        self.watch_interval = watch_interval
        self.versions: dict[VersionKey, VersionPool] = {}
        self._code: dict[str, Path] = {}   # environment id -> code dir, for re-dispatch
        self._tasks: list[asyncio.Task[None]] = []

    def _pool(self, config: FunctionConfig) -> VersionPool:
        key = (config.region, config.name, config.version)
        pool = self.versions.get(key)
        if pool is None or pool.revision_id != config.revision_id:
            if pool is not None:
                log.info("%s:%s changed: retiring %d environments", config.name,
                         config.version, len(pool.envs))
                for env in pool.envs:
                    env.retire()
            pool = self.versions[key] = VersionPool(config.revision_id)
        return pool

    async def dispatch(self, config: FunctionConfig, code_dir: Path, call: Call) -> None:
        pool = self._pool(config)
        callback = self.callback
        credentials = callback.roles.for_function(config) if callback is not None else None
        while pool.idle:
            env = pool.idle.pop()
            if env.state is State.IDLE and env.accepts:
                if env.outlived:
                    env.retire()
                    continue
                env.assign(call, credentials)
                return
        for env in pool.envs:
            if env.accepts and not env.outlived:
                env.assign(call, credentials)
                return
        env = ExecutionEnvironment(config, self.shipper, self._on_idle, self._on_dead)
        pool.envs.append(env)
        self._code[env.id] = code_dir
        try:
            await env.start(self.driver, code_dir, self.work_dir, call,
                            callback.endpoint if callback is not None else None, credentials)
        except RuntimeUnavailable as exc:
            self._forget(env)
            await env.abort()
            call.finish(error_payload(f"RequestId: {call.invocation.request_id} Error: "
                                      f"{exc.message}", exc.error_type), "Unhandled")
        except Exception as exc:
            self._forget(env)
            await env.abort()
            log.exception("could not start a sandbox for %s", config.name)
            raise SandboxStartError(f"The sandbox for {config.name} could not start: "
                                    f"{exc}") from exc

    def _on_idle(self, env: ExecutionEnvironment) -> None:
        pool = self.versions.get((env.config.region, env.config.name, env.config.version))
        if pool is not None and pool.revision_id == env.config.revision_id:
            pool.idle.append(env)

    def _on_dead(self, env: ExecutionEnvironment, lost: Call | None) -> None:
        code_dir = self._forget(env)
        if lost is not None and code_dir is not None and not lost.future.done():
            # Assigned while the runtime was between its answer and its next request, and it
            # died in between: the invocation never started, so it runs elsewhere.
            asyncio.get_running_loop().create_task(self._redispatch(env.config, code_dir, lost))

    async def _redispatch(self, config: FunctionConfig, code_dir: Path, call: Call) -> None:
        try:
            await self.dispatch(config, code_dir, call)
        except Exception as exc:
            if not call.future.done():
                call.future.set_exception(exc)

    def _forget(self, env: ExecutionEnvironment) -> Path | None:
        key = (env.config.region, env.config.name, env.config.version)
        pool = self.versions.get(key)
        if pool is not None:
            if env in pool.envs:
                pool.envs.remove(env)
            if env in pool.idle:
                pool.idle.remove(env)
            if not pool.envs and env.retired and pool.revision_id == env.config.revision_id:
                del self.versions[key]      # reclaimed: nothing of the version is left here
        return self._code.pop(env.id, None)

    def functions(self) -> set[tuple[str, str]]:
        """(region, name) of every function with environments here."""
        return {(region, name) for (region, name, _), pool in self.versions.items()
                if pool.envs}

    def reclaim(self, region: str, name: str, revisions: dict[VersionKey, str]) -> None:
        """The function changed (or went): retire its environments of versions that are gone
        or now have another revision (`revisions`: what the store holds). Idle ones end now,
        busy ones when their invocation does."""
        for key in [k for k in self.versions if k[:2] == (region, name)]:
            pool = self.versions[key]
            if revisions.get(key) == pool.revision_id:
                continue
            if pool.envs:
                log.info("%s:%s changed or was deleted: ending %d environments", name, key[2],
                         len(pool.envs))
            for env in list(pool.envs):
                env.retire()
            if not pool.envs:
                del self.versions[key]

    def code_in_use(self) -> set[Path]:
        return set(self._code.values())

    def environments(self) -> list[ExecutionEnvironment]:
        return [env for pool in self.versions.values() for env in pool.envs]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._evict_loop()), loop.create_task(self._watch())]

    async def _evict_loop(self) -> None:
        period = min(max(self.idle_ttl / 4, 0.2), 30.0)
        while True:
            await asyncio.sleep(period)
            cutoff = time.monotonic() - self.idle_ttl
            for env in self.environments():
                if env.state is State.IDLE and env.last_used < cutoff:
                    log.debug("evicting idle environment %s of %s", env.id, env.config.name)
                    env.kill()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.watch_interval)
            try:
                self.watch_once()
            except Exception:
                log.exception("watching sandboxes failed")

    def watch_once(self) -> None:
        envs = self.environments()
        for env in envs:
            if env.state in (State.BUSY, State.FINISHING):
                env.check_process_limit()
        if available_memory_mb() >= self.memory_reserve_mb:
            return
        idle = [env for env in envs if env.state is State.IDLE]
        victims = lru_victims(idle, max(1, int(len(idle) * PRESSURE_BATCH)))
        if victims:
            log.info("memory pressure (under %d MiB available): evicting %d of %d idle "
                     "sandboxes", self.memory_reserve_mb, len(victims), len(idle))
        for env in victims:
            env.kill()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        envs = self.environments()
        for env in envs:
            env.kill()
        exits = [env.sandbox.exited for env in envs if env.sandbox is not None]
        if exits:
            await asyncio.wait(exits, timeout=5)
        await asyncio.sleep(0)
        # Their cgroups go before the driver removes the worker's own.
        cleanups = [env.cleaned for env in envs if env.cleaned is not None]
        if cleanups:
            await asyncio.wait(cleanups, timeout=5)
