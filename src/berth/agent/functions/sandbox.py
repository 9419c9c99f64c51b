"""Sandboxes: what runs one function version's runtime, and the one interface to them.

A `SandboxDriver` acquires a `Sandbox` for a `SandboxSpec`'s runtime and then specialises it
for the function; the sandbox can be frozen and thawed, reports its peak memory and whether it
hit its process limit, tells its own Runtime API connections from others', streams its output,
and resolves `exited` with an `ExitStatus` once its main process is gone. `ForkedSandbox` is a
sandbox forked from a zygote (zygote_driver.py): blank at first, then specialised for one
function; frozen by its freezer cgroup, or by SIGSTOP where the host has none.
"""
from __future__ import annotations

import abc
import asyncio
import logging
import os
import signal
from dataclasses import dataclass, field
from typing import Callable

from . import peers
from .cgroups import SandboxCgroups

log = logging.getLogger(__name__)

OutputCallback = Callable[[bytes], None]

# Go's names for signals: the Runtime API's errors read "Runtime exited with error: signal: X".
_SIGNAL_NAMES = {
    signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated", signal.SIGBUS: "bus error", signal.SIGILL:
    "illegal instruction", signal.SIGFPE: "floating point exception", signal.SIGINT:
    "interrupt", signal.SIGQUIT: "quit", signal.SIGHUP: "hangup", signal.SIGPIPE:
    "broken pipe", signal.SIGTRAP: "trace/breakpoint trap", signal.SIGUSR1:
    "user defined signal 1", signal.SIGUSR2: "user defined signal 2",
    signal.SIGALRM: "alarm clock", signal.SIGXCPU: "CPU time limit exceeded",
}


@dataclass(frozen=True)
class SandboxSpec:
    """One function's runtime. `kind` "python" runs berth's Python runtime in place in a
    process forked from the `python` interpreter's zygote; "node" runs berth's Node.js
    runtime; "exec" starts `argv` (a custom runtime's bootstrap, a fresh interpreter)."""

    kind: str
    env: dict[str, str]
    cwd: str
    memory_mb: int
    code_dir: str                   # host path of the code, the task root's source
    runtime_dir: str                # host path of berth's runtime, shown at /var/runtime
    tmp_mb: int = 512
    argv: list[str] | None = None
    python: str = ""
    sys_path: list[str] = field(default_factory=list)   # for the in-place Python runtime


@dataclass(frozen=True)
class ExitStatus:
    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_wait_status(cls, status: int) -> "ExitStatus":
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status))
        return cls(code=os.WEXITSTATUS(status))

    def describe(self) -> str:
        if self.signal is not None:
            return "signal: " + _SIGNAL_NAMES.get(signal.Signals(self.signal),
                                                  f"signal {self.signal}")
        return f"exit status {self.code}"


class Sandbox(abc.ABC):
    id: str
    pid: int
    exited: asyncio.Future[ExitStatus]

    @abc.abstractmethod
    def freeze(self) -> None:
        """Stop everything in the sandbox until `thaw`; cheap enough for every invocation.
        Returns at once: `wait_frozen` waits until no process of it can run."""

    @abc.abstractmethod
    def thaw(self) -> None: ...

    def wait_frozen(self, timeout: float = 1.0) -> bool:
        return True

    @abc.abstractmethod
    def kill(self) -> None:
        """SIGKILL the sandbox (frozen or not); `exited` resolves soon after."""

    @abc.abstractmethod
    def drain_output(self) -> None:
        """Deliver what the sandbox has written so far to the output callback, now."""

    @abc.abstractmethod
    def peak_memory_mb(self) -> int | None: ...

    def hit_process_limit(self) -> int | None:
        """The sandbox's process limit if a fork was refused by it, else None."""
        return None

    def admits(self, peer: tuple[str, int], local: tuple[str, int]) -> bool:
        """Whether a TCP connection from `peer` to `local` comes from this sandbox."""
        return True

    @abc.abstractmethod
    async def destroy(self) -> None:
        """Release what the sandbox held, once it has exited."""


