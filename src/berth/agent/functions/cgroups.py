"""cgroup v1 directories of sandboxes: a memory limit with its peak usage, and a freezer.

Each worker keeps its sandboxes under `berth-<pid>/` beneath its own cgroup in each hierarchy,
so nested deployments stay inside their parent's limits and two workers on one host never
touch each other's sandboxes. Where a controller is missing the sandbox simply runs without it.
"""
from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")


def _own_path(controller: str) -> str | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return None


@dataclass(frozen=True)
class Hierarchies:
    """Where this worker's sandbox cgroups go, per controller (None: not available)."""

    memory: Path | None
    freezer: Path | None

    @classmethod
    def detect(cls) -> "Hierarchies":
        found: dict[str, Path | None] = {}
        for controller in ("memory", "freezer"):
            own = _own_path(controller)
            mount = ROOT / controller
            base = None
            if own is not None and (mount / "cgroup.procs").exists():
                _remove_stale(mount / own.lstrip("/"))
                base = mount / own.lstrip("/") / f"berth-{os.getpid()}"
                try:
                    base.mkdir(exist_ok=True)
                except OSError as exc:
                    log.info("no %s cgroup for sandboxes: %s", controller, exc)
                    base = None
            found[controller] = base
        log.info("sandbox cgroups: memory=%s freezer=%s", found["memory"], found["freezer"])
        return cls(found["memory"], found["freezer"])

    def remove(self) -> None:
        for base in (self.memory, self.freezer):
            if base is not None:
                _rmdir(base)


def _remove_stale(parent: Path) -> None:
    """Sandboxes left by a worker that was killed: their processes die with them."""
    for old in parent.glob("berth-*"):
        pid = old.name.removeprefix("berth-")
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for d in [p for p in old.iterdir() if p.is_dir()]:
            for proc in (d / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(proc), signal.SIGKILL)
                except OSError:
                    pass
            if (d / "freezer.state").exists():
                (d / "freezer.state").write_text("THAWED")
            _rmdir(d)
        _rmdir(old)


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


class SandboxCgroups:
    """One sandbox's cgroup directories; file descriptors kept open for the hot path."""

    def __init__(self, hierarchies: Hierarchies, sandbox_id: str, memory_mb: int) -> None:
        self.dirs: list[Path] = []
        self.memory_dir = self.freezer_dir = None
        self._peak_fd = self._freezer_fd = -1
        if hierarchies.memory is not None:
            d = hierarchies.memory / sandbox_id
            d.mkdir()
            (d / "memory.limit_in_bytes").write_text(str(memory_mb * 1024 * 1024))
            # No swap: a function over its memory is killed, as on Lambda.
            try:
                (d / "memory.memsw.limit_in_bytes").write_text(str(memory_mb * 1024 * 1024))
            except OSError:
                pass
            self.memory_dir = d
            self.dirs.append(d)
            self._peak_fd = os.open(d / "memory.max_usage_in_bytes", os.O_RDONLY)
        if hierarchies.freezer is not None:
            d = hierarchies.freezer / sandbox_id
            d.mkdir()
            self.freezer_dir = d
            self.dirs.append(d)
            self._freezer_fd = os.open(d / "freezer.state", os.O_RDWR)

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def peak_memory_bytes(self) -> int | None:
        if self._peak_fd < 0:
            return None
        return int(os.pread(self._peak_fd, 32, 0))

    @property
    def can_freeze(self) -> bool:
        return self._freezer_fd >= 0

    def freeze(self) -> None:
        os.write(self._freezer_fd, b"FROZEN")

    def thaw(self) -> None:
        os.write(self._freezer_fd, b"THAWED")

    def kill_all(self) -> None:
        """SIGKILL every process in the sandbox, including any that left its process group."""
        for d in self.dirs:
            try:
                pids = (d / "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        # A frozen task takes a SIGKILL only once thawed.
        if self._freezer_fd >= 0:
            try:
                self.thaw()
            except OSError:
                pass

    def remove(self) -> None:
        for fd in (self._peak_fd, self._freezer_fd):
            if fd >= 0:
                os.close(fd)
        self._peak_fd = self._freezer_fd = -1
        for d in self.dirs:
            _rmdir(d)
