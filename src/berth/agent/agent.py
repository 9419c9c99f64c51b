"""The container agent: one per host. It registers the host as a container instance, long-polls
the control plane for the instance's desired state, and runs a TaskRunner per assigned task.

The same code serves `berth agent` (a process on any host) and `berth up` (a thread of the
server process, talking to it over loopback HTTP like any remote agent). Stopping the agent
leaves its containers running; the next agent on this data dir finds them again by their labels.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import signal
import threading
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from ..config import Settings
from . import registration, resources
from .archives import builtin_archives
from .client import ApiError, ControlPlane, Credentials, Unreachable
from .drivers.base import (
    LABEL_TASK_ARN,
    CannotStart,
    ContainerState,
    Driver,
    DriverError,
)
from .drivers.detect import detect_driver
from .ports import PortAllocator
from .reporter import Reporter, TaskReport
from .state_file import AgentState
from .task_endpoints import TaskEndpoints
from .task_plan import LABEL_INSTANCE, MalformedTask, PlanDefaults, plan_task
from .task_runner import RunnerContext, TaskRunner

log = logging.getLogger(__name__)

BACKOFF_MIN, BACKOFF_MAX = 0.5, 3.0


class AgentError(Exception):
    """The agent cannot run here (no credentials, no usable driver)."""


class Agent:
    def __init__(self, settings: Settings, endpoint: str, credentials: Credentials,
                 driver: Driver | None = None) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.credentials = credentials
        self.driver = driver
        self.cluster = settings.agent_cluster
        self.runners: dict[str, TaskRunner] = {}
        self.refused: set[str] = set()          # tasks this host could not even plan
        self.found: dict[str, list[ContainerState]] = {}
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._stop_asked = False
        self.instance_arn: str | None = None

    def stop(self) -> None:
        """Ask the agent to exit (from any thread); containers keep running."""
        with self._lock:
            self._stop_asked = True
            if self._loop is not None and self._stopping is not None:
                try:
                    self._loop.call_soon_threadsafe(self._stopping.set)
                except RuntimeError:
                    pass        # its loop has ended already

    async def prepare(self) -> None:
        """Choose the driver and set up what the task runners share (no network yet)."""
        with self._lock:
            self._stopping = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            if self._stop_asked:
                self._stopping.set()
        s = self.settings
        if self.driver is None:
            try:
                self.driver = await asyncio.to_thread(detect_driver, s.data_dir, s.docker_host,
                                                      s.agent_driver)
            except DriverError as exc:
                raise AgentError(f"no container driver: {exc}") from exc
        await asyncio.to_thread(self.driver.offer, builtin_archives(s.builtin_images))
        self.api = ControlPlane(self.endpoint, self.credentials, s.region)
        self.state = AgentState.load(s.data_dir)
        self.endpoints = await self._task_endpoints()
        self.host = self._resources()
        self.ctx = RunnerContext(self.driver, self.api, Reporter(self.api, self.cluster),
                                 PortAllocator(self.host.ports, *s.agent_dynamic_ports()),
                                 self.state, cleanup_wait=s.agent_cleanup_wait,
                                 endpoints=self.endpoints, endpoint=self.endpoint,
                                 region=s.region)

    async def _task_endpoints(self) -> TaskEndpoints:
        """The tasks' metadata and credentials endpoints, on the port and with the key an
        earlier run of this agent used (its containers may still run, with those URIs)."""
        assert self.driver is not None
        state = self.state
        if state.metadata_key is None:
            state.metadata_key = secrets.token_hex(32)
        port = state.metadata_port or self.settings.agent_metadata_port
        endpoints = TaskEndpoints(self.api, self.driver, self.settings.availability_zone,
                                  bytes.fromhex(state.metadata_key), port)
        state.metadata_port = await endpoints.start()
        state.save()
        return endpoints

    def _resources(self) -> resources.HostResources:
        s = self.settings
        return resources.detect(s.agent_reserved_memory,
                                [*s.agent_extra_reserved_ports(), self.endpoints.port],
                                urlsplit(self.endpoint).port)

    async def run(self) -> int:
        try:
            await self.prepare()
            reporting = asyncio.create_task(self.ctx.reporter.run())
        except BaseException:
            with self._lock:
                self._loop = None
            raise
        code = 0
        try:
            if await self._register(self.host):
                code = await self._poll_loop()
        finally:
            await self.close(reporting)
        return code

    async def close(self, reporting: asyncio.Task[None] | None = None) -> None:
        """Let go of everything but the containers, which keep running."""
        for runner in self.runners.values():
            if runner.task is not None:
                runner.task.cancel()
        await asyncio.gather(*(r.task for r in self.runners.values() if r.task),
                             return_exceptions=True)
        if reporting is not None:
            reporting.cancel()
            await asyncio.gather(reporting, return_exceptions=True)
        await self.api.close()
        if getattr(self, "endpoints", None) is not None:
            await self.endpoints.close()
        if self.driver is not None:
            await asyncio.to_thread(self.driver.close)
        with self._lock:
            self._loop = None       # stop() from now on has nothing to tell

    async def _wait_or_stop(self, seconds: float) -> bool:
        """Sleep; True if the agent was asked to stop meanwhile."""
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass
        return self._stopping.is_set()

    async def _register(self, host: resources.HostResources) -> bool:
        assert self.driver is not None
        backoff = BACKOFF_MIN
        attrs = resources.attributes(self.driver.name)
        for attempt in itertools.count():
            try:
                self.instance_arn = await registration.register(
                    self.api, self.state, self.cluster, host, attrs, self.driver.name,
                    self.settings.data_dir, self.settings.availability_zone)
                break
            except Unreachable as exc:
                # A server starting beside us (`berth up`) answers within a moment: only a
                # longer wait is worth a warning.
                log.log(logging.WARNING if attempt >= 3 else logging.DEBUG,
                        "cannot reach %s yet: %s", self.endpoint, exc)
            except ApiError as exc:
                log.warning("cannot register with %s: %s", self.endpoint, exc)
            if await self._wait_or_stop(backoff):
                return False
            backoff = min(backoff * 2, BACKOFF_MAX)
        found = await asyncio.to_thread(self.driver.list, {LABEL_INSTANCE: self.instance_arn})
        self.found = defaultdict(list)
        for st in found:
            self.found[st.labels.get(LABEL_TASK_ARN, "")].append(st)
        if found:
            log.info("found %d containers of %d tasks from before", len(found), len(self.found))
        return True

    async def _poll_loop(self) -> int:
        assert self._stopping is not None
        token: str | None = None
        backoff = BACKOFF_MIN
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                poll = asyncio.ensure_future(self.api.poll(
                    {"containerInstance": self.instance_arn, "cluster": self.cluster,
                     "token": token}, self.settings.agent_poll_wait))
                await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not poll.done():
                    poll.cancel()
                    await asyncio.gather(poll, return_exceptions=True)
                    break
                try:
                    answer = poll.result()
                except Unreachable as exc:
                    # Once per outage, then quietly: the agent keeps trying while it lasts.
                    log.log(logging.WARNING if backoff == BACKOFF_MIN else logging.DEBUG,
                            "control plane unreachable (%s); retrying", exc)
                    if await self._wait_or_stop(backoff):
                        break
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                except ApiError as exc:
                    # The instance is unknown (the control plane lost it): join again.
                    log.warning("assignment poll refused (%s); registering again", exc)
                    self.state.instance_arn, token = None, None
                    if (await self._wait_or_stop(backoff)
                            or not await self._register(self._resources())):
                        break
                    continue
                backoff = BACKOFF_MIN
                token = answer.get("token")
                tasks = answer.get("tasks")
                self.reconcile(tasks if isinstance(tasks, list) else [])
                if answer.get("status") == "INACTIVE":
                    return await self._deregistered()
        finally:
            stopping.cancel()
        return 0

    async def _deregistered(self) -> int:
        log.error("container instance %s was deregistered; stopping its tasks and exiting",
                  self.instance_arn)
        self.state.instance_arn = None
        self.state.save()
        waits = [r.finished.wait() for r in self.runners.values()]
        if waits:
            await asyncio.wait_for(asyncio.gather(*waits), None)
        return 3

    # -- desired state -> runners ----------------------------------------------------------

    def reconcile(self, tasks: list[Any]) -> None:
        """Bring the runners in line with the instance's desired state. Never raises: one bad
        task never keeps the others from running."""
        seen: set[str] = set()
        for raw in tasks:
            arn = raw.get("taskArn") if isinstance(raw, dict) else None
            if not isinstance(arn, str):
                log.warning("ignoring an assignment without a taskArn: %.200r", raw)
                continue
            seen.add(arn)
            try:
                self._one(arn, raw)
            except Exception:
                log.exception("could not handle task %s", arn)
        for arn, runner in list(self.runners.items()):
            if arn not in seen:
                if not runner.finished.is_set():
                    runner.request_stop()       # stopped by the control plane already
                elif runner.cleaned.is_set():
                    del self.runners[arn]
        self.refused &= seen
        for arn in [a for a in self.found if a not in seen]:
            self._remove_orphans(self.found.pop(arn))

    def _one(self, arn: str, raw: dict[str, Any]) -> None:
        static = raw.get("hostPorts")
        if isinstance(static, list) and arn not in self.refused:
            runner = self.runners.get(arn)
            if runner is None or not runner.finished.is_set():
                udp = raw.get("hostUdpPorts")
                held = [(p, "tcp") for p in static if isinstance(p, int)]
                held += [(p, "udp") for p in (udp if isinstance(udp, list) else [])
                         if isinstance(p, int)]
                self.ctx.ports.hold(arn, held)
        runner = self.runners.get(arn)
        if runner is not None:
            if raw.get("desiredStatus") == "STOPPED":
                runner.request_stop()
            if runner.cleaned.is_set() and runner.final_report is not None:
                # Still listed long after it stopped: the report was lost; say it again.
                self.ctx.reporter.submit(runner.final_report)
            return
        if arn in self.refused:
            return
        assert self.driver is not None and self.instance_arn is not None
        defaults = PlanDefaults(
            instance_arn=self.instance_arn, volume_root=self.settings.data_dir / "volumes",
            stop_timeout=self.settings.agent_stop_timeout,
            start_timeout=self.settings.agent_start_timeout,
            pids_limit=self.settings.agent_pids_limit)
        try:
            try:
                plan = plan_task(raw, self.driver.network_modes, defaults)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise MalformedTask(f"malformed task: {exc}") from exc
        except CannotStart as exc:
            log.warning("task %s cannot run here: %s", arn, exc)
            self.refused.add(arn)
            self.ctx.ports.release(arn)
            self.ctx.reporter.submit(TaskReport(arn, "STOPPED", [], exc.stopped_reason))
            if arn in self.found:
                self._remove_orphans(self.found.pop(arn))
            return
        runner = TaskRunner(self.ctx, plan, self.found.pop(arn, []))
        self.runners[arn] = runner
        runner.start()

    def _remove_orphans(self, states: list[ContainerState]) -> None:
        """Containers of tasks the control plane no longer lists: stop and remove them."""
        driver = self.driver
        assert driver is not None

        def remove() -> None:
            for st in states:
                try:
                    driver.remove(st.id)
                except DriverError as exc:
                    log.warning("could not remove container %s: %s", st.id[:12], exc)
        log.info("removing %d containers of tasks that are gone", len(states))
        self.state.forget([st.id for st in states])
        asyncio.get_running_loop().run_in_executor(None, remove)


def resolve_credentials(settings: Settings) -> Credentials:
    found = settings.agent_credentials()
    if found is None:
        raise AgentError("no credentials: give --access-key/--secret-key, BERTH_ACCESS_KEY/"
                         "BERTH_SECRET_KEY, a data dir with credentials.json, or "
                         "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    return Credentials(*found)


def run_agent(settings: Settings) -> int:
    """`berth agent`: run until SIGINT/SIGTERM. Returns the exit status."""
    agent = Agent(settings, settings.agent_target(), resolve_credentials(settings))

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, agent.stop)
        return await agent.run()

    logging.getLogger("httpx").setLevel(logging.WARNING)     # not a line per poll
    log.info("berth agent: endpoint %s, cluster %s", agent.endpoint, agent.cluster)
    return asyncio.run(main())


class AgentThread:
    """The local agent of `berth up`: the same Agent, on an event loop of its own thread."""

    def __init__(self, settings: Settings, endpoint: str, credentials: Credentials) -> None:
        self.agent = Agent(settings, endpoint, credentials)
        self._thread = threading.Thread(target=self._main, name="berth-agent", daemon=True)

    def start(self) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)     # not a line per poll
        self._thread.start()

    def _main(self) -> None:
        try:
            asyncio.run(self.agent.run())
        except AgentError as exc:
            log.error("the local agent cannot run: %s", exc)
        except Exception:
            log.exception("the local agent failed")

    def stop(self, timeout: float = 15.0) -> None:
        self.agent.stop()
        self._thread.join(timeout)
