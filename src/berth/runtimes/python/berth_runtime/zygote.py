"""The zygote: a warm interpreter that forks sandboxes on request.

The worker starts one per Python version and talks to it over a SOCK_SEQPACKET socket (argv[1]):
JSON requests carrying the sandbox's output pipe as a passed fd; JSON replies with the child's
pid and, later, its wait status. A child joins its cgroups, gets a private mount namespace
(its own /tmp, a read-only task root) and then either runs the Python runtime in place, its
imports already warm (~1 ms instead of a ~30 ms interpreter start), or execs another program
(node, a custom runtime's bootstrap) with the same setup.
"""
from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import traceback
from typing import Any, Dict, List

from . import bootstrap

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _private_mounts(mounts: List[List[Any]]) -> None:
    """Bind each [source, target, read_only] in a mount namespace of this process's own."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    for source, target, read_only in mounts:
        _check(_libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None),
               "bind %s on %s" % (source, target))
        if read_only:
            _check(_libc.mount(None, target.encode(), None,
                               MS_BIND | MS_REMOUNT | MS_RDONLY, None),
                   "remount %s read-only" % target)


def _probe_mounts() -> bool:
    """Whether children can get private mounts here (root, mount namespaces allowed)."""
    pid = os.fork()
    if pid == 0:
        try:
            _check(_libc.unshare(CLONE_NEWNS), "unshare")
            _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "private")
            _check(_libc.mount(b"/", b"/mnt", None, MS_BIND, None), "bind")
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


class Zygote:
    def __init__(self, ctl: socket.socket) -> None:
        self.ctl = ctl
        self.sel = selectors.DefaultSelector()
        self.children: Dict[int, str] = {}
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # What a child's sys.path ends with: the interpreter's own library and site paths.
        self.base_path = [p for p in sys.path if p and os.path.abspath(p) != here
                          and os.path.abspath(p) != os.getcwd()]

    def send(self, message: Dict[str, Any]) -> None:
        self.ctl.send(json.dumps(message).encode())

    def loop(self) -> None:
        self.sel.register(self.ctl, selectors.EVENT_READ)
        self.send({"hello": {"mount_ns": _probe_mounts(), "python": sys.version.split()[0]}})
        # Objects made until now stay out of the collector, so children do not copy their pages.
        gc.freeze()
        while True:
            for key, _ in self.sel.select():
                if key.fileobj is not self.ctl:
                    self.reap(key.fd, key.data)
                    continue
                try:
                    data, fds, _, _ = socket.recv_fds(self.ctl, 1 << 20, 4)
                except ConnectionError:
                    data, fds = b"", []
                if not data:
                    self.shutdown()
                    return
                self.spawn(json.loads(data), fds)

    def reap(self, pidfd: int, pid: int) -> None:
        # A pidfd turns readable only when the child exits (a SIGCHLD would also fire on
        # every SIGSTOP/SIGCONT of an idle sandbox).
        self.sel.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        self.children.pop(pid, None)
        self.send({"exit": pid, "status": status})

    def shutdown(self) -> None:
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass

    def spawn(self, req: Dict[str, Any], fds: List[int]) -> None:
        tag = req["tag"]
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self.send({"tag": tag, "error": str(exc)})
            return
        if pid == 0:
            code = 127
            try:
                code = self.child(req, fds[0])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        for fd in fds:
            os.close(fd)
        self.children[pid] = tag
        self.sel.register(os.pidfd_open(pid), selectors.EVENT_READ, pid)
        self.send({"tag": tag, "pid": pid})

    def child(self, req: Dict[str, Any], out: int) -> int:
        self.sel.close()
        self.ctl.close()
        os.setsid()
        _die_with_parent()
        # Output first, so whatever fails below is in the function's log.
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.closerange(3, 65536)
        pid = str(os.getpid())
        for procs in req.get("cgroups", ()):
            with open(procs, "w") as f:
                f.write(pid)
        if req.get("mounts"):
            _private_mounts(req["mounts"])
        os.chdir(req["cwd"])
        env = req["env"]
        if req.get("argv"):
            argv = req["argv"]
            os.execve(argv[0], argv, env)
        os.environ.clear()
        os.environ.update(env)
        sys.path[:] = req["sys_path"] + self.base_path
        sys.argv[:] = ["bootstrap"]
        importlib.invalidate_caches()
        return bootstrap.run()


def main() -> None:
    _die_with_parent()
    fd = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=fd)
    # Warm what every child will need, so its first invocation imports nothing of ours.
    for name in ("http.client", "decimal", "logging", "traceback", "importlib.util", "uuid",
                 "datetime", "base64", "hashlib", "typing"):
        importlib.import_module(name)
    try:
        Zygote(ctl).loop()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
