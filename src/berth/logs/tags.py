"""Log group tags, by ARN (TagResource & co.) and by name (the older TagLogGroup & co.)."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import group_name_from_arn
from .groups import get_group, not_found
from .schema import log_groups

MAX_TAGS = 50


class LogTags:
    store: Store

    def tag_resource(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        self._update(ctx, self._group_of(ctx, req["resourceArn"]), set_tags=req["tags"],
                     too_many="TooManyTagsException")
        return {}

    def untag_resource(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        self._update(ctx, self._group_of(ctx, req["resourceArn"]), drop=req["tagKeys"])
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, req: dict[str, Any]
                               ) -> dict[str, Any]:
        return {"tags": self._tags(ctx, self._group_of(ctx, req["resourceArn"]))}

    def tag_log_group(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        self._update(ctx, req["logGroupName"], set_tags=req["tags"],
                     too_many="InvalidParameterException")
        return {}

    def untag_log_group(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        self._update(ctx, req["logGroupName"], drop=req["tags"])
        return {}

    def list_tags_log_group(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        return {"tags": self._tags(ctx, req["logGroupName"])}

    @staticmethod
    def _group_of(ctx: RequestContext, arn: str) -> str:
        name = group_name_from_arn(ctx, arn)
        if name is None:
            raise ServiceError("ResourceNotFoundException",
                               f"The specified resource {arn} does not exist.")
        return name

    def _tags(self, ctx: RequestContext, group: str) -> dict[str, str]:
        with self.store.read() as conn:
            return dict(get_group(conn, ctx.region, group).tags or {})

    def _update(self, ctx: RequestContext, group: str, set_tags: dict[str, str] | None = None,
                drop: list[str] | None = None,
                too_many: str = "TooManyTagsException") -> None:
        with self.store.write() as conn:
            # FOR UPDATE (PostgreSQL): concurrent tag changes apply one after the other
            # instead of overwriting each other's read-modify-write.
            row = conn.execute(sa.select(log_groups.c.tags).where(
                log_groups.c.region == ctx.region, log_groups.c.name == group)
                .with_for_update()).first()
            if row is None:
                raise not_found("log group")
            tags = dict(row.tags or {})
            tags.update(set_tags or {})
            for key in drop or ():
                tags.pop(key, None)
            if len(tags) > MAX_TAGS:
                raise ServiceError(too_many, f"A resource can have no more than {MAX_TAGS} "
                                             "tags.")
            self.store.bump(conn, log_groups, {"region": ctx.region, "name": group},
                            {"tags": tags})
