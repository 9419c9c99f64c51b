"""One task's containers on this host, from assignment to cleanup.

Create every container (the "pull" phase: a missing image or an impossible limit stops the
task here with its ECS reason), start each once its `dependsOn` conditions hold, watch exits
and health, and stop when the control plane asks or an essential container exits: dependents
first, each with SIGTERM then SIGKILL after its stopTimeout. Every change goes to the control
plane as a whole-task report. Containers found again after an agent restart are adopted as
they are: running ones keep running, ones that exited meanwhile report their exit codes.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from . import awslogs
from .client import ControlPlane
from .dependencies import FAILED, WAITING, Progress, resolve, stop_order
from .drivers.base import (
    LABEL_CONTAINER_NAME,
    CannotStart,
    ContainerNotFound,
    ContainerState,
    Driver,
    DriverError,
    PortMapping,
)
from .health import HealthTracker, monitor
from .ports import PortAllocator
from .reporter import Reporter, TaskReport
from .state_file import AgentState
from .task_endpoints import TaskEndpoints
from .task_plan import (
    ContainerPlan,
    TaskPlan,
    bind_ports,
    network_bindings,
    ports_from_labels,
    with_ports,
)

log = logging.getLogger(__name__)

OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
ESSENTIAL_EXITED = "Essential container in task exited"
LOG_DRAIN_TIMEOUT = 10.0


@dataclass
class RunnerContext:
    """What every task runner of one agent shares. `endpoints` serves the tasks' metadata and
    role credentials; `endpoint` and `region` are berth's, as the containers get them."""
    driver: Driver
    api: ControlPlane
    reporter: Reporter
    ports: PortAllocator
    state: AgentState
    tick: float = 0.3                   # how often running containers are looked at
    cleanup_wait: float = 60.0
    log_interval: float = 0.5
    endpoints: TaskEndpoints | None = None
    endpoint: str = ""
    region: str = "us-east-1"


@dataclass
class ContainerRun:
    plan: ContainerPlan
    cid: str | None = None
    status: str = "PENDING"             # the ECS container lastStatus: PENDING|RUNNING|STOPPED
    started: bool = False
    exit_code: int | None = None
    reason: str | None = None
    ports: list[PortMapping] = field(default_factory=list)
    health: HealthTracker | None = None
    shipper: awslogs.LogShipper | None = None
    waiting_since: float | None = None

    def progress(self) -> Progress:
        return Progress(self.started, self.status == "STOPPED", self.exit_code,
                        self.health.status if self.health else "UNKNOWN")

    def view(self) -> dict[str, Any]:
        v: dict[str, Any] = {"containerName": self.plan.name, "status": self.status}
        if self.cid:
            v["runtimeId"] = self.cid
        if self.exit_code is not None:
            v["exitCode"] = self.exit_code
        if self.reason:
            v["reason"] = self.reason[:255]
        if self.ports:
            v["networkBindings"] = network_bindings(self.ports)
        return v


