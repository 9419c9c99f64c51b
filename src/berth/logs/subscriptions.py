"""Subscription filters: Put/Describe/DeleteSubscriptionFilter, and the deliveries a
PutLogEvents batch owes them.

A filter's destination is checked when it is put, as AWS does with its test delivery: a Lambda
function of this account must exist; berth serves no Kinesis or Firehose stream, so a filter
naming one is refused the way AWS refuses a stream it cannot reach. Deliveries to a function
are asynchronous invocations, enqueued on the async-invoke queue in the same transaction that
stores the events: events acknowledged to the caller are never lost to their subscribers.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read, random_uuid
from ..api.errors import ServiceError
from ..lambda_ import async_queue
from ..lambda_.arns import function_arn
from ..lambda_.resolve import resolve
from ..state.store import Store
from .arns import destination_name_from_arn
from .clock import now_ms
from .groups import get_group, quick_group
from .metric_filters import limit_exceeded
from .patterns import InvalidPattern, compile_pattern
from .schema import log_destinations, log_groups, log_subscription_filters
from .subscription_payload import LogEvent, lambda_payloads, matching
from .tokens import keyset_page

MAX_PER_GROUP = 2
_t = log_subscription_filters
_ECHOED = ("applyOnTransformedLogs", "fieldSelectionCriteria", "emitSystemFields")

# How many subscription filters a group has, as a column of a statement reading log_groups:
# PutLogEvents asks with the lookup it makes anyway.
SUBSCRIPTIONS = (sa.select(sa.func.count()).where(
    _t.c.region == log_groups.c.region, _t.c.group_name == log_groups.c.name)
    .scalar_subquery())


def _describe(region: bool, group: bool, lo: bool = False, hi: bool = False
              ) -> sa.Select[Any]:
    q = sa.select(_t).where(_t.c.region == sa.bindparam("region"),
                            _t.c.group_name == sa.bindparam("group"))
    if lo:
        q = q.where(_t.c.name >= sa.bindparam("lo"), _t.c.name < sa.bindparam("hi"))
    return q


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def _view(row: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "filterName": row.name, "logGroupName": row.group_name, "filterPattern": row.pattern,
        "destinationArn": row.destination_arn, "distribution": row.distribution,
        "creationTime": row.created_ms, "applyOnTransformedLogs": False}
    if row.role_arn:
        view["roleArn"] = row.role_arn
    view.update(row.options or {})
    return view


class Subscriptions:
    store: Store

    def put_subscription_filter(self, ctx: RequestContext, req: dict[str, Any]
                                ) -> dict[str, Any]:
        group, name = req["logGroupName"], req["filterName"]
        try:
            compile_pattern(req["filterPattern"])
        except InvalidPattern:
            raise invalid("Invalid subscription filter pattern") from None
        self._check_destination(ctx, req["destinationArn"], req.get("roleArn"))
        values = {"pattern": req["filterPattern"], "destination_arn": req["destinationArn"],
                  "role_arn": req.get("roleArn"),
                  "distribution": req.get("distribution") or "ByLogStream",
                  "options": {k: req[k] for k in _ECHOED if k in req}}
        key = {"region": ctx.region, "group_name": group, "name": name}
        with self.store.write() as conn:
            get_group(conn, ctx.region, group)
            if self.store.bump(conn, _t, key, values) is None:
                if conn.execute(sa.select(sa.func.count()).where(
                        _t.c.region == ctx.region, _t.c.group_name == group)
                        ).scalar_one() >= MAX_PER_GROUP:
                    raise limit_exceeded()
                self.store.insert(conn, _t, {**key, **values, "created_ms": now_ms()})
        return {}

    @quick_read
    def describe_subscription_filters(self, ctx: RequestContext, req: dict[str, Any]
                                      ) -> dict[str, Any]:
        group, prefix = req["logGroupName"], req.get("filterNamePrefix")
        return keyset_page(self.store, _describe, {
            "region": ctx.region, "group": group, "lo": prefix,
            "hi": prefix and prefix + "\U0010ffff"}, [_t.c.name], req, "subscriptionFilters",
            _view, check=lambda: quick_group(self.store, ctx.region, group))

    def delete_subscription_filter(self, ctx: RequestContext, req: dict[str, Any]
                                   ) -> dict[str, Any]:
        group = req["logGroupName"]
        with self.store.write() as conn:
            get_group(conn, ctx.region, group)
            gone = conn.execute(_t.delete().where(
                _t.c.region == ctx.region, _t.c.group_name == group,
                _t.c.name == req["filterName"])).rowcount
        if not gone:
            raise ServiceError("ResourceNotFoundException",
                               "The specified subscription filter does not exist.")
        return {}

    def _check_destination(self, ctx: RequestContext, arn: str, role: str | None) -> None:
        parts = arn.split(":", 5)
        vendor = parts[2] if len(parts) == 6 and parts[0] == "arn" else ""
        if vendor == "lambda":
            if parts[4] != ctx.account_id:
                raise ServiceError(
                    "AccessDeniedException", "Cross-account lambda invocation passing is not "
                    "allowed. You must use DestinationPolicies to create cross account lambda "
                    "triggers.", status=400)
            try:
                resolve(self.store, ctx.region, ctx.account_id, arn)
            except ServiceError:
                raise invalid("Could not execute the lambda function. Make sure you have "
                              "given CloudWatch Logs permission to execute your function.") \
                    from None
        elif vendor in ("kinesis", "firehose"):
            if not role:
                raise invalid(f"destinationArn for vendor {vendor} cannot be used without "
                              "roleArn")
            kind = "Kinesis" if vendor == "kinesis" else "Firehose"
            raise invalid(f"Could not deliver test message to specified {kind} stream. Check "
                          f"if the given {kind.lower()} stream is in ACTIVE state.")
        elif vendor == "logs" and destination_name_from_arn(ctx, arn) is not None:
            # A destination forwards to a Kinesis or Firehose stream: none is reachable here.
            with self.store.read() as conn:
                known = conn.execute(sa.select(log_destinations.c.name).where(
                    log_destinations.c.region == ctx.region,
                    log_destinations.c.name == destination_name_from_arn(ctx, arn))).first()
            if known is None:
                raise ServiceError("ResourceNotFoundException",
                                   "The specified destination does not exist.")
            raise invalid("Could not deliver test message to specified destination. Check if "
                          "the destination is valid.")
        else:
            raise invalid(f"Invalid destinationArn: {arn}")


def enqueue_deliveries(conn: sa.Connection, ctx: RequestContext, group: str, stream: str,
                       events: Sequence[LogEvent]) -> int:
    """Inside PutLogEvents' transaction: enqueue what each of the group's subscription filters
    owes its function for `events` (stored, with their ids). Returns the deliveries queued."""
    filters = conn.execute(sa.select(_t.c.name, _t.c.pattern, _t.c.destination_arn).where(
        _t.c.region == ctx.region, _t.c.group_name == group).order_by(_t.c.name)).all()
    queued = 0
    now = time.time()
    for name, pattern, destination in filters:
        for payload in lambda_payloads(ctx.account_id, group, stream, name,
                                       matching(pattern, events)):
            region, account, function, qualifier = _function_of(destination)
            async_queue.enqueue_in(conn, async_queue.QueuedEvent(
                random_uuid(), region, account, function, qualifier,
                function_arn(region, account, function, qualifier), payload, now))
            queued += 1
    return queued


def _function_of(arn: str) -> tuple[str, str, str, str | None]:
    """(region, account, function name, qualifier) of a function ARN that
    PutSubscriptionFilter checked."""
    parts = arn.split(":")
    return parts[3], parts[4], parts[6], parts[7] if len(parts) > 7 else None
