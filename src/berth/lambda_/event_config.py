"""Asynchronous invocation settings per function, version or alias: retries, maximum event age
and destinations (Put/Get/Update/Delete/ListFunctionEventInvokeConfigs). `lookup` gives the
async dispatcher the settings that apply to one invocation."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import LATEST, FunctionRef, function_arn, function_ref
from .markers import page
from .queries import check_qualifier_exists, get_function, one_update_at_a_time
from .schema import lambda_event_invoke_configs as table

DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE = 21600
_DESTINATION = re.compile(r"arn:aws[a-zA-Z-]*:(sqs|sns|lambda|events|s3):[a-z0-9-]*:\d{0,12}:.+")


@dataclass(frozen=True)
class EventInvokeSettings:
    """What governs one asynchronous invocation (AWS defaults where nothing is configured)."""

    maximum_retry_attempts: int = DEFAULT_RETRIES
    maximum_event_age: int = DEFAULT_MAX_AGE
    on_success: str | None = None      # destination ARN
    on_failure: str | None = None


def lookup(store: Store, region: str, function_name: str,
           qualifier: str | None) -> EventInvokeSettings:
    """The settings for an invocation of `function_name` as it was qualified (None = $LATEST)."""
    with store.read() as conn:
        row = conn.execute(sa.select(table).where(
            table.c.region == region, table.c.function_name == function_name,
            table.c.qualifier == (qualifier or LATEST))).first()
    if row is None:
        return EventInvokeSettings()
    return EventInvokeSettings(
        DEFAULT_RETRIES if row.maximum_retry_attempts is None else row.maximum_retry_attempts,
        DEFAULT_MAX_AGE if row.maximum_event_age is None else row.maximum_event_age,
        row.on_success, row.on_failure)


_MEMBERS = (("OnSuccess", "on_success"), ("OnFailure", "on_failure"))


def _destinations(config: dict[str, Any] | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for member, column in _MEMBERS:
        arn = ((config or {}).get(member) or {}).get("Destination") or None
        if arn is not None and not _DESTINATION.fullmatch(arn):
            raise ServiceError("InvalidParameterValueException",
                               f"The destination ARN {arn} is invalid: a destination is an "
                               "SQS queue, SNS topic, Lambda function or EventBridge bus.")
        out[column] = arn
    return out


def _view(ctx: RequestContext, row: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "LastModified": row.last_modified,
        "FunctionArn": function_arn(ctx.region, ctx.account_id, row.function_name,
                                    row.qualifier),
        "DestinationConfig": {
            "OnSuccess": {"Destination": row.on_success} if row.on_success else {},
            "OnFailure": {"Destination": row.on_failure} if row.on_failure else {}},
    }
    if row.maximum_retry_attempts is not None:
        view["MaximumRetryAttempts"] = row.maximum_retry_attempts
    if row.maximum_event_age is not None:
        view["MaximumEventAgeInSeconds"] = row.maximum_event_age
    return view


class EventConfigs:
    store: Store

    def _ref(self, ctx: RequestContext, req: dict[str, Any]) -> FunctionRef:
        return function_ref(req["FunctionName"], ctx.region, ctx.account_id,
                            req.get("Qualifier"))

    def _find(self, conn: sa.Connection, ref: FunctionRef, qualifier: str) -> Any:
        return conn.execute(sa.select(table).where(
            table.c.region == ref.region, table.c.function_name == ref.name,
            table.c.qualifier == qualifier)).first()

    def _missing(self, ctx: RequestContext, ref: FunctionRef, qualifier: str) -> ServiceError:
        arn = function_arn(ctx.region, ctx.account_id, ref.name, qualifier)
        return ServiceError("ResourceNotFoundException",
                            f"The function {arn} doesn't have an EventInvokeConfig")

    def _store(self, ctx: RequestContext, req: dict[str, Any], merge: bool) -> dict[str, Any]:
        ref = self._ref(ctx, req)
        arn = function_arn(ctx.region, ctx.account_id, ref.name, ref.qualifier)
        with one_update_at_a_time(arn), self.store.write() as conn:
            qualifier = check_qualifier_exists(conn, ref)
            row = self._find(conn, ref, qualifier)
            if merge and row is None:
                raise self._missing(ctx, ref, qualifier)
            values: dict[str, Any] = {"maximum_retry_attempts": None,
                                      "maximum_event_age": None, "on_success": None,
                                      "on_failure": None}
            if merge:
                values = {k: getattr(row, k) for k in values}
            if "MaximumRetryAttempts" in req:
                values["maximum_retry_attempts"] = req["MaximumRetryAttempts"]
            if "MaximumEventAgeInSeconds" in req:
                values["maximum_event_age"] = req["MaximumEventAgeInSeconds"]
            if "DestinationConfig" in req:
                config = req["DestinationConfig"]
                given = _destinations(config)
                for member, column in _MEMBERS:
                    if not merge or member in config:   # Update keeps what it is not given
                        values[column] = given[column]
            values["last_modified"] = time.time()
            key = {"region": ctx.region, "function_name": ref.name, "qualifier": qualifier}
            if row is None:
                Store.insert(conn, table, {**key, **values})
            else:
                Store.cas_update(conn, table, key, row.version, values)
            row = self._find(conn, ref, qualifier)
        return _view(ctx, row)

    def put_function_event_invoke_config(self, ctx: RequestContext, req: dict[str, Any]
                                         ) -> dict[str, Any]:
        return self._store(ctx, req, merge=False)

    def update_function_event_invoke_config(self, ctx: RequestContext, req: dict[str, Any]
                                            ) -> dict[str, Any]:
        return self._store(ctx, req, merge=True)

    @quick_read
    def get_function_event_invoke_config(self, ctx: RequestContext, req: dict[str, Any]
                                         ) -> dict[str, Any]:
        ref = self._ref(ctx, req)
        with self.store.read() as conn:
            get_function(conn, ref)
            qualifier = ref.qualifier or LATEST
            row = self._find(conn, ref, qualifier)
        if row is None:
            raise self._missing(ctx, ref, qualifier)
        return _view(ctx, row)

    def delete_function_event_invoke_config(self, ctx: RequestContext, req: dict[str, Any]
                                            ) -> dict[str, Any]:
        ref = self._ref(ctx, req)
        qualifier = ref.qualifier or LATEST
        with self.store.write() as conn:
            get_function(conn, ref)
            gone = conn.execute(table.delete().where(
                table.c.region == ctx.region, table.c.function_name == ref.name,
                table.c.qualifier == qualifier)).rowcount
        if not gone:
            raise self._missing(ctx, ref, qualifier)
        return {}

    @quick_read
    def list_function_event_invoke_configs(self, ctx: RequestContext, req: dict[str, Any]
                                           ) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id)
        with self.store.read() as conn:
            get_function(conn, ref)
            rows = sorted(conn.execute(sa.select(table).where(
                table.c.region == ctx.region, table.c.function_name == ref.name)),
                key=lambda r: r.qualifier)
        chunk, marker = page(rows, lambda r: [r.qualifier], req.get("Marker"),
                             req.get("MaxItems"))
        out: dict[str, Any] = {"FunctionEventInvokeConfigs": [_view(ctx, r) for r in chunk]}
        if marker:
            out["NextMarker"] = marker
        return out
