"""The supervisor of one container, run as its own detached process (standard library only).

It starts the container's first process (through `runc create`, or directly for the process
driver), becomes the parent that reaps it, writes the container's stdout and stderr to
`log.jsonl` with a timestamp per line and, when it exits, its status to `exit.json`. Because
it outlives the agent, a restarted agent finds output and exit codes on disk.

Usage: python -S shim.py CONTAINER_DIR   (reads CONTAINER_DIR/shim.json; reports on stdout)
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
MAX_LINE = 16 * 1024          # longer output is split into lines of this size, as Docker does
DRAIN_AFTER_EXIT_S = 2.0      # how long to wait for output after the first process exited
WATCH_INTERVAL_S = 0.1        # how often the process-mode memory watchdog measures


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat fields after the command name (index 0 = state)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def session_members(sid: int) -> list[tuple[int, int]]:
    """(pid, rss bytes) of every process in session `sid`."""
    page = os.sysconf("SC_PAGE_SIZE")
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields and int(fields[3]) == sid:
                found.append((int(name), int(fields[21]) * page))
    return found


class Supervisor:
    def __init__(self, cdir: str, spec: dict) -> None:
        self.cdir, self.spec = cdir, spec
        self.mode = spec["mode"]
        self.log = open(os.path.join(cdir, "log.jsonl"), "ab", buffering=0)
        self.pending = {"stdout": b"", "stderr": b""}
        self.pid = 0
        self.proc: subprocess.Popen | None = None
        self.status: int | None = None
        self.oom = False
        self.lost = False

    def launch(self, out_w: int, err_w: int) -> None:
        """Start the first process; raises RuntimeError with the reason it could not start."""
        if self.mode == "runc":
            proc = subprocess.Popen(self.spec["argv"], stdin=subprocess.DEVNULL,
                                    stdout=out_w, stderr=err_w)
            rc = proc.wait()
            if rc != 0:
                raise RuntimeError("")      # runc's reason is what it wrote to stderr
            with open(self.spec["pid_file"]) as f:
                self.pid = int(f.read())
            return
        try:
            proc = subprocess.Popen(
                self.spec["argv"], env=self.spec["env"], cwd=self.spec["cwd"],
                user=self.spec.get("uid"), group=self.spec.get("gid"),
                extra_groups=self.spec.get("groups"), start_new_session=True,
                preexec_fn=self._limits, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w)
        except OSError as exc:
            if exc.filename == self.spec["cwd"]:
                raise RuntimeError(f"working directory {exc.filename}: {exc.strerror}") from exc
            raise RuntimeError(f"exec: {self.spec['argv'][0]!r}: {exc.strerror}") from exc
        # Keep the Popen: its __del__ would reap the process and we would never see the status.
        self.proc = proc
        self.pid = proc.pid

    def _limits(self) -> None:
        for name, (soft, hard) in self.spec.get("rlimits", {}).items():
            resource.setrlimit(getattr(resource, f"RLIMIT_{name.upper()}"), (soft, hard))
        if self.spec.get("nice"):
            os.nice(self.spec["nice"])

    def write_lines(self, stream: str, data: bytes, final: bool = False) -> None:
        buf = self.pending[stream] + data
        lines = buf.split(b"\n")
        rest = lines.pop()
        while len(rest) > MAX_LINE:
            lines.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        if final and rest:
            lines.append(rest)
            rest = b""
        self.pending[stream] = rest
        if lines:
            now = time.time()
            self.log.write(b"".join(
                json.dumps({"t": now, "s": stream, "m": line.decode(errors="replace")}).encode()
                + b"\n" for line in lines))

    def reap(self) -> None:
        while True:
            try:
                pid, ws = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                # No children left: if the first process was reaped behind our back, its
                # status is lost; say so rather than wait for it forever.
                self.lost = self.status is None
                return
            if pid == 0:
                return
            if pid == self.pid and self.status is None:
                code = os.waitstatus_to_exitcode(ws)
                self.status = 128 - code if code < 0 else code
                self.on_exit()

    def on_exit(self) -> None:
        if self.mode == "runc":
            self.oom = self.oom or _oom_kills(self.spec.get("oom_file")) > 0
        else:
            # A container ends with its first process: take the rest of the session with it.
            self.kill_session()

    def kill_session(self) -> None:
        for pid, _ in session_members(self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def watch_memory(self) -> None:
        limit = self.spec.get("memory_bytes")
        if limit and self.status is None:
            if sum(rss for _, rss in session_members(self.pid)) > limit:
                self.oom = True
                self.kill_session()

    def run(self, out_r: int, err_r: int, wake_r: int) -> None:
        sel = selectors.DefaultSelector()
        streams = {out_r: "stdout", err_r: "stderr"}
        for fd in streams:
            sel.register(fd, selectors.EVENT_READ)
        sel.register(wake_r, selectors.EVENT_READ)
        watch = self.mode == "exec" and bool(self.spec.get("memory_bytes"))
        exited_at = None
        self.reap()
        while True:
            if (self.status is not None or self.lost) and exited_at is None:
                exited_at = time.monotonic()
            if exited_at is not None:
                left = DRAIN_AFTER_EXIT_S - (time.monotonic() - exited_at)
                if not streams or left <= 0:
                    break
                timeout: float | None = left
            else:
                timeout = WATCH_INTERVAL_S if watch else 1.0
            for key, _ in sel.select(timeout):
                fd = key.fd
                if fd == wake_r:
                    try:
                        os.read(wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                data = os.read(fd, 65536)
                if data:
                    self.write_lines(streams[fd], data)
                else:
                    self.write_lines(streams[fd], b"", final=True)
                    sel.unregister(fd)
                    del streams[fd]
            self.reap()
            if watch:
                self.watch_memory()
        for stream in ("stdout", "stderr"):
            self.write_lines(stream, b"", final=True)

    def finish(self) -> None:
        result = {"exit_code": self.status, "oom_killed": self.oom, "finished_at": time.time()}
        if self.status is None:
            result["error"] = "the container's output closed but its exit status was never seen"
        tmp = os.path.join(self.cdir, "exit.json.tmp")
        with open(tmp, "w") as f:
            json.dump(result, f)
        os.replace(tmp, os.path.join(self.cdir, "exit.json"))


def _oom_kills(path: str | None) -> int:
    if not path:
        return 0
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except OSError:
        pass
    return 0


def _drain(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)


def main() -> None:
    cdir = sys.argv[1]
    with open(os.path.join(cdir, "shim.json")) as f:
        spec = json.load(f)
    if os.fork():
        os._exit(0)     # the launcher reaps this one; the supervisor is reparented away
    report = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    errlog = os.open(os.path.join(cdir, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(errlog, 2)
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    # Not SIG_IGN: an ignored signal stays ignored in the children we exec.
    signal.signal(signal.SIGTERM, lambda *_: None)   # stopping is done to the container
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    sup = Supervisor(cdir, spec)
    try:
        sup.launch(out_w, err_w)
    except RuntimeError as exc:
        os.close(out_w)
        os.close(err_w)
        said = (_drain(err_r) + _drain(out_r)).decode(errors="replace").strip()
        report.write(json.dumps({"ok": False, "error": str(exc) or said}) + "\n")
        report.close()
        return
    os.close(out_w)
    os.close(err_w)
    report.write(json.dumps({"ok": True, "pid": sup.pid, "shim_pid": os.getpid(),
                             "shim_start": start_time(os.getpid())}) + "\n")
    report.close()
    try:
        sup.run(out_r, err_r, wake_r)
    finally:
        sup.finish()


if __name__ == "__main__":
    main()
