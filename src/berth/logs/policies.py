"""Policies kept and returned: resource policies (the account's, or one log group's), account
policies, and the policies a log group carries (data protection, field index, transformer).

berth enforces none of them (it has no IAM and masks no data); it keeps what users put, with
AWS's limits, errors and shapes, so tools that manage them work unchanged.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import group_arn, resolve_group
from .clock import now_ms
from .groups import get_group, quick_group
from .metric_filters import limit_exceeded
from .schema import log_account_policies, log_group_policies, log_resource_policies
from .tokens import keyset_page

MAX_RESOURCE_POLICIES = 10      # account-scoped, per region
DATA_PROTECTION, FIELD_INDEX, TRANSFORMER = "DATA_PROTECTION", "FIELD_INDEX", "TRANSFORMER"


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def check_json(document: str, what: str = "policy document") -> None:
    try:
        parsed = json.loads(document)
    except ValueError:
        raise invalid(f"The {what} is not valid JSON.") from None
    if not isinstance(parsed, (dict, list)):
        raise invalid(f"The {what} is not valid JSON.")


def policy_missing(name: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Policy with name [{name}] does not exist.")


_GROUP_POLICY = sa.select(log_group_policies).where(
    log_group_policies.c.region == sa.bindparam("region"),
    log_group_policies.c.group_name == sa.bindparam("group"),
    log_group_policies.c.kind == sa.bindparam("kind"))


def _resource_policies(region: bool, resource: bool = False, scoped: bool = False,
                       unscoped: bool = False) -> sa.Select[Any]:
    t = log_resource_policies.c
    q = sa.select(log_resource_policies).where(t.region == sa.bindparam("region"))
    if resource:
        q = q.where(t.resource_arn == sa.bindparam("resource"))
    if scoped:
        q = q.where(t.resource_arn.is_not(None))
    if unscoped:
        q = q.where(t.resource_arn.is_(None))
    return q


def _account_policies(region: bool, kind: bool, name: bool = False) -> sa.Select[Any]:
    t = log_account_policies.c
    q = sa.select(log_account_policies).where(t.region == sa.bindparam("region"),
                                              t.policy_type == sa.bindparam("kind"))
    return q.where(t.name == sa.bindparam("name")) if name else q


def _resource_view(row: Any) -> dict[str, Any]:
    view: dict[str, Any] = {"policyName": row.name, "policyDocument": row.document,
                            "lastUpdatedTime": row.updated_ms,
                            "policyScope": "RESOURCE" if row.resource_arn else "ACCOUNT"}
    if row.resource_arn:
        view.update(resourceArn=row.resource_arn, revisionId=row.revision_id)
    return view


def _account_view(ctx: RequestContext, row: Any) -> dict[str, Any]:
    view: dict[str, Any] = {"policyName": row.name, "policyDocument": row.document,
                            "lastUpdatedTime": row.updated_ms, "policyType": row.policy_type,
                            "scope": row.scope, "accountId": ctx.account_id}
    if row.selection_criteria:
        view["selectionCriteria"] = row.selection_criteria
    return view


class Policies:
    store: Store

    # -- resource policies ------------------------------------------------------------------

    def put_resource_policy(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        document, arn = req.get("policyDocument"), req.get("resourceArn")
        if not document:
            raise invalid("policyDocument is required.")
        check_json(document)
        if arn:
            group = resolve_group(ctx, {"logGroupIdentifier": arn})
            name = req.get("policyName") or f"LogGroupPolicy-{group}"
        else:
            group, name = None, req.get("policyName")
            if not name:
                raise invalid("policyName is required.")
        t = log_resource_policies
        key = {"region": ctx.region, "name": name}
        values = {"document": document, "resource_arn": group_arn(ctx, group) if group else None,
                  "revision_id": uuid.uuid4().hex, "updated_ms": now_ms()}
        with self.store.write() as conn:
            if group:
                get_group(conn, ctx.region, group)
            row = conn.execute(sa.select(t).where(t.c.region == ctx.region, t.c.name == name)
                               ).first()
            expected = req.get("expectedRevisionId")
            if expected and (row is None or row.revision_id != expected):
                raise ServiceError("OperationAbortedException",
                                   "The expected revision id does not match the policy's.")
            if row is not None:
                self.store.bump(conn, t, key, values)
            else:
                if not group and conn.execute(sa.select(sa.func.count()).where(
                        t.c.region == ctx.region, t.c.resource_arn.is_(None))
                        ).scalar_one() >= MAX_RESOURCE_POLICIES:
                    raise limit_exceeded()
                self.store.insert(conn, t, {**key, **values})
            row = conn.execute(sa.select(t).where(t.c.region == ctx.region, t.c.name == name)
                               ).one()
        out: dict[str, Any] = {"resourcePolicy": _resource_view(row)}
        if group:
            out["revisionId"] = row.revision_id
        return out

    @quick_read
    def describe_resource_policies(self, ctx: RequestContext, req: dict[str, Any]
                                   ) -> dict[str, Any]:
        t = log_resource_policies
        resource = None
        if req.get("resourceArn"):
            resource = group_arn(ctx, resolve_group(ctx, {"logGroupIdentifier":
                                                         req["resourceArn"]}))
        scope = None if resource else req.get("policyScope")
        return keyset_page(self.store, _resource_policies, {
            "region": ctx.region, "resource": resource, "scoped": scope == "RESOURCE" or None,
            "unscoped": scope == "ACCOUNT" or None}, [t.c.name], req, "resourcePolicies",
            _resource_view)

    def delete_resource_policy(self, ctx: RequestContext, req: dict[str, Any]
                               ) -> dict[str, Any]:
        t = log_resource_policies
        cond = [t.c.region == ctx.region]
        if req.get("resourceArn"):
            group = resolve_group(ctx, {"logGroupIdentifier": req["resourceArn"]})
            cond.append(t.c.resource_arn == group_arn(ctx, group))
            if req.get("policyName"):
                cond.append(t.c.name == req["policyName"])
        elif req.get("policyName"):
            cond.append(t.c.name == req["policyName"])
        else:
            raise invalid("policyName is required.")
        with self.store.write() as conn:
            row = conn.execute(sa.select(t).where(*cond)).first()
            if row is None:
                raise policy_missing(req.get("policyName") or req["resourceArn"])
            expected = req.get("expectedRevisionId")
            if expected and row.revision_id != expected:
                raise ServiceError("OperationAbortedException",
                                   "The expected revision id does not match the policy's.")
            conn.execute(t.delete().where(t.c.region == ctx.region, t.c.name == row.name))
        return {}

    # -- account policies -------------------------------------------------------------------

    def put_account_policy(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        check_json(req["policyDocument"])
        t = log_account_policies
        key = {"region": ctx.region, "policy_type": req["policyType"],
               "name": req["policyName"]}
        values = {"document": req["policyDocument"], "scope": req.get("scope") or "ALL",
                  "selection_criteria": req.get("selectionCriteria"), "updated_ms": now_ms()}
        with self.store.write() as conn:
            if self.store.bump(conn, t, key, values) is None:
                self.store.insert(conn, t, {**key, **values})
            row = conn.execute(sa.select(t).where(
                *(t.c[k] == v for k, v in key.items()))).one()
        return {"accountPolicy": _account_view(ctx, row)}

    @quick_read
    def describe_account_policies(self, ctx: RequestContext, req: dict[str, Any]
                                  ) -> dict[str, Any]:
        t = log_account_policies
        return keyset_page(self.store, _account_policies, {
            "region": ctx.region, "kind": req["policyType"], "name": req.get("policyName")},
            [t.c.name], req, "accountPolicies", lambda row: _account_view(ctx, row))

    def delete_account_policy(self, ctx: RequestContext, req: dict[str, Any]
                              ) -> dict[str, Any]:
        t = log_account_policies
        with self.store.write() as conn:
            gone = conn.execute(t.delete().where(
                t.c.region == ctx.region, t.c.policy_type == req["policyType"],
                t.c.name == req["policyName"])).rowcount
        if not gone:
            raise policy_missing(req["policyName"])
        return {}

    # -- a log group's own policies ---------------------------------------------------------

    def put_data_protection_policy(self, ctx: RequestContext, req: dict[str, Any]
                                   ) -> dict[str, Any]:
        check_json(req["policyDocument"])
        row = self._put_group_policy(ctx, req["logGroupIdentifier"], DATA_PROTECTION,
                                     req["policyDocument"])
        return {"logGroupIdentifier": req["logGroupIdentifier"],
                "policyDocument": row.document, "lastUpdatedTime": row.updated_ms}

    @quick_read
    def get_data_protection_policy(self, ctx: RequestContext, req: dict[str, Any]
                                   ) -> dict[str, Any]:
        row = self._group_policy(ctx, req["logGroupIdentifier"], DATA_PROTECTION)
        out: dict[str, Any] = {"logGroupIdentifier": req["logGroupIdentifier"]}
        if row is not None:
            out.update(policyDocument=row.document, lastUpdatedTime=row.updated_ms)
        return out

    def delete_data_protection_policy(self, ctx: RequestContext, req: dict[str, Any]
                                      ) -> dict[str, Any]:
        if not self._delete_group_policy(ctx, req["logGroupIdentifier"], DATA_PROTECTION):
            raise ServiceError("ResourceNotFoundException",
                               "The specified data protection policy does not exist.")
        return {}

    def put_index_policy(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        check_json(req["policyDocument"])
        ident = req["logGroupIdentifier"]
        row = self._put_group_policy(ctx, ident, FIELD_INDEX, req["policyDocument"])
        return {"indexPolicy": self._index_view(ctx, ident, row)}

    @quick_read
    def describe_index_policies(self, ctx: RequestContext, req: dict[str, Any]
                                ) -> dict[str, Any]:
        (ident,) = req["logGroupIdentifiers"]       # the model allows exactly one
        row = self._group_policy(ctx, ident, FIELD_INDEX)
        return {"indexPolicies": [self._index_view(ctx, ident, row)] if row else []}

    def delete_index_policy(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        if not self._delete_group_policy(ctx, req["logGroupIdentifier"], FIELD_INDEX):
            raise ServiceError("ResourceNotFoundException",
                               "The specified index policy does not exist.")
        return {}

    @quick_read
    def describe_field_indexes(self, ctx: RequestContext, req: dict[str, Any]
                               ) -> dict[str, Any]:
        """berth indexes no fields of its own: the groups must exist, and none has any."""
        with self.store.read() as conn:
            for ident in req["logGroupIdentifiers"]:
                get_group(conn, ctx.region, resolve_group(ctx, {"logGroupIdentifier": ident}))
        return {"fieldIndexes": []}

    def put_transformer(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        self._put_group_policy(ctx, req["logGroupIdentifier"], TRANSFORMER,
                               json.dumps(req["transformerConfig"]))
        return {}

    @quick_read
    def get_transformer(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        row = self._group_policy(ctx, req["logGroupIdentifier"], TRANSFORMER)
        if row is None:
            raise ServiceError("ResourceNotFoundException",
                               "The specified transformer does not exist.")
        return {"logGroupIdentifier": req["logGroupIdentifier"],
                "creationTime": row.updated_ms, "lastModifiedTime": row.updated_ms,
                "transformerConfig": json.loads(row.document)}

    def delete_transformer(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        if not self._delete_group_policy(ctx, req["logGroupIdentifier"], TRANSFORMER):
            raise ServiceError("ResourceNotFoundException",
                               "The specified transformer does not exist.")
        return {}

    def _index_view(self, ctx: RequestContext, ident: str, row: Any) -> dict[str, Any]:
        return {"logGroupIdentifier": ident, "lastUpdateTime": row.updated_ms,
                "policyDocument": row.document, "source": "LOG_GROUP"}

    def _put_group_policy(self, ctx: RequestContext, ident: str, kind: str,
                          document: str) -> Any:
        group = resolve_group(ctx, {"logGroupIdentifier": ident})
        t = log_group_policies
        key = {"region": ctx.region, "group_name": group, "kind": kind}
        values = {"document": document, "updated_ms": now_ms()}
        with self.store.write() as conn:
            get_group(conn, ctx.region, group)
            if self.store.bump(conn, t, key, values) is None:
                self.store.insert(conn, t, {**key, **values})
            return conn.execute(sa.select(t).where(
                *(t.c[k] == v for k, v in key.items()))).one()

    def _group_policy(self, ctx: RequestContext, ident: str, kind: str) -> Any:
        group = resolve_group(ctx, {"logGroupIdentifier": ident})
        quick_group(self.store, ctx.region, group)
        rows = self.store.records(_GROUP_POLICY, {"region": ctx.region, "group": group,
                                                  "kind": kind})
        return rows[0] if rows else None

    def _delete_group_policy(self, ctx: RequestContext, ident: str, kind: str) -> bool:
        group = resolve_group(ctx, {"logGroupIdentifier": ident})
        t = log_group_policies
        with self.store.write() as conn:
            get_group(conn, ctx.region, group)
            return bool(conn.execute(t.delete().where(
                t.c.region == ctx.region, t.c.group_name == group, t.c.kind == kind)).rowcount)
