"""Task definition operations: register (families and revisions), describe, list, deregister,
delete."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from . import arns, errors, paging, taskdef_spec
from .clock import now
from .lookup import Row, find_task_definition
from .schema import task_definitions as td
from .tags import tag_list, tag_map

MAX_REGISTER_ATTEMPTS = 8


def task_definition_view(row: Row) -> dict[str, Any]:
    view = {**row.body, "taskDefinitionArn": row.arn, "revision": row.revision,
            "status": row.status, "registeredAt": row.registered_at}
    if row.deregistered_at is not None:
        view["deregisteredAt"] = row.deregistered_at
    if row.delete_requested_at is not None:
        view["deleteRequestedAt"] = row.delete_requested_at
    return view


@lru_cache(maxsize=16)
def _list_definitions(family: bool, after: bool, desc: bool) -> sa.Select[Any]:
    """ListTaskDefinitions' statement for one combination of options, built once (see
    Store.rows)."""
    q = sa.select(td.c.family, td.c.revision, td.c.arn).where(
        td.c.region == sa.bindparam("region"), td.c.status == sa.bindparam("status"))
    if family:
        q = q.where(td.c.family == sa.bindparam("family"))
    if after:
        fam, rev = sa.bindparam("after_family"), sa.bindparam("after_revision")
        if desc:
            q = q.where(sa.or_(td.c.family < fam, sa.and_(td.c.family == fam,
                                                          td.c.revision < rev)))
        else:
            q = q.where(sa.or_(td.c.family > fam, sa.and_(td.c.family == fam,
                                                          td.c.revision > rev)))
    order = (td.c.family.desc(), td.c.revision.desc()) if desc else (td.c.family,
                                                                    td.c.revision)
    return q.order_by(*order).limit(sa.bindparam("limit"))


@lru_cache(maxsize=16)
def _list_families(status: bool, prefix: bool, after: bool) -> sa.Select[Any]:
    """ListTaskDefinitionFamilies' statement for one combination of filters, built once."""
    q = sa.select(td.c.family).where(td.c.region == sa.bindparam("region")).distinct()
    if status:
        q = q.where(td.c.status == sa.bindparam("status"))
    if prefix:
        q = q.where(td.c.family >= sa.bindparam("lo"), td.c.family < sa.bindparam("hi"))
    if after:
        q = q.where(td.c.family > sa.bindparam("after"))
    return q.order_by(td.c.family).limit(sa.bindparam("limit"))


