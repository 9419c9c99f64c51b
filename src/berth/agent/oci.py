"""Sandboxes through an OCI runtime: "run this process tree in these namespaces with these cgroup
limits and mounts".

`Sandbox` describes one in the shared vocabulary of sandbox_spec; `build_config` turns it into an OCI runtime `config.json` (a pure
function); `Runc` drives the runtime's lifecycle commands; the rest are the host-side pieces a
bundle needs (overlay root file systems, the cgroup file that counts OOM kills, users looked up
inside the root file system). Container tasks and function sandboxes both build on this module.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import seccomp
from .sandbox_spec import RootLayout, SandboxLimits, SandboxMount

# Docker's default capability set, so a process behaves the same under either engine.
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
RLIMIT_NAMES = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
                "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}
MNT_DETACH = 2


class RuncError(Exception):
    """The OCI runtime refused an operation; the message is its own explanation."""


@dataclass
class SandboxProcess:
    args: list[str]
    env: dict[str, str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    rlimits: dict[str, tuple[int, int]] = field(default_factory=dict)   # "nofile": (soft, hard)


@dataclass
class Sandbox:
    """One process tree to isolate. The bundle's `rootfs/` is its root file system, unless
    `host_root`: then the host's own file system read-only (HOST_ROOT), with a private /tmp
    (sized by `limits.tmp_bytes` when set)."""
    process: SandboxProcess
    cgroups_path: str                       # e.g. "/berth/<id>"
    hostname: str = "sandbox"
    network: str = "none"                   # "host" (share the host's) | "none" (only lo)
    host_root: bool = False
    read_only_root: bool = False
    mounts: list[SandboxMount] = field(default_factory=list)
    limits: SandboxLimits = field(default_factory=SandboxLimits)


# The host-root rule in sandbox_spec's terms: the whole host, read-only, at its own paths.
HOST_ROOT = RootLayout(("/",))


def build_config(sb: Sandbox) -> dict:
    """The OCI runtime config for a sandbox (bundle-relative root `rootfs`)."""
    proc = sb.process
    caps = DEFAULT_CAPABILITIES if proc.uid == 0 else []
    rlimits = [{"type": f"RLIMIT_{name.upper()}", "soft": soft, "hard": hard}
               for name, (soft, hard) in sorted(proc.rlimits.items())]
    mounts: list[dict] = []
    if sb.host_root:
        mounts += [_bind(m) for m in HOST_ROOT.mounts()]
    mounts += [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
    ]
    if sb.host_root:
        # The host's /sys came with its root, read-only (a fresh sysfs there is refused).
        size = [f"size={sb.limits.tmp_bytes}"] if sb.limits.tmp_bytes is not None else []
        mounts.append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "mode=1777", *size]})
    else:
        mounts += [
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ]
    for m in sb.mounts:
        if m.source is None:
            mounts.append({"destination": m.destination, "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1777"]
                           + (["ro"] if m.read_only else [])})
        else:
            mounts.append(_bind(m))
    # A cgroup namespace, as Docker gives on cgroup v2: /sys/fs/cgroup shows the sandbox's own.
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    if sb.network == "none":
        namespaces.append({"type": "network"})
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": proc.uid, "gid": proc.gid,
                     **({"additionalGids": proc.additional_gids} if proc.additional_gids else {})},
            "args": proc.args,
            "env": [f"{k}={v}" for k, v in proc.env.items()],
            "cwd": proc.cwd,
            "capabilities": {"bounding": DEFAULT_CAPABILITIES, "effective": caps,
                             "permitted": caps, "inheritable": [], "ambient": []},
            "rlimits": rlimits,
            # As `docker run --security-opt no-new-privileges`: no set-user-ID way back up.
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": sb.host_root or sb.read_only_root},
        "hostname": sb.hostname,
        "mounts": mounts,
        "linux": {
            "cgroupsPath": sb.cgroups_path,
            "resources": _resources(sb.limits),
            "namespaces": namespaces,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "seccomp": seccomp.profile(),
        },
    }


def _bind(m: SandboxMount) -> dict:
    return {"destination": m.destination, "type": "bind", "source": m.source,
            "options": ["rbind", "rro" if m.read_only else "rw"]}


def _resources(limits: SandboxLimits) -> dict:
    res: dict = {"devices": [{"allow": False, "access": "rwm"}]}
    memory: dict = {}
    if limits.memory_bytes is not None:
        memory["limit"] = limits.memory_bytes
        if swap_accounted():
            memory["swap"] = limits.memory_bytes     # memory+swap: no swap, so OOM is exact
    if limits.memory_reservation_bytes is not None:
        memory["reservation"] = limits.memory_reservation_bytes
    if memory:
        res["memory"] = memory
    if limits.pids is not None:
        res["pids"] = {"limit": limits.pids}
    cpu = {k: v for k, v in (("shares", limits.cpu_shares), ("quota", limits.cpu_quota_us),
                             ("period", limits.cpu_period_us)) if v is not None}
    if cpu:
        res["cpu"] = cpu
    return res


def write_bundle(bundle: Path, sb: Sandbox) -> Path:
    """Write `config.json` into `bundle` (creating `rootfs/` if missing); returns the bundle."""
    (bundle / "rootfs").mkdir(parents=True, exist_ok=True)
    tmp = bundle / "config.json.tmp"
    tmp.write_text(json.dumps(build_config(sb), indent=1))
    tmp.replace(bundle / "config.json")
    return bundle


class Runc:
    """The `runc` command line, with its state under a root directory of our own."""

    def __init__(self, root: Path, binary: str = "runc") -> None:
        self.root = root
        self.binary = binary
        root.mkdir(parents=True, exist_ok=True)

    def _argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    def _run(self, *args: str, timeout: float = 30) -> str:
        try:
            proc = subprocess.run(self._argv(*args), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuncError(f"runc {args[0]} timed out after {timeout:g}s") from exc
        if proc.returncode != 0:
            raise RuncError(runc_message(proc.stderr) or f"runc {args[0]} failed")
        return proc.stdout

    def create_argv(self, cid: str, bundle: Path, pid_file: Path) -> list[str]:
        """The `runc create` command; whoever runs it passes its stdio to the container."""
        return self._argv("create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid)

    def start(self, cid: str) -> None:
        self._run("start", cid)

    def kill(self, cid: str, sig: str = "TERM", all_processes: bool = False) -> None:
        self._run("kill", *(["--all"] if all_processes else []), cid, sig)

    def pause(self, cid: str) -> None:
        self._run("pause", cid)

    def resume(self, cid: str) -> None:
        self._run("resume", cid)

    def delete(self, cid: str) -> None:
        """Forcefully delete (kills what still runs); a container runc never knew is fine."""
        try:
            self._run("delete", "--force", cid)
        except RuncError as exc:
            if "does not exist" not in str(exc):
                raise

    def state(self, cid: str) -> dict | None:
        """runc's view (`status`: created/running/paused/stopped), None if it has none."""
        try:
            return json.loads(self._run("state", cid))
        except RuncError as exc:
            if "does not exist" in str(exc):
                return None
            raise

    def exec(self, cid: str, argv: list[str], timeout: float,
             pid_file: Path) -> tuple[int | None, str]:
        """Run `argv` in the container: (exit code or None on timeout, combined output)."""
        pid_file.unlink(missing_ok=True)
        proc = subprocess.Popen(self._argv("exec", "--pid-file", str(pid_file), cid, *argv),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # SIGKILL cannot be forwarded by `runc exec`: kill the process it started directly.
            # Then let runc reap it: killed first, runc would orphan it to the host's init, and
            # an unreaped zombie in the container's pid namespace delays the container's end.
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
            try:
                out, _ = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            return None, out.decode(errors="replace")
        finally:
            pid_file.unlink(missing_ok=True)
        return proc.returncode, out.decode(errors="replace")


_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


def runc_message(stderr: str) -> str:
    """runc's error text without its logrus decoration."""
    msgs = [m.group(1).replace('\\"', '"') for m in _MSG.finditer(stderr)]
    return "; ".join(msgs) if msgs else stderr.strip()


# -- host-side pieces of a bundle ------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    """Mount an overlay of `lower` (read-only) and `upper` (writes) at `target`."""
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, opts) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"overlay mount at {target}: {os.strerror(err)}")


