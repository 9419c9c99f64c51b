"""Tags on functions: TagResource, UntagResource, ListTags, and the checks CreateFunction
shares."""
from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import FunctionRef, function_ref
from .queries import get_function
from .schema import lambda_functions

MAX_TAGS = 50


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    for key in tags:
        if key.lower().startswith("aws:"):
            raise ServiceError("InvalidParameterValueException",
                               f"Tag keys starting with 'aws:' are reserved: {key}")
    return dict(tags)


def _resource(ctx: RequestContext, arn: str) -> FunctionRef:
    if ":function:" not in arn:
        raise ServiceError("InvalidParameterValueException",
                           f"berth supports tags on functions only: {arn}")
    ref = function_ref(arn, ctx.region, ctx.account_id)
    if ref.qualifier:
        raise ServiceError("InvalidParameterValueException",
                           "Tags are not supported for a function version or alias. "
                           f"Use the unqualified function ARN instead of {arn}.")
    return ref


class Tags:
    store: Store

    def tag_resource(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = _resource(ctx, req["Resource"])
        with self.store.write() as conn:
            fn = get_function(conn, ref)
            tags = {**(fn.tags or {}), **check_tags(req["Tags"])}
            if len(tags) > MAX_TAGS:
                raise ServiceError("InvalidParameterValueException",
                                   f"A function can have at most {MAX_TAGS} tags.")
            self._save(conn, ref, tags)
        return {}

    def untag_resource(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = _resource(ctx, req["Resource"])
        with self.store.write() as conn:
            fn = get_function(conn, ref)
            drop = set(req["TagKeys"])
            self._save(conn, ref, {k: v for k, v in (fn.tags or {}).items() if k not in drop})
        return {}

    @quick_read
    def list_tags(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ref = _resource(ctx, req["Resource"])
        with self.store.read() as conn:
            fn = get_function(conn, ref)
        return {"Tags": dict(fn.tags or {})}

    @staticmethod
    def _save(conn: sa.Connection, ref: FunctionRef, tags: dict[str, str]) -> None:
        Store.bump(conn, lambda_functions, {"region": ref.region, "name": ref.name},
                   {"tags": tags})
