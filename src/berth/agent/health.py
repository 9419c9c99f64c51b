"""Container health checks as Docker and ECS define them: a command run inside the container
every `interval`, failing after `timeout`; `retries` failures in a row make the container
UNHEALTHY, one success makes it HEALTHY; failures during `startPeriod` do not count until a
check has passed. berth runs the first check about a second after the start instead of after a
whole interval, so a healthy container is known as such without waiting."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .drivers.base import Driver, DriverError
from .task_plan import HealthCheck

log = logging.getLogger(__name__)

FIRST_CHECK_AFTER = 1.0


class HealthTracker:
    """The health state machine (pure; `record` is fed results with their times)."""

    def __init__(self, check: HealthCheck, started_at: float) -> None:
        self.check = check
        self.started_at = started_at
        self.status = "UNKNOWN"
        self.failures = 0
        self.passed_once = False

    def record(self, ok: bool, at: float) -> bool:
        """Apply one check's result; True when the status changed."""
        before = self.status
        if ok:
            self.failures = 0
            self.passed_once = True
            self.status = "HEALTHY"
        elif self.passed_once or at - self.started_at >= self.check.start_period:
            self.failures += 1
            if self.failures >= self.check.retries:
                self.status = "UNHEALTHY"
        return self.status != before


async def probe(driver: Driver, cid: str, check: HealthCheck) -> bool:
    """One check: the command's exit code 0 passes; a timeout or an error fails."""
    try:
        result = await asyncio.to_thread(driver.exec, cid, check.command, check.timeout)
    except DriverError as exc:
        log.debug("health check of %s could not run: %s", cid[:12], exc)
        return False
    return result.exit_code == 0


async def monitor(driver: Driver, cid: str, tracker: HealthTracker,
                  running: Callable[[], bool], changed: Callable[[], None]) -> None:
    """Check until `running()` turns false; call `changed()` on every status change."""
    await asyncio.sleep(min(FIRST_CHECK_AFTER, tracker.check.interval))
    while running():
        ok = await probe(driver, cid, tracker.check)
        if not running():
            return
        if tracker.record(ok, time.time()):
            log.info("container %s is %s", cid[:12], tracker.status)
            changed()
        await asyncio.sleep(tracker.check.interval)
