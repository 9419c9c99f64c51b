"""What a sandbox sees and is: namespaces, a private read-only root, an unprivileged user, a
sized /tmp; blanks isolated before they know their function; and the process fallback."""
from __future__ import annotations

import os
import re
from pathlib import Path

from sandbox_harness import call, code, config, env_of, needs_root, run_worker, until

from berth.agent.functions.isolation import SANDBOX_UID, Isolation, cpu_shares_for, root_layout
from berth.agent.functions.prewarm import BlankKind
from berth.agent.functions.runtimes import NODE_RUNTIME_DIR, PYTHON_RUNTIME_DIR, SERVER_PYTHON
from berth.agent.functions.worker import FunctionWorker

LOOK = r'''
import json, os, socket

def _try(fn):
    try:
        return fn()
    except OSError as exc:
        return type(exc).__name__

def _write(path):
    with open(path, "w") as f:
        f.write("x")
    return "ok"

def handler(event, context):
    # The code's directory: /var/task in a sandbox, the unpacked tree itself in the process
    # fallback (which has no /var/task unless the host happens to).
    task = os.environ["LAMBDA_TASK_ROOT"]
    st = os.statvfs("/tmp")
    return {
        "pid": os.getpid(), "procs": sorted(p for p in os.listdir("/proc") if p.isdigit()),
        "uid": os.getuid(), "gid": os.getgid(), "host": socket.gethostname(),
        "root": sorted(os.listdir("/")), "cwd": os.getcwd(), "task": os.listdir(task),
        "tmp_mb": st.f_blocks * st.f_frsize // (1024 * 1024),
        "own_code": _try(lambda: open(task + "/app.py").read()[:5]),
        "write_task": _try(lambda: _write(task + "/new")),
        "write_root": _try(lambda: _write("/new")),
        "shadow": _try(lambda: open("/etc/shadow").read()[:5]),
        "seen": {p: os.path.exists(p) for p in event.get("paths", [])},
        "tmp_before": os.listdir("/tmp"),
        "tmp_write": _try(lambda: _write("/tmp/" + event.get("mark", "m"))),
        "env_task": os.environ["LAMBDA_TASK_ROOT"], "tmpdir": os.environ.get("TMPDIR"),
    }
'''


def test_cpu_shares_follow_memory_as_lambda_allocates_cpu() -> None:
    assert cpu_shares_for(1769) == 1024          # one vCPU at 1,769 MB
    assert cpu_shares_for(128) == 74
    assert cpu_shares_for(10240) == 5928
    assert cpu_shares_for(1) == 2


def test_root_layout_shows_runtimes_and_hides_private_paths(tmp_path: Path) -> None:
    runtime = tmp_path / "pyenv" / "3.99"
    (runtime / "data").mkdir(parents=True)
    layout = root_layout([str(runtime), "/usr/local"], [runtime / "data", tmp_path / "other"])
    assert "/usr" in layout.binds and "/etc" in layout.binds
    assert str(runtime) in layout.binds and "/usr/local" not in layout.binds  # under /usr
    assert layout.hide == (str(runtime / "data"),)
    plan = layout.plan(tmp_path / "stage", PYTHON_RUNTIME_DIR, 700)
    assert plan["tmp_mb"] == 700 and [str(runtime), str(runtime)] in plan["binds"]


def test_the_fallback_says_what_it_does_not_isolate() -> None:
    fallback = Isolation(False, frozenset({"memory", "cpu"}), "not running as root")
    text = fallback.summary()
    assert text.startswith("function sandboxes are NOT isolated")
    assert "not running as root" in text and "berth's data dir" in text
    assert "no process limit" in text and "SIGSTOP" in text
    assert "no memory limit" not in text
    isolated = Isolation(True, frozenset({"memory", "pids", "cpu", "cpuacct", "freezer"}))
    assert isolated.gaps() == [] and "NOT" not in isolated.summary()


@needs_root
def test_a_sandbox_sees_only_its_own_world(tmp_path: Path) -> None:
    a_code = code(tmp_path, {"app.py": LOOK})
    b_code = code(tmp_path, {"app.py": LOOK, "b_only.txt": "b"})
    data_dir = tmp_path / "data"

    async def body(worker: FunctionWorker) -> None:
        assert worker.driver.private_mounts
        a = await call(worker, config("a", tmp_mb=700), a_code, {"mark": "from-a"})
        b = await call(worker, config("b"), b_code, {
            "mark": "from-b", "paths": [str(a_code), str(b_code), str(data_dir),
                                        str(tmp_path), "/tmp/from-a", "/work"]})
        a_again = await call(worker, config("a", tmp_mb=700), a_code, {"mark": "again"})
        for seen in (a, b):
            assert seen["pid"] == 2 and seen["procs"] == ["1", "2"]   # init and runtime
            assert (seen["uid"], seen["gid"]) == (SANDBOX_UID, SANDBOX_UID)
            assert seen["host"] == "localhost"
            assert {"usr", "etc", "tmp", "var", "proc", "dev"} <= set(seen["root"]) <= {
                "bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "opt", "proc", "root",
                "sbin", "tmp", "usr", "var"}
            assert seen["cwd"] == seen["env_task"] == "/var/task"
            assert seen["own_code"] == "\nimpo"          # a 0600 file of root's, readable
            assert seen["write_task"] == seen["write_root"] == "OSError"  # read-only
            assert seen["shadow"] == "PermissionError"
            assert seen["tmp_write"] == "ok" and seen["tmpdir"] is None
        assert sorted(b["task"]) == ["app.py", "b_only.txt"] and a["task"] == ["app.py"]
        assert not any(b["seen"].values()), b["seen"]    # nothing of A, berth or the host
        assert (a["tmp_mb"], b["tmp_mb"]) == (700, 512)  # EphemeralStorage
        assert b["tmp_before"] == [] and sorted(a_again["tmp_before"]) == ["from-a"]

    run_worker(tmp_path, body)


