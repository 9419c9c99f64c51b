"""cgroup v1 directories of sandboxes: memory (hard limit, peak), pids (limit, hits), cpu
(shares), cpuacct (usage) and freezer, each where the host has the controller.

Each worker keeps its sandboxes under `berth-<pid>-<n>/` beneath its own cgroup in each
hierarchy, so nested deployments stay inside their parent's limits and two workers (on one
host, or in one process) never touch each other's sandboxes; a worker that died leaves its
directories to the next run of its own data dir (run_record.py). Where a controller is
missing the sandbox runs without it.

Freezing is one write to a `freezer.state` fd kept open, without waiting for FROZEN; callers
that need the guarantee ask `wait_frozen`. The kernel turns its freezer's fast path (a static
key) on only while some cgroup is frozen, and flipping that key patches kernel text for
~80 µs; the worker therefore keeps one empty cgroup frozen while it runs (the *anchor*), and
every freeze and thaw of a sandbox then costs ~5 µs.
"""
from __future__ import annotations

import itertools
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "freezer")
ANCHOR = "anchor"
_workers = itertools.count(1)


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
    """Where this worker's sandbox cgroups go, per controller (absent: not available).
    Co-mounted controllers (cpu,cpuacct) share one directory."""

    bases: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def detect(cls, controllers: tuple[str, ...] = CONTROLLERS) -> "Hierarchies":
        bases: dict[str, Path] = {}
        name = f"berth-{os.getpid()}-{next(_workers)}"
        for controller in controllers:
            own = _own_path(controller)
            mount = ROOT / controller
            if own is None or not (mount / "cgroup.procs").exists():
                continue
            parent = mount.resolve() / own.lstrip("/")
            base = parent / name
            if base not in bases.values():
                try:
                    base.mkdir(exist_ok=True)
                except OSError as exc:
                    log.info("no %s cgroup for sandboxes: %s", controller, exc)
                    continue
            bases[controller] = base
        hierarchies = cls(bases)
        hierarchies._freeze_anchor()
        log.info("sandbox cgroups: %s", ", ".join(f"{c}={p}" for c, p in bases.items())
                 or "none")
        return hierarchies

    def get(self, controller: str) -> Path | None:
        return self.bases.get(controller)

    @property
    def unique(self) -> list[Path]:
        return list(dict.fromkeys(self.bases.values()))

    def _freeze_anchor(self) -> None:
        base = self.bases.get("freezer")
        if base is None:
            return
        try:
            (base / ANCHOR).mkdir(exist_ok=True)
            (base / ANCHOR / "freezer.state").write_text("FROZEN")
        except OSError as exc:
            log.info("no frozen anchor cgroup (freezing costs more): %s", exc)

    def remove(self) -> None:
        base = self.bases.get("freezer")
        if base is not None and (base / ANCHOR).exists():
            try:
                (base / ANCHOR / "freezer.state").write_text("THAWED")
            except OSError:
                pass
            _rmdir(base / ANCHOR)
        for base in self.unique:
            _rmdir(base)


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


class SandboxCgroups:
    """One sandbox's cgroup directories; file descriptors kept open for the hot path."""

    def __init__(self, hierarchies: Hierarchies, sandbox_id: str, pids_max: int) -> None:
        self.dirs: dict[str, Path] = {}
        self._peak_fd = self._freezer_fd = self._pids_events_fd = -1
        try:
            for controller, base in hierarchies.bases.items():
                d = base / sandbox_id
                if d not in self.dirs.values():
                    d.mkdir()
                self.dirs[controller] = d
            if "pids" in self.dirs:
                (self.dirs["pids"] / "pids.max").write_text(str(pids_max))
                self._pids_events_fd = os.open(self.dirs["pids"] / "pids.events", os.O_RDONLY)
            if "memory" in self.dirs:
                self._peak_fd = os.open(self.dirs["memory"] / "memory.max_usage_in_bytes",
                                        os.O_RDONLY)
            if "freezer" in self.dirs:
                self._freezer_fd = os.open(self.dirs["freezer"] / "freezer.state", os.O_RDWR)
        except BaseException:
            self.remove()
            raise

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in dict.fromkeys(self.dirs.values())]

    def apply(self, memory_mb: int, cpu_shares: int) -> None:
        """The function's limits, set when a blank sandbox is given its function."""
        memory = self.dirs.get("memory")
        if memory is not None:
            limit = str(memory_mb * 1024 * 1024)
            # No swap: a function over its memory is killed, as on Lambda. memsw must stay
            # at or above the memory limit, so it is raised first and lowered last.
            try:
                (memory / "memory.memsw.limit_in_bytes").write_text("-1")
            except OSError:
                pass
            (memory / "memory.limit_in_bytes").write_text(limit)
            try:
                (memory / "memory.memsw.limit_in_bytes").write_text(limit)
            except OSError:
                pass
        cpu = self.dirs.get("cpu")
        if cpu is not None:
            (cpu / "cpu.shares").write_text(str(cpu_shares))

    def pids(self) -> list[int]:
        """Every process in the sandbox."""
        for d in dict.fromkeys(self.dirs.values()):
            try:
                return [int(p) for p in (d / "cgroup.procs").read_text().split()]
            except OSError:
                continue
        return []

    def peak_memory_bytes(self) -> int | None:
        if self._peak_fd < 0:
            return None
        return int(os.pread(self._peak_fd, 32, 0))

    def hit_pids_limit(self) -> bool:
        """Whether a fork or clone in the sandbox has been refused by its pids limit."""
        if self._pids_events_fd < 0:
            return False
        return os.pread(self._pids_events_fd, 64, 0).split()[-1] != b"0"

    def pids_max(self) -> int | None:
        pids = self.dirs.get("pids")
        return int((pids / "pids.max").read_text()) if pids is not None else None

    @property
    def can_freeze(self) -> bool:
        return self._freezer_fd >= 0

    def freeze(self) -> None:
        os.write(self._freezer_fd, b"FROZEN")

    def thaw(self) -> None:
        os.write(self._freezer_fd, b"THAWED")

    def state(self) -> str:
        return os.pread(self._freezer_fd, 16, 0).decode().strip()

    def wait_frozen(self, timeout: float = 1.0) -> bool:
        """Poll until every task has stopped (reading the state completes the transition)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state != "FREEZING" or time.monotonic() > deadline:
                return state == "FROZEN"
            time.sleep(0.0002)

    def kill_all(self) -> None:
        """SIGKILL every process in the sandbox, including any that left its process group."""
        for d in dict.fromkeys(self.dirs.values()):
            try:
                pids = (d / "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
            if pids:
                break       # every hierarchy holds the same processes
        # A frozen task takes a SIGKILL only once thawed.
        if self._freezer_fd >= 0:
            try:
                self.thaw()
            except OSError:
                pass

    def remove(self) -> bool:
        """Remove the directories; False while processes still linger in them."""
        for d in dict.fromkeys(self.dirs.values()):
            _rmdir(d)
        if any(d.exists() for d in self.dirs.values()):
            return False
        for fd in (self._peak_fd, self._freezer_fd, self._pids_events_fd):
            if fd >= 0:
                os.close(fd)
        self._peak_fd = self._freezer_fd = self._pids_events_fd = -1
        return True