class SandboxDriver(abc.ABC):
    # Whether sandboxes see the task root at /var/task and a /tmp of their own.
    private_mounts: bool = False

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def acquire(self, spec: SandboxSpec) -> Sandbox:
        """A sandbox for `spec`'s runtime, isolated and waiting, without its function yet."""

    @abc.abstractmethod
    async def specialise(self, sandbox: Sandbox, spec: SandboxSpec,
                         on_output: OutputCallback) -> None:
        """Give `sandbox` its function (code, limits, environment); its runtime then
        initialises and calls the Runtime API. On failure the caller kills the sandbox."""


class ForkedSandbox(Sandbox):
    """A sandbox whose main process a zygote forked; its cgroups, if the host has them."""

    def __init__(self, sandbox_id: str, cgroups: SandboxCgroups | None, out_fd: int) -> None:
        self.id = sandbox_id
        self.pid = 0
        self.cgroups = cgroups
        self._out_fd = out_fd
        self._early: list[bytes] = []
        self._on_output: OutputCallback = self._early.append
        self._loop = asyncio.get_running_loop()
        self.exited = self._loop.create_future()
        self._stopped = False
        self._loop.add_reader(out_fd, self._readable)

    def early_output(self) -> bytes:
        """What a blank wrote before it had a function (a failure to isolate itself)."""
        return b"".join(self._early)

    def attach_output(self, on_output: OutputCallback) -> None:
        """From now on output goes to `on_output`, starting with what came before."""
        self._on_output = on_output
        early, self._early = self._early, []
        for data in early:
            on_output(data)

    def _readable(self) -> None:
        try:
            data = os.read(self._out_fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._on_output(data)
        else:
            self._close_output()

    def drain_output(self) -> None:
        while self._out_fd >= 0:
            try:
                data = os.read(self._out_fd, 1 << 16)
            except (BlockingIOError, OSError):
                return
            if not data:
                self._close_output()
                return
            self._on_output(data)

    def _close_output(self) -> None:
        if self._out_fd >= 0:
            self._loop.remove_reader(self._out_fd)
            os.close(self._out_fd)
            self._out_fd = -1

    def on_exit(self, wait_status: int) -> None:
        self.drain_output()
        if not self.exited.done():
            self.exited.set_result(ExitStatus.from_wait_status(wait_status))

    def freeze(self) -> None:
        if self.exited.done() or self.pid <= 0:
            return
        if self.cgroups is not None and self.cgroups.can_freeze:
            self.cgroups.freeze()
        else:
            try:
                os.killpg(self.pid, signal.SIGSTOP)
            except OSError:
                return
        self._stopped = True

    def thaw(self) -> None:
        if not self._stopped:
            return
        self._stopped = False
        if self.cgroups is not None and self.cgroups.can_freeze:
            self.cgroups.thaw()
            return
        try:
            os.killpg(self.pid, signal.SIGCONT)
        except OSError:
            pass

    def wait_frozen(self, timeout: float = 1.0) -> bool:
        if self.cgroups is not None and self.cgroups.can_freeze:
            return self._stopped and self.cgroups.wait_frozen(timeout)
        return self._stopped

    def kill(self) -> None:
        if self.exited.done():
            return
        if self.cgroups is not None:
            self.cgroups.kill_all()
        if self.pid <= 0:
            return          # never forked: and pid 0 would mean our own process group
        for kill in (os.kill, os.killpg):
            try:
                kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        self._stopped = False

    def peak_memory_mb(self) -> int | None:
        peak = self.cgroups.peak_memory_bytes() if self.cgroups is not None else None
        if peak is None:
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            return max(1, int(line.split()[1]) // 1024)
            except OSError:
                return None
            return None
        return max(1, round(peak / (1024 * 1024)))

    def hit_process_limit(self) -> int | None:
        if self.cgroups is None or not self.cgroups.hit_pids_limit():
            return None
        return self.cgroups.pids_max()

    def admits(self, peer: tuple[str, int], local: tuple[str, int]) -> bool:
        if self.cgroups is None:
            return True     # nothing tells its processes apart: a gap of the fallback
        return peers.connection_from(peer, local, self.cgroups.pids())

    async def destroy(self) -> None:
        self._close_output()
        if self.cgroups is not None:
            # Processes of the sandbox may still be dying (or, frozen, waiting for a thaw).
            for _ in range(100):
                self.cgroups.kill_all()
                if self.cgroups.remove():
                    return
                await asyncio.sleep(0.02)
            log.warning("sandbox %s: cgroups still busy after its exit", self.id)
