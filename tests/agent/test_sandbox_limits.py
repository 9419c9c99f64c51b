"""A sandbox's cgroup limits: memory (a bomb is killed, REPORT shows its peak), processes (a
fork bomb is stopped while it runs), CPU shares in proportion to memory; neighbours keep
answering."""
from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from pathlib import Path

from sandbox_harness import call, code, config, env_of, invoke, needs_root, run_worker, until

from berth.agent.functions.isolation import cpu_shares_for
from berth.agent.functions.worker import FunctionWorker

BOMBS = r'''
import os, time
COUNT = 0

def handler(event, context):
    global COUNT
    COUNT += 1
    if event.get("memory"):
        hog = [bytearray(16 * 1024 * 1024) for _ in range(64)]
        return len(hog)
    if event.get("fork"):
        while True:             # every child forks on too, and none gives up
            try:
                os.fork()
            except OSError:
                time.sleep(0.001)
    return {"count": COUNT}
'''


def tail_of(result: object) -> str:
    return base64.b64decode(result.log_tail).decode()   # type: ignore[attr-defined]


@needs_root
def test_limits_are_set_from_the_function_configuration(tmp_path: Path) -> None:
    tree = code(tmp_path, {"app.py": BOMBS})

    async def body(worker: FunctionWorker) -> None:
        await call(worker, config("sized", memory=256), tree)
        dirs = env_of(worker, "sized").sandbox.cgroups.dirs   # type: ignore[attr-defined]
        assert int((dirs["memory"] / "memory.limit_in_bytes").read_text()) == 256 << 20
        assert int((dirs["cpu"] / "cpu.shares").read_text()) == cpu_shares_for(256) == 148
        assert (dirs["pids"] / "pids.max").read_text().strip() == "100"

    run_worker(tmp_path, body, pids_max=100)


@needs_root
def test_a_memory_bomb_kills_only_its_sandbox(tmp_path: Path) -> None:
    tree = code(tmp_path, {"app.py": BOMBS})

    async def body(worker: FunctionWorker) -> None:
        await call(worker, config("neighbour"), tree)
        result = await invoke(worker, config("bomb", memory=128), tree, {"memory": True},
                              tail=True)
        assert result.function_error == "Unhandled"
        assert json.loads(result.payload)["errorMessage"].endswith(
            "Runtime exited with error: signal: killed")
        report = tail_of(result).splitlines()[-1]
        used = int(re.search(r"Max Memory Used: (\d+) MB", report).group(1))  # type: ignore
        assert 100 <= used <= 128, report
        assert (await call(worker, config("neighbour"), tree))["count"] == 2
        assert (await call(worker, config("bomb", memory=128), tree))["count"] == 1

    run_worker(tmp_path, body)


@needs_root
def test_a_fork_bomb_hits_its_process_limit_and_is_killed(tmp_path: Path) -> None:
    tree = code(tmp_path, {"app.py": BOMBS})

    async def body(worker: FunctionWorker) -> None:
        await call(worker, config("bystander"), tree)
        started = time.monotonic()
        bomb = asyncio.ensure_future(invoke(worker, config("forker", timeout=20), tree,
                                            {"fork": True}, tail=True))
        await until(lambda: any(e.config.name == "forker" for e in
                                worker.pools.environments()))
        pids_dir = env_of(worker, "forker").sandbox.cgroups.dirs["pids"]  # type: ignore
        # The bystander answers while the bomb runs.
        while not bomb.done() and time.monotonic() - started < 10:
            assert (await call(worker, config("bystander"), tree))["count"] >= 2
            await asyncio.sleep(0.05)
        result = await bomb
        assert time.monotonic() - started < 10      # stopped long before its timeout
        assert result.function_error == "Unhandled"
        assert json.loads(result.payload)["errorMessage"].endswith("signal: killed")
        assert ("berth: the sandbox reached its limit of 64 processes and threads and was "
                "stopped") in tail_of(result)
        assert await until(lambda: not pids_dir.exists())   # every process gone
        assert (await call(worker, config("forker", timeout=20), tree))["count"] == 1

    run_worker(tmp_path, body, pids_max=64)


@needs_root
def test_a_first_invocation_is_timed_like_any_other(tmp_path: Path) -> None:
    # Specialised runtimes can ask for their first event before the worker hears back from
    # the zygote: the function's own timeout must still hold.
    tree = code(tmp_path, {"app.py": "import time\ndef handler(e, c):\n    time.sleep(5)\n"})

    async def body(worker: FunctionWorker) -> None:
        for attempt in range(3):
            started = time.monotonic()
            result = await invoke(worker, config(f"slow-{attempt}", timeout=1), tree)
            assert time.monotonic() - started < 3
            assert json.loads(result.payload)["errorMessage"].endswith(
                "Task timed out after 1.00 seconds")

    run_worker(tmp_path, body)
