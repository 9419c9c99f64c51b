"""Processes a test started, found on the host: a server's descendants (its zygotes and
their sandboxes), remembered with their start times so a reused pid is never mistaken for
one of them."""
from __future__ import annotations

import os

Proc = tuple[int, str]      # pid, start time in clock ticks since boot


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()      # fields from the state (field 3) on


def descendants(root: int) -> set[Proc]:
    """Every process below `root`, found through parent pids."""
    children: dict[int, list[Proc]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append((int(name), fields[19]))
    found: set[Proc] = set()
    todo = [root]
    while todo:
        for proc in children.get(todo.pop(), []):
            found.add(proc)
            todo.append(proc[0])
    return found


def alive(procs: set[Proc]) -> set[Proc]:
    """Those of `procs` that still run (a zombie has ended)."""
    out = set()
    for pid, start in procs:
        fields = _stat(pid)
        if fields is not None and fields[19] == start and fields[0] != "Z":
            out.add((pid, start))
    return out
