"""Logs Insights queries: StartQuery, GetQueryResults, StopQuery, DescribeQueries and
ListLogGroupsForQuery. The queries run in the background (query_runner.py); this module checks
what is asked, keeps it in the store and answers from there, so any replica can answer for a
query another one runs."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read, random_uuid
from ..api.errors import ServiceError
from ..state.store import Store
from . import clock
from .arns import group_arn, resolve_identifier
from .insights.parser import MAX_LIMIT, QuerySyntaxError, parse
from .query_runner import QueryRunner, effective_status
from .schema import log_groups, log_queries
from .tokens import decode_token, encode_token

MAX_GROUPS = 50
_t = log_queries


# The reads of DescribeQueries and GetQueryResults, built once (see Store.records).
_QUERY = sa.select(_t).where(_t.c.id == sa.bindparam("id"), _t.c.region == sa.bindparam("region"))
_NEWEST_FIRST = {before: sa.select(_t).where(_t.c.region == sa.bindparam("region")).where(
    sa.tuple_(_t.c.created_ms, _t.c.id) < sa.tuple_(sa.bindparam("before_ms"),
                                                   sa.bindparam("before_id"))
    if before else sa.true()).order_by(_t.c.created_ms.desc(), _t.c.id.desc())
    for before in (False, True)}


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def query_missing() -> ServiceError:
    return ServiceError("ResourceNotFoundException", "The specified query does not exist.")


def _logged_string(row: Any) -> str:
    """The query as AWS records it: `SOURCE "g" START=<ms> END=<ms> | <query>`."""
    sources = " ".join(f'"{g}"' for g in row.group_names)
    return f"SOURCE {sources} START={row.start_ms} END={row.end_ms} | {row.query_string}"


class Queries:
    store: Store
    query_runner: QueryRunner

    def start_query(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        language = req.get("queryLanguage") or "CWLI"
        if language != "CWLI":
            raise invalid(f"Query language {language} is not supported by berth; use CWLI.")
        groups = self._query_groups(ctx, req)
        start, end = req["startTime"], req["endTime"]
        if end < start:
            raise invalid("The endTime must not be before the startTime.")
        try:
            query = parse(req["queryString"])
        except QuerySyntaxError as exc:
            raise ServiceError("MalformedQueryException", exc.message, queryCompileError={
                "location": {"startCharOffset": exc.start, "endCharOffset": exc.end},
                "message": exc.message}) from None
        del query   # parsed again by the runner; here only to refuse a bad one at once
        with self.store.read() as conn:
            known = set(conn.execute(sa.select(log_groups.c.name).where(
                log_groups.c.region == ctx.region, log_groups.c.name.in_(groups))).scalars())
        for group in groups:
            if group not in known:
                raise ServiceError(
                    "ResourceNotFoundException",
                    f"Log group '{group}' does not exist for account ID '{ctx.account_id}' "
                    f"(Service: AWSLogs; Status Code: 400; Error Code: "
                    f"ResourceNotFoundException; Request ID: {ctx.request_id}; Proxy: null)")
        query_id = random_uuid()
        now = clock.now_ms()
        with self.store.write() as conn:
            self.store.insert(conn, _t, {
                "id": query_id, "region": ctx.region, "query_string": req["queryString"],
                "language": language, "group_names": groups,
                # Seconds, as AWS takes them: the window covers the whole last second.
                "start_ms": start * 1000, "end_ms": end * 1000 + 999,
                "result_limit": min(req.get("limit") or MAX_LIMIT, MAX_LIMIT),
                "status": "Scheduled", "created_ms": now, "heartbeat_ms": now,
                "statistics": {}})
        self.query_runner.submit(query_id)
        return {"queryId": query_id}

    def _query_groups(self, ctx: RequestContext, req: dict[str, Any]) -> list[str]:
        given = [k for k in ("logGroupName", "logGroupNames", "logGroupIdentifiers")
                 if req.get(k)]
        if len(given) != 1:
            raise invalid("Specify exactly one of logGroupName, logGroupNames and "
                          "logGroupIdentifiers.")
        if given[0] == "logGroupName":
            names = [req["logGroupName"]]
        elif given[0] == "logGroupNames":
            names = list(req["logGroupNames"])
        else:
            names = [resolve_identifier(ctx, i.removesuffix(":*"))
                     for i in req["logGroupIdentifiers"]]
        if len(names) > MAX_GROUPS:
            raise invalid(f"A query can search at most {MAX_GROUPS} log groups.")
        return list(dict.fromkeys(names))

    @quick_read
    def get_query_results(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        row = self._query(ctx, req["queryId"])
        status = effective_status(row, clock.now_ms())
        results = (row.results or []) if status == "Complete" else []
        stats = {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0,
                 **(row.statistics or {})}
        return {"queryLanguage": row.language, "results": results, "statistics": stats,
                "status": status}

    def stop_query(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with self.store.write() as conn:
            row = conn.execute(sa.select(_t).where(
                _t.c.id == req["queryId"], _t.c.region == ctx.region)).first()
            if row is None:
                raise query_missing()
            if effective_status(row, clock.now_ms()) not in ("Scheduled", "Running"):
                return {"success": False}
            conn.execute(_t.update().where(_t.c.id == row.id).values(
                status="Cancelled", finished_ms=clock.now_ms(), version=_t.c.version + 1))
        return {"success": True}

    @quick_read
    def describe_queries(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        language = req.get("queryLanguage")
        if language not in (None, "CWLI"):
            return {"queries": []}
        limit = req.get("maxResults", 1000)
        after = decode_token(req.get("nextToken"))
        params: dict[str, Any] = {"region": ctx.region}
        if after is not None:
            if not (isinstance(after, list) and len(after) == 2):
                raise invalid("The specified nextToken is invalid.")
            params["before_ms"], params["before_id"] = after
        rows = self.store.records(_NEWEST_FIRST[after is not None], params)
        now = clock.now_ms()
        group, status = req.get("logGroupName"), req.get("status")
        picked = [r for r in rows if (group is None or group in r.group_names)
                  and (status is None or effective_status(r, now) == status)]
        out: dict[str, Any] = {"queries": [{
            "queryLanguage": r.language, "queryId": r.id, "queryString": _logged_string(r),
            "status": effective_status(r, now), "createTime": r.created_ms,
            "logGroupName": r.group_names[0]} for r in picked[:limit]]}
        if len(picked) > limit:
            last = picked[limit - 1]
            out["nextToken"] = encode_token([last.created_ms, last.id])
        return out

    def _query(self, ctx: RequestContext, query_id: str) -> Any:
        rows = self.store.records(_QUERY, {"id": query_id, "region": ctx.region})
        if not rows:
            raise query_missing()
        return rows[0]

    @quick_read
    def list_log_groups_for_query(self, ctx: RequestContext, req: dict[str, Any]
                                  ) -> dict[str, Any]:
        row = self._query(ctx, req["queryId"])
        limit = req.get("maxResults", 50)
        after = decode_token(req.get("nextToken")) or 0
        if not isinstance(after, int):
            raise invalid("The specified nextToken is invalid.")
        arns = [group_arn(ctx, g) for g in row.group_names]
        out: dict[str, Any] = {"logGroupIdentifiers": arns[after:after + limit]}
        if len(arns) > after + limit:
            out["nextToken"] = encode_token(after + limit)
        return out
