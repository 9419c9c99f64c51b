"""Aliases: names for a version, optionally splitting traffic with a second version by weight."""
from __future__ import annotations

import uuid
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import LATEST, FunctionRef, function_arn, function_ref
from .markers import page
from .queries import find_alias, get_function, get_version, one_update_at_a_time, \
    precondition_failed
from .schema import lambda_aliases, lambda_event_invoke_configs
from .views import alias_configuration


def check_routing(primary: str, weights: Mapping[str, float]) -> dict[str, float]:
    """Lambda's rules for weighted aliases: one extra published version, not the primary."""
    if not weights:
        return {}
    if len(weights) > 1:
        raise ServiceError("InvalidParameterValueException",
                           "Number of items in AdditionalVersionWeights cannot be greater "
                           "than 1")
    if primary == LATEST:
        raise ServiceError("InvalidParameterValueException",
                           "$LATEST is not supported for an alias pointing to more than 1 "
                           "version")
    (extra, weight), = weights.items()
    if extra == primary:
        raise ServiceError("InvalidParameterValueException",
                           f"Alias cannot point to the same version twice: {extra}")
    if not 0.0 <= weight <= 1.0:
        raise ServiceError("ValidationException",
                           f"1 validation error detected: Value '{weight}' at "
                           "'routingConfig.additionalVersionWeights' failed to satisfy "
                           "constraint: Member must have value between 0.0 and 1.0")
    return {extra: float(weight)}


def _alias_not_found(ctx: RequestContext, ref: FunctionRef, name: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", "Cannot find alias arn: "
                        + function_arn(ctx.region, ctx.account_id, ref.name, name))


class Aliases:
    store: Store

    def _target(self, conn: Connection, ref: FunctionRef, version: str,
                routing: Mapping[str, Any] | None) -> dict[str, float]:
        """Check the versions an alias would route to exist; return the weights."""
        get_version(conn, ref, version)
        weights = check_routing(version, (routing or {}).get("AdditionalVersionWeights") or {})
        for extra in weights:
            get_version(conn, ref, extra)
        return weights

    def create_alias(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id)
        name = req["Name"]
        conflict = ServiceError("ResourceConflictException", "Alias already exists: "
                                + function_arn(ctx.region, ctx.account_id, ref.name, name))
        try:
            with self.store.write() as conn:
                get_function(conn, ref)
                weights = self._target(conn, ref, req["FunctionVersion"],
                                       req.get("RoutingConfig"))
                if find_alias(conn, ctx.region, ref.name, name) is not None:
                    raise conflict
                Store.insert(conn, lambda_aliases, {
                    "region": ctx.region, "function_name": ref.name, "name": name,
                    "function_version": req["FunctionVersion"],
                    "description": req.get("Description") or "", "weights": weights,
                    "revision_id": str(uuid.uuid4())})
                row = find_alias(conn, ctx.region, ref.name, name)
        except sa.exc.IntegrityError:
            raise conflict from None
        return alias_configuration(row, ctx.region, ctx.account_id)

    @quick_read
    def get_alias(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id)
        with self.store.read() as conn:
            get_function(conn, ref)
            row = find_alias(conn, ctx.region, ref.name, req["Name"])
        if row is None:
            raise _alias_not_found(ctx, ref, req["Name"])
        return alias_configuration(row, ctx.region, ctx.account_id)

    def update_alias(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id)
        name = req["Name"]
        arn = function_arn(ctx.region, ctx.account_id, ref.name, name)
        with one_update_at_a_time(arn), self.store.write() as conn:
            get_function(conn, ref)
            row = find_alias(conn, ctx.region, ref.name, name)
            if row is None:
                raise _alias_not_found(ctx, ref, name)
            if req.get("RevisionId") and req["RevisionId"] != row.revision_id:
                raise precondition_failed("GetAlias")
            version = req.get("FunctionVersion", row.function_version)
            routing = req["RoutingConfig"] if "RoutingConfig" in req else \
                {"AdditionalVersionWeights": row.weights}
            weights = self._target(conn, ref, version, routing)
            values = {"function_version": version, "weights": weights,
                      "revision_id": str(uuid.uuid4()),
                      "description": req.get("Description", row.description)}
            Store.cas_update(conn, lambda_aliases, {"region": ctx.region,
                                                    "function_name": ref.name, "name": name},
                             row.version, values)
            row = find_alias(conn, ctx.region, ref.name, name)
        return alias_configuration(row, ctx.region, ctx.account_id)

    def delete_alias(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id)
        name = req["Name"]
        with self.store.write() as conn:
            get_function(conn, ref)
            gone = conn.execute(lambda_aliases.delete().where(
                lambda_aliases.c.region == ctx.region,
                lambda_aliases.c.function_name == ref.name,
                lambda_aliases.c.name == name)).rowcount
            if not gone:
                raise _alias_not_found(ctx, ref, name)
            conn.execute(lambda_event_invoke_configs.delete().where(
                lambda_event_invoke_configs.c.region == ctx.region,
                lambda_event_invoke_configs.c.function_name == ref.name,
                lambda_event_invoke_configs.c.qualifier == name))
        return {}

    @quick_read
    def list_aliases(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id)
        q = sa.select(lambda_aliases).where(lambda_aliases.c.region == ctx.region,
                                            lambda_aliases.c.function_name == ref.name)
        if req.get("FunctionVersion"):
            q = q.where(lambda_aliases.c.function_version == req["FunctionVersion"])
        with self.store.read() as conn:
            get_function(conn, ref)
            rows = sorted(conn.execute(q), key=lambda r: r.name)
        chunk, marker = page(rows, lambda r: [r.name], req.get("Marker"), req.get("MaxItems"))
        out: dict[str, Any] = {"Aliases": [alias_configuration(r, ctx.region, ctx.account_id)
                                           for r in chunk]}
        if marker:
            out["NextMarker"] = marker
        return out
