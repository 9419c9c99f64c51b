"""Reserved concurrency (Put/Get/DeleteFunctionConcurrency) and the account's limits and usage
(GetAccountSettings). Enforcing the limits on invocations belongs to the invocation path."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from . import limits
from .arns import function_ref
from .queries import get_function
from .schema import lambda_functions, lambda_versions


def reserved_total(conn: sa.Connection, region: str, excluding: str | None = None) -> int:
    q = sa.select(sa.func.coalesce(sa.func.sum(lambda_functions.c.reserved_concurrency), 0)) \
        .where(lambda_functions.c.region == region)
    if excluding is not None:
        q = q.where(lambda_functions.c.name != excluding)
    return int(conn.execute(q).scalar_one())


class Concurrency:
    store: Store

    def put_function_concurrency(self, ctx: RequestContext, req: dict[str, Any]
                                 ) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id)
        if ref.qualifier:
            raise ServiceError("InvalidParameterValueException",
                               "Reserved concurrency applies to the function, not to a "
                               "version or alias: use the unqualified function name.")
        wanted = req["ReservedConcurrentExecutions"]
        with self.store.write() as conn:
            get_function(conn, ref)
            others = reserved_total(conn, ctx.region, excluding=ref.name)
            if limits.ACCOUNT_CONCURRENCY - others - wanted < limits.UNRESERVED_MINIMUM:
                raise ServiceError(
                    "InvalidParameterValueException",
                    "Specified ReservedConcurrentExecutions for function decreases account's "
                    "UnreservedConcurrentExecution below its minimum value of "
                    f"[{limits.UNRESERVED_MINIMUM}].")
            Store.bump(conn, lambda_functions, {"region": ctx.region, "name": ref.name},
                       {"reserved_concurrency": wanted})
        return {"ReservedConcurrentExecutions": wanted}

    @quick_read
    def get_function_concurrency(self, ctx: RequestContext, req: dict[str, Any]
                                 ) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id)
        with self.store.read() as conn:
            fn = get_function(conn, ref)
        if fn.reserved_concurrency is None:
            return {}
        return {"ReservedConcurrentExecutions": fn.reserved_concurrency}

    def delete_function_concurrency(self, ctx: RequestContext, req: dict[str, Any]
                                    ) -> dict[str, Any]:
        ref = function_ref(req["FunctionName"], ctx.region, ctx.account_id)
        with self.store.write() as conn:
            get_function(conn, ref)
            Store.bump(conn, lambda_functions, {"region": ctx.region, "name": ref.name},
                       {"reserved_concurrency": None})
        return {}

    @quick_read
    def get_account_settings(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with self.store.read() as conn:
            code_size = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(lambda_versions.c.code_size), 0))
                .where(lambda_versions.c.region == ctx.region)).scalar_one()
            count = conn.execute(sa.select(sa.func.count()).select_from(lambda_functions)
                                 .where(lambda_functions.c.region == ctx.region)).scalar_one()
            reserved = reserved_total(conn, ctx.region)
        return {
            "AccountLimit": {
                "TotalCodeSize": limits.TOTAL_CODE_STORAGE,
                "CodeSizeUnzipped": limits.UNZIPPED,
                "CodeSizeZipped": limits.ZIP_DIRECT_UPLOAD,
                "ConcurrentExecutions": limits.ACCOUNT_CONCURRENCY,
                "UnreservedConcurrentExecutions": limits.ACCOUNT_CONCURRENCY - reserved,
            },
            "AccountUsage": {"TotalCodeSize": int(code_size), "FunctionCount": int(count)},
        }