THIEF = r'''
import socket

def handler(event, context):
    sock = socket.create_connection(("127.0.0.1", event["port"]), timeout=2)
    try:
        sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        return {"got": sock.recv(1000).decode()}
    except OSError as exc:
        return {"got": type(exc).__name__}
    finally:
        sock.close()
'''


@needs_root
def test_only_its_own_sandbox_may_use_a_runtime_api(tmp_path: Path) -> None:
    victim = code(tmp_path, {"app.py": LOOK})
    thief = code(tmp_path, {"app.py": THIEF})

    async def body(worker: FunctionWorker) -> None:
        await call(worker, config("victim"), victim)
        env = env_of(worker, "victim")
        port = env.server.sockets[0].getsockname()[1]         # type: ignore[union-attr]
        stolen = await call(worker, config("thief"), thief, {"port": port})
        assert stolen["got"] in ("", "ConnectionResetError"), stolen
        # The victim's runtime keeps its connection and its invocations.
        assert (await call(worker, config("victim"), victim))["pid"] == 2
        assert env_of(worker, "victim") is env

    run_worker(tmp_path, body)


@needs_root
def test_blanks_are_isolated_before_they_know_their_function(tmp_path: Path) -> None:
    tree = code(tmp_path, {"app.py": LOOK})
    kind = BlankKind("python", SERVER_PYTHON, str(PYTHON_RUNTIME_DIR))

    async def body(worker: FunctionWorker) -> None:
        pool = worker.driver.pool
        assert await until(lambda: pool.size(kind) == 2)
        blank = pool.ready[kind][0]
        status = Path(f"/proc/{blank.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == [str(SANDBOX_UID)] * 4
        nspid = next(line for line in status.splitlines() if line.startswith("NSpid:"))
        assert nspid.split()[1:] == [str(blank.pid), "1"]    # PID 1 of a namespace
        for ns in ("mnt", "pid", "ipc", "uts"):
            assert os.readlink(f"/proc/{blank.pid}/ns/{ns}") != os.readlink(
                f"/proc/self/ns/{ns}")
        assert re.search(rf"/berth-{os.getpid()}-\d+/{blank.id}\n", Path(
            f"/proc/{blank.pid}/cgroup").read_text())
        out = await call(worker, config("warm-blank"), tree)
        assert env_of(worker, "warm-blank").sandbox is blank   # the cold start took it
        assert out["pid"] == 2
        assert await until(lambda: pool.size(kind) == 2)      # and the pool refilled

    run_worker(tmp_path, body, prewarm_python=2)


@needs_root
def test_node_blanks_are_started_ahead_and_isolated(tmp_path: Path) -> None:
    tree = code(tmp_path, {"index.js": (
        "const fs = require('fs');\n"
        "exports.handler = async () => ({ uid: process.getuid(), pid: process.pid,\n"
        "  cwd: process.cwd(), task: fs.readdirSync('/var/task'),\n"
        "  fn: process.env.AWS_LAMBDA_FUNCTION_NAME });\n")})

    async def body(worker: FunctionWorker) -> None:
        kind = BlankKind("node", SERVER_PYTHON, str(NODE_RUNTIME_DIR))
        assert await until(lambda: worker.driver.pool.size(kind) == 1, 15)
        blank = worker.driver.pool.ready[kind][0]
        out = await call(worker, config("node", runtime="nodejs20.x",
                                        handler="index.handler"), tree)
        assert env_of(worker, "node").sandbox is blank
        assert out == {"uid": SANDBOX_UID, "pid": 2, "cwd": "/var/task",
                       "task": ["index.js"], "fn": "node"}

    run_worker(tmp_path, body, prewarm_node=1)


def test_the_process_fallback_runs_the_same_functions_without_namespaces(
        tmp_path: Path) -> None:
    tree = code(tmp_path, {"app.py": LOOK})

    async def body(worker: FunctionWorker) -> None:
        assert not worker.driver.private_mounts
        assert not worker.driver.isolation.namespaces
        assert "disabled by configuration" in worker.driver.isolation.summary()
        out = await call(worker, config("fallback"), tree)
        assert out["pid"] > 2 and out["env_task"] == str(tree) == out["cwd"]
        assert "app.py" in out["task"] and out["own_code"] == "\nimpo"
        assert out["tmpdir"] and out["tmpdir"].startswith(str(tmp_path))
        assert out["uid"] == os.getuid()

    run_worker(tmp_path, body, isolate=False)
