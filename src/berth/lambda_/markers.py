"""Pagination markers of the List* operations: an opaque token for the last key returned."""
from __future__ import annotations

import base64
import json
from typing import Any, Callable, Sequence, TypeVar

from ..api.errors import ServiceError
from . import limits

T = TypeVar("T")


def encode_marker(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def decode_marker(marker: str | None) -> list[Any] | None:
    if not marker:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(marker.encode()))
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, list):
        raise ServiceError("InvalidParameterValueException", "Invalid marker: " + marker)
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
