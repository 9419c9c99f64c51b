"""Function operations: create, read, list, update code and configuration, delete."""
from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..config import Settings
from ..state.store import Store
from . import limits
from .arns import LATEST, FunctionRef, function_arn, function_ref
from .code import CodeStore, StoredCode
from .code_download import code_url
from .configuration import check_architectures, config_values, fingerprint, invalid
from .limits import LIST_MAX_ITEMS
from .markers import decode_marker, page
from .queries import get_function, get_qualified, get_version, one_update_at_a_time, \
    precondition_failed
from .schema import lambda_functions, lambda_versions
from .tags import check_tags
from .versions import delete_version, publish, version_key
from .views import PENDING, UPDATING, function_configuration

log = logging.getLogger(__name__)

_STATE_FIELDS = frozenset({"State", "StateReason", "StateReasonCode", "LastUpdateStatus",
                           "LastUpdateStatusReason", "LastUpdateStatusReasonCode"})

_CONFIG_COLUMNS = ("runtime", "handler", "role", "description", "memory_size", "timeout",
                   "environment", "ephemeral_storage", "architectures", "extra")


def _zip_file(code: dict[str, Any]) -> bytes:
    if code.get("ZipFile") is not None:
        return bytes(code["ZipFile"])
    if code.get("S3Bucket") or code.get("S3Key"):
        raise invalid("berth has no S3 to fetch code from: upload the package as ZipFile.")
    if code.get("ImageUri"):
        raise invalid("berth runs functions from zip packages only; ImageUri is not "
                      "supported.")
    raise invalid("Please provide a source for function code.")


def _unqualified(ref: FunctionRef, operation: str) -> FunctionRef:
    if ref.qualifier:
        raise invalid(f"{operation} takes an unqualified function name; remove the "
                      f"qualifier :{ref.qualifier}.")
    return ref


# ListFunctions' reads, built once (see Store.records).
_LATEST_PAGE = (sa.select(lambda_versions).where(
    lambda_versions.c.region == sa.bindparam("region"),
    lambda_versions.c.function_version == LATEST,
    lambda_versions.c.function_name >= sa.bindparam("after"))
    .order_by(lambda_versions.c.function_name).limit(sa.bindparam("limit")))
_ALL_VERSIONS = sa.select(lambda_versions).where(
    lambda_versions.c.region == sa.bindparam("region"))


