"""The function worker: runs invocations of function versions in warm sandboxes.

Under `berth up` it lives in the server process, on its event loop; the Lambda service hands
it a FunctionConfig, the unpacked code and the invocation, and awaits the result.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from ...lambda_.model import FunctionConfig
from ..sandbox_spec import DEFAULT_PIDS_MAX
from .credentials import Callback
from .invocation import Call, Invocation, InvocationResult
from .logs_shipper import LogShipper, LogSink
from .pool import Pools
from .run_record import RunRecord
from .runtimes import SERVER_PYTHON
from .sandbox import SandboxDriver
from .zygote_driver import ZygoteDriver

log = logging.getLogger(__name__)


class FunctionWorker:
    """`isolate`: namespaces and a private root for every sandbox where the host allows it
    (else the process fallback). `prewarm_python`/`prewarm_node`: blank sandboxes kept ready
    per runtime. `memory_reserve_mb`: idle sandboxes are evicted, least recently used first,
    while the host has less memory available (default 5%). Idle sandboxes are frozen in their
    cgroup at once. `callback`: the endpoint sandboxes call berth at and their roles'
    credentials (none: sandboxes get neither)."""

    def __init__(self, work_dir: Path, sink: LogSink, idle_ttl: float = 300.0,
                 log_interval: float = 0.2,
                 driver: SandboxDriver | None = None, isolate: bool = True,
                 prewarm_python: int = 4, prewarm_node: int = 2,
                 pids_max: int = DEFAULT_PIDS_MAX, memory_reserve_mb: int | None = None,
                 callback: Callback | None = None) -> None:
        self.work_dir = work_dir
        # What this run starts, for the next run of the same data dir to end after a crash.
        self.record = RunRecord(work_dir.with_name(work_dir.name + ".run"))
        self.driver = driver or ZygoteDriver(work_dir, SERVER_PYTHON, isolate=isolate,
                                             prewarm_python=prewarm_python,
                                             prewarm_node=prewarm_node, pids_max=pids_max,
                                             record=self.record)
        self.shipper = LogShipper(sink, log_interval)
        self.pools = Pools(self.driver, self.shipper, work_dir, idle_ttl, memory_reserve_mb,
                           callback=callback)

    async def start(self) -> None:
        # Sandboxes an earlier run of this worker left are ended; so is their scratch space.
        await asyncio.to_thread(self.record.reap)
        self.record.begin()
        await asyncio.to_thread(shutil.rmtree, self.work_dir, True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        await self.driver.start()
        await self.shipper.start()
        await self.pools.start()

    async def stop(self) -> None:
        await self.pools.stop()
        await self.shipper.stop()
        await self.driver.stop()

    async def invoke(self, config: FunctionConfig, code_dir: Path,
                     invocation: Invocation) -> InvocationResult:
        call = Call(invocation, asyncio.get_running_loop().create_future())
        await self.pools.dispatch(config, code_dir, call)
        return await call.future

    async def logs_stored(self) -> None:
        """Return once every log line so far is in the store: those of every invocation that
        has ended (they are all written before its result)."""
        await self.shipper.shipped(self.shipper.mark())
