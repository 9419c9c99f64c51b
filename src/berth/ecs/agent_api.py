"""What agents call: SubmitTaskStateChange, SubmitContainerStateChange,
SubmitAttachmentStateChanges, DiscoverPollEndpoint, UpdateContainerAgent, and the desired
state of one instance that berth's assignment channel hands out.

Every agent call is also a heartbeat for its instance.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext
from ..api.errors import ServiceError
from ..state.store import Store
from . import errors
from .heartbeat import Heartbeats
from .lookup import Row, find_instance, find_task, get_cluster
from .placement import UDP
from .schema import instances, task_definitions, tasks
from .task_definitions import task_definition_view
from .task_state import ORDER, advance
from .task_views import task_view
from .wakeups import Wakeups

_TIME_FIELDS = {"pullStartedAt": "pull_started_at", "pullStoppedAt": "pull_stopped_at",
                "executionStoppedAt": "execution_stopped_at"}
_CONTAINER_FIELDS = ("runtimeId", "exitCode", "reason", "networkBindings", "imageDigest")


def merge_containers(current: list[dict[str, Any]], changes: list[dict[str, Any]]
                     ) -> list[dict[str, Any]]:
    by_name = {c.get("containerName"): c for c in changes}
    out = []
    for c in current:
        change = by_name.get(c["name"])
        if change is None:
            out.append(c)
            continue
        merged = dict(c)
        if change.get("status"):
            merged["lastStatus"] = change["status"]
        for key in _CONTAINER_FIELDS:
            if change.get(key) is not None:
                merged[key] = change[key]
        out.append(merged)
    return out


@dataclass
class Assignment:
    """One instance's desired state: its status and every task not yet STOPPED on it."""
    instance_arn: str
    token: str
    instance_status: str
    tasks: list[dict[str, Any]]


