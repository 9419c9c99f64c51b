"""What a sandbox is given, in words both executors share: its limits, the mounts and root it
sees, and its user. The runc driver (oci.py) and the function sandboxes (functions/) each carry
these out in their own terms; the rules are written here once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable
from typing import Any

MIB = 1024 * 1024
# Lambda's sandbox user is sbx_user1051, uid 993; no host account needs to exist for it.
SANDBOX_UID = SANDBOX_GID = 993
# Its line in the sandbox's /etc/passwd, as on Lambda: getpwuid() then names it, and Node.js's
# os.homedir() (which the AWS SDK for JavaScript calls) answers instead of throwing.
SANDBOX_PASSWD = f"sbx_user1051:x:{SANDBOX_UID}:{SANDBOX_GID}::/home/sbx_user1051:/sbin/nologin"
# As on Lambda: 1,024 processes and threads per sandbox; one vCPU per 1,769 MB of memory.
DEFAULT_PIDS_MAX = 1024
MB_PER_VCPU = 1769
DEFAULT_TMP_MB = 512
# The host directories a sandbox with a host-derived root sees read-only, at the same paths:
# the system's programs, libraries and configuration. /etc/shadow and the like stay
# unreadable to an unprivileged sandbox user.
SYSTEM_PATHS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc")


def cpu_shares_for(memory_mb: int) -> int:
    """CPU weight in proportion to memory, as Lambda allocates CPU (1,024 = one vCPU)."""
    return max(2, round(memory_mb * 1024 / MB_PER_VCPU))


@dataclass
class SandboxLimits:
    """Resource limits; None leaves a limit unset. `tmp_bytes` sizes a private /tmp."""
    memory_bytes: int | None = None
    memory_reservation_bytes: int | None = None
    pids: int | None = None
    cpu_shares: int | None = None
    cpu_quota_us: int | None = None
    cpu_period_us: int | None = None
    tmp_bytes: int | None = None

    @classmethod
    def for_function(cls, memory_mb: int, pids_max: int = DEFAULT_PIDS_MAX,
                     tmp_mb: int = DEFAULT_TMP_MB) -> SandboxLimits:
        """A function sandbox's limits: Lambda's, with CPU in proportion to memory."""
        return cls(memory_bytes=memory_mb * MIB, pids=pids_max,
                   cpu_shares=cpu_shares_for(memory_mb), tmp_bytes=tmp_mb * MIB)


@dataclass
class SandboxMount:
    """A host path bound at `destination`, or a fresh tmpfs when `source` is None."""
    destination: str
    source: str | None = None
    read_only: bool = False


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


@dataclass(frozen=True)
class RootLayout:
    """A sandbox's root built from the host: `binds` shown read-only at their own paths,
    `hide` covered by empty directories; everything else of the host is absent, and /tmp is
    the sandbox's own. The whole host root, read-only, is `RootLayout(("/",))`."""

    binds: tuple[str, ...]
    hide: tuple[str, ...] = ()

    def mounts(self) -> list[SandboxMount]:
        """The read-only binds as mounts (hidden paths are the executor's to cover)."""
        return [SandboxMount(p, p, read_only=True) for p in self.binds]

    def plan(self, stage: Path, runtime_dir: Path, tmp_mb: int = DEFAULT_TMP_MB
             ) -> dict[str, Any]:
        """What berth_runtime.isolate.enter needs, as JSON."""
        return {"stage": str(stage), "binds": [[p, p] for p in self.binds],
                "hide": list(self.hide), "runtime_dir": str(runtime_dir), "tmp_mb": tmp_mb,
                "hostname": "localhost", "passwd": SANDBOX_PASSWD}


def root_layout(extra_prefixes: Iterable[str], private: Iterable[Path]) -> RootLayout:
    """System paths plus `extra_prefixes` (e.g. install trees of Python and Node.js outside
    /usr); any `private` path (berth's data dir) that one of them would show is hidden."""
    binds = [p for p in SYSTEM_PATHS if os.path.lexists(p)]
    for prefix in sorted(set(extra_prefixes)):
        if os.path.isdir(prefix) and not any(_under(prefix, b) for b in binds):
            binds = [b for b in binds if not _under(b, prefix)] + [prefix]
    hide = []
    for path in private:
        real = os.path.realpath(path)
        if any(_under(real, b) for b in binds):
            hide.append(real)
    return RootLayout(tuple(binds), tuple(hide))
