"""A function worker in the test's own event loop, for the sandbox tests: functions as
FunctionConfigs, code as directories, results and log lines as the worker produces them."""
from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from berth.agent.functions.environment import ExecutionEnvironment
from berth.agent.functions.invocation import Invocation, InvocationResult
from berth.agent.functions.worker import FunctionWorker
from berth.lambda_.model import FunctionConfig

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="sandbox isolation needs root")


class MemorySink:
    """Keeps shipped log events in memory, as a LogSink."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def put(self, key: tuple[str, str, str], events: list[dict[str, Any]]) -> None:
        self.messages += [e["message"] for e in events]


def config(name: str, runtime: str = "python3.11", memory: int = 128, timeout: int = 3,
           tmp_mb: int = 512, handler: str = "app.handler") -> FunctionConfig:
    return FunctionConfig("us-east-1", "000000000000", name, "$LATEST",
                          f"arn:aws:lambda:us-east-1:000000000000:function:{name}", runtime,
                          handler, memory, timeout, "sha", "r1", ephemeral_storage=tmp_mb)


def code(root: Path, files: dict[str, str]) -> Path:
    """A function's code directory, as the code store unpacks it (owned by root, 0600 files
    included: sandboxes must read them through their idmapped mount)."""
    tree = root / ("code-" + uuid.uuid4().hex[:8])
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
        os.chmod(tree / rel, 0o600)
    return tree


def run_worker(tmp_path: Path, body: Callable[[FunctionWorker], Awaitable[Any]],
               timeout: float = 40, **kw: Any) -> Any:
    kw.setdefault("prewarm_python", 1)
    kw.setdefault("prewarm_node", 0)

    async def scenario() -> Any:
        worker = FunctionWorker(tmp_path / "data" / "sandboxes", kw.pop("sink", MemorySink()),
                                **kw)
        await worker.start()
        try:
            return await asyncio.wait_for(body(worker), timeout)
        finally:
            await worker.stop()
    return asyncio.run(scenario())


async def invoke(worker: FunctionWorker, cfg: FunctionConfig, tree: Path,
                 event: Any = None, tail: bool = False) -> InvocationResult:
    return await worker.invoke(cfg, tree, Invocation(
        str(uuid.uuid4()), json.dumps(event or {}).encode(), cfg.function_arn, want_tail=tail))


async def call(worker: FunctionWorker, cfg: FunctionConfig, tree: Path,
               event: Any = None) -> Any:
    result = await invoke(worker, cfg, tree, event)
    assert result.function_error is None, result.payload
    return json.loads(result.payload)


def env_of(worker: FunctionWorker, name: str) -> ExecutionEnvironment:
    (env,) = [e for e in worker.pools.environments() if e.config.name == name]
    return env


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()
