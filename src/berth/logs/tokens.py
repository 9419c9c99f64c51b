"""Logs' pagination tokens (see api/tokens.py), with Logs' wording for a bad one, and the
keyset page most Describe operations answer with."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import sqlalchemy as sa

from ..api import tokens
from ..api.errors import ServiceError
from ..state.store import Store

encode_token = tokens.encode_token


def invalid_token() -> ServiceError:
    return ServiceError("InvalidParameterException", "The specified nextToken is invalid.")


def decode_token(token: str | None) -> Any:
    if not token:  # the usual case: spare building the error
        return None
    return tokens.decode_token(token, invalid_token())


def keyset_page(store: Store, q: sa.Select[Any], keys: Sequence[sa.Column[Any]],
                req: dict[str, Any], name: str, view: Callable[[Any], dict[str, Any]],
                check: Callable[[sa.Connection], object] | None = None,
                limit: int = 50) -> dict[str, Any]:
    """One page of the rows of `q` (whole rows of one table) in the order of `keys`, which
    together are unique, from past the request's nextToken: `{name: [view(row), ...]}` and a
    nextToken if more follow. `check` runs first in the same read (does the group exist?)."""
    limit = req.get("limit", limit)
    after = decode_token(req.get("nextToken"))
    if after is not None:
        if not isinstance(after, list) or len(after) != len(keys):
            raise invalid_token()
        q = q.where(sa.tuple_(*keys) > sa.tuple_(*(sa.literal(v) for v in after)))
    with store.read() as conn:
        if check is not None:
            check(conn)
        rows = conn.execute(q.order_by(*keys).limit(limit + 1)).all()
    out: dict[str, Any] = {name: [view(r) for r in rows[:limit]]}
    if len(rows) > limit:
        out["nextToken"] = encode_token([getattr(rows[limit - 1], k.key) for k in keys])
    return out
