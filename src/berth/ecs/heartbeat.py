"""Agent heartbeats: every call an agent makes (its assignment poll, state changes,
DiscoverPollEndpoint) says it is alive. Written to their own table, throttled per instance, so a
thousand agents cost few writes and never touch the version schedulers compare-and-swap on."""
from __future__ import annotations

import threading

import sqlalchemy as sa

from ..state.store import Store
from .clock import now
from .schema import heartbeats, instances


class Heartbeats:
    def __init__(self, store: Store, timeout: float) -> None:
        self.store = store
        # Write at most every third of the timeout (and at least every 5 s), so a live agent
        # is never seen as silent.
        self.every = min(5.0, timeout / 3)
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def beat(self, arn: str, force: bool = False) -> None:
        t = now()
        with self._lock:
            if not force and t - self._last.get(arn, 0.0) < self.every:
                return
            self._last[arn] = t
        with self.store.write() as conn:
            # The row exists from registration on (and is gone once deregistered).
            conn.execute(heartbeats.update().where(heartbeats.c.arn == arn)
                         .values(seen_at=t))
            # An agent that comes back is connected again (a rare write on the instance row).
            conn.execute(instances.update().where(instances.c.arn == arn,
                                                  instances.c.status != "INACTIVE",
                                                  instances.c.agent_connected.is_(False))
                         .values(agent_connected=True, disconnected_at=None,
                                 version=instances.c.version + 1))

    def forget(self, arn: str) -> None:
        with self._lock:
            self._last.pop(arn, None)

    @staticmethod
    def insert(conn: sa.Connection, arn: str, at: float) -> None:
        """The registration's heartbeat, in its transaction."""
        done = conn.execute(heartbeats.update().where(heartbeats.c.arn == arn)
                            .values(seen_at=at)).rowcount
        if not done:
            conn.execute(heartbeats.insert().values(arn=arn, seen_at=at))
