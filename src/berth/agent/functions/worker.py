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
from .invocation import Call, Invocation, InvocationResult
from .logs_shipper import LogShipper, LogSink
from .pool import Pools
from .runtimes import SERVER_PYTHON
from .sandbox import ProcessDriver, SandboxDriver

log = logging.getLogger(__name__)


class FunctionWorker:
    def __init__(self, work_dir: Path, sink: LogSink, idle_ttl: float = 300.0,
                 deep_freeze_after: float = 1.0, log_interval: float = 0.2,
                 driver: SandboxDriver | None = None) -> None:
        self.work_dir = work_dir
        self.driver = driver or ProcessDriver(SERVER_PYTHON, deep_freeze_after)
        self.shipper = LogShipper(sink, log_interval)
        self.pools = Pools(self.driver, self.shipper, work_dir, idle_ttl)

    async def start(self) -> None:
        # Sandboxes of an earlier run of this worker are gone; so is their scratch space.
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
