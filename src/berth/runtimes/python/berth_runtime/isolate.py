"""A sandbox's namespaces, private root and user, set up with the kernel's own calls.

`enter` runs in a freshly forked sandbox before it drops to its unprivileged user: its own
mount, IPC and UTS namespaces (the zygote forks it into a new PID namespace), a root of
read-only bind mounts that shows only what the worker's plan names, a private /tmp and /dev,
and a /proc of its own PID namespace. `Mounter` runs in the zygote and later puts a function's
code into a waiting sandbox's root (setns into its mount namespace), read-only and owned, as
the sandbox sees it, by the sandbox's user (an idmapped mount), so the code never needs to
be copied or chowned. Standard library only: this runs on every Python a function may use.
"""
from __future__ import annotations

import ctypes
import os
import signal
from typing import Any, Dict, List, Optional

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID = 0x10000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NAME, PR_SET_NO_NEW_PRIVS = 1, 4, 15, 38
# x86_64 and aarch64 share these numbers for the new mount API.
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine, 155)
OPEN_TREE_CLONE, AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE = 1, -100, 0x1000, 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
MOUNT_ATTR_IDMAP = 0x00100000
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0))

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))
    return result


def _b(path: Optional[str]) -> Optional[bytes]:
    return None if path is None else path.encode()


def mount(source: Optional[str], target: str, fstype: Optional[str], flags: int,
          data: Optional[str] = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           "mount %s on %s" % (source or fstype, target))


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def _clone_tree(source: str, attrs: int, userns_fd: int = -1) -> int:
    """A detached copy of the mount at `source` with `attrs` set on it (and below it)."""
    tree = _check(_libc.syscall(SYS_OPEN_TREE, AT_FDCWD, source.encode(),
                                OPEN_TREE_CLONE | os.O_CLOEXEC | AT_RECURSIVE),
                  "open_tree %s" % source)
    try:
        attr = MountAttr(attrs | (MOUNT_ATTR_IDMAP if userns_fd >= 0 else 0), 0, 0,
                         max(userns_fd, 0))
        _check(_libc.syscall(SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH | AT_RECURSIVE,
                             ctypes.byref(attr), ctypes.sizeof(attr)),
               "mount_setattr %s" % source)
    except BaseException:
        os.close(tree)
        raise
    return tree


def _attach(tree: int, target: str) -> None:
    try:
        _check(_libc.syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, target.encode(),
                             MOVE_MOUNT_F_EMPTY_PATH), "move_mount to %s" % target)
    finally:
        os.close(tree)


def bind_read_only(source: str, target: str) -> None:
    _attach(_clone_tree(source, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
            target)


def _mkdirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def enter(plan: Dict[str, Any]) -> None:
    """Isolate this (just forked, still privileged) process as `plan` says.

    plan: {"stage": an existing empty directory to build the root in, "binds": [[host path,
    path in the sandbox], ...] shown read-only, "hide": [paths to cover with an empty
    directory], "runtime_dir": host path shown at /var/runtime, "tmp_mb": size of /tmp,
    "hostname": str}
    """
    unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS)
    hostname = plan.get("hostname", "localhost").encode()
    _check(_libc.sethostname(hostname, len(hostname)), "sethostname")
    # Nothing mounted from here on may reach the host's namespace.
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    stage = plan["stage"]
    mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for source, target in plan["binds"]:
        if os.path.islink(source):
            # /bin -> usr/bin on merged-/usr hosts: the link itself, pointing inside the root.
            _mkdirs(os.path.dirname(stage + target))
            os.symlink(os.readlink(source), stage + target)
        elif os.path.isdir(source):
            _mkdirs(stage + target)
            bind_read_only(source, stage + target)
    if plan.get("passwd") and os.path.isfile(stage + "/etc/passwd"):
        _add_user(stage, plan["passwd"])
    for path in plan.get("hide", ()):
        if os.path.isdir(stage + path):
            mount("tmpfs", stage + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV,
                  "size=4k,mode=755")
    for rel in ("var/task", "var/runtime", "opt", "proc", "tmp", "dev", ".old"):
        _mkdirs(os.path.join(stage, rel))
    if plan.get("runtime_dir"):
        bind_read_only(plan["runtime_dir"], stage + "/var/runtime")
        if os.path.isdir(os.path.join(plan["runtime_dir"], "node_modules")):
            # ES modules look for packages only in node_modules of the importer's parent
            # directories, never on NODE_PATH: /node_modules makes the runtime's SDK the last
            # place an `import` from /var/task looks, behind the function's own packages.
            os.symlink("var/runtime/node_modules", stage + "/node_modules")
    mount("tmpfs", stage + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
          "size=%dm,mode=1777" % int(plan.get("tmp_mb", 512)))
    _make_dev(stage + "/dev")
    _check(_libc.syscall(SYS_PIVOT_ROOT, stage.encode(), (stage + "/.old").encode()),
           "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old", MNT_DETACH), "umount the host's root")
    os.rmdir("/.old")
    # This process is PID 1 of its own PID namespace: the new /proc shows only the sandbox.
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _add_user(stage: str, line: str) -> None:
    """Show the host's /etc/passwd with the sandbox user's `line` added, read-only."""
    with open("/etc/passwd") as f:
        text = f.read()
    scratch = stage + "/.passwd"
    with open(scratch, "w") as f:
        f.write(text.rstrip("\n") + "\n" + line + "\n")
    os.chmod(scratch, 0o644)
    target = stage + "/etc/passwd"
    mount(scratch, target, None, MS_BIND)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.unlink(scratch)      # the mount keeps the file


