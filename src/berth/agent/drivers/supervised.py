"""The agent's side of containers that a `shim` supervises (the runc and process drivers).

Each container is a directory `<data>/containers/<id>/`: `meta.json` (what was asked: name,
labels, driver), `run.json` (the supervisor's pid, when it started), and the supervisor's own
`log.jsonl` and `exit.json`. Everything a driver reports is read back from there, so a
restarted agent sees the same containers, output and exit codes.
"""
from __future__ import annotations

import json
import logging
import os
import resource
import select
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator

from ..oci import runc_message
from . import shim
from .base import CannotStart, ContainerNotFound, ContainerSpec, ContainerState, LogLine

log = logging.getLogger(__name__)

SHIM = Path(shim.__file__)
POLL_S = 0.05


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, value: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    tmp.replace(path)


class SupervisedDriver:
    """State, waiting, logs and listing for drivers whose containers a shim supervises."""
    name = "supervised"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.containers = self.data_dir / "containers"
        # Private: bundles and logs hold the containers' environment, secrets included.
        self.containers.mkdir(mode=0o700, parents=True, exist_ok=True)

    # -- the container directory -------------------------------------------------------

    def _new_dir(self, spec: ContainerSpec, **extra: object) -> tuple[str, Path]:
        cid = uuid.uuid4().hex
        cdir = self.containers / cid
        cdir.mkdir(mode=0o700)
        write_json(cdir / "meta.json", {
            "id": cid, "name": spec.name, "image": spec.image, "labels": spec.labels,
            "driver": self.name, "created_at": time.time(), **extra})
        return cid, cdir

    def _dir(self, cid: str) -> Path:
        cdir = self.containers / cid
        if "/" in cid or cid in ("", ".", "..") or not (cdir / "meta.json").exists():
            raise ContainerNotFound(f"no container {cid!r}")
        return cdir

    def _meta(self, cid: str) -> dict:
        meta = read_json(self._dir(cid) / "meta.json")
        if meta is None:
            raise ContainerNotFound(f"no container {cid!r}")
        return meta

    def _launch(self, cdir: Path, spec: dict, timeout: float = 60.0) -> dict:
        """Start the container's supervisor; returns its report once the first process exists."""
        write_json(cdir / "shim.json", spec)
        # -S: the shim needs only the standard library, and starts in a few milliseconds.
        proc = subprocess.Popen([sys.executable, "-S", str(SHIM), str(cdir)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            line = proc.stdout.readline() if ready else b""    # type: ignore[union-attr]
        finally:
            proc.stdout.close()     # type: ignore[union-attr]
            proc.wait()             # the shim forked: this is only its launcher
        if not line:
            why = "exited without reporting" if ready else f"did not report within {timeout:g}s"
            raise CannotStart(f"the container supervisor {why} (see {cdir / 'shim.log'})")
        report = json.loads(line)
        if not report["ok"]:
            raise CannotStart(runc_message(report["error"] or "")
                              or "the container's process could not start")
        write_json(cdir / "run.json", {"pid": report["pid"], "shim_pid": report["shim_pid"],
                                        "shim_start": report["shim_start"]})
        return report

    def _mark_started(self, cdir: Path, started_at: float) -> None:
        run = read_json(cdir / "run.json") or {}
        write_json(cdir / "run.json", {**run, "started_at": started_at})

    def _alive(self, run: dict) -> bool:
        """Whether the supervisor still runs (the same process, not a reused pid)."""
        return shim.start_time(run["shim_pid"]) == run["shim_start"]

    def _init_pid(self, cdir: Path) -> int | None:
        """The container's first process while it runs, else None."""
        run = read_json(cdir / "run.json")
        if run is None or (cdir / "exit.json").exists() or not self._alive(run):
            return None
        return int(run["pid"])

    # -- the Driver methods they share ---------------------------------------------------

    def state(self, cid: str) -> ContainerState:
        meta = self._meta(cid)
        cdir = self._dir(cid)
        run = read_json(cdir / "run.json") or {}
        done = read_json(cdir / "exit.json")
        st = ContainerState(id=cid, name=meta["name"], status="created",
                            labels=meta.get("labels", {}), started_at=run.get("started_at"),
                            created_at=meta.get("created_at"))
        if done is not None:
            st.status = "exited"
            st.exit_code = done.get("exit_code")
            st.oom_killed = bool(done.get("oom_killed"))
            st.finished_at = done.get("finished_at")
            st.error = done.get("error")
        elif run and not self._alive(run) and not (cdir / "exit.json").exists():
            st.status = "exited"
            st.error = "the container's supervisor exited without recording an exit status"
        elif run.get("started_at") is not None:
            st.status = "running"
            st.pid = run.get("pid")
        return st

    def wait(self, cid: str, timeout: float) -> ContainerState:
        deadline = time.monotonic() + timeout
        while True:
            st = self.state(cid)
            if st.status == "exited" or time.monotonic() >= deadline:
                return st
            time.sleep(POLL_S)

    def logs(self, cid: str, after: str | None = None, follow: bool = False) -> Iterator[LogLine]:
        cdir = self._dir(cid)
        offset = int(after) if after else 0
        path = cdir / "log.jsonl"
        while True:
            # Checked before reading: the shim writes exit.json only after the last line.
            try:
                finished = not follow or self.state(cid).status == "exited"
            except ContainerNotFound:
                finished = True         # removed while we followed it
            lines, offset = _read_lines(path, offset)
            yield from lines
            if finished and not lines:
                return
            if not lines:
                time.sleep(0.1)

    def list(self, labels: dict[str, str]) -> list[ContainerState]:
        found = []
        for cdir in sorted(self.containers.iterdir()):
            meta = read_json(cdir / "meta.json")
            if meta is None or meta.get("driver") != self.name:
                continue
            if all(meta.get("labels", {}).get(k) == v for k, v in labels.items()):
                try:
                    found.append(self.state(cdir.name))
                except ContainerNotFound:
                    continue        # removed meanwhile
        return found

    def _wait_exit_file(self, cdir: Path, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not (cdir / "exit.json").exists():
            run = read_json(cdir / "run.json")
            if run is None or not self._alive(run) or time.monotonic() >= deadline:
                return (cdir / "exit.json").exists()
            time.sleep(POLL_S)
        return True

    def _remove_dir(self, cdir: Path) -> None:
        shutil.rmtree(cdir, ignore_errors=True)

    def offer(self, archives: Mapping[str, Path]) -> None:
        """The process driver runs every container on the host's file system: images play no
        part (the runc driver overrides this)."""

    def close(self) -> None:
        pass


def _read_lines(path: Path, offset: int) -> tuple[list[LogLine], int]:
    """Complete lines of the log from byte `offset`; cursors are byte offsets."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    lines = []
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break       # the shim is still writing this one
        offset += len(raw)
        entry = json.loads(raw)
        lines.append(LogLine(entry["t"], entry["s"], entry["m"], str(offset)))
    return lines, offset


def default_rlimits(ulimits: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """The container's rlimits: our hard limit for open files (without CAP_SYS_RESOURCE a
    container may not ask for more), then the spec's."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return {"nofile": (hard, hard), **ulimits}


def is_root() -> bool:
    return os.geteuid() == 0
