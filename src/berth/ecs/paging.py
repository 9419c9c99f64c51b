"""Opaque pagination tokens for the List* operations: the sort key of the last item returned."""
from __future__ import annotations

from typing import Any

from ..api import tokens
from . import errors

encode = tokens.encode_token


def decode(token: str | None) -> Any:
    return tokens.decode_token(token, errors.invalid("Invalid nextToken."))


def limit(req: dict[str, Any], default: int = 100, maximum: int = 100) -> int:
    n = req.get("maxResults", default)
    if n < 1 or n > maximum:
        raise errors.invalid(f"maxResults must be between 1 and {maximum}.")
    return int(n)
