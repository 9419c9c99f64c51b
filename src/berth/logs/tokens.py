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


# keyset_page's statements, by what built them and which filters they have: each is built
# once, with bind parameters, so Store.records runs it prepared on the driver.
_pages: dict[tuple[Any, ...], sa.Select[Any]] = {}


def keyset_page(store: Store, build: Callable[..., sa.Select[Any]], filters: dict[str, Any],
                keys: Sequence[sa.Column[Any]], req: dict[str, Any], name: str,
                view: Callable[[Any], dict[str, Any]],
                check: Callable[[], object] | None = None, limit: int = 50) -> dict[str, Any]:
    """One page of the rows `build(**given)` selects (whole rows of one table, filtered by
    bind parameters named as the given `filters`) in the order of `keys`, which together are
    unique, from past the request's nextToken: `{name: [view(row), ...]}` and a nextToken if
    more follow. `check` runs first (does the group exist?)."""
    limit = req.get("limit", limit)
    after = decode_token(req.get("nextToken"))
    if after is not None and (not isinstance(after, list) or len(after) != len(keys)):
        raise invalid_token()
    given = tuple(sorted(k for k, v in filters.items() if v is not None))
    shape = (build, given, after is not None)
    q = _pages.get(shape)
    if q is None:
        q = build(**{k: True for k in given})
        if after is not None:
            q = q.where(sa.tuple_(*keys) > sa.tuple_(
                *(sa.bindparam(f"after_{i}") for i in range(len(keys)))))
        q = _pages[shape] = q.order_by(*keys).limit(sa.bindparam("limit"))
    params = {k: v for k, v in filters.items() if v is not None}
    params["limit"] = limit + 1
    for i, value in enumerate(after or ()):
        params[f"after_{i}"] = value
    if check is not None:
        check()
    rows = store.records(q, params)
    out: dict[str, Any] = {name: [view(r) for r in rows[:limit]]}
    if len(rows) > limit:
        out["nextToken"] = encode_token([getattr(rows[limit - 1], k.key) for k in keys])
    return out
