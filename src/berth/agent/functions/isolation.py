"""What the host lets function sandboxes have, and what the process fallback leaves out when
it cannot isolate them.

The sandbox's limits, root layout and user are the shared vocabulary of ..sandbox_spec
(re-exported here); the sandbox carries them out from inside
(runtimes/python/berth_runtime/isolate.py) and the cgroups module writes the limits.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..sandbox_spec import (
    DEFAULT_PIDS_MAX,
    DEFAULT_TMP_MB,
    MB_PER_VCPU,
    SANDBOX_GID,
    SANDBOX_UID,
    SYSTEM_PATHS,
    RootLayout,
    SandboxLimits,
    cpu_shares_for,
    root_layout,
)

__all__ = ["DEFAULT_PIDS_MAX", "DEFAULT_TMP_MB", "MB_PER_VCPU", "SANDBOX_GID", "SANDBOX_UID",
           "SYSTEM_PATHS", "Isolation", "RootLayout", "SandboxLimits", "cpu_shares_for",
           "root_layout"]


@dataclass(frozen=True)
class Isolation:
    """What this host's sandboxes get. `namespaces` False is the process fallback."""

    namespaces: bool
    controllers: frozenset[str]
    reason: str = ""             # why namespaces are off, when they are
    seccomp_error: str = ""      # why sandboxes have no seccomp filter, when they have none

    def summary(self) -> str:
        if self.namespaces:
            return ("function sandboxes are isolated: PID, mount, IPC and UTS namespaces, a "
                    "read-only root of system and runtime paths, a private /tmp, uid "
                    f"{SANDBOX_UID}, "
                    + ("a seccomp filter" if not self.seccomp_error else
                       f"NO seccomp filter ({self.seccomp_error})")
                    + f"; cgroups: {', '.join(sorted(self.controllers)) or 'none'}"
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
        if self.seccomp_error:
            gaps.append(f"no seccomp filter ({self.seccomp_error}): every system call is "
                        "open to them, new user namespaces included")
        if not self.controllers:
            gaps.append("any local process can use a sandbox's Runtime API port")
        return gaps
