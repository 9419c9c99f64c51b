"""Container instance operations: register (what an agent calls to join), deregister, describe,
list (with the cluster query language), and ACTIVE/DRAINING state."""
from __future__ import annotations

import json
import logging
import secrets
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..api.app import RequestContext, quick_read
from ..state.store import Store
from . import arns, errors, paging, task_state
from .clock import now
from .heartbeat import Heartbeats
from .lookup import (Row, cluster_ref, ensure_cluster, find_instance, get_cluster,
                     instance_arn_for)
from .placement import UDP
from .quick_lookup import active_cluster
from .query import InstanceFacts, QueryError, compile_expression
from .schema import heartbeats, instances, tasks
from .tags import tag_list, tag_map
from .wakeups import Wakeups

log = logging.getLogger(__name__)

PENDING_STATES = ("PROVISIONING", "PENDING", "ACTIVATING")
# Doc fields of an EC2 instance identity document that ECS turns into attributes.
DOC_ATTRIBUTES = {"availabilityZone": "ecs.availability-zone",
                  "instanceType": "ecs.instance-type", "imageId": "ecs.ami-id"}


def _resource(name: str, kind: str, value: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"name": name, "type": kind, "doubleValue": 0.0, "longValue": 0,
                         "integerValue": 0}
    if kind == "INTEGER":
        r["integerValue"] = int(value)
    elif kind == "LONG":
        r["longValue"] = int(value)
    elif kind == "DOUBLE":
        r["doubleValue"] = float(value)
    else:
        r["stringSetValue"] = [str(v) for v in value]
    return r


def _ports(values: list[str] | None, what: str) -> list[int]:
    out = []
    for v in values or []:
        if not str(v).isdigit() or not 0 < int(v) < 65536:
            raise errors.invalid(f"Invalid {what} value: {v}")
        out.append(int(v))
    return sorted(set(out))


def parse_resources(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"cpu": 0, "memory": 0, "ports": [], "udp": [], "other": []}
    for r in items or []:
        name = r.get("name")
        if name in ("CPU", "MEMORY"):
            value = r.get("integerValue", r.get("longValue", r.get("doubleValue")))
            if value is None or value < 0:
                raise errors.invalid(f"Invalid {name} resource: a non-negative integerValue "
                                     "is required.")
            out["cpu" if name == "CPU" else "memory"] = int(value)
        elif name == "PORTS":
            out["ports"] = _ports(r.get("stringSetValue"), "PORTS")
        elif name == "PORTS_UDP":
            out["udp"] = _ports(r.get("stringSetValue"), "PORTS_UDP")
        else:
            out["other"].append(r)
    return out


def attribute_list(attrs: dict[str, str | None]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} if v is not None else {"name": k}
            for k, v in sorted(attrs.items())]


def instance_view(row: Row, running: int, pending: int, with_tags: bool = False
                  ) -> dict[str, Any]:
    view: dict[str, Any] = {
        "containerInstanceArn": row.arn, "ec2InstanceId": row.ec2_instance_id,
        "version": row.version, "versionInfo": row.version_info, "status": row.status,
        "agentConnected": bool(row.agent_connected), "runningTasksCount": running,
        "pendingTasksCount": pending, "registeredAt": row.registered_at,
        "attributes": attribute_list(row.attributes), "attachments": [],
        "registeredResources": [
            _resource("CPU", "INTEGER", row.registered_cpu),
            _resource("MEMORY", "INTEGER", row.registered_memory),
            _resource("PORTS", "STRINGSET", row.reserved_ports),
            _resource("PORTS_UDP", "STRINGSET", row.reserved_udp_ports),
            *row.other_resources],
        "remainingResources": [
            _resource("CPU", "INTEGER", row.remaining_cpu),
            _resource("MEMORY", "INTEGER", row.remaining_memory),
            _resource("PORTS", "STRINGSET",
                      sorted({*row.reserved_ports, *(p for p in row.used_ports if p < UDP)})),
            _resource("PORTS_UDP", "STRINGSET", sorted(
                {*row.reserved_udp_ports, *(p - UDP for p in row.used_ports if p >= UDP)})),
            *row.other_resources]}
    if with_tags:
        view["tags"] = tag_list(row.tags or {})
    return view


def task_counts(conn: Connection, arns_: list[str]) -> dict[str, tuple[int, int]]:
    """(running, pending) live tasks per instance."""
    out = {a: [0, 0] for a in arns_}
    if arns_:
        for arn, status, n in conn.execute(
                sa.select(tasks.c.instance_arn, tasks.c.last_status, sa.func.count())
                .where(tasks.c.instance_arn.in_(arns_), tasks.c.last_status != "STOPPED")
                .group_by(tasks.c.instance_arn, tasks.c.last_status)):
            if status == "RUNNING":
                out[arn][0] += n
            elif status in PENDING_STATES:
                out[arn][1] += n
    return {a: (v[0], v[1]) for a, v in out.items()}