class Functions:
    store: Store
    settings: Settings
    code: CodeStore

    # -- create ---------------------------------------------------------------------------

    def create_function(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = _unqualified(function_ref(req["FunctionName"], ctx.region, ctx.account_id),
                           "CreateFunction")
        if req.get("PackageType", "Zip") != "Zip":
            raise invalid("berth runs functions from zip packages only; PackageType Image "
                          "is not supported.")
        values = config_values(req, None)
        tags = check_tags(req.get("Tags") or {})
        data = _zip_file(req["Code"])
        stored = self.code.put(data, "CreateFunction")
        now = time.time()
        values.update(region=ctx.region, function_name=ref.name, function_version=LATEST,
                      code_sha256=stored.code_sha256, code_size=stored.size,
                      revision_id=str(uuid.uuid4()), last_modified=now)
        values["fingerprint"] = fingerprint(values)
        conflict = ServiceError("ResourceConflictException",
                                f"Function already exist: {ref.name}")
        try:
            with self.store.write() as conn:
                taken = conn.execute(sa.select(lambda_functions.c.name).where(
                    lambda_functions.c.region == ctx.region,
                    lambda_functions.c.name == ref.name)).first()
                if taken:
                    raise conflict
                self._check_storage(conn, ctx.region, stored.size)
                Store.insert(conn, lambda_functions, {"region": ctx.region, "name": ref.name,
                                                      "created": now, "tags": tags,
                                                      "last_version": 0})
                Store.insert(conn, lambda_versions, values)
                row = get_version(conn, ref, LATEST)
                if req.get("Publish"):
                    row, _ = publish(conn, get_function(conn, ref), row, None)
        except sa.exc.IntegrityError:
            # Two creates raced past the check (PostgreSQL): the key decided.
            self._collect([stored.code_sha256])
            raise conflict from None
        except ServiceError:
            self._collect([stored.code_sha256])
            raise
        self._keep(stored, data)
        return function_configuration(row, ctx.region, ctx.account_id, PENDING)

    @staticmethod
    def _check_storage(conn: sa.Connection, region: str, adding: int) -> None:
        used = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(lambda_versions.c.code_size),
                                                       0))
                            .where(lambda_versions.c.region == region)).scalar_one()
        if int(used) + adding > limits.TOTAL_CODE_STORAGE:
            raise ServiceError("CodeStorageExceededException",
                               "Code storage limit exceeded.")

    def _keep(self, stored: StoredCode, data: bytes) -> None:
        """Make sure the zip is on disk now that a row refers to it: a concurrent delete of
        another function with the same code may have collected it between upload and commit."""
        self.code.ensure(stored, data)

    # -- read -----------------------------------------------------------------------------

    @quick_read
    def get_function(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id,
                           req.get("Qualifier"))
        with self.store.read() as conn:
            fn = get_function(conn, ref)
            row = get_qualified(conn, ref)
        hex_digest = self.code.path(row.code_sha256).stem
        out: dict[str, Any] = {
            "Configuration": function_configuration(row, ctx.region, ctx.account_id),
            "Code": {"RepositoryType": "S3",
                     "Location": code_url(ctx.endpoint, self.settings.secret_key or "",
                                          hex_digest)},
        }
        if fn.tags:
            out["Tags"] = dict(fn.tags)
        if fn.reserved_concurrency is not None:
            out["Concurrency"] = {"ReservedConcurrentExecutions": fn.reserved_concurrency}
        return out

    @quick_read
    def get_function_configuration(self, ctx: RequestContext, req: dict[str, Any]
                                   ) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id,
                           req.get("Qualifier"))
        with self.store.read() as conn:
            row = get_qualified(conn, ref)
        return function_configuration(row, ctx.region, ctx.account_id)

    @quick_read
    def list_functions(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {"region": ctx.region}
        if req.get("FunctionVersion") != "ALL":
            # One row per function: read just the page (and one more) in name order.
            after = decode_marker(req.get("Marker"))
            params["after"] = after[0] if isinstance(after, list) and after and isinstance(
                after[0], str) else ""
            params["limit"] = min(req.get("MaxItems") or LIST_MAX_ITEMS, LIST_MAX_ITEMS) + 2
            rows = self.store.records(_LATEST_PAGE, params)
        else:
            rows = self.store.records(_ALL_VERSIONS, params)
        rows.sort(key=lambda r: (r.function_name, version_key(r.function_version)))
        chunk, marker = page(rows, lambda r: [r.function_name, version_key(r.function_version)],
                             req.get("Marker"), req.get("MaxItems"))
        # ListFunctions answers a subset of each configuration, as AWS does: the state fields
        # come only from GetFunction.
        out: dict[str, Any] = {"Functions": [
            {k: v for k, v in function_configuration(r, ctx.region, ctx.account_id).items()
             if k not in _STATE_FIELDS} for r in chunk]}
        if marker:
            out["NextMarker"] = marker
        return out

    # -- update ---------------------------------------------------------------------------

    def update_function_code(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = _unqualified(function_ref(req["FunctionName"], ctx.region, ctx.account_id),
                           "UpdateFunctionCode")
        data = _zip_file(req)
        dry_run = bool(req.get("DryRun"))
        stored = (self.code.inspect if dry_run else self.code.put)(data, "UpdateFunctionCode")
        changes: dict[str, Any] = {"code_sha256": stored.code_sha256, "code_size": stored.size}
        if req.get("Architectures"):
            changes["architectures"] = check_architectures(req["Architectures"])
        try:
            return self._update_latest(ctx, ref, req, changes, stored, data, dry_run)
        except ServiceError:
            if not dry_run:
                self._collect([stored.code_sha256])   # an upload nothing refers to
            raise

    def update_function_configuration(self, ctx: RequestContext, req: dict[str, Any]
                                      ) -> dict[str, Any]:
        ref = _unqualified(function_ref(req["FunctionName"], ctx.region, ctx.account_id),
                           "UpdateFunctionConfiguration")
        return self._update_latest(ctx, ref, req, None)

    def _update_latest(self, ctx: RequestContext, ref: FunctionRef, req: dict[str, Any],
                       changes: dict[str, Any] | None, stored: StoredCode | None = None,
                       data: bytes = b"", dry_run: bool = False) -> dict[str, Any]:
        """Apply code `changes` (or, when None, the configuration members of `req`) to
        $LATEST with a new RevisionId, honouring RevisionId, Publish and DryRun."""
        arn = function_arn(ctx.region, ctx.account_id, ref.name)
        with one_update_at_a_time(arn), self.store.write() as conn:
            get_function(conn, ref)
            latest = get_version(conn, ref, LATEST)
            if req.get("RevisionId") and req["RevisionId"] != latest.revision_id:
                raise precondition_failed()
            current = {c: getattr(latest, c) for c in _CONFIG_COLUMNS}
            if changes is None:
                changes = config_values(req, current)
            elif stored is not None:
                self._check_storage(conn, ctx.region, stored.size - latest.code_size)
            merged = {**current, "code_sha256": latest.code_sha256, **changes}
            values = {**changes, "revision_id": str(uuid.uuid4()),
                      "last_modified": time.time(), "fingerprint": fingerprint(merged)}
            if dry_run:
                return function_configuration(_Overlay(latest, values), ctx.region,
                                              ctx.account_id, UPDATING)
            Store.cas_update(conn, lambda_versions,
                             {"region": ctx.region, "function_name": ref.name,
                              "function_version": LATEST}, latest.version, values)
            row = get_version(conn, ref, LATEST)
            status = UPDATING
            if req.get("Publish"):
                row, new = publish(conn, get_function(conn, ref), row, None)
                status = PENDING if new else status
        if stored is not None:
            self._keep(stored, data)
        if latest.code_sha256 != values.get("code_sha256", latest.code_sha256):
            self._collect([latest.code_sha256])
        return function_configuration(row, ctx.region, ctx.account_id, status)

    # -- delete ---------------------------------------------------------------------------

    def delete_function(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id,
                           req.get("Qualifier"))
        with self.store.write() as conn:
            get_function(conn, ref)
            if ref.qualifier:
                shas = [delete_version(conn, ctx, ref.name, ref.qualifier).code_sha256]
            else:
                shas = list(conn.execute(sa.select(lambda_versions.c.code_sha256).where(
                    lambda_versions.c.region == ctx.region,
                    lambda_versions.c.function_name == ref.name)).scalars())
                # Versions, aliases and event configs go with it (ON DELETE CASCADE).
                conn.execute(lambda_functions.delete().where(
                    lambda_functions.c.region == ctx.region,
                    lambda_functions.c.name == ref.name))
        self._collect(shas)
        return {"StatusCode": 204}

    def _collect(self, shas: list[str]) -> None:
        """Remove code files no version in any region refers to any more."""
        candidates = set(shas)
        if not candidates:
            return
        with self.store.read() as conn:
            used = set(conn.execute(sa.select(lambda_versions.c.code_sha256).where(
                lambda_versions.c.code_sha256.in_(candidates))).scalars())
        for sha in candidates - used:
            log.debug("discarding unreferenced code %s", sha)
            self.code.discard(sha)


class _Overlay:
    """A row with some columns replaced: what a DryRun update would store."""

    def __init__(self, row: Any, values: dict[str, Any]) -> None:
        self._row, self._values = row, values

    def __getattr__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        return getattr(self._row, name)
