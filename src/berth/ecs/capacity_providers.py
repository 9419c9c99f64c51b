"""Capacity providers: Create/Describe/Update/DeleteCapacityProvider, and the providers and
default strategy of a cluster (CreateCluster, PutClusterCapacityProviders).

berth serves no EC2 Auto Scaling and no Fargate: it keeps a provider's configuration and
returns it as AWS does, offers the built-in FARGATE and FARGATE_SPOT providers by name, and
checks strategies as ECS checks them. Placement runs on the cluster's container instances
whatever provider a strategy names.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..state.store import Store
from . import arns, errors, paging
from .clock import now
from .lookup import get_cluster
from .quick_lookup import active_cluster
from .schema import capacity_providers, clusters
from .tags import tag_list, tag_map

FARGATE = ("FARGATE", "FARGATE_SPOT")
_RESERVED_PREFIXES = ("aws", "ecs", "fargate")
_t = capacity_providers


# A region's providers, built once (see Store.records); there are few of them.
_PROVIDERS = sa.select(_t).where(_t.c.region == sa.bindparam("region")).order_by(_t.c.name)


def provider_arn(region: str, account: str, name: str) -> str:
    return f"{arns.base(region, account)}capacity-provider/{name}"


def provider_name(ident: str) -> str:
    """The name in a provider's name or ARN."""
    return ident.rsplit("capacity-provider/", 1)[-1] if ident.startswith(arns.PREFIX) else ident