def unmount(target: Path) -> None:
    """Detach whatever is mounted at `target`; nothing mounted is fine."""
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):      # EINVAL: not a mount point; ENOENT: gone
            raise OSError(err, f"unmount {target}: {os.strerror(err)}")


def _cgroup_mounts() -> list[tuple[str, str, set[str]]]:
    """(fstype, mount point, super options) of every cgroup file system."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if rfields and rfields[0] in ("cgroup", "cgroup2"):
                found.append((rfields[0], fields[4], set(rfields[2].split(","))))
    return found


def oom_counter(cgroups_path: str) -> Path | None:
    """The file whose `oom_kill N` line counts OOM kills in that cgroup (v1 or v2)."""
    mounts = _cgroup_mounts()
    for kind, point, opts in mounts:
        if kind == "cgroup" and "memory" in opts:
            return Path(point + cgroups_path) / "memory.oom_control"
    for kind, point, _ in mounts:
        controllers = Path(point) / "cgroup.controllers"
        if kind == "cgroup2" and controllers.exists() and "memory" in controllers.read_text():
            return Path(point + cgroups_path) / "memory.events"
    return None


def cgroup_dirs(cgroups_path: str) -> dict[str, Path]:
    """A cgroup's directories by v1 controller (cpuacct, memory, pids), or under "unified"
    its one directory where the host has cgroup v2 only."""
    dirs: dict[str, Path] = {}
    mounts = _cgroup_mounts()
    for kind, point, opts in mounts:
        if kind == "cgroup":
            for controller in ("cpuacct", "memory", "pids"):
                if controller in opts:
                    dirs[controller] = Path(point + cgroups_path)
    if not dirs:
        for kind, point, _ in mounts:
            if kind == "cgroup2" and Path(point, "cgroup.controllers").exists():
                dirs["unified"] = Path(point + cgroups_path)
    return dirs


def swap_accounted() -> bool:
    """Whether a memory+swap limit can be set (cgroup v2, or v1 with swap accounting)."""
    for kind, point, opts in _cgroup_mounts():
        if kind == "cgroup" and "memory" in opts:
            return Path(point, "memory.memsw.limit_in_bytes").exists()
    return True


# -- paths and users inside a root file system -----------------------------------------------

def resolve_in_root(root: Path, path: str, follow_last: bool = True, max_links: int = 40) -> Path:
    """`path` inside `root` with symlinks resolved as a chroot would: never outside `root`."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        if candidate.is_symlink() and (parts or follow_last):
            hops += 1
            if hops > max_links:
                raise OSError(40, f"too many levels of symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return root.joinpath(*done)


def _entries(root: Path, name: str) -> list[list[str]]:
    try:
        text = resolve_in_root(root, f"/etc/{name}").read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(root: Path, user: str | None) -> tuple[int, int, list[int], str]:
    """(uid, gid, additional gids, home) for "name|uid[:group|gid]" from the root's /etc files."""
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    passwd = _entries(root, "passwd")
    entry = next((e for e in passwd if len(e) >= 6 and
                  (e[0] == name or (name.isdigit() and e[2] == name))), None)
    if entry is None and not name.isdigit():
        raise LookupError(f"unable to find user {name}: no matching entries in passwd file")
    uid = int(name) if entry is None else int(entry[2])
    gid = 0 if entry is None else int(entry[3])
    home = "/" if entry is None else (entry[5] or "/")
    groups = _entries(root, "group")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            match = next((g for g in groups if len(g) >= 3 and g[0] == group), None)
            if match is None:
                raise LookupError(f"unable to find group {group}: no matching entries in "
                                  f"group file")
            gid = int(match[2])
    extra = []
    if entry is not None:
        extra = sorted({int(g[2]) for g in groups
                        if len(g) >= 4 and entry[0] in g[3].split(",") and int(g[2]) != gid})
    return uid, gid, extra, home
