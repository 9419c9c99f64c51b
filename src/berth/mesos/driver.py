"""ECSSchedulerDriver: a Mesos scheduler driver whose "master" is an ECS cluster, reached
through the public ECS API only, so a framework runs unchanged on berth (or on ECS).

Offers come from the container instances' remaining resources, launches are StartTask on the
offered instance, kills are StopTask, task states come from a status source (DescribeTasks)
and reconciliation reads them afresh. Other schedulers may share the cluster (berth's service
scheduler, other frameworks): ECS commits every claim with compare-and-swap, so an offer that
went stale can fail to launch (TASK_LOST, REASON_INVALID_OFFERS) but never over-commits.

One thread runs the loop and calls the scheduler's callbacks, one at a time and in order; the
framework may call the driver from its callbacks or from any other thread.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from . import status as st
from .claims import claim, rejection
from .filters import refuse_seconds
from .instances import read_instances
from .interface import (
    DRIVER_ABORTED,
    DRIVER_NOT_STARTED,
    DRIVER_RUNNING,
    DRIVER_STOPPED,
    Scheduler,
    SchedulerDriver,
)
from .launcher import Launcher
from .messages import Message, id_value, id_values
from .offer_book import OfferBook
from .offers import DEFAULT_PORT_RANGE, Instance
from .sources import DescribeTasksSource, StatusSource
from .task_book import TaskBook, Tracked, Update
from .taskinfo import Defaults, InvalidTask, Launch, family_name

log = logging.getLogger(__name__)

FRAMEWORK_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")      # it becomes the tasks' startedBy
# Errors no retry mends: the driver aborts and tells the scheduler.
FATAL = frozenset({"ClusterNotFoundException", "AccessDeniedException",
                   "UnrecognizedClientException", "InvalidSignatureException",
                   "IncompleteSignatureException"})
MAX_BACKOFF = 5.0


def _client(endpoint_url: str | None, region: str | None) -> Any:
    import botocore.session
    return botocore.session.get_session().create_client(
        "ecs", endpoint_url=endpoint_url, region_name=region)


def _error(exc: ClientError) -> str:
    error = exc.response["Error"]
    return f"{error.get('Code')}: {error.get('Message', '')}"


class ECSSchedulerDriver(SchedulerDriver):
    """Drives `sched` with offers from `cluster`. `framework` is a FrameworkInfo (`name`, and
    `id` to take over a framework's tasks after a failover). `ecs` is a botocore or boto3 ECS
    client; without one, a client from the environment (AWS_ENDPOINT_URL, keys, region)."""

    def __init__(self, sched: Scheduler, framework: Mapping[str, Any], cluster: str = "default",
                 ecs: Any = None, *, endpoint_url: str | None = None, region: str | None = None,
                 offer_interval: float = 1.0, status_interval: float = 0.1,
                 port_range: tuple[int, int] = DEFAULT_PORT_RANGE, image: str = "host",
                 log_group: str | None = "/mesos/{framework}",
                 status_source: StatusSource | None = None) -> None:
        self.sched = sched
        self.framework = Message(framework)
        self.cluster = cluster
        self.ecs = ecs if ecs is not None else _client(endpoint_url, region)
        self.failover = bool((self.framework.get("id") or {}).get("value"))
        self.framework_id = self.framework.id.value if self.failover else str(uuid.uuid4())
        if not FRAMEWORK_ID.fullmatch(self.framework_id):
            raise ValueError("a framework id must be 1-36 letters, digits, - or _ (it becomes "
                             "the tasks' startedBy)")
        self.framework.id = {"value": self.framework_id}
        self.name = str(self.framework.get("name") or "framework")
        self.offer_interval, self.status_interval = offer_interval, status_interval
        self.port_range = port_range
        self.defaults = Defaults(image=image, log_group=log_group.format(framework=self.name)
                                 if log_group else None)
        self.source = status_source or DescribeTasksSource(self.ecs, cluster)
        self.launcher = Launcher(self.ecs, cluster, family_name(self.name), self.framework_id,
                                 f"mesos:{self.name}"[:255])
        self.status = DRIVER_NOT_STARTED
        self._lock = threading.RLock()      # guards the books, the queue and the status
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._events: deque[Callable[[], None]] = deque()
        self._offers = OfferBook(self.framework_id)
        self._tasks = TaskBook()
        self._instances: dict[str, Instance] = {}
        self._offer_now = True          # offer at the next turn, not at the next interval
        self._disconnected = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> int:
        with self._lock:
            if self.status != DRIVER_NOT_STARTED:
                return self.status
            self.status = DRIVER_RUNNING
        self._thread = threading.Thread(target=self._run, name=f"mesos-{self.framework_id}",
                                        daemon=True)
        self._thread.start()
        return self.status

    def stop(self, failover: bool = False) -> int:
        """Stop the driver. Without `failover` the framework is torn down, as Mesos does: its
        tasks are killed. With it they keep running for a driver given the same framework id."""
        with self._lock:
            if self.status not in (DRIVER_RUNNING, DRIVER_NOT_STARTED):
                return self.status
            self.status = DRIVER_STOPPED
            live = self._tasks.live_arns()
        if not failover:
            for arn in live:
                self._try_stop(arn, f"Mesos framework {self.name} torn down")
        return self._finish()

    def abort(self) -> int:
        with self._lock:
            if self.status in (DRIVER_RUNNING, DRIVER_NOT_STARTED):
                self.status = DRIVER_ABORTED
        return self._finish()

    def _finish(self) -> int:
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        return self.status

    def join(self) -> int:
        if self._thread is not None:
            self._thread.join()
        return self.status

    def run(self) -> int:
        self.start()
        return self.join()

    @property
    def running(self) -> bool:
        return self.status == DRIVER_RUNNING

    # -- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            found = self.ecs.describe_clusters(clusters=[self.cluster])["clusters"]
            if not found or found[0]["status"] != "ACTIVE":
                return self._fatal(f"cluster {self.cluster} not found")
            if self.failover:
                # After a failover: take over the framework's live tasks.
                self._tasks.adopt(self.launcher.live_tasks())
        except ClientError as exc:
            return self._fatal(_error(exc))
        except BotoCoreError as exc:
            return self._fatal(f"cannot reach ECS: {exc}")
        self._callback(lambda: self.sched.registered(
            self, Message(value=self.framework_id), self._master_info()))
        next_offers = next_full = backoff = 0.0
        while self.running:
            now = time.monotonic()
            try:
                if now >= next_offers or self._offer_now:
                    self._offer_now = False
                    self._refresh(now)
                    next_offers = now + self.offer_interval
                full = now >= next_full
                if full or self._busy():
                    self._poll(full)
                    if full:
                        next_full = now + self.offer_interval
                if self._disconnected:
                    self._disconnected = False
                    self._callback(lambda: self.sched.reregistered(self, self._master_info()))
                backoff = 0.0
            except ClientError as exc:
                if exc.response["Error"]["Code"] in FATAL:
                    return self._fatal(_error(exc))
                backoff = self._lost_contact(exc, backoff)
            except BotoCoreError as exc:
                backoff = self._lost_contact(exc, backoff)
            self._deliver()
            self._wake.wait(backoff or self._sleep(next_offers))
            self._wake.clear()

    def _busy(self) -> bool:
        with self._lock:
            return self._tasks.busy()

    def _sleep(self, next_offers: float) -> float:
        until = next_offers
        with self._lock:
            expiry = self._offers.filters.next_expiry()
        if expiry is not None:
            until = min(until, expiry)
        now = time.monotonic()
        if self._busy():
            until = min(until, now + self.status_interval)
        return max(0.0, until - now)

    def _lost_contact(self, exc: Exception, backoff: float) -> float:
        log.warning("ECS unreachable (%s); retrying", exc)
        with self._lock:
            self._offers.clear()    # Mesos voids offers when a scheduler loses its master
        if not self._disconnected:
            self._disconnected = True
            self._callback(lambda: self.sched.disconnected(self))
        return min(MAX_BACKOFF, max(0.1, backoff * 2))

    def _fatal(self, message: str) -> None:
        """Abort, then tell the scheduler (Mesos aborts before it calls `error`)."""
        log.error("scheduler driver aborted: %s", message)
        with self._lock:
            self.status = DRIVER_ABORTED
            self._events.clear()
        try:
            self.sched.error(self, message)
        except Exception:
            log.exception("the scheduler's error callback raised")

    def _master_info(self) -> Message:
        url = urlsplit(getattr(self.ecs.meta, "endpoint_url", "") or "")
        host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
        return Message(id=self.cluster, hostname=host, ip=host, port=port,
                       address={"hostname": host, "ip": host, "port": port},
                       version="berth-ecs")

    # -- callbacks ------------------------------------------------------------------------

    def _callback(self, call: Callable[[], None]) -> None:
        with self._lock:
            self._events.append(call)
        if threading.current_thread() is not self._thread:
            self._wake.set()

    def _deliver(self) -> None:
        """Run the queued callbacks in order, while the driver runs (none after a stop)."""
        while True:
            with self._lock:
                if not self._events or not self.running:
                    return
                call = self._events.popleft()
            try:
                call()
            except Exception:       # a framework's bug must not take the driver down
                log.exception("the scheduler's callback raised")

    def _send(self, updates: list[Update]) -> None:
        for u in updates:
            message = st.update(u.task.task_id, u.task.agent_id, u.state, u.task.arn, u.reason)
            self._callback(partial(self.sched.statusUpdate, self, message))

    # -- offers ---------------------------------------------------------------------------

    def _refresh(self, now: float) -> None:
        """Read the instances: report lost agents and their tasks, rescind offers of what
        changed, offer the rest."""
        with self._lock:
            read_at = self._offers.epoch
        instances = read_instances(self.ecs, self.cluster, self.port_range)
        with self._lock:
            before, self._instances = self._instances, instances
            for agent, old in before.items():
                new = instances.get(agent)
                if old.connected and (new is None or not new.connected):
                    log.warning("agent %s lost", agent)
                    self._callback(partial(self.sched.slaveLost, self, Message(value=agent)))
            lost = self._tasks.lost(instances)
            self._send(lost)
            rescinded, made = self._offers.refresh(instances, now, read_at)
            for offer_id in rescinded:
                self._callback(partial(self.sched.offerRescinded, self, Message(value=offer_id)))
            if made:
                self._callback(partial(self.sched.resourceOffers, self, made))
        for u in lost:          # Mesos kills a lost task that turns up again
            if u.task.arn:
                self._try_stop(u.task.arn, "Mesos task lost with its agent")

    def declineOffer(self, offerIds: Any, filters: Any = None) -> None:
        with self._lock:
            self._offers.decline(id_values(offerIds), refuse_seconds(filters), time.monotonic())
        self._wake.set()

    def reviveOffers(self, roles: Any = ()) -> None:
        with self._lock:
            self._offers.revive()
            self._offer_now = True
        self._wake.set()

    def suppressOffers(self, roles: Any = ()) -> None:
        with self._lock:
            self._offers.suppressed = True

    def requestResources(self, requests: Any) -> None:
        """Ignored, as Mesos's own allocator ignores it: offers come as resources free up."""

    # -- launching ------------------------------------------------------------------------

    def launchTasks(self, offerIds: Any, tasks: Any, filters: Any = None) -> None:
        self.acceptOffers(offerIds, [{"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}],
                          filters)

    def acceptOffers(self, offerIds: Any, operations: Any, filters: Any = None) -> None:
        infos: list[Mapping[str, Any]] = []
        rejected: list[Update] = []
        for op in operations:
            if op.get("type") == "LAUNCH":
                infos += (op.get("launch") or {}).get("task_infos") or []
            elif op.get("type") == "LAUNCH_GROUP":
                for info in ((op.get("launch_group") or {}).get("task_group") or {}).get(
                        "tasks") or []:
                    rejected += rejection(info, st.ERROR, "REASON_TASK_GROUP_INVALID",
                                          "Task groups are not supported")
            else:
                log.warning("offer operation %s is not supported; ignored", op.get("type"))
        with self._lock:
            if not self.running:
                return
            taken = claim(self._offers, self._tasks, id_values(offerIds), infos, self.defaults,
                          refuse_seconds(filters), time.monotonic())
            self._send(rejected + taken.rejected)
        try:
            for launch in taken.launches:
                self._launch(launch)
        finally:
            if taken.agent is not None:
                with self._lock:
                    self._offers.launched(taken.agent)
        self._wake.set()

    def _launch(self, launch: Launch) -> None:
        state: st.State | None = None
        try:
            started = self.launcher.start(launch, self.launcher.task_definition(launch))
            if started.task is None:
                # Another scheduler claimed the offered resources first: ECS refused them.
                state = st.State(st.LOST, st.SOURCE_MASTER, "REASON_INVALID_OFFERS",
                                 f"Task launched with invalid offers: {started.failure}")
        except InvalidTask as exc:
            state = st.State(st.ERROR, st.SOURCE_MASTER, "REASON_TASK_INVALID", str(exc))
        except ClientError as exc:
            state = st.State(st.ERROR, st.SOURCE_MASTER, "REASON_TASK_INVALID", _error(exc))
        except BotoCoreError as exc:
            state = st.State(st.LOST, st.SOURCE_MASTER, "REASON_MASTER_DISCONNECTED", str(exc))
        with self._lock:
            task = self._tasks.get(launch.task_id)
            assert task is not None
            if state is not None:
                return self._send([self._tasks.set(task, state)])
            assert started.task is not None
            task.arn = started.task["taskArn"]
            self._send([self._tasks.set(task, st.state_of(started.task))])
            kill = task.kill_requested
        if kill:
            self._try_stop(task.arn, "Killed by its Mesos framework")

    # -- tasks ----------------------------------------------------------------------------

    def killTask(self, taskId: Any) -> None:
        task_id = id_value(taskId)
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                # Mesos answers a kill of a task it does not know by reconciling it.
                return self._send([Update(Tracked(task_id, ""), st.State(
                    st.LOST, st.SOURCE_MASTER, "REASON_RECONCILIATION",
                    "Attempted to kill an unknown task"))])
            if not task.live:
                return
            task.kill_requested = True
            arn = task.arn
        if arn is not None:         # else _launch stops it once StartTask answers
            self._try_stop(arn, "Killed by its Mesos framework")
        self._wake.set()

    def _try_stop(self, arn: str, reason: str) -> None:
        try:
            self.launcher.stop(arn, reason)
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not stop %s: %s", arn, exc)

    def reconcileTasks(self, tasks: Any) -> None:
        """Report the latest state of the given tasks (of every live one, given none) after
        reading it afresh; tasks this driver does not know are reported LOST."""
        ids = [id_value(t.get("task_id") if isinstance(t, Mapping) else t) for t in tasks]
        with self._lock:
            self._tasks.ask(ids)
        self._wake.set()

    def _poll(self, full: bool) -> None:
        with self._lock:
            polled = self._tasks.to_poll(full)
        found = self.source.tasks(list(polled)) if polled else {}
        with self._lock:
            self._send(self._tasks.apply(polled, found))

    # -- without a meaning on ECS ---------------------------------------------------------

    def acknowledgeStatusUpdate(self, status: Any) -> None:
        """Updates are acknowledged implicitly when statusUpdate returns."""

    def sendFrameworkMessage(self, executorId: Any, slaveId: Any, data: Any) -> None:
        """Dropped, as Mesos drops messages to executors it does not know: ECS tasks have
        none."""
        log.warning("framework messages need executors, which ECS tasks do not have; dropped")