def facts(row: Row) -> InstanceFacts:
    return InstanceFacts(attributes=row.attributes, running_tasks_count=row.task_count,
                         task_groups=row.task_groups, ec2_instance_id=row.ec2_instance_id,
                         agent_connected=bool(row.agent_connected),
                         agent_version=(row.version_info or {}).get("agentVersion", ""),
                         registered_at=row.registered_at)


def _live_claims(conn: Connection, arn: str) -> tuple[int, int, list[int], dict[str, int], int]:
    cpu = mem = count = 0
    ports: list[int] = []
    groups: dict[str, int] = {}
    for t in task_state.live_tasks_on(conn, arn):
        cpu, mem, count = cpu + t.cpu, mem + t.memory, count + 1
        ports.extend(t.ports)
        groups[t.group] = groups.get(t.group, 0) + 1
    return cpu, mem, sorted(ports), groups, count


@lru_cache(maxsize=8)
def _list_instances(status: bool, after: bool, whole: bool) -> sa.Select[Any]:
    """ListContainerInstances' statement (whole rows when a filter needs their facts, else
    the ARN alone), built once per combination (see Store.rows)."""
    i = instances.c
    q = sa.select(instances if whole else i.arn).where(
        i.region == sa.bindparam("region"), i.cluster == sa.bindparam("cluster"))
    q = q.where(i.status == sa.bindparam("status")) if status else q.where(
        i.status != "INACTIVE")
    if after:
        q = q.where(i.arn > sa.bindparam("after"))
    q = q.order_by(i.arn)
    return q if whole else q.limit(sa.bindparam("limit"))


