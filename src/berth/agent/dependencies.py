"""ECS container dependencies (`dependsOn`): whether a container may start yet, must keep
waiting, or can never start because a condition can no longer be met. Pure."""
from __future__ import annotations

from dataclasses import dataclass

from .task_plan import Dependency

MET, WAITING, FAILED = "met", "waiting", "failed"


@dataclass(frozen=True)
class Progress:
    """What a dependency target has done so far."""
    started: bool
    exited: bool
    exit_code: int | None
    health: str                     # HEALTHY | UNHEALTHY | UNKNOWN


def condition(dep: Dependency, target: Progress) -> str:
    """START: the target has started. COMPLETE: it has exited. SUCCESS: it exited 0.
    HEALTHY: its health check passed (it can no longer once it has exited)."""
    if dep.condition == "START":
        return MET if target.started or target.exited else WAITING
    if dep.condition == "COMPLETE":
        return MET if target.exited else WAITING
    if dep.condition == "SUCCESS":
        if not target.exited:
            return WAITING
        return MET if target.exit_code == 0 else FAILED
    if dep.condition == "HEALTHY":
        if target.exited:
            return FAILED
        return MET if target.health == "HEALTHY" else WAITING
    return FAILED


def resolve(deps: list[Dependency], progress: dict[str, Progress]) -> tuple[str, str]:
    """(MET | WAITING | FAILED, why) for all of one container's dependencies."""
    waiting = ""
    for dep in deps:
        state = condition(dep, progress[dep.container])
        if state == FAILED:
            target = progress[dep.container]
            detail = (f"exited with code {target.exit_code}" if target.exited
                      else f"is {target.health}")
            return FAILED, (f"dependency condition {dep.condition} on container "
                            f"{dep.container} cannot be met: it {detail}")
        if state == WAITING and not waiting:
            waiting = f"waiting for {dep.container} to be {dep.condition}"
    return (WAITING, waiting) if waiting else (MET, "")


def stop_order(names: list[str], deps: dict[str, list[Dependency]]) -> list[list[str]]:
    """Waves to stop containers in: a container is stopped only after every container that
    depends on it (the reverse of the start order)."""
    left = list(names)
    waves = []
    while left:
        wave = [n for n in left if not any(d.container == n for m in left if m != n
                                           for d in deps.get(m, []))]
        if not wave:        # a cycle (the server refuses them): stop the rest together
            wave = list(left)
        waves.append(wave)
        left = [n for n in left if n not in wave]
    return waves
