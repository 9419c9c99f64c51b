"""StartLiveTail: a log group's new events as they arrive, streamed to the caller.

The answer is an event stream (api/eventstream.py): a sessionStart, then about once a second
a sessionUpdate with the events ingested since the last one that the session's streams and
filter pattern select (at most 500 an update; with more, a sample, marked `sampled`), until
the caller goes away or three hours pass (SessionTimeoutException). New events are found by
their ids, which only grow, so no event is sent twice or skipped.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from ..api import eventstream
from ..api.app import RequestContext, random_uuid
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import resolve_identifier
from .patterns import InvalidPattern, compile_pattern
from .schema import log_events, log_groups

UPDATE_S = 1.0                 # how often a session is told what arrived
MAX_RESULTS = 500              # events per update
SESSION_S = 3 * 3600           # a session ends after three hours, as AWS's do
MAX_SESSIONS = 15              # concurrent sessions (per server)

_e = log_events.c
_NEWEST = sa.select(sa.func.coalesce(sa.func.max(_e.id), 0))
_SINCE = (sa.select(_e.id, _e.group_name, _e.stream_name, _e.timestamp, _e.ingestion_time,
                    _e.message)
          .where(_e.id > sa.bindparam("after"), _e.region == sa.bindparam("region"),
                 _e.group_name.in_(sa.bindparam("groups", expanding=True)))
          .order_by(_e.id).limit(sa.bindparam("limit")))


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


class LiveTail:
    store: Store
    _live_sessions: int = 0

    async def start_live_tail(self, ctx: RequestContext, req: dict[str, Any]
                              ) -> dict[str, Any]:
        idents: list[str] = req["logGroupIdentifiers"]
        names, prefixes = req.get("logStreamNames"), req.get("logStreamNamePrefixes")
        if names and prefixes:
            raise invalid("logStreamNames and logStreamNamePrefixes are mutually exclusive.")
        if (names or prefixes) and len(idents) != 1:
            raise invalid("logStreamNames and logStreamNamePrefixes can only be used with a "
                          "single log group.")
        try:
            match = compile_pattern(req.get("logEventFilterPattern") or "")
        except InvalidPattern as exc:
            raise invalid(f"Invalid filter pattern: {exc}") from None
        groups = {resolve_identifier(ctx, i.removesuffix(":*")): i for i in idents}
        found = await asyncio.to_thread(self._existing, ctx.region, list(groups))
        if len(found) != len(groups):
            raise ServiceError("ResourceNotFoundException",
                               "The specified log group does not exist.")
        if LiveTail._live_sessions >= MAX_SESSIONS:
            raise ServiceError("LimitExceededException",
                               "Limit exceeded for the number of concurrent Live Tail "
                               "sessions.")
        newest = (await asyncio.to_thread(self.store.rows, _NEWEST, {}))[0][0]

        def wanted(stream: str, message: str) -> bool:
            if names and stream not in names:
                return False
            if prefixes and not any(stream.startswith(p) for p in prefixes):
                return False
            return match(message)

        start = {"requestId": ctx.request_id, "sessionId": random_uuid(),
                 "logGroupIdentifiers": idents}
        for key in ("logStreamNames", "logStreamNamePrefixes", "logEventFilterPattern"):
            if req.get(key) is not None:
                start[key] = req[key]
        return {"responseStream": self._session(ctx.region, groups, newest, wanted, start)}

    def _existing(self, region: str, names: list[str]) -> set[str]:
        with self.store.read() as conn:
            return set(conn.execute(sa.select(log_groups.c.name).where(
                log_groups.c.region == region, log_groups.c.name.in_(names))).scalars())

    async def _session(self, region: str, groups: dict[str, str], after: int,
                       wanted: Any, start: dict[str, Any]) -> AsyncIterator[bytes]:
        LiveTail._live_sessions += 1
        try:
            yield eventstream.event("sessionStart", start)
            ends = time.monotonic() + SESSION_S
            params = {"region": region, "groups": list(groups), "limit": 10_000}
            while time.monotonic() < ends:
                await asyncio.sleep(UPDATE_S)
                rows = await asyncio.to_thread(self.store.rows, _SINCE,
                                               {**params, "after": after})
                if rows:
                    after = rows[-1][0]
                results = [{"logStreamName": stream, "logGroupIdentifier": groups[group],
                            "message": message, "timestamp": ts, "ingestionTime": ingested}
                           for _id, group, stream, ts, ingested, message in rows
                           if wanted(stream, message)]
                sampled = len(results) > MAX_RESULTS
                if sampled:     # an even sample across what arrived
                    step = len(results) / MAX_RESULTS
                    results = [results[int(i * step)] for i in range(MAX_RESULTS)]
                yield eventstream.event("sessionUpdate", {
                    "sessionMetadata": {"sampled": sampled}, "sessionResults": results})
            yield eventstream.exception("SessionTimeoutException",
                                        "The session timed out after 3 hours.")
        finally:
            LiveTail._live_sessions -= 1
