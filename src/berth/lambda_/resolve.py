"""Which function version an invocation runs: `resolve` turns a FunctionName (+ Qualifier) into
the worker's record.

    resolve(store, region, account_id, name_or_arn, qualifier=None) -> (FunctionConfig, invoked_arn)

`name_or_arn` is a name, a partial ARN (`000000000000:function:name`) or a full ARN, any of them
optionally ending in `:qualifier`; `qualifier` is `$LATEST`, a version number or an alias. An
alias with RoutingConfig picks a version by weight on every call. `invoked_arn` is the ARN as
the caller named it: unqualified when no qualifier was given, else ending in the qualifier (the
alias name, not the version it routed to). A missing function, version or alias raises
ResourceNotFoundException ("Function not found: <arn>"); a contradicting qualifier raises
InvalidParameterValueException.
"""
from __future__ import annotations

import random
from typing import Any, Callable, Mapping

import sqlalchemy as sa

from ..api.errors import ServiceError
from ..state.store import Store
from .arns import LATEST, function_arn, function_ref
from .model import FunctionConfig
from .schema import lambda_aliases, lambda_functions, lambda_versions


def function_not_found(arn: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Function not found: {arn}")


def pick_version(primary: str, weights: Mapping[str, float],
                 draw: Callable[[], float] = random.random) -> str:
    """Weighted alias routing: each additional version gets its weight, the primary the rest."""
    x = draw()
    for version, weight in sorted(weights.items()):
        if x < weight:
            return version
        x -= weight
    return primary


def config_from_row(row: Any, region: str, account_id: str,
                    reserved: int | None) -> FunctionConfig:
    return FunctionConfig(
        region=region, account_id=account_id, name=row.function_name, version=row.function_version,
        function_arn=function_arn(region, account_id, row.function_name),
        runtime=row.runtime, handler=row.handler or "", memory_size=row.memory_size,
        timeout=row.timeout, code_sha256=row.code_sha256, revision_id=row.revision_id,
        environment=dict(row.environment or {}), ephemeral_storage=row.ephemeral_storage,
        reserved_concurrency=reserved, role=row.role or "")


def resolve(store: Store, region: str, account_id: str, name_or_arn: str,
            qualifier: str | None = None) -> tuple[FunctionConfig, str]:
    ref = function_ref(name_or_arn, region, account_id, qualifier)
    invoked = function_arn(region, account_id, ref.name, ref.qualifier)
    wanted = ref.qualifier or LATEST
    with store.read() as conn:
        reserved = conn.execute(
            sa.select(lambda_functions.c.reserved_concurrency).where(
                lambda_functions.c.region == region,
                lambda_functions.c.name == ref.name)).first()
        if reserved is None:
            raise function_not_found(invoked)
        version = wanted
        if wanted != LATEST and not wanted.isdigit():
            alias = conn.execute(sa.select(lambda_aliases).where(
                lambda_aliases.c.region == region,
                lambda_aliases.c.function_name == ref.name,
                lambda_aliases.c.name == wanted)).first()
            if alias is None:
                raise function_not_found(invoked)
            version = pick_version(alias.function_version, alias.weights or {})
        row = conn.execute(sa.select(lambda_versions).where(
            lambda_versions.c.region == region, lambda_versions.c.function_name == ref.name,
            lambda_versions.c.function_version == version)).first()
    if row is None:
        raise function_not_found(invoked)
    return config_from_row(row, region, account_id, reserved[0]), invoked
