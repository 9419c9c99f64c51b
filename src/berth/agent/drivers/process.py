"""The process driver: containers as plain processes on the host, for hosts where neither a
Docker Engine nor runc can run. Nothing is isolated.

What it can do without namespaces or cgroups: run the command in a session of its own as the
given user with a clean environment; a memory limit is a watchdog that kills the session when
its resident memory passes the limit (reported like an OOM kill, exit 137); the pids limit is
RLIMIT_NPROC (which counts all of the user's processes, and root ignores it); cpu shares become
a nice value. The image is ignored: every container sees the host's file system.
"""
from __future__ import annotations

import logging
import math
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from ..images import HOST_IMAGE
from ..oci import RLIMIT_NAMES, resolve_user
from ..sandbox_spec import MIB
from .base import (
    DEFAULT_PATH,
    CannotStart,
    ContainerSpec,
    DriverError,
    ExecResult,
    image_argv,
    validate,
)
from .shim import session_members
from .stats import docker_stats, process_usage
from .supervised import SupervisedDriver, is_root, read_json, write_json

log = logging.getLogger(__name__)


def nice_for_shares(shares: int | None) -> int:
    """The nice value whose CFS weight relative to nice 0 is closest to shares/1024 (each
    nice step is a factor of ~1.25); never negative, which would need privilege."""
    if not shares or shares >= 1024:
        return 0
    return min(19, round(math.log(1024 / shares, 1.25)))


class ProcessDriver(SupervisedDriver):
    name = "process"
    network_modes = frozenset({"host"})

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        log.warning("process driver: containers run as plain processes on this host with NO "
                    "isolation (no namespaces, no cgroups, the host's file system and network; "
                    "memory limits by polling, pids limits by RLIMIT_NPROC)")

    def create(self, spec: ContainerSpec) -> str:
        validate(spec, self.network_modes)
        if spec.mounts:
            raise CannotStart("the process driver cannot mount volumes")
        if spec.read_only_root:
            raise CannotStart("the process driver cannot make the file system read-only")
        if spec.image != HOST_IMAGE:
            log.warning("process driver: image %s ignored; %s runs on the host's file system",
                        spec.image, spec.name)
        argv = image_argv(spec, None, None)
        uid = gid = None
        groups: list[int] | None = None
        home = os.path.expanduser("~")
        if spec.user:
            try:
                uid, gid, groups, home = resolve_user(Path("/"), spec.user)
            except LookupError as exc:
                raise CannotStart(str(exc)) from exc
            if not is_root() and uid != os.geteuid():
                raise CannotStart(f"the process driver runs as uid {os.geteuid()} and cannot "
                                  f"switch to user {spec.user}")
        unknown = [u.name for u in spec.ulimits if u.name not in RLIMIT_NAMES]
        if unknown:
            raise CannotStart(f"unknown ulimit {', '.join(unknown)}")
        rlimits = {u.name: (u.soft, u.hard) for u in spec.ulimits}
        if spec.pids_limit is not None:
            rlimits["nproc"] = (spec.pids_limit, spec.pids_limit)
        env = {"PATH": DEFAULT_PATH, "HOME": home, "HOSTNAME": socket.gethostname(),
               **spec.environment}
        cid, cdir = self._new_dir(spec, stop_timeout=spec.stop_timeout)
        write_json(cdir / "shim.json", {
            "mode": "exec", "argv": argv, "env": env, "cwd": spec.working_dir or "/",
            "uid": uid, "gid": gid, "groups": groups, "rlimits": rlimits,
            "nice": nice_for_shares(spec.cpu_shares),
            "memory_bytes": spec.memory_mib * MIB if spec.memory_mib else None})
        return cid

    def start(self, cid: str) -> None:
        cdir = self._dir(cid)
        if (cdir / "run.json").exists():
            raise CannotStart(f"container {cid} was already started")
        started = time.time()
        self._launch(cdir, read_json(cdir / "shim.json") or {})
        self._mark_started(cdir, started)

    def stop(self, cid: str, timeout: float) -> None:
        cdir = self._dir(cid)
        pid = self._init_pid(cdir)
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not self._wait_exit_file(cdir, timeout):
            self._kill_all(pid)
            self._wait_exit_file(cdir, 10)

    def _kill_all(self, pid: int) -> None:
        for member, _ in session_members(pid):
            try:
                os.kill(member, signal.SIGKILL)
            except OSError:
                pass

    def stats(self, cid: str) -> dict[str, Any]:
        cdir = self._dir(cid)
        pid = self._init_pid(cdir)
        members = [member for member, _ in session_members(pid)] if pid is not None else []
        return docker_stats(process_usage(members), self._meta(cid)["name"], cid)

    def remove(self, cid: str) -> None:
        try:
            cdir = self._dir(cid)
        except DriverError:
            return
        pid = self._init_pid(cdir)
        if pid is not None:
            self._kill_all(pid)
            self._wait_exit_file(cdir, 10)
        self._remove_dir(cdir)

    def exec(self, cid: str, cmd: list[str], timeout: float) -> ExecResult:
        cdir = self._dir(cid)
        if self.state(cid).status != "running":
            raise DriverError(f"container {cid} is not running")
        spec = read_json(cdir / "shim.json") or {}
        try:
            proc = subprocess.Popen(cmd, env=spec.get("env"), cwd=spec.get("cwd"),
                                    user=spec.get("uid"), group=spec.get("gid"),
                                    extra_groups=spec.get("groups"), start_new_session=True,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
        except OSError as exc:
            return ExecResult(127, f"exec: {cmd[0]!r}: {exc.strerror}")
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return ExecResult(None, out.decode(errors="replace"))
        code = proc.returncode
        return ExecResult(128 - code if code < 0 else code, out.decode(errors="replace"))
