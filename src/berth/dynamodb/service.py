"""The DynamoDB provider: one class whose methods are the service's operations.

Operations live in one mixin per resource (tables, items, reads, batches, transactions, time
to live, tags); this class joins them and runs the background sweep: TTL deletions, the purge
of deleted tables' rows, and the trimming of stream records past their 24 hours.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..api.app import RequestContext
from ..config import Settings
from ..state.store import Store
from . import schema  # noqa: F401  (registers the tables)
from .batch import Batches
from .catalog import Catalog
from .items import Items
from .purge import purge_deleted_tables, trim_streams
from .query import Reads
from .tables import Tables
from .tags import Tags
from .transact import Transactions
from .ttl import TimeToLive, expire_due

log = logging.getLogger(__name__)


class DynamoDBService(Tables, Items, Reads, Batches, Transactions, TimeToLive, Tags):
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.catalog = Catalog(store)
        self._sweeper: asyncio.Task[None] | None = None

    def describe_limits(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        return {"AccountMaxReadCapacityUnits": 80000, "AccountMaxWriteCapacityUnits": 80000,
                "TableMaxReadCapacityUnits": 40000, "TableMaxWriteCapacityUnits": 40000}

    async def startup(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass

    def sweep(self) -> None:
        """One pass of the background work (TTL, purges, stream retention)."""
        expire_due(self.store, self.catalog)
        purge_deleted_tables(self.store)
        trim_streams(self.store)

    async def _sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.dynamodb_sweep_interval)
            try:
                await loop.run_in_executor(None, self.sweep)
            except Exception:   # the next pass tries again; a sweep must not end the loop
                log.exception("DynamoDB sweep failed")
