"""Versions: immutable snapshots of $LATEST's code and configuration (PublishVersion,
ListVersionsByFunction) and deleting one (DeleteFunction with a Qualifier)."""
from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import LATEST, function_arn, function_ref
from .markers import page
from .queries import find_version, get_function, get_version, one_update_at_a_time, \
    precondition_failed
from .schema import lambda_aliases, lambda_event_invoke_configs, lambda_functions, \
    lambda_versions
from .views import PENDING, SETTLED, function_configuration

_SNAPSHOT = ("runtime", "handler", "role", "memory_size", "timeout", "environment",
             "ephemeral_storage", "architectures", "code_sha256", "code_size", "extra",
             "fingerprint")


def version_key(version: str) -> int:
    return -1 if version == LATEST else int(version)


def publish(conn: Connection, fn: Any, latest: Any, description: str | None
            ) -> tuple[Any, bool]:
    """Publish $LATEST as the next version unless the last version already has its code and
    configuration; returns (the version row, whether it is new)."""
    last = find_version(conn, fn.region, fn.name, str(fn.last_version)) \
        if fn.last_version else None
    if last is not None and last.fingerprint == latest.fingerprint:
        return last, False
    number = str(fn.last_version + 1)
    values = {k: getattr(latest, k) for k in _SNAPSHOT}
    values.update(region=fn.region, function_name=fn.name, function_version=number,
                  description=latest.description if description is None else description,
                  revision_id=str(uuid.uuid4()), last_modified=time.time())
    Store.insert(conn, lambda_versions, values)
    Store.cas_update(conn, lambda_functions, {"region": fn.region, "name": fn.name},
                     fn.version, {"last_version": fn.last_version + 1})
    row = find_version(conn, fn.region, fn.name, number)
    return row, True


class Versions:
    store: Store

    def publish_version(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id)
        if ref.qualifier:
            raise ServiceError("InvalidParameterValueException",
                               "PublishVersion takes an unqualified function name.")
        arn = function_arn(ctx.region, ctx.account_id, ref.name)
        with one_update_at_a_time(arn), self.store.write() as conn:
            fn = get_function(conn, ref)
            latest = get_version(conn, ref, LATEST)
            if req.get("CodeSha256") and req["CodeSha256"] != latest.code_sha256:
                raise ServiceError(
                    "InvalidParameterValueException",
                    f"CodeSHA256 ({req['CodeSha256']}) is different from current CodeSHA256 "
                    f"in $LATEST ({latest.code_sha256}). Please try again with the "
                    "CodeSHA256 in $LATEST.")
            if req.get("RevisionId") and req["RevisionId"] != latest.revision_id:
                raise precondition_failed()
            row, new = publish(conn, fn, latest, req.get("Description"))
        return function_configuration(row, ctx.region, ctx.account_id,
                                      PENDING if new else SETTLED)

    @quick_read
    def list_versions_by_function(self, ctx: RequestContext, req: dict[str, Any]
                                  ) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id)
        with self.store.read() as conn:
            get_function(conn, ref)
            rows = list(conn.execute(sa.select(lambda_versions).where(
                lambda_versions.c.region == ctx.region,
                lambda_versions.c.function_name == ref.name)))
        rows.sort(key=lambda r: version_key(r.function_version))
        chunk, marker = page(rows, lambda r: [version_key(r.function_version)], req.get("Marker"),
                             req.get("MaxItems"))
        out: dict[str, Any] = {"Versions": [function_configuration(r, ctx.region,
                                                                   ctx.account_id)
                                            for r in chunk]}
        if marker:
            out["NextMarker"] = marker
        return out


def delete_version(conn: Connection, ctx: RequestContext, name: str, version: str) -> Any:
    """Delete one published version; refuse while an alias routes to it. Returns the row."""
    if version == LATEST:
        raise ServiceError("InvalidParameterValueException",
                           "$LATEST version cannot be deleted without deleting the function.")
    if not version.isdigit():
        raise ServiceError("InvalidParameterValueException",
                           "Deletion of aliases is not supported. Use DeleteAlias instead.")
    row = find_version(conn, ctx.region, name, version)
    if row is None:
        raise ServiceError("ResourceNotFoundException", "Function not found: "
                           + function_arn(ctx.region, ctx.account_id, name, version))
    users = sorted(a.name for a in conn.execute(sa.select(lambda_aliases).where(
        lambda_aliases.c.region == ctx.region, lambda_aliases.c.function_name == name))
        if a.function_version == version or version in (a.weights or {}))
    if users:
        raise ServiceError("ResourceConflictException",
                           "Unable to delete version because the following aliases reference "
                           f"it: [{', '.join(users)}]")
    conn.execute(lambda_versions.delete().where(
        lambda_versions.c.region == ctx.region, lambda_versions.c.function_name == name,
        lambda_versions.c.function_version == version))
    conn.execute(lambda_event_invoke_configs.delete().where(
        lambda_event_invoke_configs.c.region == ctx.region,
        lambda_event_invoke_configs.c.function_name == name,
        lambda_event_invoke_configs.c.qualifier == version))
    return row
