"""Isolation of function sandboxes under a real `berth up`, through boto3: what one function
can see of another and of berth, bombs that stay in their sandbox, and frozen sandboxes that
use no CPU, measured from their cgroup."""
from __future__ import annotations

import base64
import io
import json
import os
import re
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from berth_process import BerthProcess

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandbox isolation needs root")
ROLE = "arn:aws:iam::000000000000:role/lambda"

APP = r'''
import json, os, threading, time
MARK = "%s"
COUNT = 0
SPINS = 0

def _spin():
    global SPINS
    while True:
        SPINS += 1

def _readable(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return os.path.isdir(path) and os.access(path, os.R_OK)

def handler(event, context):
    global COUNT
    COUNT += 1
    action = event.get("action")
    if action == "secret":
        with open("/tmp/secret-" + MARK, "w") as f:
            f.write(MARK)
    elif action == "look":
        found = [os.path.join(d, n) for d in ("/tmp", "/var/task", "/opt", "/var")
                 for n in os.listdir(d)]
        return {"readable": {p: _readable(p) for p in event["paths"]}, "found": found,
                "procs": sorted(p for p in os.listdir("/proc") if p.isdigit())}
    elif action == "oom":
        hog = [bytearray(16 * 1024 * 1024) for _ in range(64)]
        return len(hog)
    elif action == "forkbomb":
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.001)
    elif action == "spin":
        if not any(t.name == "spin" for t in threading.enumerate()):
            threading.Thread(target=_spin, name="spin", daemon=True).start()
        time.sleep(0.05)
        with open("/proc/self/cgroup") as f:
            return {"cgroups": f.read(), "spins": SPINS}
    return {"count": COUNT, "mark": MARK}
'''


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def create(lam: Any, mark: str, memory: int = 128, timeout: int = 3) -> str:
    name = "iso-" + uuid.uuid4().hex[:10]
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                        Handler="app.handler", Timeout=timeout, MemorySize=memory,
                        Code={"ZipFile": make_zip({"app.py": APP % mark})})
    return name


def call(lam: Any, name: str, event: dict[str, Any] | None = None, **kw: Any
         ) -> tuple[dict[str, Any], Any]:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **kw)
    return resp, json.loads(resp["Payload"].read())


@pytest.fixture(scope="module")
def lam(berth_up: BerthProcess) -> Any:
    return berth_up.client("lambda")


def test_a_function_sees_nothing_of_another_nor_of_berth(berth_up: BerthProcess,
                                                        lam: Any) -> None:
    mark_a = uuid.uuid4().hex
    a = create(lam, mark_a)
    assert call(lam, a, {"action": "secret"})[1]["mark"] == mark_a
    # Where A's code and berth's secrets live on the host.
    data = berth_up.data_dir
    a_code = [p for p in data.rglob("app.py") if mark_a in p.read_text()]
    assert a_code, "A's unpacked code is on the host"
    private = [str(data), str(data / "berth.db"), str(data / "credentials.json"),
               str(a_code[0]), str(a_code[0].parent), f"/tmp/secret-{mark_a}",
               str(Path.cwd())]
    b = create(lam, uuid.uuid4().hex)
    seen = call(lam, b, {"action": "look", "paths": private})[1]
    assert not any(seen["readable"].values()), seen["readable"]
    assert not any(mark_a in p for p in seen["found"]), seen["found"]
    assert seen["procs"] == ["1", "2"]              # its own init and runtime, nothing else
    # A's own view still has its secret: /tmp is per sandbox, not gone.
    mine = call(lam, a, {"action": "look", "paths": [f"/tmp/secret-{mark_a}"]})[1]
    assert mine["readable"] == {f"/tmp/secret-{mark_a}": True}


def test_a_memory_bomb_kills_only_its_sandbox(lam: Any) -> None:
    bomb, other = create(lam, "bomb", memory=128), create(lam, "other")
    call(lam, other)
    resp, body = call(lam, bomb, {"action": "oom"}, LogType="Tail")
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorMessage"].endswith("Runtime exited with error: signal: killed")
    report = base64.b64decode(resp["LogResult"]).decode().splitlines()[-1]
    used = int(re.search(r"Max Memory Used: (\d+) MB", report).group(1))  # type: ignore
    assert 100 <= used <= 128, report
    assert call(lam, other)[1]["count"] == 2         # the neighbour kept its warm sandbox
    assert call(lam, bomb)[1]["count"] == 1          # and the bomb starts afresh


def test_a_fork_bomb_is_stopped_and_others_keep_answering(lam: Any) -> None:
    # Memory enough for 1,024 forked interpreters: the process limit is what stops it.
    bomb, other = create(lam, "forkbomb", memory=2048, timeout=30), create(lam, "other")
    call(lam, other)
    outcome: list[Any] = []
    started = time.monotonic()
    thread = threading.Thread(target=lambda: outcome.append(
        call(lam, bomb, {"action": "forkbomb"}, LogType="Tail")))
    thread.start()
    answered = 0
    while thread.is_alive() and time.monotonic() - started < 20:
        t0 = time.monotonic()
        assert call(lam, other)[1]["mark"] == "other"
        assert time.monotonic() - t0 < 2.0
        answered += 1
    thread.join(30)
    resp, body = outcome[0]
    assert time.monotonic() - started < 20           # long before its 30 s timeout
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorMessage"].endswith("Runtime exited with error: signal: killed")
    assert "reached its limit of 1024 processes" in base64.b64decode(
        resp["LogResult"]).decode()
    assert answered >= 1
    assert call(lam, bomb)[1]["count"] == 1


def test_a_frozen_sandbox_uses_no_cpu(lam: Any) -> None:
    name = create(lam, "spinner")
    out = call(lam, name, {"action": "spin"})[1]
    path = next(line.split(":", 2)[2] for line in out["cgroups"].splitlines()
                if "cpuacct" in line.split(":")[1].split(","))
    usage = Path("/sys/fs/cgroup/cpuacct") / path.lstrip("/") / "cpuacct.usage"
    time.sleep(0.2)                                  # past the runtime's next request
    before = int(usage.read_text())
    time.sleep(0.5)
    assert int(usage.read_text()) == before          # its spinning thread is frozen too
    again = call(lam, name, {"action": "spin"})[1]
    assert int(usage.read_text()) > before and again["spins"] > out["spins"]