class ContainerInstances:
    store: Store
    heartbeats: Heartbeats
    wakeups: Wakeups

    def register_container_instance(self, ctx: RequestContext, req: dict[str, Any]
                                    ) -> dict[str, Any]:
        res = parse_resources(req.get("totalResources"))
        doc: dict[str, Any] = {}
        if req.get("instanceIdentityDocument"):
            try:
                doc = json.loads(req["instanceIdentityDocument"])
                assert isinstance(doc, dict)
            except (ValueError, AssertionError):
                raise errors.invalid("instanceIdentityDocument is not a JSON object.") from None
        attrs: dict[str, str | None] = {"ecs.os-type": "linux"}
        attrs.update({DOC_ATTRIBUTES[k]: str(v) for k, v in doc.items()
                      if k in DOC_ATTRIBUTES and v})
        for a in req.get("attributes") or []:
            attrs[a["name"]] = a.get("value")
        values = {"status": "ACTIVE", "agent_connected": True, "disconnected_at": None,
                  "registered_cpu": res["cpu"], "registered_memory": res["memory"],
                  "reserved_ports": res["ports"], "reserved_udp_ports": res["udp"],
                  "other_resources": res["other"], "attributes": attrs,
                  "version_info": req.get("versionInfo") or {}}
        at = now()
        with self.store.write() as conn:
            cluster = ensure_cluster(conn, ctx.region, ctx.account_id, req.get("cluster"))
            existing = self._existing(conn, ctx, cluster, req, doc)
            if existing is not None:
                # Re-registration (an agent restarting): same ARN, fresh totals, and the
                # claims of the tasks still assigned to it carried over.
                cpu, mem, ports, groups, count = _live_claims(conn, existing.arn)
                Store.bump(conn, instances, {"arn": existing.arn}, {
                    **values, "remaining_cpu": res["cpu"] - cpu,
                    "remaining_memory": res["memory"] - mem, "used_ports": ports,
                    "task_groups": groups, "task_count": count,
                    "tags": {**existing.tags, **tag_map(req.get("tags"))}})
                arn = existing.arn
            else:
                arn = arns.instance_arn(ctx.region, ctx.account_id, cluster.name, arns.new_id())
                Store.insert(conn, instances, {
                    **values, "arn": arn, "region": ctx.region, "cluster": cluster.name,
                    "ec2_instance_id": doc.get("instanceId") or "i-" + secrets.token_hex(9)[:17],
                    "remaining_cpu": res["cpu"], "remaining_memory": res["memory"],
                    "used_ports": [], "task_groups": {}, "task_count": 0,
                    "tags": tag_map(req.get("tags")), "registered_at": at})
            Heartbeats.insert(conn, arn, at)
            row = conn.execute(sa.select(instances).where(instances.c.arn == arn)).one()
            running, pending = task_counts(conn, [arn])[arn]
        self.heartbeats.forget(arn)
        self.wakeups.reconciler()
        return {"containerInstance": instance_view(row, running, pending, with_tags=True)}

    @staticmethod
    def _existing(conn: Connection, ctx: RequestContext, cluster: Row, req: dict[str, Any],
                  doc: dict[str, Any]) -> Row | None:
        if req.get("containerInstanceArn"):
            row = find_instance(conn, ctx.region, cluster, req["containerInstanceArn"])
            if row is None:
                raise errors.invalid("The referenced container instance was not found in "
                                     "this cluster.")
            return row
        if doc.get("instanceId"):
            return conn.execute(sa.select(instances).where(
                instances.c.region == ctx.region, instances.c.cluster == cluster.name,
                instances.c.ec2_instance_id == doc["instanceId"],
                instances.c.status != "INACTIVE")).first()
        return None

    def deregister_container_instance(self, ctx: RequestContext, req: dict[str, Any]
                                      ) -> dict[str, Any]:
        with self.store.write() as conn:
            cluster = get_cluster(conn, ctx.region, req.get("cluster"))
            row = find_instance(conn, ctx.region, cluster, req["containerInstance"])
            if row is None or row.status == "INACTIVE":
                raise errors.invalid("The referenced container instance was not found.")
            live = task_state.live_tasks_on(conn, row.arn)
            if live and not req.get("force"):
                raise errors.invalid("Found running tasks on the instance. Stop them or "
                                     "deregister with force.")
            stopped = task_state.finish_all_on(conn, row.arn,
                                               "Container instance deregistered", "UserInitiated")
            Store.bump(conn, instances, {"arn": row.arn},
                       {"status": "INACTIVE", "agent_connected": False})
            conn.execute(heartbeats.delete().where(heartbeats.c.arn == row.arn))
            row = conn.execute(sa.select(instances).where(instances.c.arn == row.arn)).one()
        self.wakeups.instances([row.arn])
        if stopped:
            self.wakeups.reconciler()
        return {"containerInstance": instance_view(row, 0, 0)}

    @quick_read
    def describe_container_instances(self, ctx: RequestContext, req: dict[str, Any]
                                     ) -> dict[str, Any]:
        idents = req["containerInstances"]
        if len(idents) > 100:
            raise errors.invalid("containerInstances can have at most 100 items.")
        with_tags = "TAGS" in (req.get("include") or [])
        rows, failures = [], []
        with self.store.read() as conn:
            cluster = cluster_ref(conn, ctx.region, req.get("cluster"))
            wanted = [(instance_arn_for(ctx.region, cluster, i), i) for i in idents]
            # One read by primary key for all of them (see describe_tasks).
            found = {r.arn: r for r in conn.execute(sa.select(instances).where(
                instances.c.arn.in_([arn for arn, _ in wanted])))} if wanted else {}
            for arn, ident in wanted:
                row = found.get(arn)
                if row is None or row.region != ctx.region or row.cluster != cluster.name:
                    failures.append({"arn": ident, "reason": "MISSING"})
                else:
                    rows.append(row)
            counts = task_counts(conn, [r.arn for r in rows])
        return {"containerInstances": [instance_view(r, *counts[r.arn], with_tags=with_tags)
                                       for r in rows], "failures": failures}

    @quick_read
    def list_container_instances(self, ctx: RequestContext, req: dict[str, Any]
                                 ) -> dict[str, Any]:
        limit = paging.limit(req)
        after = paging.decode(req.get("nextToken"))
        cluster = active_cluster(self.store, ctx.region, req.get("cluster"))
        params = {"region": ctx.region, "cluster": cluster.name, "status": req.get("status"),
                  "after": after, "limit": limit + 1}
        if not req.get("filter"):
            q = _list_instances(bool(req.get("status")), after is not None, False)
            rows = self.store.rows(q, params)
        else:   # the facts of each instance, until a page has matched
            try:
                pred = compile_expression(req["filter"])
            except QueryError as exc:
                raise errors.invalid(str(exc)) from None
            rows = []
            with self.store.read() as conn:
                for r in conn.execute(_list_instances(bool(req.get("status")),
                                                      after is not None, True), params):
                    if pred(facts(r)):
                        rows.append(r)
                        if len(rows) > limit:
                            break
        out: dict[str, Any] = {"containerInstanceArns": [r[0] for r in rows[:limit]]}
        if len(rows) > limit:
            out["nextToken"] = paging.encode(rows[limit - 1][0])
        return out

    def update_container_instances_state(self, ctx: RequestContext, req: dict[str, Any]
                                         ) -> dict[str, Any]:
        status = req["status"]
        if status not in ("ACTIVE", "DRAINING"):
            raise errors.invalid("Container instances can only be set to ACTIVE or DRAINING.")
        idents = req["containerInstances"]
        if len(idents) > 10:
            raise errors.invalid("containerInstances can have at most 10 items.")
        done, failures = [], []
        with self.store.write() as conn:
            cluster = get_cluster(conn, ctx.region, req.get("cluster"))
            for ident in idents:
                row = find_instance(conn, ctx.region, cluster, ident)
                if row is None or row.status == "INACTIVE":
                    failures.append({"arn": ident, "reason": "MISSING"})
                    continue
                if row.status != status:
                    Store.bump(conn, instances, {"arn": row.arn}, {"status": status})
                done.append(conn.execute(sa.select(instances).where(
                    instances.c.arn == row.arn)).one())
            counts = task_counts(conn, [r.arn for r in done])
        self.wakeups.reconciler()
        return {"containerInstances": [instance_view(r, *counts[r.arn]) for r in done],
                "failures": failures}
