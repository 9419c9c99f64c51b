"""What one run of a function worker started, written down under its data dir, so that the
next run of the same data dir ends exactly that and nothing of anyone else's.

A dead worker's zygotes normally end its sandboxes themselves (they notice the worker is gone);
the record is for when they died too, as in a kill of the whole process tree: sandboxes that
were frozen then outlive everything, because a SIGKILL reaches a frozen task only once it is
thawed. The record (`<work dir>.run`, JSON lines appended as things start) holds the worker's
cgroup directories and each zygote's pid with its start time, so a pid reused since is never
taken for a zygote. `reap` ends what the record names; `begin` starts the new run's record.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

REAP_TIMEOUT = 5.0      # seconds to wait for killed sandboxes to leave their cgroups


def start_time(pid: int) -> str | None:
    """A process's start time (clock ticks after boot), None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class RunRecord:
    def __init__(self, path: Path) -> None:
        self.path = path

    def begin(self) -> None:
        """This run's record, empty; what it replaces must have been reaped."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def _append(self, entry: dict[str, object]) -> None:
        # One short append per zygote or cgroup directory, never per sandbox.
        with open(self.path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def cgroups(self, dirs: list[Path]) -> None:
        for d in dirs:
            self._append({"cgroup": str(d)})

    def process(self, pid: int) -> None:
        self._append({"pid": pid, "start": start_time(pid)})

    def reap(self) -> int:
        """End what an earlier run recorded: its zygotes if they still run, then every
        process in its cgroups (thawed so the SIGKILL lands), then the cgroups. Returns how
        many processes it killed."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return 0
        entries = [json.loads(line) for line in lines if line.strip()]
        killed = 0
        for entry in entries:
            pid = entry.get("pid")
            if pid and entry.get("start") and start_time(pid) == entry["start"]:
                killed += _kill(pid)
        bases = [Path(e["cgroup"]) for e in entries if "cgroup" in e]
        deadline = time.monotonic() + REAP_TIMEOUT
        while True:
            left = [d for base in bases if base.is_dir() for d in _children(base)]
            for d in left:
                killed += _empty(d)
            for d in left:
                _rmdir(d)
            for base in bases:
                _rmdir(base)
            if not any(base.exists() for base in bases) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        still = [str(b) for b in bases if b.exists()]
        if still:
            log.warning("an earlier run's sandbox cgroups are still busy: %s", ", ".join(still))
        if killed:
            log.warning("ended %d processes an earlier run of this data dir left behind", killed)
        return killed


def _children(base: Path) -> list[Path]:
    return [d for d in base.iterdir() if d.is_dir()]


def _kill(pid: int) -> int:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        return 0
    return 1


def _empty(cgroup: Path) -> int:
    """SIGKILL whatever is in `cgroup`, then thaw it."""
    try:
        pids = [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        pids = []
    killed = sum(_kill(pid) for pid in pids)
    if (cgroup / "freezer.state").exists():
        try:
            (cgroup / "freezer.state").write_text("THAWED")
        except OSError:
            pass
    return killed


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
