"""Metric filters: Put/Describe/Delete/TestMetricFilter.

A metric filter is kept and described as AWS does; berth serves no CloudWatch metrics, so no
metric is published from it. TestMetricFilter runs the pattern over sample messages.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .clock import now_ms
from .groups import get_group, quick_group
from .patterns import InvalidPattern, compile_extractor, compile_pattern
from .schema import log_metric_filters
from .tokens import keyset_page

MAX_PER_GROUP = 100
_ECHOED = ("applyOnTransformedLogs", "fieldSelectionCriteria", "emitSystemFieldDimensions")


def _describe(region: bool, group: bool = False, lo: bool = False, hi: bool = False,
              metric: bool = False, namespace: bool = False) -> sa.Select[Any]:
    t = log_metric_filters.c
    q = sa.select(log_metric_filters).where(t.region == sa.bindparam("region"))
    if group:
        q = q.where(t.group_name == sa.bindparam("group"))
    if lo:
        q = q.where(t.name >= sa.bindparam("lo"), t.name < sa.bindparam("hi"))
    if metric:
        q = q.where(t.metric_name == sa.bindparam("metric"),
                    t.metric_namespace == sa.bindparam("namespace"))
    return q


def limit_exceeded() -> ServiceError:
    return ServiceError("LimitExceededException", "Resource limit exceeded.")


def check_pattern(pattern: str) -> None:
    try:
        compile_pattern(pattern)
    except InvalidPattern:
        raise ServiceError("InvalidParameterException", "Invalid metric filter pattern") \
            from None


def _view(row: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "filterName": row.name, "filterPattern": row.pattern,
        "metricTransformations": row.transformations, "creationTime": row.created_ms,
        "logGroupName": row.group_name, "applyOnTransformedLogs": False}
    view.update(row.options or {})
    return view


class MetricFilters:
    store: Store

    def put_metric_filter(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        group, name = req["logGroupName"], req["filterName"]
        check_pattern(req["filterPattern"])
        (transformation,) = req["metricTransformations"]  # the model allows exactly one
        if transformation.get("dimensions") and "defaultValue" in transformation:
            raise ServiceError("InvalidParameterException",
                               "A metric filter with dimensions cannot have a default value.")
        values = {"pattern": req["filterPattern"], "transformations": [transformation],
                  "metric_name": transformation["metricName"],
                  "metric_namespace": transformation["metricNamespace"],
                  "options": {k: req[k] for k in _ECHOED if k in req}}
        key = {"region": ctx.region, "group_name": group, "name": name}
        with self.store.write() as conn:
            get_group(conn, ctx.region, group)
            if self.store.bump(conn, log_metric_filters, key, values) is None:
                count = conn.execute(sa.select(sa.func.count()).where(
                    log_metric_filters.c.region == ctx.region,
                    log_metric_filters.c.group_name == group)).scalar_one()
                if count >= MAX_PER_GROUP:
                    raise limit_exceeded()
                self.store.insert(conn, log_metric_filters,
                                  {**key, **values, "created_ms": now_ms()})
        return {}

    @quick_read
    def describe_metric_filters(self, ctx: RequestContext, req: dict[str, Any]
                                ) -> dict[str, Any]:
        metric, namespace = req.get("metricName"), req.get("metricNamespace")
        if metric and not namespace:
            raise ServiceError("InvalidParameterException",
                               "If you include the metricName parameter in your request, you "
                               "must also include the metricNamespace parameter.")
        if namespace and not metric:
            raise ServiceError("InvalidParameterException",
                               "If you include the metricNamespace parameter in your request, "
                               "you must also include the metricName parameter.")
        group, prefix = req.get("logGroupName"), req.get("filterNamePrefix")
        t = log_metric_filters.c
        return keyset_page(self.store, _describe, {
            "region": ctx.region, "group": group, "lo": prefix,
            "hi": prefix and prefix + "\U0010ffff", "metric": metric, "namespace": namespace},
            [t.group_name, t.name], req, "metricFilters", _view,
            check=(lambda: quick_group(self.store, ctx.region, group)) if group else None)

    def delete_metric_filter(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        group, name = req["logGroupName"], req["filterName"]
        with self.store.write() as conn:
            get_group(conn, ctx.region, group)
            gone = conn.execute(log_metric_filters.delete().where(
                log_metric_filters.c.region == ctx.region,
                log_metric_filters.c.group_name == group,
                log_metric_filters.c.name == name)).rowcount
        if not gone:
            raise ServiceError("ResourceNotFoundException",
                               "The specified metric filter does not exist.")
        return {}

    def test_metric_filter(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        check_pattern(req["filterPattern"])
        extract = compile_extractor(req["filterPattern"])
        matches = []
        for number, message in enumerate(req["logEventMessages"], start=1):
            values = extract(message)
            if values is not None:
                matches.append({"eventNumber": number, "eventMessage": message,
                                "extractedValues": values})
        return {"matches": matches}
