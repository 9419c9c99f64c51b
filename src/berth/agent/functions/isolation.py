"""What isolates a function sandbox on this host: its limits, the root it sees, its user, and
what the process fallback leaves out when the host cannot isolate.

Pure descriptions, decided on the worker's side; the sandbox carries them out from inside
(runtimes/python/berth_runtime/isolate.py) and the cgroups module writes the limits. Any
driver can express the same `RootLayout` (read-only binds, a sized /tmp) and `Limits` in its
own terms, e.g. as OCI bind mounts and linux.resources for runc.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

# Lambda's sandbox user is sbx_user1051, uid 993; no host account needs to exist for it.
SANDBOX_UID = SANDBOX_GID = 993
# As on Lambda: 1,024 processes and threads per sandbox; one vCPU per 1,769 MB of memory.
DEFAULT_PIDS_MAX = 1024
MB_PER_VCPU = 1769
DEFAULT_TMP_MB = 512
# The host directories every sandbox sees read-only, at the same paths: the system's programs,
# libraries and configuration. /etc/shadow and the like stay unreadable to the sandbox user.
SYSTEM_PATHS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc")


def cpu_shares_for(memory_mb: int) -> int:
    """CPU weight in proportion to memory, as Lambda allocates CPU (1,024 = one vCPU)."""
    return max(2, round(memory_mb * 1024 / MB_PER_VCPU))


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    pids_max: int = DEFAULT_PIDS_MAX
    tmp_mb: int = DEFAULT_TMP_MB

    @property
    def cpu_shares(self) -> int:
        return cpu_shares_for(self.memory_mb)


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


@dataclass(frozen=True)
class RootLayout:
    """A sandbox's root: `binds` shown read-only at their own paths, `hide` covered by empty
    directories; everything else of the host is absent. /var/task, /var/runtime, /tmp, /dev
    and /proc are the sandbox's own."""

    binds: tuple[str, ...]
    hide: tuple[str, ...] = ()

    def plan(self, stage: Path, runtime_dir: Path, tmp_mb: int = DEFAULT_TMP_MB
             ) -> dict[str, Any]:
        """What berth_runtime.isolate.enter needs, as JSON."""
        return {"stage": str(stage), "binds": [[p, p] for p in self.binds],
                "hide": list(self.hide), "runtime_dir": str(runtime_dir), "tmp_mb": tmp_mb,
                "hostname": "localhost"}


def root_layout(runtime_prefixes: Iterable[str], private: Iterable[Path]) -> RootLayout:
    """System paths plus the host's language runtimes (`runtime_prefixes`: install trees of
    Python and Node.js outside /usr); any `private` path (berth's data dir) that one of them
    would show is hidden."""
    binds = [p for p in SYSTEM_PATHS if os.path.lexists(p)]
    for prefix in sorted(set(runtime_prefixes)):
        if os.path.isdir(prefix) and not any(_under(prefix, b) for b in binds):
            binds = [b for b in binds if not _under(b, prefix)] + [prefix]
    hide = []
    for path in private:
        real = os.path.realpath(path)
        if any(_under(real, b) for b in binds):
            hide.append(real)
    return RootLayout(tuple(binds), tuple(hide))


@dataclass(frozen=True)
class Isolation:
    """What this host's sandboxes get. `namespaces` False is the process fallback."""

    namespaces: bool
    controllers: frozenset[str]
    reason: str = ""             # why namespaces are off, when they are

    def summary(self) -> str:
        if self.namespaces:
            return ("function sandboxes are isolated: PID, mount, IPC and UTS namespaces, a "
                    "read-only root of system and runtime paths, a private /tmp, uid "
                    f"{SANDBOX_UID}; cgroups: {', '.join(sorted(self.controllers)) or 'none'}"
                    "; the network is the host's (each Runtime API admits its own sandbox "
                    "only)")
        return "function sandboxes are NOT isolated (process fallback): " + "; ".join(
            self.gaps())

    def gaps(self) -> list[str]:
        """What a sandbox lacks here, in words an operator can act on."""
        gaps = []
        if not self.namespaces:
            gaps += [(f"no namespaces ({self.reason or 'disabled'}): sandboxes share the "
                      "host's process table, mounts, IPC and hostname"),
                     ("they see the host's whole file system, including berth's data dir, "
                      "its credentials and database, and other functions' code"),
                     "they run as berth's own user, not an unprivileged one",
                     "/tmp is a host directory without a size limit"]
        missing = {"memory": "no memory limit (MemorySize is not enforced)",
                   "pids": "no process limit (a fork bomb reaches the host)",
                   "cpu": "no CPU shares in proportion to memory",
                   "cpuacct": "no CPU accounting",
                   "freezer": ("idle sandboxes are stopped with SIGSTOP, which a process "
                               "that leaves the process group escapes")}
        gaps += [text for c, text in missing.items() if c not in self.controllers]
        if not self.controllers:
            gaps.append("any local process can use a sandbox's Runtime API port")
        return gaps
