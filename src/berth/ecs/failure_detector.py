"""The failure detector: an instance whose agent stops heartbeating is marked
agentConnected=false after `ecs_agent_timeout`; if it stays silent for `ecs_agent_grace` more,
its tasks are STOPPED with a reason, and the reconciler replaces service tasks elsewhere."""
from __future__ import annotations

import logging

import sqlalchemy as sa

from ..state.store import Store
from .clock import now
from .schema import heartbeats, instances
from .task_state import finish_all_on

log = logging.getLogger(__name__)


class FailureDetector:
    def __init__(self, store: Store, timeout: float, grace: float) -> None:
        self.store, self.timeout, self.grace = store, timeout, grace

    def run_once(self) -> tuple[list[str], list[str]]:
        """(instances just marked disconnected, instances whose tasks were just stopped)."""
        at = now()
        with self.store.write() as conn:
            silent = list(conn.execute(
                sa.select(instances.c.arn)
                .select_from(instances.outerjoin(heartbeats,
                                                 heartbeats.c.arn == instances.c.arn))
                .where(instances.c.status != "INACTIVE",
                       instances.c.agent_connected.is_(True),
                       sa.or_(heartbeats.c.seen_at.is_(None),
                              heartbeats.c.seen_at < at - self.timeout))
                .order_by(instances.c.arn)).scalars())
            for arn in silent:
                conn.execute(instances.update().where(instances.c.arn == arn,
                                                      instances.c.agent_connected.is_(True))
                             .values(agent_connected=False, disconnected_at=at,
                                     version=instances.c.version + 1))
        if silent:
            log.warning("agents silent for %.0f s, marked disconnected: %s", self.timeout,
                        ", ".join(silent))
        lost: list[str] = []
        with self.store.read() as conn:
            candidates = list(conn.execute(
                sa.select(instances.c.arn).where(
                    instances.c.status != "INACTIVE", instances.c.agent_connected.is_(False),
                    instances.c.disconnected_at < at - self.grace,
                    instances.c.task_count > 0).order_by(instances.c.arn)).scalars())
        reason = (f"Task stopped: the agent of its container instance stopped responding "
                  f"(no heartbeat for {self.timeout + self.grace:.0f} s).")
        for arn in candidates:
            with self.store.write() as conn:
                if finish_all_on(conn, arn, reason, "TerminationNotice"):
                    lost.append(arn)
        if lost:
            log.warning("stopped the tasks of lost instances: %s", ", ".join(lost))
        return silent, lost