class TaskRunner:
    def __init__(self, ctx: RunnerContext, plan: TaskPlan, found: list[ContainerState]) -> None:
        self.ctx = ctx
        self.plan = plan
        self.runs = {c.name: ContainerRun(c) for c in plan.containers}
        self.found = found
        self.stop_requested = plan.desired_status == "STOPPED"
        self.failure: str | None = None
        self.essential_exited = False
        self.finished = asyncio.Event()     # STOPPED is reported
        self.cleaned = asyncio.Event()      # containers removed
        self._wake = asyncio.Event()
        self._last_report: Any = None
        self.times: dict[str, float] = {}       # ECS's pull and execution times
        self._background: set[asyncio.Task[Any]] = set()
        self.task: asyncio.Task[None] | None = None
        self.final_report: TaskReport | None = None
        # Its own calls (awslogs) sign with the task's execution role, where it has one.
        self.api = ctx.endpoints.register(self) if ctx.endpoints is not None else ctx.api

    @property
    def arn(self) -> str:
        return self.plan.arn

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"task-{self.plan.task_id}")

    def request_stop(self) -> None:
        if not self.stop_requested:
            log.info("stopping task %s", self.plan.task_id)
        self.stop_requested = True
        self._wake.set()

    def _changed(self) -> None:
        self._wake.set()

    def _health_changed(self) -> None:
        self.ctx.reporter.submit_health(self.arn, {
            r.plan.name: r.health.status for r in self.runs.values() if r.health})
        self._wake.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        t = asyncio.create_task(coro)
        self._background.add(t)
        t.add_done_callback(self._background.discard)

    # -- the lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        try:
            try:
                await self._adopt()
                await self._create()
                await self._supervise()
            except DriverError as exc:
                self.failure = exc.stopped_reason
                log.info("task %s fails: %s", self.plan.task_id, self.failure)
            except asyncio.CancelledError:
                raise       # the agent is going away: its containers keep running
            except Exception as exc:
                log.exception("task %s: agent error", self.plan.task_id)
                self.failure = f"CannotStartContainerError: agent error: {exc}"
            try:
                await self._stop_all()
            except Exception:
                log.exception("task %s: stopping its containers failed", self.plan.task_id)
            await self._finish()
            await self._cleanup()
        finally:
            for t in list(self._background):
                t.cancel()

    async def _adopt(self) -> None:
        """Take over the containers a previous agent process left (found by their labels)."""
        extra = []
        for st in self.found:
            run = self.runs.get(st.labels.get(LABEL_CONTAINER_NAME, st.name))
            if run is None or run.cid is not None:
                extra.append(st.id)
                continue
            run.cid = st.id
            run.ports = ports_from_labels(st.labels)
            self.ctx.ports.hold(self.arn, [(p.host_port, p.protocol) for p in run.ports])
            if st.status == "running":
                run.started, run.status = True, "RUNNING"
                self._after_start(run)
                if self.ctx.endpoints is not None:
                    await self.ctx.endpoints.attach(self, run, self.ctx.endpoint)
            elif st.status != "created":
                run.started = st.started_at is not None
                self._exited(run, st)
                self._after_start(run)      # to ship what it wrote before it exited
            log.info("task %s: found container %s (%s)", self.plan.task_id, run.plan.name,
                     st.status)
        for cid in extra:
            await asyncio.to_thread(self._remove, cid)

    async def _create(self) -> None:
        missing = [r for r in self.runs.values() if r.cid is None and r.status != "STOPPED"]
        if self.stop_requested or self.essential_exited or not missing:
            return
        for path in self.plan.volume_dirs:
            await asyncio.to_thread(path.mkdir, mode=0o755, parents=True, exist_ok=True)
        self.times["pullStartedAt"] = time.time()
        try:
            for run in missing:
                try:
                    run.ports = bind_ports(self.arn, run.plan, self.plan.network,
                                           self.plan.bridge_as_host, self.ctx.ports)
                    spec = run.plan.spec
                    if self.ctx.endpoints is not None:
                        spec = self.ctx.endpoints.spec_for(self, run.plan.name, self.ctx.endpoint,
                                                           self.ctx.region)
                    spec = with_ports(spec, run.ports)
                    run.cid = await asyncio.to_thread(self.ctx.driver.create, spec)
                except DriverError as exc:
                    run.reason = exc.stopped_reason
                    run.status = "STOPPED"
                    raise
        finally:
            self.times["pullStoppedAt"] = time.time()

    async def _supervise(self) -> None:
        while True:
            await self._refresh()
            if self.stop_requested or self.essential_exited:
                return
            await self._start_ready()
            if all(r.status == "STOPPED" for r in self.runs.values()):
                return
            self._report()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.ctx.tick)
            except TimeoutError:
                pass

    async def _refresh(self) -> None:
        live = [r for r in self.runs.values() if r.status == "RUNNING"]
        if not live:
            return
        states = await asyncio.to_thread(self._states, [r.cid for r in live])
        for run, st in zip(live, states):
            if st is None:
                run.status = "STOPPED"
                run.reason = "CannotInspectContainerError: the container is gone"
                self._essential_check(run)
            elif st.status in ("exited", "unknown"):
                self._exited(run, st)

    def _states(self, cids: list[str | None]) -> list[ContainerState | None]:
        out: list[ContainerState | None] = []
        for cid in cids:
            try:
                out.append(self.ctx.driver.state(cid or ""))
            except ContainerNotFound:
                out.append(None)
        return out

    def _exited(self, run: ContainerRun, st: ContainerState) -> None:
        run.status = "STOPPED"
        run.exit_code = st.exit_code
        if st.oom_killed:
            run.reason = OOM_REASON
        elif st.error and not run.reason:
            run.reason = st.error
        log.info("task %s: container %s exited (%s)", self.plan.task_id, run.plan.name,
                 st.exit_code)
        self._essential_check(run)
        self._changed()

    def _essential_check(self, run: ContainerRun) -> None:
        if run.plan.essential and not self.stop_requested:
            self.essential_exited = True

    async def _start_ready(self) -> None:
        progress = {name: r.progress() for name, r in self.runs.items()}
        now = time.monotonic()
        for run in self.runs.values():
            if run.started or run.status == "STOPPED" or run.cid is None:
                continue
            state, why = resolve(run.plan.depends_on, progress)
            if state == FAILED:
                run.reason = f"CannotStartContainerError: {why}"
                run.status = "STOPPED"
                raise CannotStart(f"container {run.plan.name}: {why}")
            if state == WAITING:
                run.waiting_since = run.waiting_since or now
                if now - run.waiting_since > run.plan.start_timeout:
                    run.status = "STOPPED"
                    raise CannotStart(f"container {run.plan.name} gave up {why} after "
                                      f"{run.plan.start_timeout:g}s")
                continue
            await self._start(run)
            progress[run.plan.name] = run.progress()

    async def _start(self, run: ContainerRun) -> None:
        try:
            target = awslogs.target(run.plan.log_configuration, run.plan.name,
                                    self.plan.task_id, run.cid or "")
            if target is not None:
                await awslogs.prepare(self.api, target)
            await asyncio.to_thread(self.ctx.driver.start, run.cid or "")
        except DriverError as exc:
            run.reason = exc.stopped_reason
            run.status = "STOPPED"
            raise
        run.started, run.status = True, "RUNNING"
        log.info("task %s: container %s started", self.plan.task_id, run.plan.name)
        self._after_start(run)
        if self.ctx.endpoints is not None:
            await self.ctx.endpoints.attach(self, run, self.ctx.endpoint)
        self._changed()

    def _after_start(self, run: ContainerRun) -> None:
        """Health checks and log shipping for a container that runs (or ran)."""
        cid = run.cid or ""
        if run.plan.health and run.status == "RUNNING":
            run.health = HealthTracker(run.plan.health, time.time())
            self._spawn(monitor(self.ctx.driver, cid, run.health,
                                lambda: run.status == "RUNNING", self._health_changed))
        try:
            target = awslogs.target(run.plan.log_configuration, run.plan.name,
                                    self.plan.task_id, cid)
        except CannotStart:
            target = None
        if target is not None and run.shipper is None:
            state = self.ctx.state
            run.shipper = awslogs.LogShipper(
                self.api, self.ctx.driver, cid, target, state.cursors.get(cid),
                lambda cursor: state.set_cursor(cid, cursor), self.ctx.log_interval)
            self._spawn(run.shipper.run())

    # -- stopping ------------------------------------------------------------------------

    async def _stop_all(self) -> None:
        live = [r for r in self.runs.values() if r.cid and r.status != "STOPPED"]
        deps = {r.plan.name: r.plan.depends_on for r in live}
        for wave in stop_order([r.plan.name for r in live], deps):
            await asyncio.gather(*(self._stop_one(self.runs[name]) for name in wave))

    async def _stop_one(self, run: ContainerRun) -> None:
        cid = run.cid or ""
        try:
            await asyncio.to_thread(self.ctx.driver.stop, cid, run.plan.spec.stop_timeout)
            st = await asyncio.to_thread(self.ctx.driver.state, cid)
        except ContainerNotFound:
            run.status = "STOPPED"
            return
        except DriverError as exc:
            log.warning("task %s: stopping %s: %s", self.plan.task_id, run.plan.name, exc)
            run.status = "STOPPED"
            return
        if run.started:
            self._exited(run, st)
        else:
            run.status = "STOPPED"

    async def _finish(self) -> None:
        for run in self.runs.values():
            run.status = "STOPPED"
        # Logs first: a task reported STOPPED has its output in CloudWatch Logs already.
        shippers = [r.shipper.done.wait() for r in self.runs.values() if r.shipper]
        if shippers:
            try:
                await asyncio.wait_for(asyncio.gather(*shippers), LOG_DRAIN_TIMEOUT)
            except TimeoutError:
                log.warning("task %s: logs not fully shipped yet", self.plan.task_id)
        self.times["executionStoppedAt"] = time.time()
        reason = self.failure or (ESSENTIAL_EXITED if self.essential_exited else None)
        self.final_report = TaskReport(self.arn, "STOPPED",
                                       [r.view() for r in self.runs.values()], reason,
                                       dict(self.times))
        self.ctx.reporter.submit(self.final_report)
        self.ctx.ports.release(self.arn)
        self.finished.set()
        log.info("task %s stopped%s", self.plan.task_id, f": {reason}" if reason else "")

    async def _cleanup(self) -> None:
        await self.ctx.reporter.delivered(self.arn)
        await asyncio.sleep(self.ctx.cleanup_wait)
        cids = [r.cid for r in self.runs.values() if r.cid]
        for cid in cids:
            await asyncio.to_thread(self._remove, cid)
        self.ctx.state.forget(cids)
        for path in self.plan.volume_dirs:
            await asyncio.to_thread(shutil.rmtree, path, True)
        self.ctx.reporter.forget(self.arn)
        if self.ctx.endpoints is not None:
            await self.ctx.endpoints.unregister(self)
        self.cleaned.set()

    def _remove(self, cid: str) -> None:
        try:
            self.ctx.driver.remove(cid)
        except DriverError as exc:
            log.warning("could not remove container %s: %s", cid[:12], exc)

    # -- reporting -----------------------------------------------------------------------

    def _report(self) -> None:
        """Send the task's state when it differs from what was sent last."""
        runs = self.runs.values()
        status = "RUNNING" if all(r.started for r in runs) else "PENDING"
        views = [r.view() for r in runs]
        key = (status, repr(views))
        if key == self._last_report:
            return
        self._last_report = key
        self.ctx.reporter.submit(TaskReport(self.arn, status, views, None, dict(self.times)))
