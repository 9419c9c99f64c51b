"""Saved Logs Insights queries: Put/Describe/DeleteQueryDefinition."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read, random_uuid
from ..api.errors import ServiceError
from ..state.store import Store
from .clock import now_ms
from .tokens import keyset_page
from .schema import log_query_definitions

MAX_DEFINITIONS = 1000
_t = log_query_definitions


def _describe(region: bool, language: bool = False, lo: bool = False, hi: bool = False
              ) -> sa.Select[Any]:
    q = sa.select(_t).where(_t.c.region == sa.bindparam("region"))
    if language:
        q = q.where(_t.c.language == sa.bindparam("language"))
    if lo:
        q = q.where(_t.c.name >= sa.bindparam("lo"), _t.c.name < sa.bindparam("hi"))
    return q


def definition_missing() -> ServiceError:
    return ServiceError("ResourceNotFoundException",
                        "The specified query definition does not exist.")


def _view(row: Any) -> dict[str, Any]:
    view: dict[str, Any] = {"queryLanguage": row.language, "queryDefinitionId": row.id,
                            "name": row.name, "queryString": row.query_string,
                            "lastModified": row.modified_ms,
                            "logGroupNames": row.log_group_names or []}
    if row.parameters:
        view["parameters"] = row.parameters
    return view


class QueryDefinitions:
    store: Store

    def put_query_definition(self, ctx: RequestContext, req: dict[str, Any]
                             ) -> dict[str, Any]:
        values = {"name": req["name"], "query_string": req["queryString"],
                  "log_group_names": req.get("logGroupNames") or [],
                  "language": req.get("queryLanguage") or "CWLI",
                  "parameters": req.get("parameters"), "modified_ms": now_ms()}
        given = req.get("queryDefinitionId")
        with self.store.write() as conn:
            if given:
                if self.store.bump(conn, _t, {"region": ctx.region, "id": given},
                                   values) is None:
                    raise definition_missing()
                return {"queryDefinitionId": given}
            if conn.execute(sa.select(sa.func.count()).where(_t.c.region == ctx.region)
                            ).scalar_one() >= MAX_DEFINITIONS:
                raise ServiceError("LimitExceededException", "Resource limit exceeded.")
            ident = random_uuid()
            self.store.insert(conn, _t, {"region": ctx.region, "id": ident, **values})
        return {"queryDefinitionId": ident}

    @quick_read
    def describe_query_definitions(self, ctx: RequestContext, req: dict[str, Any]
                                   ) -> dict[str, Any]:
        prefix = req.get("queryDefinitionNamePrefix")
        return keyset_page(self.store, _describe, {
            "region": ctx.region, "language": req.get("queryLanguage"), "lo": prefix,
            "hi": prefix and prefix + "\U0010ffff"}, [_t.c.name, _t.c.id],
            {**req, "limit": req.get("maxResults", 1000)}, "queryDefinitions", _view)

    def delete_query_definition(self, ctx: RequestContext, req: dict[str, Any]
                                ) -> dict[str, Any]:
        with self.store.write() as conn:
            gone = conn.execute(_t.delete().where(
                _t.c.region == ctx.region, _t.c.id == req["queryDefinitionId"])).rowcount
        if not gone:
            raise definition_missing()
        return {"success": True}
