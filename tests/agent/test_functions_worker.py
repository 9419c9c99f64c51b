"""The function worker driven directly: sandboxes per version, retirement, eviction,
scale-out, runtimes on other Python versions, and the sandbox's limits."""
from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from berth.agent.functions.invocation import Invocation, InvocationResult
from berth.agent.functions.runtimes import python_for
from berth.agent.functions.sandbox import ExitStatus
from berth.agent.functions.worker import FunctionWorker
from berth.lambda_.model import FunctionConfig

APP = '''
import os, sys, time, uuid
COUNT = 0
SANDBOX = uuid.uuid4().hex      # one per init: sandboxes have PID namespaces of their own
def handler(event, context):
    global COUNT
    COUNT += 1
    time.sleep(event.get("sleep", 0))
    return {"count": COUNT, "sandbox": SANDBOX, "version": "%d.%d" % sys.version_info[:2],
            "ld": os.environ["LD_LIBRARY_PATH"]}
'''


class MemorySink:
    """Keeps shipped log events in memory, as a LogSink."""

    def __init__(self) -> None:
        self.events: list[tuple[tuple[str, str, str], str]] = []

    def put(self, key: tuple[str, str, str], events: list[dict[str, Any]]) -> None:
        self.events += [(key, e["message"]) for e in events]


def config(name: str, revision: str = "r1", runtime: str = "python3.11",
           timeout: int = 3) -> FunctionConfig:
    return FunctionConfig("us-east-1", "000000000000", name, "$LATEST",
                          f"arn:aws:lambda:us-east-1:000000000000:function:{name}", runtime,
                          "app.handler", 128, timeout, "sha", revision)


def code_dir(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    root = tmp_path / ("code-" + uuid.uuid4().hex[:6])
    root.mkdir()
    (root / "app.py").write_text(APP)
    for rel, text in (extra or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def with_worker(tmp_path: Path, body: Callable[[FunctionWorker], Any], **kw: Any) -> Any:
    async def scenario() -> Any:
        worker = FunctionWorker(tmp_path / "work", MemorySink(), **kw)
        await worker.start()
        try:
            return await asyncio.wait_for(body(worker), 30)
        finally:
            await worker.stop()
    return asyncio.run(scenario())


async def invoke(worker: FunctionWorker, cfg: FunctionConfig, code: Path,
                 event: dict[str, Any] | None = None) -> dict[str, Any]:
    result: InvocationResult = await worker.invoke(
        cfg, code, Invocation(str(uuid.uuid4()), json.dumps(event or {}).encode(),
                              cfg.function_arn))
    assert result.function_error is None, result.payload
    return json.loads(result.payload)


def host_pid(worker: FunctionWorker, name: str) -> int:
    """The sandbox's main process as the host sees it."""
    (env,) = [e for e in worker.pools.environments() if e.config.name == name]
    assert env.sandbox is not None
    return env.sandbox.pid


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_new_revision_retires_old_sandboxes(tmp_path: Path) -> None:
    code = code_dir(tmp_path)

    async def body(worker: FunctionWorker) -> None:
        first = await invoke(worker, config("f"), code)
        pid = host_pid(worker, "f")
        assert (await invoke(worker, config("f"), code))["count"] == 2
        changed = await invoke(worker, config("f", revision="r2"), code)
        assert changed["count"] == 1 and changed["sandbox"] != first["sandbox"]
        for _ in range(100):
            if not alive(pid):
                break
            await asyncio.sleep(0.02)
        assert not alive(pid)

    with_worker(tmp_path, body)


def test_idle_sandboxes_are_evicted_after_the_ttl(tmp_path: Path) -> None:
    code = code_dir(tmp_path)

    async def body(worker: FunctionWorker) -> None:
        await invoke(worker, config("g"), code)
        pid = host_pid(worker, "g")
        await asyncio.sleep(1.0)
        assert not alive(pid)
        assert (await invoke(worker, config("g"), code))["count"] == 1

    with_worker(tmp_path, body, idle_ttl=0.3)


def test_concurrent_invocations_get_sandboxes_of_their_own(tmp_path: Path) -> None:
    code = code_dir(tmp_path)

    async def body(worker: FunctionWorker) -> None:
        cfg = config("h")
        results = await asyncio.gather(*(invoke(worker, cfg, code, {"sleep": 0.2})
                                         for _ in range(3)))
        assert len({r["sandbox"] for r in results}) == 3
        again = await asyncio.gather(*(invoke(worker, cfg, code) for _ in range(3)))
        assert {r["sandbox"] for r in again} == {r["sandbox"] for r in results}
        assert sorted(r["count"] for r in again) == [2, 2, 2]

    with_worker(tmp_path, body)


@pytest.mark.parametrize("version", ["3.9", "3.12", "3.13"])
def test_python_versions_run_on_their_own_interpreter(tmp_path: Path, version: str) -> None:
    if python_for(version) == python_for("3.11") and version != "3.11":
        pytest.skip(f"no Python {version} on this host")
    code = code_dir(tmp_path)

    async def body(worker: FunctionWorker) -> None:
        out = await invoke(worker, config("v", runtime=f"python{version}"), code)
        assert out["version"] == version

    with_worker(tmp_path, body)


def test_code_with_a_lib_dir_starts_a_fresh_interpreter(tmp_path: Path) -> None:
    code = code_dir(tmp_path, {"lib/README": "shared libraries go here\n"})

    async def body(worker: FunctionWorker) -> None:
        out = await invoke(worker, config("l"), code)
        task = "/var/task" if worker.driver.private_mounts else str(code)
        assert f"{task}/lib" in out["ld"].split(":")
        assert (await invoke(worker, config("l"), code))["count"] == 2

    with_worker(tmp_path, body)


def test_output_becomes_log_events_with_start_end_report(tmp_path: Path) -> None:
    code = code_dir(tmp_path, {"app.py": "print('at init')\n"
                                         "def handler(e, c):\n    print('in handler')\n"})
    sink = MemorySink()

    async def scenario() -> None:
        worker = FunctionWorker(tmp_path / "work", sink, log_interval=0.05)
        await worker.start()
        try:
            await worker.invoke(config("logs"), code,
                                Invocation("req-1", b"{}", "arn"))
        finally:
            await worker.stop()      # flushes what is still buffered

    asyncio.run(scenario())
    (key,) = {k for k, _ in sink.events}
    assert key[:2] == ("us-east-1", "/aws/lambda/logs")
    messages = [m for _, m in sink.events]
    assert messages[:4] == ["at init", "START RequestId: req-1 Version: $LATEST",
                            "in handler", "END RequestId: req-1"]
    assert messages[4].startswith("REPORT RequestId: req-1\tDuration: ")
    assert "\tInit Duration: " in messages[4]


def test_exit_status_texts() -> None:
    assert ExitStatus(code=3).describe() == "exit status 3"
    assert ExitStatus(signal=9).describe() == "signal: killed"
    assert ExitStatus(signal=11).describe() == "signal: segmentation fault"
    assert ExitStatus.from_wait_status(3 << 8) == ExitStatus(code=3)
    assert ExitStatus.from_wait_status(9) == ExitStatus(signal=9)
