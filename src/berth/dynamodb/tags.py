"""TagResource, UntagResource, ListTagsOfResource (tables, by ARN)."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .errors import invalid
from .schema import dynamodb_tables

MAX_TAGS = 50


class Tags:
    store: Store

    def tag_resource(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with self.store.write() as conn:
            uid, tags = self._tagged(conn, ctx, req["ResourceArn"])
            tags.update({t["Key"]: t["Value"] for t in req["Tags"]})
            if len(tags) > MAX_TAGS:
                raise invalid("One or more parameter values were invalid: The number of tags "
                              f"exceeds the limit of {MAX_TAGS}")
            self._save(conn, uid, tags)
        return {}

    def untag_resource(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with self.store.write() as conn:
            uid, tags = self._tagged(conn, ctx, req["ResourceArn"])
            for key in req["TagKeys"]:
                tags.pop(key, None)
            self._save(conn, uid, tags)
        return {}

    @quick_read
    def list_tags_of_resource(self, ctx: RequestContext, req: dict[str, Any]
                              ) -> dict[str, Any]:
        with self.store.read() as conn:
            _, tags = self._tagged(conn, ctx, req["ResourceArn"])
        return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}

    def _tagged(self, conn: Any, ctx: RequestContext, arn: str) -> tuple[int, dict[str, str]]:
        prefix = f"arn:aws:dynamodb:{ctx.region}:{ctx.account_id}:table/"
        name = arn[len(prefix):] if arn.startswith(prefix) else ""
        row = conn.execute(sa.select(dynamodb_tables.c.uid, dynamodb_tables.c.tags).where(
            dynamodb_tables.c.region == ctx.region, dynamodb_tables.c.name == name)).first() \
            if name and "/" not in name else None
        if row is None:
            raise ServiceError("ResourceNotFoundException",
                               f"Requested resource not found: ResourcArn: {arn} not found")
        return row[0], dict(row[1])

    @staticmethod
    def _save(conn: Any, uid: int, tags: dict[str, str]) -> None:
        conn.execute(dynamodb_tables.update().where(dynamodb_tables.c.uid == uid)
                     .values(tags=tags, version=dynamodb_tables.c.version + 1))
