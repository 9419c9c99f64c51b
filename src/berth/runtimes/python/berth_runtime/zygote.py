"""The zygote: a warm interpreter that forks blank sandboxes and later specialises them.

The worker starts one per Python version and talks to it over a SOCK_SEQPACKET socket (argv[1]):
JSON requests, the sandbox's output pipe passed as an fd; JSON replies. A *blank* is forked
into a new PID namespace, joins its cgroups, isolates itself (isolate.enter: mount, IPC and
UTS namespaces, a private read-only root, its own /tmp) and drops to the unprivileged sandbox
user; as PID 1 of its namespace it forks the runtime (PID 2, so that the runtime can be
signalled, even by itself, as on Lambda) and stays as the sandbox's init: it reaps orphans
and reports the runtime's exit status. The runtime waits on a socket to the zygote without
knowing its function. To *specialise* it, the zygote mounts the function's code at the task
root inside the blank's mount namespace and sends it its environment; a Python blank then
imports the handler in place, its imports already warm (~1 ms instead of a ~30 ms
interpreter start), a Node.js blank (node started ahead) loads its handler, an exec blank
starts the function's own program. Without isolation the runtime is the forked child itself.

    -> {"blank": tag, "kind": "python"|"exec"|"node", "cgroups": [procs files],
        "isolation": plan or null, "uid": n, "gid": n, "node_argv": [...], "node_env": {...}}
    <- {"tag": tag, "pid": pid} ... {"ready": pid} once isolated (and booted)
    -> {"specialise": tag, "pid": pid, "mounts": [[host, target]], "tmp_mb": n,
        "message": {"env": {...}, "cwd": str, "sys_path": [...], "argv": [...] | null}}
    <- {"tag": tag, "ok": true} | {"tag": tag, "error": str}
    <- {"exit": pid, "status": the runtime's wait status}
    -> {"configure": tag, "seccomp": an OCI seccomp profile}   (once, before any blank)
    <- {"tag": tag, "ok": true} | {"tag": tag, "error": why there is no filter}

A blank installs the seccomp filter (compiled here once) after it has isolated itself and
dropped its privileges, so its runtime and everything it starts run under it. When the worker
goes away (its socket closes, or it dies: PR_SET_PDEATHSIG sends SIGTERM), the zygote ends
every sandbox it forked, frozen ones included, removes their cgroups, and exits.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from typing import Any, Dict, List, Optional, Sequence, Set

from . import bootstrap, isolate, seccomp

BLANK_FD = 3            # where a blank finds its socket to the zygote
SHUTDOWN_WAIT = 5.0     # seconds the zygote waits for its sandboxes to go before it exits


class Orphaned(Exception):
    """The worker died (the parent-death signal)."""


class Zygote:
    def __init__(self, ctl: socket.socket) -> None:
        self.ctl = ctl
        self.sel = selectors.DefaultSelector()
        self.children: Dict[int, str] = {}
        self.cgroups: Dict[int, List[str]] = {}         # each sandbox's cgroup.procs files
        self.sockets: Dict[int, socket.socket] = {}     # each sandbox's, for its life
        self.seccomp: Optional[seccomp.Program] = None
        self.specialised: Set[int] = set()
        self.isolation = isolate.probe() if os.geteuid() == 0 else {
            "namespaces": False, "error": "not running as root"}
        self.own_pidns = (os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
                          if self.isolation["namespaces"] else -1)
        self.mounter: Optional[isolate.Mounter] = None
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # What a child's sys.path ends with: the interpreter's own library and site paths.
        self.base_path = [p for p in sys.path if p and os.path.abspath(p) != here
                          and os.path.abspath(p) != os.getcwd()]

    def send(self, message: Dict[str, Any]) -> None:
        self.ctl.send(json.dumps(message).encode())

    def loop(self) -> None:
        self.sel.register(self.ctl, selectors.EVENT_READ, ("ctl", 0))
        self.send({"hello": {"namespaces": self.isolation["namespaces"],
                             "isolation_error": self.isolation["error"],
                             "python": sys.version.split()[0],
                             "prefix": sys.base_prefix}})
        # Objects made until now stay out of the collector, so children do not copy their pages.
        gc.freeze()
        while True:
            for key, _ in self.sel.select():
                what, pid = key.data
                if what == "exit":
                    self.reap(key.fd, pid)
                elif what == "ready":
                    self.ready(pid)
                else:
                    try:
                        data, fds, _, _ = socket.recv_fds(self.ctl, 1 << 20, 4)
                    except ConnectionError:
                        data, fds = b"", []
                    if not data:
                        self.shutdown()
                        return
                    self.handle(json.loads(data), fds)

    def handle(self, req: Dict[str, Any], fds: List[int]) -> None:
        if "blank" in req:
            self.blank(req, fds)
            return
        for fd in fds:
            os.close(fd)
        if "configure" in req:
            self.seccomp, why = seccomp.try_compile(req.get("seccomp"))
            self.send({"tag": req["configure"], "error": why} if why else
                      {"tag": req["configure"], "ok": True})
            return
        try:
            self.specialise(req)
        except Exception as exc:
            self.send({"tag": req["specialise"], "error": str(exc)})
        else:
            self.send({"tag": req["specialise"], "ok": True})

    def reap(self, pidfd: int, pid: int) -> None:
        # A pidfd turns readable only when the child exits (a SIGCHLD would also fire on
        # every SIGSTOP/SIGCONT of an idle sandbox).
        self.sel.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        self.children.pop(pid, None)
        self.cgroups.pop(pid, None)
        self.specialised.discard(pid)
        sock = self.sockets.pop(pid, None)
        if sock is not None:
            # An isolated sandbox's init reports how its runtime ended before it exits.
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            try:
                sock.setblocking(False)
                said = sock.recv(32)
                if said.startswith(b"S"):
                    status = int(said[1:])
            except (OSError, ValueError):
                pass
            sock.close()
        self.send({"exit": pid, "status": status})

    def ready(self, pid: int) -> None:
        sock = self.sockets.get(pid)
        if sock is None:
            return          # reaped earlier in the same round of events
        self.sel.unregister(sock)
        try:
            said = sock.recv(1)
        except OSError:
            said = b""
        if said == b"R":
            self.send({"ready": pid})
        # Else it failed while isolating itself: its exit (and its output) tell why.

    def shutdown(self) -> None:
        """End every sandbox: SIGKILL all their processes, thaw the frozen ones (a frozen
        task takes its SIGKILL only once thawed), wait for them, remove their cgroups."""
        for pid in list(self.children):
            _kill_sandbox(pid, self.cgroups.get(pid, ()))
        deadline = time.monotonic() + SHUTDOWN_WAIT
        waiting = set(self.children)
        while waiting and time.monotonic() < deadline:
            for pid in list(waiting):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    waiting.discard(pid)
            if waiting:
                time.sleep(0.005)
        dirs = [os.path.dirname(p) for procs in self.cgroups.values() for p in procs]
        while dirs and time.monotonic() < deadline:
            dirs = [d for d in dirs if not _rmdir(d)]
            if dirs:
                time.sleep(0.005)

    def blank(self, req: Dict[str, Any], fds: List[int]) -> None:
        tag = req["blank"]
        isolated = req.get("isolation") is not None
        if isolated and self.mounter is None:
            # Made now, ahead of the first cold start that needs it (it forks).
            self.mounter = isolate.Mounter(req["uid"], req["gid"])
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = -1
        try:
            if isolated:
                # The next child is PID 1 of a namespace of its own.
                isolate.unshare(isolate.CLONE_NEWPID)
            try:
                pid = os.fork()
            finally:
                if isolated and pid != 0:
                    isolate.setns(self.own_pidns, isolate.CLONE_NEWPID)
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            ours.close()
            theirs.close()
            self.send({"tag": tag, "error": str(exc)})
            return
        if pid == 0:
            code = 127
            try:
                ours.close()
                code = self.child(req, fds[0], theirs)
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
        theirs.close()
        self.children[pid] = tag
        self.cgroups[pid] = list(req.get("cgroups", ()))
        self.sockets[pid] = ours
        self.sel.register(os.pidfd_open(pid), selectors.EVENT_READ, ("exit", pid))
        self.sel.register(ours, selectors.EVENT_READ, ("ready", pid))
        self.send({"tag": tag, "pid": pid})

    def specialise(self, req: Dict[str, Any]) -> None:
        pid = req["pid"]
        sock = self.sockets.get(pid)
        if sock is None or pid in self.specialised:
            raise RuntimeError("sandbox %d is not waiting to be specialised" % pid)
        self.specialised.add(pid)
        if req.get("mounts") or req.get("tmp_mb"):
            if self.mounter is None:
                self.mounter = isolate.Mounter(req["uid"], req["gid"])
            self.mounter.mount_code(pid, req.get("mounts") or [], req.get("tmp_mb") or 0)
        sock.setblocking(True)
        sock.sendall(json.dumps(req["message"]).encode())
        # End of message; the socket stays open for the init's report of the exit.
        sock.shutdown(socket.SHUT_WR)

    def child(self, req: Dict[str, Any], out: int, sock: socket.socket) -> int:
        # Dies with the zygote even while it isolates itself.
        isolate.die_with_parent()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.sel.close()
        self.ctl.close()
        for other in self.sockets.values():
            other.close()
        # Output first, so whatever fails below is in the sandbox's log, not the worker's.
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.dup2(sock.fileno(), BLANK_FD)
        os.set_inheritable(BLANK_FD, True)
        os.closerange(BLANK_FD + 1, 65536)
        # Then into its cgroups, before it allocates anything to speak of.
        for procs in req.get("cgroups", ()):
            with open(procs, "w") as f:
                f.write("0")
        os.setsid()
        plan = req.get("isolation")
        if plan is None:
            isolate.die_with_parent()
        else:
            isolate.enter(plan)
            isolate.drop_privileges(req["uid"], req["gid"])
        if self.seccomp is not None:
            isolate.no_new_privs()
            self.seccomp.install()
        if plan is not None:
            runtime = os.fork()
            if runtime:
                return _init(runtime)
            isolate.die_with_parent()
        if req["kind"] == "node":
            # Node.js takes ~50 ms to start: it starts now, says it is ready once it has
            # booted, and waits for its function.
            argv = req["node_argv"]
            os.execve(argv[0], argv, {**req["node_env"], "BERTH_BLANK_FD": str(BLANK_FD)})
        if req["kind"] == "python":
            bootstrap.rehearse()
        os.write(BLANK_FD, b"R")
        message = _read_all(BLANK_FD)
        if not message:
            return 0            # the worker let the blank go unused
        spec = json.loads(message)
        os.chdir(spec["cwd"])
        env = spec["env"]
        if spec.get("argv"):
            argv = spec["argv"]
            os.execve(argv[0], argv, env)
        os.environ.clear()
        os.environ.update(env)
        sys.path[:] = spec["sys_path"] + self.base_path
        sys.argv[:] = ["bootstrap"]
        importlib.invalidate_caches()
        return bootstrap.run()


def _init(runtime: int) -> int:
    """PID 1 of a sandbox: reap whatever exits until the runtime does, then report how it
    ended and exit, which ends every process left in the namespace."""
    isolate.set_name("sandbox-init")
    os.close(0)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if pid == runtime:
            try:
                os.write(BLANK_FD, b"S%d" % status)
            except OSError:
                pass
            return 0


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _kill_sandbox(pid: int, procs_files: Sequence[str]) -> None:
    for procs in procs_files:
        try:
            with open(procs) as f:
                members = [int(p) for p in f.read().split()]
        except (OSError, ValueError):
            continue
        for member in members:
            try:
                os.kill(member, signal.SIGKILL)
            except OSError:
                pass
    for procs in procs_files:
        state = os.path.join(os.path.dirname(procs), "freezer.state")
        try:
            with open(state, "w") as f:
                f.write("THAWED")
        except OSError:
            pass
    for kill in (os.kill, os.killpg):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _rmdir(path: str) -> bool:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _orphaned(signum: int, frame: Any) -> None:
    raise Orphaned()


def main() -> None:
    signal.signal(signal.SIGTERM, _orphaned)
    isolate.die_with_parent(signal.SIGTERM)
    fd = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=fd)
    # Warm what every child will need, so its first invocation imports nothing of ours.
    for name in ("http.client", "decimal", "logging", "traceback", "importlib.util", "uuid",
                 "datetime", "base64", "hashlib", "typing"):
        importlib.import_module(name)
    try:
        # Loads the resolver's modules once, for every child's first name lookup.
        socket.getaddrinfo("localhost", 0)
    except OSError:
        pass
    zygote = Zygote(ctl)
    try:
        zygote.loop()
    except (KeyboardInterrupt, ConnectionError, Orphaned):
        # The worker went away (or stopped us): its sandboxes go with it.
        zygote.shutdown()


if __name__ == "__main__":
    main()
