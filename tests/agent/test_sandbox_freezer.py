"""Idle sandboxes are frozen in their cgroup right after their response: no CPU for any of
their threads, a freeze and thaw of microseconds, a kill that still lands; and idle ones are
evicted least recently used first under memory pressure, their next invoke a cold start."""
from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from sandbox_harness import call, code, config, env_of, needs_root, run_worker, until

from berth.agent.functions.cgroups import ANCHOR
from berth.agent.functions.environment import State
from berth.agent.functions.worker import FunctionWorker

SPINNER = r'''
import threading, time
COUNT = 0
SPINS = 0

def _spin():
    global SPINS
    while True:
        SPINS += 1

def handler(event, context):
    global COUNT
    COUNT += 1
    if event.get("spin") and not any(t.name == "spin" for t in threading.enumerate()):
        threading.Thread(target=_spin, name="spin", daemon=True).start()
    time.sleep(event.get("sleep", 0))
    return {"count": COUNT, "spins": SPINS}
'''


def usage_ns(cpuacct: Path) -> int:
    return int((cpuacct / "cpuacct.usage").read_text())


@needs_root
def test_a_frozen_sandbox_uses_no_cpu_even_with_a_busy_thread(tmp_path: Path) -> None:
    tree = code(tmp_path, {"app.py": SPINNER})

    async def body(worker: FunctionWorker) -> None:
        await call(worker, config("spin"), tree, {"spin": True, "sleep": 0.1})
        env = env_of(worker, "spin")
        assert await until(lambda: env.state is State.IDLE)
        assert env.sandbox.wait_frozen()                    # type: ignore[union-attr]
        cpuacct = env.sandbox.cgroups.dirs["cpuacct"]       # type: ignore[union-attr]
        before = usage_ns(cpuacct)
        await asyncio.sleep(0.5)
        assert usage_ns(cpuacct) == before                  # not one nanosecond
        # Thawed for an invocation, the same thread burns CPU at once.
        await call(worker, config("spin"), tree, {"sleep": 0.2})
        assert usage_ns(cpuacct) - before > 50_000_000

    run_worker(tmp_path, body)


@needs_root
def test_freeze_and_thaw_cost_microseconds(tmp_path: Path) -> None:
    tree = code(tmp_path, {"app.py": SPINNER})

    async def body(worker: FunctionWorker) -> None:
        freezer = worker.driver.hierarchies.get("freezer")      # type: ignore[attr-defined]
        assert (freezer / ANCHOR / "freezer.state").read_text().strip() == "FROZEN"
        await call(worker, config("cheap"), tree)
        env = env_of(worker, "cheap")
        assert await until(lambda: env.state is State.IDLE)
        sandbox = env.sandbox
        assert sandbox is not None and sandbox.wait_frozen()
        costs = []
        for _ in range(200):
            t0 = time.perf_counter()
            sandbox.thaw()
            sandbox.freeze()
            costs.append(time.perf_counter() - t0)
        assert sandbox.wait_frozen()
        # Without the frozen anchor each write patches kernel text: ~160 µs the pair.
        assert statistics.median(costs) < 80e-6, statistics.median(costs)
        assert (await call(worker, config("cheap"), tree))["count"] == 2

    run_worker(tmp_path, body)


@needs_root
def test_a_frozen_sandbox_can_be_killed(tmp_path: Path) -> None:
    tree = code(tmp_path, {"app.py": SPINNER})

    async def body(worker: FunctionWorker) -> None:
        await call(worker, config("doomed"), tree, {"spin": True})
        env = env_of(worker, "doomed")
        assert await until(lambda: env.state is State.IDLE)
        assert env.sandbox is not None and env.sandbox.wait_frozen()
        env.kill()
        status = await asyncio.wait_for(env.sandbox.exited, 2)
        assert status.describe() == "signal: killed"
        assert (await call(worker, config("doomed"), tree))["count"] == 1

    run_worker(tmp_path, body)


@needs_root
def test_memory_pressure_evicts_the_least_recently_used_first(tmp_path: Path) -> None:
    tree = code(tmp_path, {"app.py": SPINNER})

    async def body(worker: FunctionWorker) -> None:
        worker.pools.memory_reserve_mb = 0          # no pressure while they warm up
        for name in ("first", "second", "third"):
            assert (await call(worker, config(name), tree))["count"] == 1
        await call(worker, config("second"), tree)  # now "first" is the least recent
        gone: list[str] = []
        worker.pools.memory_reserve_mb = 1 << 40    # always under pressure from here on
        deadline = time.monotonic() + 5
        while len(gone) < 3 and time.monotonic() < deadline:
            alive = {e.config.name for e in worker.pools.environments()}
            gone += [n for n in ("first", "third", "second") if n not in alive
                     and n not in gone]
            await asyncio.sleep(0.01)
        assert gone == ["first", "third", "second"]
        worker.pools.memory_reserve_mb = 0
        out = await call(worker, config("first"), tree)
        assert out["count"] == 1                    # a correct cold start

    run_worker(tmp_path, body)