class TaskDefinitions:
    store: Store

    def register_task_definition(self, ctx: RequestContext, req: dict[str, Any]
                                 ) -> dict[str, Any]:
        body = taskdef_spec.normalize(req)
        tags = tag_map(req.get("tags"))
        family = body["family"]
        # Two registrations of one family may race for the next revision; the primary key
        # refuses the loser, which takes the next number.
        for _ in range(MAX_REGISTER_ATTEMPTS):
            try:
                with self.store.write() as conn:
                    last = conn.execute(sa.select(sa.func.max(td.c.revision)).where(
                        td.c.region == ctx.region, td.c.family == family)).scalar()
                    revision = (last or 0) + 1
                    arn = arns.task_definition_arn(ctx.region, ctx.account_id, family,
                                                   revision)
                    Store.insert(conn, td, {"region": ctx.region, "family": family,
                                            "revision": revision, "arn": arn,
                                            "status": "ACTIVE", "body": body, "tags": tags,
                                            "registered_at": now()})
                    row = conn.execute(sa.select(td).where(td.c.arn == arn)).one()
                break
            except IntegrityError:
                continue
        else:
            raise errors.client("Too many concurrent registrations of this family; retry.")
        out: dict[str, Any] = {"taskDefinition": task_definition_view(row)}
        if tags:
            out["tags"] = tag_list(tags)
        return out

    @quick_read
    def describe_task_definition(self, ctx: RequestContext, req: dict[str, Any]
                                 ) -> dict[str, Any]:
        with self.store.read() as conn:
            row = find_task_definition(conn, ctx.region, req["taskDefinition"])
        if row is None:
            raise errors.task_definition_not_found()
        out: dict[str, Any] = {"taskDefinition": task_definition_view(row)}
        if "TAGS" in (req.get("include") or []):
            out["tags"] = tag_list(row.tags or {})
        return out

    @quick_read
    def list_task_definitions(self, ctx: RequestContext, req: dict[str, Any]
                              ) -> dict[str, Any]:
        limit = paging.limit(req)
        after = paging.decode(req.get("nextToken"))
        desc = req.get("sort") == "DESC"
        params = {"region": ctx.region, "status": req.get("status", "ACTIVE"),
                  "family": req.get("familyPrefix"), "limit": limit + 1}
        if after is not None:
            params["after_family"], params["after_revision"] = after
        q = _list_definitions(bool(params["family"]), after is not None, desc)
        rows = self.store.rows(q, params)     # (family, revision, arn)
        out: dict[str, Any] = {"taskDefinitionArns": [arn for _, _, arn in rows[:limit]]}
        if len(rows) > limit:
            family, revision, _ = rows[limit - 1]
            out["nextToken"] = paging.encode([family, revision])
        return out

    @quick_read
    def list_task_definition_families(self, ctx: RequestContext, req: dict[str, Any]
                                      ) -> dict[str, Any]:
        limit = paging.limit(req)
        after = paging.decode(req.get("nextToken"))
        status = req.get("status", "ACTIVE")
        prefix = req.get("familyPrefix")
        params = {"region": ctx.region, "status": status, "lo": prefix,
                  "hi": (prefix or "") + "\uffff", "after": after, "limit": limit + 1}
        q = _list_families(status in ("ACTIVE", "INACTIVE"), bool(prefix), after is not None)
        fams = [family for (family,) in self.store.rows(q, params)]
        out: dict[str, Any] = {"families": fams[:limit]}
        if len(fams) > limit:
            out["nextToken"] = paging.encode(fams[limit - 1])
        return out

    def deregister_task_definition(self, ctx: RequestContext, req: dict[str, Any]
                                   ) -> dict[str, Any]:
        family, revision = arns.task_definition_ref(req["taskDefinition"])
        if revision is None:
            raise errors.client("Invalid revision number. Number: "
                                f"{req['taskDefinition']}")
        with self.store.write() as conn:
            row = find_task_definition(conn, ctx.region, req["taskDefinition"])
            if row is None:
                raise errors.client("The specified task definition does not exist.")
            if row.status == "ACTIVE":
                Store.bump(conn, td, {"region": ctx.region, "family": family,
                                      "revision": revision},
                           {"status": "INACTIVE", "deregistered_at": now()})
                row = find_task_definition(conn, ctx.region, req["taskDefinition"])
        assert row is not None
        return {"taskDefinition": task_definition_view(row)}

    def delete_task_definitions(self, ctx: RequestContext, req: dict[str, Any]
                                ) -> dict[str, Any]:
        idents = req["taskDefinitions"]
        if not 1 <= len(idents) <= 10:
            raise errors.invalid("taskDefinitions must have between 1 and 10 items.")
        deleted, failures = [], []
        with self.store.write() as conn:
            for ident in idents:
                try:
                    family, revision = arns.task_definition_ref(ident)
                except ServiceError:
                    family, revision = ident, None
                row = None if revision is None else find_task_definition(conn, ctx.region,
                                                                         ident)
                if row is None:
                    failures.append({"arn": ident, "reason": "The specified task definition "
                                     "does not exist."})
                    continue
                if row.status == "ACTIVE":
                    failures.append({"arn": row.arn, "reason": "The specified task definition "
                                     "is still in ACTIVE status. Please deregister the target "
                                     "and try again."})
                    continue
                if row.status == "INACTIVE":
                    Store.bump(conn, td, {"region": ctx.region, "family": family,
                                          "revision": revision},
                               {"status": "DELETE_IN_PROGRESS", "delete_requested_at": now()})
                    row = find_task_definition(conn, ctx.region, ident)
                deleted.append(task_definition_view(row))
        return {"taskDefinitions": deleted, "failures": failures}
