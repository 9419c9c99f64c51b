"""The ECS provider: one class whose methods are the service's operations, composed from one
module per resource, plus the background schedulers it starts (reconciler, failure detector)
and the agents' assignment channel it serves."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..api.body import BodyLimits
from ..api.sigv4 import SecretLookup
from ..config import Settings
from ..state.store import Store
from . import schema  # noqa: F401  (registers the tables)
from .account_settings import AccountSettings
from .agent_api import AgentApi
from .agent_channel import PREFIX as AGENT_PREFIX
from .agent_channel import AgentChannel
from .attributes import Attributes
from .capacity_providers import CapacityProviders
from .clusters import Clusters
from .failure_detector import FailureDetector
from .heartbeat import Heartbeats
from .instances import ContainerInstances
from .lease import Lease
from .quick_lookup import TaskDefinitionCache
from .reconciler import Reconciler
from .scheduling import Scheduler
from .services import Services
from .tags import Tags
from .task_definitions import TaskDefinitions
from .task_protection import TaskProtection
from .tasks import Tasks
from .wakeups import Wakeups

log = logging.getLogger(__name__)

LEASE_NAME = "ecs-scheduler"


class EcsService(Clusters, ContainerInstances, Attributes, TaskDefinitions, Tasks, Services,
                 Tags, AgentApi, AccountSettings, CapacityProviders, TaskProtection):
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.wakeups = Wakeups()
        self.scheduler = Scheduler(store)
        self.task_definitions = TaskDefinitionCache(store)
        self.heartbeats = Heartbeats(store, settings.ecs_agent_timeout)
        self.td_views: dict[str, dict[str, Any]] = {}
        self.reconciler = Reconciler(self)
        self.detector = FailureDetector(store, settings.ecs_agent_timeout,
                                        settings.ecs_agent_grace)
        self.lease = Lease(store, LEASE_NAME, ttl=max(10.0, 5 * settings.ecs_reconcile_interval))
        self._background: asyncio.Task[None] | None = None

    def agent_channel(self, lookup_secret: SecretLookup, body_limits: BodyLimits
                      ) -> AgentChannel:
        """The ASGI app agents long-poll for assignments; mount it at `AGENT_PREFIX`."""
        return AgentChannel(self, lookup_secret, body_limits)

    agent_prefix = AGENT_PREFIX

    async def startup(self) -> None:
        self.wakeups.attach(asyncio.get_running_loop())
        self._background = asyncio.create_task(self._run_schedulers())

    async def shutdown(self) -> None:
        if self._background is not None:
            self._background.cancel()
            try:
                await self._background
            except asyncio.CancelledError:
                pass
        try:
            await asyncio.to_thread(self.lease.release)
        except Exception:
            log.exception("releasing the scheduler lease failed")

    async def _run_schedulers(self) -> None:
        interval = self.settings.ecs_reconcile_interval
        while True:
            try:
                if await asyncio.to_thread(self.lease.hold):
                    await asyncio.to_thread(self.detector.run_once)
                    await asyncio.to_thread(self.reconciler.run_once)
            except asyncio.CancelledError:
                raise
            except Exception:   # the store may be briefly unreachable; try again next pass
                log.exception("ECS background pass failed")
            await self.wakeups.wait_reconciler(interval)
