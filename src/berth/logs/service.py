"""The CloudWatch Logs provider: one class whose methods are the service's operations.

Operations live in one mixin per resource (groups, streams, events, search, tags); this class
joins them and owns the background retention purge (started and stopped with the server).
"""
from __future__ import annotations

from ..config import Settings
from ..state.store import Store
from . import schema  # noqa: F401  (registers the tables)
from .events import LogEvents
from .groups import LogGroups
from .retention import Purger, purge_expired
from .search import LogSearch
from .streams import LogStreams
from .tags import LogTags


class LogsService(LogGroups, LogStreams, LogEvents, LogSearch, LogTags):
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._purger = Purger(store, settings.logs_purge_interval)

    async def startup(self) -> None:
        """Start purging expired events in the background (reads hide them regardless)."""
        self._purger.start()

    async def shutdown(self) -> None:
        self._purger.stop()

    def purge_expired(self) -> int:
        """Delete every group's expired events now; returns how many were deleted."""
        return purge_expired(self.store)
