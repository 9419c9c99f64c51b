"""Sandboxes: what runs one function version's runtime, and the one interface to them.

A `SandboxDriver` starts a `Sandbox` from a `SandboxSpec`; the sandbox can be frozen and
thawed, reports its peak memory, streams its output, and resolves `exited` with an
`ExitStatus` once its main process is gone. The process driver here forks sandboxes from a
warm zygote (process groups, cgroup v1 memory limit and freezer, a private mount namespace
for /tmp where the host allows it). A runc driver and pre-forked sandboxes plug in behind
the same interface.
"""
from __future__ import annotations

import abc
import asyncio
import logging
import os
import signal
from dataclasses import dataclass, field
from typing import Callable

from .cgroups import Hierarchies, SandboxCgroups
from .forkserver import ForkServer

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
class Mount:
    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class SandboxSpec:
    sandbox_id: str                 # 32 hex digits, also the log stream's suffix
    env: dict[str, str]
    cwd: str
    memory_mb: int
    argv: list[str] | None = None   # a program to exec; None runs the Python runtime in place
    python: str = ""                # the interpreter whose zygote forks the sandbox
    sys_path: list[str] = field(default_factory=list)  # for the in-place Python runtime
    mounts: list[Mount] = field(default_factory=list)   # private bind mounts, in order


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
    exited: asyncio.Future[ExitStatus]

    @abc.abstractmethod
    def freeze(self) -> None:
        """Stop everything in the sandbox until `thaw`; cheap enough for every invocation."""

    @abc.abstractmethod
    def thaw(self) -> None: ...

    @abc.abstractmethod
    def kill(self) -> None:
        """SIGKILL the sandbox (frozen or not); `exited` resolves soon after."""

    @abc.abstractmethod
    def drain_output(self) -> None:
        """Deliver what the sandbox has written so far to the output callback, now."""

    @abc.abstractmethod
    def peak_memory_mb(self) -> int | None: ...

    @abc.abstractmethod
    async def destroy(self) -> None:
        """Release what the sandbox held, once it has exited."""


class SandboxDriver(abc.ABC):
    # Whether sandboxes get their own /tmp and a read-only task root through mounts.
    private_mounts: bool = False

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def spawn(self, spec: SandboxSpec, on_output: OutputCallback) -> Sandbox: ...


class ProcessSandbox(Sandbox):
    def __init__(self, spec: SandboxSpec, cgroups: SandboxCgroups | None, out_fd: int,
                 on_output: OutputCallback, deep_freeze_after: float) -> None:
        self.id = spec.sandbox_id
        self.pid = 0
        self.cgroups = cgroups
        self._out_fd = out_fd
        self._on_output = on_output
        self._loop = asyncio.get_running_loop()
        self.exited = self._loop.create_future()
        self._deep_after = deep_freeze_after
        self._deep_timer: asyncio.TimerHandle | None = None
        self._deep_frozen = False
        self._stopped = False
        self._loop.add_reader(out_fd, self._readable)

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
        if self._deep_timer is not None:
            self._deep_timer.cancel()
        if not self.exited.done():
            self.exited.set_result(ExitStatus.from_wait_status(wait_status))

    # SIGSTOP of the process group costs microseconds; the freezer cgroup costs ~0.1 ms per
    # transition but also holds processes that left the group. So every idle sandbox is
    # stopped at once, and one that stays idle is frozen in its cgroup as well.
    def freeze(self) -> None:
        if self.exited.done():
            return
        try:
            os.killpg(self.pid, signal.SIGSTOP)
        except OSError:
            return
        self._stopped = True
        if self.cgroups is not None and self.cgroups.can_freeze:
            self._deep_timer = self._loop.call_later(self._deep_after, self._deep_freeze)

    def _deep_freeze(self) -> None:
        self._deep_timer = None
        if self._stopped and self.cgroups is not None and not self.exited.done():
            self.cgroups.freeze()
            self._deep_frozen = True

    def thaw(self) -> None:
        if self._deep_timer is not None:
            self._deep_timer.cancel()
            self._deep_timer = None
        if self._deep_frozen and self.cgroups is not None:
            self.cgroups.thaw()
            self._deep_frozen = False
        if self._stopped:
            self._stopped = False
            try:
                os.killpg(self.pid, signal.SIGCONT)
            except OSError:
                pass

    def kill(self) -> None:
        if self.exited.done():
            return
        if self.cgroups is not None:
            self.cgroups.kill_all()
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
        self._deep_frozen = self._stopped = False

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

    async def destroy(self) -> None:
        self._close_output()
        if self.cgroups is not None:
            # Processes that left the main one's group may still be dying.
            for _ in range(50):
                self.cgroups.kill_all()
                self.cgroups.remove()
                if not any(d.exists() for d in self.cgroups.dirs):
                    break
                await asyncio.sleep(0.02)


class ProcessDriver(SandboxDriver):
    """Sandboxes as process groups forked from a zygote, one zygote per Python interpreter."""

    def __init__(self, default_python: str, deep_freeze_after: float = 1.0) -> None:
        self.default_python = default_python
        self.deep_freeze_after = deep_freeze_after
        self.zygotes: dict[str, ForkServer] = {}
        self.hierarchies: Hierarchies | None = None

    async def start(self) -> None:
        self.hierarchies = Hierarchies.detect()
        zygote = self._zygote(self.default_python)
        await zygote.start()
        self.private_mounts = bool(zygote.hello.get("mount_ns"))
        if self.private_mounts:
            for target in ("/var/task", "/var/runtime"):
                try:
                    os.makedirs(target, exist_ok=True)
                except OSError as exc:
                    log.info("no private mounts for sandboxes: %s", exc)
                    self.private_mounts = False

    def _zygote(self, python: str) -> ForkServer:
        zygote = self.zygotes.get(python)
        if zygote is None:
            zygote = self.zygotes[python] = ForkServer(python)
        return zygote

    async def stop(self) -> None:
        for zygote in self.zygotes.values():
            zygote.close()
        self.zygotes.clear()
        if self.hierarchies is not None:
            self.hierarchies.remove()

    async def spawn(self, spec: SandboxSpec, on_output: OutputCallback) -> Sandbox:
        assert self.hierarchies is not None, "driver not started"
        cgroups = SandboxCgroups(self.hierarchies, spec.sandbox_id, spec.memory_mb)
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(read_fd, False)
        sandbox = ProcessSandbox(spec, cgroups, read_fd, on_output, self.deep_freeze_after)
        request = {
            "env": spec.env, "cwd": spec.cwd, "argv": spec.argv, "sys_path": spec.sys_path,
            "cgroups": cgroups.procs_files,
            "mounts": [[m.source, m.target, m.read_only] for m in spec.mounts],
        }
        zygote = self._zygote(spec.python or self.default_python)
        try:
            sandbox.pid = await zygote.spawn(spec.sandbox_id, request, write_fd,
                                             sandbox.on_exit)
        except BaseException:
            await sandbox.destroy()
            raise
        finally:
            os.close(write_fd)
        return sandbox
