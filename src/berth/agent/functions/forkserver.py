"""The worker's side of a zygote (runtimes/python/berth_runtime/zygote.py).

One zygote per interpreter; it forks every sandbox of that Python version, and any sandbox
that execs another program. Requests and replies are JSON datagrams; the sandbox's output
pipe travels as a passed file descriptor. Replies and exit statuses arrive on the event loop.
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
    def __init__(self, python: str) -> None:
        self.python = python
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.hello: dict[str, Any] = {}
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._replies: dict[str, asyncio.Future[int]] = {}
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
        ours.setblocking(False)
        self.sock = ours
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._readable)
        try:
            self.hello = await asyncio.wait_for(asyncio.shield(self._ready), 30)
        except TimeoutError:
            self.close()
            raise ForkServerError(f"zygote {self.python} did not start") from None
        log.info("zygote for %s (Python %s) ready in %.1f ms, mount namespaces: %s",
                 self.python, self.hello.get("python"), (time.perf_counter() - started) * 1e3,
                 self.hello.get("mount_ns"))

    async def spawn(self, tag: str, request: dict[str, Any], output_fd: int,
                    on_exit: ExitCallback) -> int:
        """Fork a sandbox; returns its pid. `on_exit(wait_status)` runs once it has exited."""
        async with self._lock:
            if not self.alive:
                await self.start()
        assert self.sock is not None
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._replies[tag] = future
        data = json.dumps({**request, "tag": tag}).encode()
        try:
            self.sock.setblocking(True)
            socket.send_fds(self.sock, [data], [output_fd])
        except OSError as exc:
            self._replies.pop(tag, None)
            raise ForkServerError(f"zygote {self.python}: {exc}") from exc
        finally:
            if self.sock is not None:
                self.sock.setblocking(False)
        pid = await future
        status = self._early_exits.pop(pid, None)
        if status is not None:
            on_exit(status)
        else:
            self._exits[pid] = on_exit
        return pid

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
                    callback(msg["status"])
            elif "tag" in msg:
                future = self._replies.pop(msg["tag"], None)
                if future is not None and not future.done():
                    if "error" in msg:
                        future.set_exception(ForkServerError(msg["error"]))
                    else:
                        future.set_result(msg["pid"])
            elif "hello" in msg and self._ready is not None and not self._ready.done():
                self._ready.set_result(msg["hello"])

    def _lost(self) -> None:
        """The zygote died: its sandboxes died with it (PR_SET_PDEATHSIG)."""
        self.close()
        for future in self._replies.values():
            if not future.done():
                future.set_exception(ForkServerError(f"zygote {self.python} exited"))
        self._replies.clear()
        exits, self._exits = self._exits, {}
        for callback in exits.values():
            callback(9)  # as if SIGKILLed, which PR_SET_PDEATHSIG did

    def close(self) -> None:
        if self.sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
            except RuntimeError:
                pass
            self.sock.close()
            self.sock = None
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(ForkServerError(f"zygote {self.python} exited"))
        if self.proc is not None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