def _view(row: Any, include_tags: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {"capacityProviderArn": row.arn, "name": row.name,
                            "status": row.status, "type": row.kind}
    view.update(row.config or {})
    if row.cluster:
        view["cluster"] = row.cluster
    if row.update_status:
        view["updateStatus"] = row.update_status
    if include_tags:
        view["tags"] = tag_list(row.tags or {})
    return view


def _active(conn: sa.Connection, region: str, name: str) -> Any:
    """The ACTIVE provider of that name, or ECS's error."""
    row = conn.execute(sa.select(_t).where(_t.c.region == region, _t.c.name == name)).first()
    if row is None or row.status != "ACTIVE":
        raise errors.invalid("The specified capacity provider does not exist. Specify a "
                             "valid name or ARN and try again.")
    return row


def _builtin(region: str, account: str, name: str) -> dict[str, Any]:
    return {"capacityProviderArn": provider_arn(region, account, name), "name": name,
            "status": "ACTIVE", "tags": [], "type": name}


def check_strategy(conn: sa.Connection, region: str, providers: list[str],
                   strategy: list[dict[str, Any]]) -> None:
    """Refuse what ECS refuses of a cluster's providers and default strategy."""
    names = [provider_name(p) for p in providers]
    if len(set(names)) != len(names):
        raise errors.invalid("The specified capacity providers contain duplicates.")
    own = [n for n in names if n not in FARGATE]
    if own:
        found = {r.name: r for r in conn.execute(sa.select(_t).where(
            _t.c.region == region, _t.c.name.in_(own)))}
        for name in own:
            row = found.get(name)
            if row is None or row.status != "ACTIVE":
                raise errors.invalid(f"The specified capacity provider '{name}' is not in an "
                                     "ACTIVE state. Specify a valid capacity provider and try "
                                     "again.")
    strategy_names = [provider_name(item["capacityProvider"]) for item in strategy]
    for name in strategy_names:
        if name not in names:
            raise errors.invalid(
                "The specified capacity provider strategy cannot contain a capacity provider "
                "that is not associated with the cluster. Associate the capacity provider "
                "with the cluster or specify a valid capacity provider and try again.")
    if len(set(strategy_names)) != len(strategy_names):
        raise errors.invalid("The specified capacity provider strategy contains duplicates.")
    if sum(1 for item in strategy if item.get("base")) > 1:
        raise errors.invalid("Only one capacity provider in a capacity provider strategy can "
                             "have a base defined.")
    kinds = {n in FARGATE for n in strategy_names}
    if len(kinds) > 1:
        raise errors.invalid("A capacity provider strategy cannot contain a mix of capacity "
                             "providers using Auto Scaling groups and Fargate providers. "
                             "Specify one or the other and try again.")


def strategy_view(strategy: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stored strategy as ECS answers it: each item's weight and base spelled out."""
    return [{"capacityProvider": provider_name(item["capacityProvider"]),
             "weight": item.get("weight", 0), "base": item.get("base", 0)}
            for item in strategy]


class CapacityProviders:
    store: Store

    def create_capacity_provider(self, ctx: RequestContext, req: dict[str, Any]
                                 ) -> dict[str, Any]:
        name = req["name"]
        if not arns.NAME_RE.fullmatch(name) or name.lower().startswith(_RESERVED_PREFIXES):
            raise errors.client("The specified capacity provider name is invalid. Up to 255 "
                                "characters are allowed, including letters (upper and "
                                "lowercase), numbers, underscores, and hyphens. The name "
                                "cannot be prefixed with \"aws\", \"ecs\", or \"fargate\".")
        asg, managed = req.get("autoScalingGroupProvider"), req.get("managedInstancesProvider")
        if bool(asg) == bool(managed):
            raise errors.invalid("Specify exactly one of autoScalingGroupProvider and "
                                 "managedInstancesProvider.")
        if managed and not req.get("cluster"):
            raise errors.invalid("A managed instances capacity provider must name its "
                                 "cluster.")
        tags = tag_map(req.get("tags"))
        config: dict[str, Any]
        if asg:
            scaling = {"status": "DISABLED", "targetCapacity": 100,
                       "minimumScalingStepSize": 1, "maximumScalingStepSize": 10000,
                       "instanceWarmupPeriod": 300, **(asg.get("managedScaling") or {})}
            config = {"autoScalingGroupProvider": {
                "managedTerminationProtection": "DISABLED", "managedDraining": "ENABLED",
                **asg, "managedScaling": scaling}}
        else:
            config = {"managedInstancesProvider": managed}
        with self.store.write() as conn:
            cluster = get_cluster(conn, ctx.region, req["cluster"]).name \
                if req.get("cluster") else None
            row = conn.execute(sa.select(_t).where(_t.c.region == ctx.region,
                                                   _t.c.name == name)).first()
            if row is not None and row.status == "ACTIVE":
                raise errors.client("The specified capacity provider already exists. To "
                                    "change the configuration of an existing capacity "
                                    "provider, update the capacity provider.")
            if asg and conn.execute(sa.select(_t.c.name).where(
                    _t.c.region == ctx.region, _t.c.status == "ACTIVE",
                    _t.c.asg_arn == asg["autoScalingGroupArn"])).first():
                raise errors.client("The specified Auto Scaling group ARN is already being "
                                    "used by another capacity provider. Specify a unique Auto "
                                    "Scaling group ARN and try again.")
            values = {"arn": provider_arn(ctx.region, ctx.account_id, name),
                      "status": "ACTIVE", "kind": "EC2_AUTOSCALING" if asg
                      else "MANAGED_INSTANCES", "cluster": cluster, "config": config,
                      "asg_arn": asg["autoScalingGroupArn"] if asg else None,
                      "update_status": None, "tags": tags, "created_at": now()}
            key = {"region": ctx.region, "name": name}
            if row is None:
                Store.insert(conn, _t, {**key, **values})
            else:   # an INACTIVE provider's name is free again
                Store.bump(conn, _t, key, values)
            row = conn.execute(sa.select(_t).where(_t.c.region == ctx.region,
                                                   _t.c.name == name)).one()
        return {"capacityProvider": _view(row)}

    @quick_read
    def describe_capacity_providers(self, ctx: RequestContext, req: dict[str, Any]
                                    ) -> dict[str, Any]:
        include_tags = "TAGS" in (req.get("include") or [])
        wanted = [provider_name(p) for p in req.get("capacityProviders") or []]
        cluster = active_cluster(self.store, ctx.region, req["cluster"]).name \
            if req.get("cluster") else None
        rows = {r.name: r for r in self.store.records(_PROVIDERS, {"region": ctx.region})
                if (r.name in wanted if wanted else r.status == "ACTIVE")
                and (cluster is None or r.cluster in (None, cluster))}
        found: list[dict[str, Any]] = []
        failures = []
        for name in wanted or [*FARGATE, *rows]:
            if name in FARGATE:
                found.append(_builtin(ctx.region, ctx.account_id, name))
            elif name in rows:
                found.append(_view(rows[name], include_tags))
            else:
                failures.append({"arn": provider_arn(ctx.region, ctx.account_id, name),
                                 "reason": "MISSING"})
        if not include_tags:
            for view in found:
                view.pop("tags", None)
        limit = paging.limit(req, default=10, maximum=10) if req.get("maxResults") else None
        start = paging.decode(req.get("nextToken")) or 0
        if not isinstance(start, int):
            raise errors.invalid("Invalid nextToken.")
        out: dict[str, Any] = {"capacityProviders": found[start:], "failures": failures}
        if limit is not None and len(found) > start + limit:
            out["capacityProviders"] = found[start:start + limit]
            out["nextToken"] = paging.encode(start + limit)
        return out

    def update_capacity_provider(self, ctx: RequestContext, req: dict[str, Any]
                                 ) -> dict[str, Any]:
        name = provider_name(req["name"])
        with self.store.write() as conn:
            row = _active(conn, ctx.region, name)
            config = dict(row.config or {})
            asg = req.get("autoScalingGroupProvider")
            if asg:
                if "autoScalingGroupProvider" not in config:
                    raise errors.invalid("The capacity provider has no Auto Scaling group "
                                         "provider to update.")
                current = dict(config["autoScalingGroupProvider"])
                if asg.get("managedScaling"):
                    current["managedScaling"] = {**current.get("managedScaling", {}),
                                                 **asg["managedScaling"]}
                for key in ("managedTerminationProtection", "managedDraining"):
                    if key in asg:
                        current[key] = asg[key]
                config["autoScalingGroupProvider"] = current
            if req.get("managedInstancesProvider"):
                if "managedInstancesProvider" not in config:
                    raise errors.invalid("The capacity provider has no managed instances "
                                         "provider to update.")
                config["managedInstancesProvider"] = {**config["managedInstancesProvider"],
                                                      **req["managedInstancesProvider"]}
            Store.bump(conn, _t, {"region": ctx.region, "name": name},
                       {"config": config, "update_status": "UPDATE_COMPLETE"})
            row = conn.execute(sa.select(_t).where(_t.c.region == ctx.region,
                                                   _t.c.name == name)).one()
        return {"capacityProvider": _view(row)}

    def delete_capacity_provider(self, ctx: RequestContext, req: dict[str, Any]
                                 ) -> dict[str, Any]:
        name = provider_name(req["capacityProvider"])
        with self.store.write() as conn:
            _active(conn, ctx.region, name)
            for cluster, providers in conn.execute(sa.select(
                    clusters.c.name, clusters.c.capacity_providers).where(
                    clusters.c.region == ctx.region, clusters.c.status == "ACTIVE")):
                if name in [provider_name(p) for p in providers or []]:
                    raise errors.client(
                        f"The specified capacity provider is in use and cannot be removed. "
                        f"Remove the capacity provider from cluster {cluster} and try again.")
            Store.bump(conn, _t, {"region": ctx.region, "name": name},
                       {"status": "INACTIVE", "update_status": "DELETE_COMPLETE"})
            row = conn.execute(sa.select(_t).where(_t.c.region == ctx.region,
                                                   _t.c.name == name)).one()
        return {"capacityProvider": _view(row)}
