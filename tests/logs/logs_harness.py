"""In-process harness for the Logs service: a movable clock and a service caller."""
from __future__ import annotations

from typing import Any

from berth.api.app import RequestContext
from berth.logs.service import LogsService


class Clock:
    """Stands in for `berth.logs.clock.now_ms` so a test can move time forward."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance_days(self, days: float) -> None:
        self.now += int(days * 86_400_000)


class Logs:
    """LogsService with a request context filled in: `logs.put_log_events(logGroupName=...)`."""

    def __init__(self, service: LogsService) -> None:
        self.service = service
        self.ctx = RequestContext("req-1", "us-east-1", "000000000000", "logs", "",
                                  "AKIATEST", "http://localhost")

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.service, name)
        return lambda **req: method(self.ctx, req)