def _make_dev(dev: str) -> None:
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "size=64k,mode=755")
    for name, major, minor in DEVICES:
        os.mknod(os.path.join(dev, name), 0o666 | 0o020000, os.makedev(major, minor))
        os.chmod(os.path.join(dev, name), 0o666)     # mknod honours the umask
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, name))
    os.mkdir(os.path.join(dev, "shm"))
    mount("tmpfs", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV,
          "size=64m,mode=1777")


def drop_privileges(uid: int, gid: int) -> None:
    """Become the unprivileged sandbox user for good: no capabilities, no way back."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    no_new_privs()
    # A change of user makes the process undumpable, which hands /proc/self to root and
    # breaks runtimes that read it; and it clears the parent-death signal.
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    die_with_parent()


def set_name(name: str) -> None:
    """The process's name in ps and top (its command line stays the zygote's)."""
    _libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def no_new_privs() -> None:
    """No exec may grant privileges again (set-user-ID bits, file capabilities); a seccomp
    filter may then be installed without privileges."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


class Mounter:
    """The zygote's side: mounts a function's code into a waiting sandbox's root."""

    def __init__(self, uid: int, gid: int) -> None:
        self.own_mnt = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.userns = _idmap_namespace(uid, gid)
        except OSError:
            self.userns = -1    # then the code must be world-readable, as on Lambda

    def _clone_code(self, source: str) -> int:
        attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
        if self.userns >= 0:
            try:
                return _clone_tree(source, attrs, self.userns)
            except OSError:
                # A file system without idmapped mounts: plain read-only binds from now on.
                os.close(self.userns)
                self.userns = -1
        return _clone_tree(source, attrs)

    def mount_code(self, pid: int, mounts: List[List[str]], tmp_mb: int) -> None:
        """Show each [host path, path in the sandbox] read-only in `pid`'s root, and size
        its /tmp. Trees are cloned here, where the host paths are visible, then attached
        inside the sandbox's mount namespace."""
        trees = []
        try:
            for source, _ in mounts:
                trees.append(self._clone_code(source))
            ns = os.open("/proc/%d/ns/mnt" % pid, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(ns, CLONE_NEWNS)
            finally:
                os.close(ns)
            try:
                for (_, target), tree in zip(mounts, trees):
                    _attach(tree, target)
                trees = []
                if tmp_mb:
                    mount(None, "/tmp", None, MS_REMOUNT | MS_NOSUID | MS_NODEV,
                          "size=%dm,mode=1777" % tmp_mb)
            finally:
                setns(self.own_mnt, CLONE_NEWNS)
        finally:
            for tree in trees:
                os.close(tree)


def _idmap_namespace(uid: int, gid: int) -> int:
    """A user namespace mapping root to (uid, gid): an idmapped mount through it shows the
    host's root-owned files as owned by the sandbox user. Made once by a short-lived child."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(go_w)
            unshare(CLONE_NEWUSER)
            os.write(ready_w, b"u")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"u":
            raise OSError("could not create a user namespace")
        with open("/proc/%d/uid_map" % pid, "w") as f:
            f.write("0 %d 1" % uid)
        with open("/proc/%d/setgroups" % pid, "w") as f:
            f.write("deny")
        with open("/proc/%d/gid_map" % pid, "w") as f:
            f.write("0 %d 1" % gid)
        return os.open("/proc/%d/ns/user" % pid, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(go_w)
        os.waitpid(pid, 0)


def probe() -> Dict[str, Any]:
    """What this host allows, tried in a throwaway child: {"namespaces": bool, "error": str}."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        message = b""
        try:
            unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID)
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            tree = _clone_tree("/", MOUNT_ATTR_RDONLY)
            os.close(tree)
        except BaseException as exc:   # any failure means: no isolation here
            message = str(exc).encode()[:500] or b"failed"
        os.write(w, message)
        os._exit(0)
    os.close(w)
    try:
        message = os.read(r, 600).decode()
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    return {"namespaces": not message, "error": message}
