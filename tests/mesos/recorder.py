"""What a Mesos framework saw, for tests: every event with the time it arrived, and bounded
waits for the events a test expects."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from berth.mesos import Scheduler, SchedulerDriver

Event = dict[str, Any]


class EventLog:
    """Callable as a framework's `on_event`; each event gets `t` (time.monotonic())."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append({**event, "t": time.monotonic()})
            self._cond.notify_all()

    def of(self, kind: str, **match: Any) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e["event"] == kind
                    and all(e.get(k) == v for k, v in match.items())]

    def wait(self, predicate: Callable[[EventLog], Any], timeout: float = 30,
             what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "\n".join(map(str, self.events[-30:]))
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                         f"last events:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def state_of(self, task_id: str) -> str | None:
        states = self.of("status", task=task_id)
        return states[-1]["state"] if states else None


class Recorder(Scheduler):
    """A scheduler that records every callback; `on_offers` decides what to do with offers
    (by default nothing: they stay outstanding)."""

    def __init__(self, on_offers: Callable[[SchedulerDriver, list[Any]], None] | None = None
                 ) -> None:
        self.log = EventLog()
        self.on_offers = on_offers
        self.offers: dict[str, Any] = {}

    def registered(self, driver: SchedulerDriver, frameworkId: Any, masterInfo: Any) -> None:
        self.log({"event": "registered", "framework_id": frameworkId.value,
                  "master": dict(masterInfo)})

    def reregistered(self, driver: SchedulerDriver, masterInfo: Any) -> None:
        self.log({"event": "reregistered"})

    def disconnected(self, driver: SchedulerDriver) -> None:
        self.log({"event": "disconnected"})

    def resourceOffers(self, driver: SchedulerDriver, offers: list[Any]) -> None:
        for offer in offers:
            self.offers[offer.id.value] = offer
            self.log({"event": "offer", "offer": offer.id.value, "agent": offer.agent_id.value,
                      "resources": {r.name: r.scalar.value if r.type == "SCALAR" else
                                    [(s.begin, s.end) for s in r.ranges.range]
                                    for r in offer.resources}})
        if self.on_offers is not None:
            self.on_offers(driver, offers)

    def offerRescinded(self, driver: SchedulerDriver, offerId: Any) -> None:
        self.log({"event": "rescinded", "offer": offerId.value})

    def statusUpdate(self, driver: SchedulerDriver, status: Any) -> None:
        labels = {lab.key: lab.value for lab in status.labels.labels or []}
        self.log({"event": "status", "task": status.task_id.value, "state": status.state,
                  "agent": status.agent_id.value, "reason": status.get("reason"),
                  "message": status.get("message"), "source": status.get("source"),
                  "arn": labels.get("berth.task-arn"),
                  "exit_code": labels.get("berth.exit-code")})

    def slaveLost(self, driver: SchedulerDriver, slaveId: Any) -> None:
        self.log({"event": "agent_lost", "agent": slaveId.value})

    def error(self, driver: SchedulerDriver, message: str) -> None:
        self.log({"event": "error", "message": message})

    def offer_for(self, agent: str, after: float = 0.0) -> Any:
        """The latest offer for `agent` that arrived after `after`, if any."""
        found = [e for e in self.log.of("offer", agent=agent) if e["t"] > after]
        return self.offers[found[-1]["offer"]] if found else None