class AgentApi:
    store: Store
    heartbeats: Heartbeats
    wakeups: Wakeups
    td_views: dict[str, dict[str, Any]]     # task definition ARN -> its view (bodies never change)

    def _task_for_agent(self, conn: sa.Connection, ctx: RequestContext, req: dict[str, Any]
                        ) -> Row:
        cluster = get_cluster(conn, ctx.region, req.get("cluster"))
        if not req.get("task"):
            raise errors.invalid("task is required.")
        row = find_task(conn, ctx.region, cluster, req["task"])
        if row is None:
            raise errors.invalid("The referenced task was not found.")
        return row

    def submit_task_state_change(self, ctx: RequestContext, req: dict[str, Any]
                                 ) -> dict[str, Any]:
        status = req.get("status")
        if status is not None and status not in ORDER:
            raise errors.invalid(f"Invalid task status: {status}")
        with self.store.write() as conn:
            row = self._task_for_agent(conn, ctx, req)
            containers = (merge_containers(row.containers, req["containers"])
                          if req.get("containers") else None)
            times = {col: req.get(member) for member, col in _TIME_FIELDS.items()}
            changed = advance(conn, row, status or row.last_status, req.get("reason"),
                              containers, times)
        self.heartbeats.beat(row.instance_arn)
        if changed:
            self.wakeups.instances([row.instance_arn])
            if row.service_name:
                self.wakeups.reconciler()
        return {"acknowledgment": "true"}

    def submit_container_state_change(self, ctx: RequestContext, req: dict[str, Any]
                                      ) -> dict[str, Any]:
        if not req.get("containerName"):
            raise errors.invalid("containerName is required.")
        with self.store.write() as conn:
            row = self._task_for_agent(conn, ctx, req)
            if req["containerName"] not in {c["name"] for c in row.containers}:
                raise errors.invalid(f"The task has no container named "
                                     f"{req['containerName']}.")
            containers = merge_containers(row.containers, [req])
            conn.execute(tasks.update().where(tasks.c.arn == row.arn,
                                              tasks.c.last_status != "STOPPED")
                         .values(containers=containers, version=tasks.c.version + 1))
        self.heartbeats.beat(row.instance_arn)
        return {"acknowledgment": "true"}

    def submit_container_health(self, region: str, req: dict[str, Any]) -> None:
        """berth's agent channel: the health its checks found, per container (validated)."""
        health = {c["containerName"]: c["healthStatus"] for c in req["containers"]}
        with self.store.write() as conn:
            cluster = get_cluster(conn, region, req.get("cluster"))
            row = find_task(conn, region, cluster, req["task"])
            if row is None:
                raise errors.invalid("The referenced task was not found.")
            containers = [{**c, "healthStatus": health[c["name"]]} if c["name"] in health
                          else c for c in row.containers]
            conn.execute(tasks.update().where(tasks.c.arn == row.arn,
                                              tasks.c.last_status != "STOPPED")
                         .values(containers=containers, version=tasks.c.version + 1))
        self.heartbeats.beat(row.instance_arn)

    def discover_poll_endpoint(self, ctx: RequestContext, req: dict[str, Any]
                               ) -> dict[str, Any]:
        if req.get("containerInstance"):
            with self.store.read() as conn:
                cluster = get_cluster(conn, ctx.region, req.get("cluster"))
                row = find_instance(conn, ctx.region, cluster, req["containerInstance"])
            if row is None:
                raise errors.invalid("The referenced container instance was not found.")
            self.heartbeats.beat(row.arn)
        endpoint = ctx.endpoint.rstrip("/") + "/"
        return {"endpoint": endpoint, "telemetryEndpoint": endpoint,
                "serviceConnectEndpoint": endpoint}

    def submit_attachment_state_changes(self, ctx: RequestContext, req: dict[str, Any]
                                        ) -> dict[str, Any]:
        """Acknowledged: berth's tasks have no network attachments whose state it tracks."""
        with self.store.read() as conn:
            get_cluster(conn, ctx.region, req.get("cluster"))
        return {"acknowledgment": "ACK"}

    def update_container_agent(self, ctx: RequestContext, req: dict[str, Any]
                               ) -> dict[str, Any]:
        """A berth agent is updated with berth itself: there is never an update to apply."""
        with self.store.read() as conn:
            cluster = get_cluster(conn, ctx.region, req.get("cluster"))
            if find_instance(conn, ctx.region, cluster, req["containerInstance"]) is None:
                raise errors.invalid("The referenced container instance was not found.")
        raise ServiceError("NoUpdateAvailableException",
                           "There is no update available for your container agent.")

    # -- the assignment channel's store side (runs in a worker thread) -------------------------

    def assignment(self, region: str, cluster_ident: str | None, instance_ident: str
                   ) -> Assignment:
        """The instance's desired state, handing PROVISIONING tasks over (they become PENDING).

        Raises ServiceError for an unknown cluster or instance. Counts as a heartbeat.
        """
        with self.store.read() as conn:
            cluster = get_cluster(conn, region, cluster_ident)
            inst = find_instance(conn, region, cluster, instance_ident)
        if inst is None:
            raise errors.invalid("The referenced container instance was not found.")
        if inst.status != "INACTIVE":
            self.heartbeats.beat(inst.arn)
        handing = (tasks.c.instance_arn == inst.arn, tasks.c.last_status == "PROVISIONING",
                   tasks.c.desired_status == "RUNNING")
        with self.store.read() as conn:
            new_work = conn.execute(sa.select(tasks.c.arn).where(*handing).limit(1)).first()
        if new_work is not None:
            with self.store.write() as conn:
                conn.execute(tasks.update().where(*handing).values(
                    last_status="PENDING", version=tasks.c.version + 1))
        with self.store.read() as conn:
            status = conn.execute(sa.select(instances.c.status).where(
                instances.c.arn == inst.arn)).scalar_one()
            rows = list(conn.execute(sa.select(tasks).where(
                tasks.c.instance_arn == inst.arn, tasks.c.last_status != "STOPPED")
                .order_by(tasks.c.arn)))
            defs = self._definitions(conn, {r.task_definition_arn for r in rows})
        digest = hashlib.sha1(status.encode())
        out = []
        for r in rows:
            digest.update(f"|{r.arn}:{r.version}".encode())
            view = task_view(r._mapping, with_tags=False)
            view["taskDefinition"] = defs[r.task_definition_arn]
            view["hostPorts"] = [p for p in r.ports if p < UDP]
            view["hostUdpPorts"] = [p - UDP for p in r.ports if p >= UDP]
            out.append(view)
        return Assignment(inst.arn, digest.hexdigest(), status, out)

    def held_poll_token(self, instance_arn: str) -> str:
        """The instance's current token, cheaply, while its agent holds a poll open (which
        keeps counting as a heartbeat)."""
        self.heartbeats.beat(instance_arn)
        with self.store.read() as conn:
            status = conn.execute(sa.select(instances.c.status).where(
                instances.c.arn == instance_arn)).scalar() or "INACTIVE"
            versions = conn.execute(sa.select(tasks.c.arn, tasks.c.version).where(
                tasks.c.instance_arn == instance_arn, tasks.c.last_status != "STOPPED")
                .order_by(tasks.c.arn)).all()
        digest = hashlib.sha1(status.encode())
        for arn, version in versions:
            digest.update(f"|{arn}:{version}".encode())
        return digest.hexdigest()

    def _definitions(self, conn: sa.Connection, arns_: set[str]) -> dict[str, dict[str, Any]]:
        cache = self.td_views
        missing = [a for a in arns_ if a not in cache]
        if missing:
            for row in conn.execute(sa.select(task_definitions).where(
                    task_definitions.c.arn.in_(missing))):
                view = task_definition_view(row)
                # The body never changes after registration; only its status does.
                view.pop("status", None)
                cache[row.arn] = view
        return {a: cache[a] for a in arns_}
