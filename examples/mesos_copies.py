"""A Mesos framework that keeps N copies of a command running, on a berth (or ECS) cluster.

    eval "$(berth env)"
    python examples/mesos_copies.py --copies 3 --mem 32 -- 'echo "up on $PORT0"; sleep 600'

It is written against the pymesos interface (`Scheduler` callbacks, `SchedulerDriver` calls);
berth's ECSSchedulerDriver stands where pymesos's MesosSchedulerDriver would. Each offer takes
as many copies as fit and still lack; an offer that is not needed is declined with
`--refuse-seconds`; a copy that ends (finished, failed, killed, lost) is replaced. Every event
is printed as one JSON line. SIGINT or SIGTERM tears the framework down (its tasks stop).
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

from berth.mesos import DRIVER_STOPPED, ECSSchedulerDriver, Message, Scheduler, SchedulerDriver

Event = Callable[[dict[str, Any]], None]
TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR"}


def print_event(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def scalar(offer: Any, name: str) -> float:
    return sum(r.scalar.value for r in offer.resources if r.name == name)


def free_ports(offer: Any) -> list[int]:
    return [p for r in offer.resources if r.name == "ports"
            for span in r.ranges.range for p in range(span.begin, span.end + 1)]


class Copies(Scheduler):
    def __init__(self, copies: int, command: str, cpus: float, mem: float, ports: int = 0,
                 refuse_seconds: float = 5.0, on_event: Event = print_event) -> None:
        self.copies, self.command = copies, command
        self.cpus, self.mem, self.ports = cpus, mem, ports
        self.refuse_seconds = refuse_seconds
        self.on_event = on_event
        self.live: dict[str, str] = {}          # task id -> last state, launched and not ended
        self.lock = threading.Lock()

    def registered(self, driver: SchedulerDriver, frameworkId: Any, masterInfo: Any) -> None:
        self.on_event({"event": "registered", "framework_id": frameworkId.value})

    def resourceOffers(self, driver: SchedulerDriver, offers: list[Any]) -> None:
        for offer in offers:
            self.on_event({"event": "offer", "offer": offer.id.value,
                           "agent": offer.agent_id.value, "cpus": scalar(offer, "cpus"),
                           "mem": scalar(offer, "mem"), "ports": len(free_ports(offer))})
            cpus, mem, ports = scalar(offer, "cpus"), scalar(offer, "mem"), free_ports(offer)
            tasks = []
            with self.lock:
                while (len(self.live) < self.copies and cpus >= self.cpus and mem >= self.mem
                       and len(ports) >= self.ports):
                    taken, ports = ports[:self.ports], ports[self.ports:]
                    task = self.task(offer, taken)
                    self.live[task.task_id.value] = "TASK_STAGING"
                    tasks.append((task, taken))
                    cpus, mem = cpus - self.cpus, mem - self.mem
            if tasks:
                self.on_event({"event": "launch", "offer": offer.id.value,
                               "agent": offer.agent_id.value,
                               "tasks": {t.task_id.value: taken for t, taken in tasks}})
                driver.launchTasks(offer.id, [t for t, _ in tasks],
                                   {"refuse_seconds": self.refuse_seconds})
            else:
                self.on_event({"event": "decline", "offer": offer.id.value,
                               "agent": offer.agent_id.value})
                driver.declineOffer(offer.id, {"refuse_seconds": self.refuse_seconds})

    def task(self, offer: Any, ports: list[int]) -> Message:
        task = Message()
        task.task_id.value = f"copy-{uuid.uuid4().hex[:12]}"
        task.agent_id.value = offer.agent_id.value
        task.name = "copy"
        task.command.value = self.command
        task.resources = [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": self.cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": self.mem}}]
        if ports:
            task.resources.append({"name": "ports", "type": "RANGES", "ranges": {
                "range": [{"begin": p, "end": p} for p in ports]}})
        return task

    def offerRescinded(self, driver: SchedulerDriver, offerId: Any) -> None:
        self.on_event({"event": "rescinded", "offer": offerId.value})

    def statusUpdate(self, driver: SchedulerDriver, status: Any) -> None:
        task_id, state = status.task_id.value, status.state
        labels = {lab.key: lab.value for lab in status.labels.labels or []}
        self.on_event({"event": "status", "task": task_id, "state": state,
                       "agent": status.agent_id.value, "reason": status.get("reason"),
                       "message": status.get("message"), "arn": labels.get("berth.task-arn"),
                       "exit_code": labels.get("berth.exit-code")})
        with self.lock:
            if task_id not in self.live:
                return
            if state in TERMINAL:
                del self.live[task_id]
                replace = True
            else:
                self.live[task_id] = state
                replace = False
        if replace:
            driver.reviveOffers()       # a copy is missing: offers again, filters or not

    def slaveLost(self, driver: SchedulerDriver, slaveId: Any) -> None:
        self.on_event({"event": "agent_lost", "agent": slaveId.value})

    def error(self, driver: SchedulerDriver, message: str) -> None:
        self.on_event({"event": "error", "message": message})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", help="the shell command each copy runs")
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--cpus", type=float, default=0.1)
    parser.add_argument("--mem", type=float, default=32)
    parser.add_argument("--ports", type=int, default=0, help="host ports each copy takes")
    parser.add_argument("--cluster", default="default")
    parser.add_argument("--endpoint", default=None, help="[AWS_ENDPOINT_URL]")
    parser.add_argument("--name", default="copies")
    parser.add_argument("--refuse-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sched = Copies(args.copies, args.command, args.cpus, args.mem, args.ports,
                   args.refuse_seconds)
    driver = ECSSchedulerDriver(sched, {"name": args.name, "user": ""}, args.cluster,
                                endpoint_url=args.endpoint)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: threading.Thread(target=driver.stop).start())
    status = driver.run()
    return 0 if status == DRIVER_STOPPED else 1


if __name__ == "__main__":
    sys.exit(main())
