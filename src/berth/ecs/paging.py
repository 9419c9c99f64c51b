"""Opaque pagination tokens for the List* operations: the sort key of the last item returned."""
from __future__ import annotations

import base64
import json
from typing import Any

from . import errors


def encode(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def decode(token: str | None) -> Any:
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid("Invalid nextToken.") from None


def limit(req: dict[str, Any], default: int = 100, maximum: int = 100) -> int:
    n = req.get("maxResults", default)
    if n < 1 or n > maximum:
        raise errors.invalid(f"maxResults must be between 1 and {maximum}.")
    return int(n)
