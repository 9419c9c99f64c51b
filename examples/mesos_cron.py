"""A Chronos-like Mesos framework: runs a command on a cron schedule, on a berth (or ECS) cluster.

    eval "$(berth env)"
    python examples/mesos_cron.py --schedule '*/5 * * * *' --mem 32 -- 'date; echo tick'

The schedule is a cron expression in UTC: five fields (minute hour day-of-month month
day-of-week), or six with seconds first. `*`, `*/n`, `a-b`, `a-b/n` and lists work in every
field; when both day fields are restricted, either one matching is enough (as in Vixie cron).

Between runs the framework suppresses offers; when a run is due it revives them, launches the
run on the first offer with room, and suppresses them again. A run that fails (or is lost) is
retried up to `--retries` times; a run still going when the next one is due makes that one
wait (runs of a job never overlap). Every event is printed as one JSON line.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from berth.mesos import DRIVER_STOPPED, ECSSchedulerDriver, Message, Scheduler, SchedulerDriver

Event = Callable[[dict[str, Any]], None]
TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR"}
RETRIED = {"TASK_FAILED", "TASK_LOST", "TASK_ERROR"}

# (low, high) of seconds, minutes, hours, day of month, month, day of week (0 = Sunday)
BOUNDS = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
MAX_STEPS = 100_000


class CronError(ValueError):
    pass


def _field(text: str, low: int, high: int) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            first, last = (int(x) for x in spec.split("-", 1))
        else:
            first = int(spec)
            last = high if step_text else first
        if not low <= first <= last <= high or step < 1:
            raise CronError(f"{part!r} is out of range {low}-{high}")
        out.update(range(first, last + 1, step))
    return frozenset(out)


class Cron:
    """A parsed cron expression; `next_after(t)` is the first matching second after t."""

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise CronError("a cron expression has 5 fields (or 6, seconds first)")
        try:
            sets = [_field(f, lo, hi) for f, (lo, hi) in zip(fields, BOUNDS)]
        except ValueError as exc:
            raise CronError(f"{expression!r}: {exc}") from None
        self.seconds, self.minutes, self.hours, self.days, self.months, dow = sets
        self.weekdays = frozenset(d % 7 for d in dow)
        self.any_day, self.any_weekday = fields[3] == "*", fields[5] == "*"

    def _day_matches(self, t: dt.datetime) -> bool:
        dom, dow = t.day in self.days, (t.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow

    def next_after(self, after: dt.datetime) -> dt.datetime:
        t = after.replace(microsecond=0) + dt.timedelta(seconds=1)
        for _ in range(MAX_STEPS):
            if t.month not in self.months:
                t = (t.replace(day=1) + dt.timedelta(days=32)).replace(
                    day=1, hour=0, minute=0, second=0)
            elif not self._day_matches(t):
                t = (t + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif t.hour not in self.hours:
                t = (t + dt.timedelta(hours=1)).replace(minute=0, second=0)
            elif t.minute not in self.minutes:
                t = (t + dt.timedelta(minutes=1)).replace(second=0)
            elif t.second not in self.seconds:
                t += dt.timedelta(seconds=1)
            else:
                return t
        raise CronError("the expression never matches")


def print_event(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def scalar(offer: Any, name: str) -> float:
    return sum(r.scalar.value for r in offer.resources if r.name == name)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CronJob(Scheduler):
    def __init__(self, name: str, schedule: str, command: str, cpus: float, mem: float,
                 retries: int = 0, on_event: Event = print_event,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.name, self.cron, self.command = name, Cron(schedule), command
        self.cpus, self.mem, self.retries = cpus, mem, retries
        self.on_event, self.clock = on_event, clock
        self.lock = threading.Lock()
        self.next_run = self.cron.next_after(clock())
        self.due: dt.datetime | None = None         # the run waiting for an offer
        self.attempt = 0
        self.running: str | None = None             # its task id, once launched
        self.driver: SchedulerDriver | None = None
        self.stopped = threading.Event()

    def registered(self, driver: SchedulerDriver, frameworkId: Any, masterInfo: Any) -> None:
        self.driver = driver
        driver.suppressOffers()
        self.on_event({"event": "registered", "framework_id": frameworkId.value,
                       "next_run": self.next_run.isoformat()})
        threading.Thread(target=self.clock_loop, daemon=True).start()

    def clock_loop(self) -> None:
        """Wakes at each fire time and asks for offers when a run becomes due."""
        while not self.stopped.is_set():
            with self.lock:
                wait = (self.next_run - self.clock()).total_seconds()
                if wait <= 0:
                    fired, self.next_run = self.next_run, self.cron.next_after(self.clock())
                    if self.due is None and self.running is None:
                        self.due, self.attempt = fired, 0
                        self.on_event({"event": "due", "run": fired.isoformat()})
                        revive = True
                    else:
                        self.on_event({"event": "skipped", "run": fired.isoformat(),
                                       "reason": "the previous run is still going"})
                        revive = False
                    wait = 0
                else:
                    revive = False
            if revive and self.driver is not None:
                self.driver.reviveOffers()
            self.stopped.wait(min(max(wait, 0.0), 1.0))

    def resourceOffers(self, driver: SchedulerDriver, offers: list[Any]) -> None:
        for offer in offers:
            with self.lock:
                take = (self.due is not None and self.running is None
                        and scalar(offer, "cpus") >= self.cpus and scalar(offer, "mem") >= self.mem)
                if take:
                    assert self.due is not None
                    task = Message()
                    task.task_id.value = (f"{self.name}-{self.due.strftime('%Y%m%dT%H%M%S')}"
                                          f"-{self.attempt}")
                    task.agent_id.value = offer.agent_id.value
                    task.name = self.name
                    task.command.value = self.command
                    task.resources = [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": self.cpus}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": self.mem}}]
                    self.running = task.task_id.value
            if take:
                self.on_event({"event": "launch", "task": task.task_id.value,
                               "agent": offer.agent_id.value, "offer": offer.id.value})
                driver.launchTasks(offer.id, [task], {"refuse_seconds": 1})
            else:
                driver.declineOffer(offer.id, {"refuse_seconds": 3600})
        with self.lock:
            if self.running is not None:
                driver.suppressOffers()

    def statusUpdate(self, driver: SchedulerDriver, status: Any) -> None:
        labels = {lab.key: lab.value for lab in status.labels.labels or []}
        self.on_event({"event": "status", "task": status.task_id.value, "state": status.state,
                       "message": status.get("message"), "reason": status.get("reason"),
                       "exit_code": labels.get("berth.exit-code")})
        retry = False
        with self.lock:
            if status.task_id.value != self.running or status.state not in TERMINAL:
                return
            self.running = None
            if status.state in RETRIED and self.attempt < self.retries:
                self.attempt += 1
                retry = True
            else:
                self.on_event({"event": "done", "run": self.due.isoformat() if self.due else None,
                               "state": status.state, "attempts": self.attempt + 1})
                self.due = None
        if retry:
            driver.reviveOffers()

    def slaveLost(self, driver: SchedulerDriver, slaveId: Any) -> None:
        self.on_event({"event": "agent_lost", "agent": slaveId.value})

    def error(self, driver: SchedulerDriver, message: str) -> None:
        self.on_event({"event": "error", "message": message})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", help="the shell command each run executes")
    parser.add_argument("--schedule", required=True, help="cron expression (UTC)")
    parser.add_argument("--name", default="cron")
    parser.add_argument("--cpus", type=float, default=0.1)
    parser.add_argument("--mem", type=float, default=32)
    parser.add_argument("--retries", type=int, default=0)
    parser.add_argument("--cluster", default="default")
    parser.add_argument("--endpoint", default=None, help="[AWS_ENDPOINT_URL]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    job = CronJob(args.name, args.schedule, args.command, args.cpus, args.mem, args.retries)
    driver = ECSSchedulerDriver(job, {"name": args.name, "user": ""}, args.cluster,
                                endpoint_url=args.endpoint)

    def stop(*_: Any) -> None:
        job.stopped.set()
        threading.Thread(target=driver.stop).start()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    return 0 if driver.run() == DRIVER_STOPPED else 1


if __name__ == "__main__":
    sys.exit(main())
