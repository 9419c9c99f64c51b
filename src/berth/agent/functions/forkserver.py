"""The worker's side of a zygote (runtimes/python/berth_runtime/zygote.py).

One zygote per interpreter; it forks every blank sandbox of that Python version, and those of
Node.js and of programs to exec. Requests and replies are JSON datagrams; the sandbox's output
pipe travels as a passed file descriptor. Replies, readiness and exit statuses arrive on the
event loop.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtimes" / "python"
ExitCallback = Callable[[int], None]


class ForkServerError(Exception):
    pass


class ForkServer:
    """`seccomp`: the OCI seccomp profile every sandbox it forks gets (None: no filter).
    `on_start(pid)` is told each zygote process started, so a later run can find it."""

    def __init__(self, python: str, seccomp: dict[str, Any] | None = None,
                 on_start: Callable[[int], None] | None = None) -> None:
        self.python = python
        self.seccomp = seccomp
        self.on_start = on_start
        self.seccomp_error = "not configured"
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.hello: dict[str, Any] = {}
        self._started: asyncio.Future[dict[str, Any]] | None = None
        self._replies: dict[str, asyncio.Future[Any]] = {}
        self._ready: dict[int, asyncio.Future[None]] = {}
        self._exits: dict[int, ExitCallback] = {}
        self._early_exits: dict[int, int] = {}
        self._lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return self.sock is not None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        started = time.perf_counter()
        env = {"PATH": os.defpath, "PYTHONPATH": str(RUNTIME_DIR), "PYTHONNOUSERSITE": "1",
               "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen(
            [self.python, "-s", "-m", "berth_runtime.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], env=env, cwd=str(RUNTIME_DIR),
            stdin=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        if self.on_start is not None:
            self.on_start(self.proc.pid)
        ours.setblocking(False)
        self.sock = ours
        self._started = loop.create_future()
        loop.add_reader(ours.fileno(), self._readable)
        try:
            self.hello = await asyncio.wait_for(asyncio.shield(self._started), 30)
        except TimeoutError:
            self.close()
            raise ForkServerError(f"zygote {self.python} did not start") from None
        if self.seccomp is not None:
            try:
                await self._send("configure", {"configure": "configure",
                                               "seccomp": self.seccomp}, [])
                self.seccomp_error = ""
            except ForkServerError as exc:
                self.seccomp_error = str(exc)
        log.info("zygote for %s (Python %s) ready in %.1f ms, namespaces: %s, seccomp: %s",
                 self.python, self.hello.get("python"), (time.perf_counter() - started) * 1e3,
                 self.hello.get("namespaces"), self.seccomp_error or "yes")

    async def _request(self, tag: str, request: dict[str, Any], fds: list[int]) -> Any:
        async with self._lock:
            if not self.alive:
                await self.start()
        return await self._send(tag, request, fds)

    async def _send(self, tag: str, request: dict[str, Any], fds: list[int]) -> Any:
        if self.sock is None:
            raise ForkServerError(f"zygote {self.python} exited")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[tag] = future
        data = json.dumps(request).encode()
        try:
            self.sock.setblocking(True)
            socket.send_fds(self.sock, [data], fds)
        except OSError as exc:
            self._replies.pop(tag, None)
            raise ForkServerError(f"zygote {self.python}: {exc}") from exc
        finally:
            if self.sock is not None:
                self.sock.setblocking(False)
        return await future

    async def blank(self, tag: str, request: dict[str, Any], output_fd: int,
                    on_exit: ExitCallback) -> int:
        """Fork a blank sandbox; returns its pid. `on_exit(wait_status)` runs once it has
        exited; `wait_ready(pid)` waits until it has isolated itself."""
        pid: int = await self._request(tag, {**request, "blank": tag}, [output_fd])
        self._ready.setdefault(pid, asyncio.get_running_loop().create_future())
        status = self._early_exits.pop(pid, None)
        if status is not None:
            self._exited(pid, status, on_exit)
        else:
            self._exits[pid] = on_exit
        return pid

    async def wait_ready(self, pid: int) -> None:
        future = self._ready.get(pid)
        if future is not None:
            await future

    async def specialise(self, tag: str, pid: int, request: dict[str, Any]) -> None:
        """Give the blank `pid` its function: mounts in its root, then its environment."""
        await self._request(tag, {**request, "specialise": tag, "pid": pid}, [])

    def _exited(self, pid: int, status: int, callback: ExitCallback) -> None:
        ready = self._ready.pop(pid, None)
        if ready is not None and not ready.done():
            ready.set_exception(ForkServerError(f"sandbox {pid} exited before it was ready"))
            ready.exception()   # retrieved: nobody may be waiting
        callback(status)

    def _readable(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                log.warning("zygote %s went away", self.python)
                self._lost()
                return
            msg = json.loads(data)
            if "exit" in msg:
                callback = self._exits.pop(msg["exit"], None)
                if callback is None:
                    self._early_exits[msg["exit"]] = msg["status"]
                else:
                    self._exited(msg["exit"], msg["status"], callback)
            elif "ready" in msg:
                future = self._ready.get(msg["ready"])
                if future is None:
                    future = self._ready[msg["ready"]] = (
                        asyncio.get_running_loop().create_future())
                if not future.done():
                    future.set_result(None)
            elif "tag" in msg:
                future = self._replies.pop(msg["tag"], None)
                if future is not None and not future.done():
                    if "error" in msg:
                        future.set_exception(ForkServerError(msg["error"]))
                    else:
                        future.set_result(msg.get("pid", True))
            elif "hello" in msg and self._started is not None and not self._started.done():
                self._started.set_result(msg["hello"])

    def _lost(self) -> None:
        """The zygote died: its sandboxes died with it (it ends them on its way out; else
        PR_SET_PDEATHSIG, and their cleanup kills and thaws whatever was frozen)."""
        self.close()
        for future in self._replies.values():
            if not future.done():
                future.set_exception(ForkServerError(f"zygote {self.python} exited"))
        self._replies.clear()
        exits, self._exits = self._exits, {}
        for pid, callback in exits.items():
            self._exited(pid, 9, callback)  # as if SIGKILLed, which PR_SET_PDEATHSIG did

    def close(self) -> None:
        if self.sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
            except RuntimeError:
                pass
            self.sock.close()
            self.sock = None
        if self._started is not None and not self._started.done():
            self._started.set_exception(ForkServerError(f"zygote {self.python} exited"))
        if self.proc is not None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
