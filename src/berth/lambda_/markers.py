"""Pagination markers of the List* operations: an opaque token for the last key returned."""
from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

from ..api import tokens
from ..api.errors import ServiceError
from . import limits

T = TypeVar("T")


def encode_marker(key: Sequence[Any]) -> str:
    return tokens.encode_token(list(key))


def decode_marker(marker: str | None) -> list[Any] | None:
    invalid = ServiceError("InvalidParameterValueException", f"Invalid marker: {marker}")
    key = tokens.decode_token(marker, invalid)
    if key is not None and not isinstance(key, list):
        raise invalid
    return key


def page(items: Sequence[T], key: Callable[[T], list[Any]], marker: str | None,
         max_items: int | None) -> tuple[list[T], str | None]:
    """The page after `marker` of `items` (sorted by `key`) and the marker of the next one."""
    after = decode_marker(marker)
    limit = min(max_items or limits.LIST_MAX_ITEMS, limits.LIST_MAX_ITEMS)
    try:
        rest = [i for i in items if after is None or key(i) > after]
    except TypeError:
        raise ServiceError("InvalidParameterValueException", f"Invalid marker: {marker}") from None
    chunk = rest[:limit]
    following = encode_marker(key(chunk[-1])) if len(rest) > limit else None
    return chunk, following
