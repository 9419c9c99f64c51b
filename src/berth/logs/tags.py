"""Tags of log groups and destinations: by ARN (TagResource & co.), and of log groups by name
(the older TagLogGroup & co.)."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .arns import destination_name_from_arn, group_name_from_arn
from .groups import not_found
from .schema import log_destinations, log_groups

MAX_TAGS = 50

# A taggable resource: its table and the key of its row.
Resource = tuple[sa.Table, dict[str, str]]


# A taggable row's tags by its key, built once (see Store.records).
_TAGS = {t.name: sa.select(t.c.tags).where(t.c.region == sa.bindparam("region"),
                                           t.c.name == sa.bindparam("name"))
         for t in (log_groups, log_destinations)}


class LogTags:
    store: Store

    def tag_resource(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        self._update(self._resource(ctx, req["resourceArn"]), set_tags=req["tags"],
                     too_many="TooManyTagsException")
        return {}

    def untag_resource(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        self._update(self._resource(ctx, req["resourceArn"]), drop=req["tagKeys"])
        return {}

    @quick_read
    def list_tags_for_resource(self, ctx: RequestContext, req: dict[str, Any]
                               ) -> dict[str, Any]:
        return {"tags": self._tags(self._resource(ctx, req["resourceArn"]))}

    def tag_log_group(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        self._update(self._group(ctx, req["logGroupName"]), set_tags=req["tags"],
                     too_many="InvalidParameterException")
        return {}

    def untag_log_group(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        self._update(self._group(ctx, req["logGroupName"]), drop=req["tags"])
        return {}

    @quick_read
    def list_tags_log_group(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        return {"tags": self._tags(self._group(ctx, req["logGroupName"]))}

    @staticmethod
    def _group(ctx: RequestContext, name: str) -> Resource:
        return log_groups, {"region": ctx.region, "name": name}

    @classmethod
    def _resource(cls, ctx: RequestContext, arn: str) -> Resource:
        group = group_name_from_arn(ctx, arn)
        if group is not None:
            return cls._group(ctx, group)
        destination = destination_name_from_arn(ctx, arn)
        if destination is not None:
            return log_destinations, {"region": ctx.region, "name": destination}
        raise ServiceError("ResourceNotFoundException",
                           f"The specified resource {arn} does not exist.")

    def _tags(self, resource: Resource) -> dict[str, str]:
        table, key = resource
        rows = self.store.records(_TAGS[table.name], key)
        if not rows:
            raise self._missing(table)
        return dict(rows[0].tags or {})

    def _update(self, resource: Resource, set_tags: dict[str, str] | None = None,
                drop: list[str] | None = None,
                too_many: str = "TooManyTagsException") -> None:
        table, key = resource
        with self.store.write() as conn:
            # FOR UPDATE (PostgreSQL): concurrent tag changes apply one after the other
            # instead of overwriting each other's read-modify-write.
            row = conn.execute(sa.select(table.c.tags).where(
                *(table.c[k] == v for k, v in key.items())).with_for_update()).first()
            if row is None:
                raise self._missing(table)
            tags = dict(row.tags or {})
            tags.update(set_tags or {})
            for k in drop or ():
                tags.pop(k, None)
            if len(tags) > MAX_TAGS:
                raise ServiceError(too_many, f"A resource can have no more than {MAX_TAGS} "
                                             "tags.")
            self.store.bump(conn, table, key, {"tags": tags})

    @staticmethod
    def _missing(table: sa.Table) -> ServiceError:
        if table is log_destinations:
            return ServiceError("ResourceNotFoundException",
                                "The specified destination does not exist.")
        return not_found("log group")
