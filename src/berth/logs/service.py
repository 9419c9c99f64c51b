"""The CloudWatch Logs provider: one class whose methods are the service's operations.

Operations live in one mixin per resource (groups, streams, events, search, tags, filters,
policies, destinations, ...); this class joins them and owns the background retention purge
(started and stopped with the server).
"""
from __future__ import annotations

from ..config import Settings
from ..state.store import Store
from . import schema  # noqa: F401  (registers the tables)
from .destinations import Destinations
from .events import LogEvents
from .exports import ExportTasks
from .fields import LogFields
from .groups import LogGroups
from .live_tail import LiveTail
from .metric_filters import MetricFilters
from .policies import Policies
from .queries import Queries
from .query_definitions import QueryDefinitions
from .query_runner import QueryRunner
from .retention import Purger, purge_expired
from .search import LogSearch
from .streams import LogStreams
from .subscriptions import Subscriptions
from .tags import LogTags


class LogsService(LogGroups, LogStreams, LogEvents, LogSearch, LogTags, MetricFilters,
                  Subscriptions, Policies, Destinations, Queries, QueryDefinitions,
                  LogFields, ExportTasks, LiveTail):
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._purger = Purger(store, settings.logs_purge_interval)
        self.query_runner = QueryRunner(store, settings.account_id)

    async def startup(self) -> None:
        """Start purging expired events in the background (reads hide them regardless)."""
        self._purger.start()

    async def shutdown(self) -> None:
        self._purger.stop()
        self.query_runner.shutdown()

    def purge_expired(self) -> int:
        """Delete every group's expired events now; returns how many were deleted."""
        return purge_expired(self.store)
