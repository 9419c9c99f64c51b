"""Opaque pagination tokens: the position to resume after, in a form clients do not parse.

Every service pages the same way; each words the error for a token it did not hand out its
own way, so the caller says which error a malformed token is.
"""
from __future__ import annotations

import base64
import json
from typing import Any

from .errors import ServiceError


def encode_token(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def decode_token(token: str | None, malformed: ServiceError) -> Any:
    """The position in `token` (None for no token); raises `malformed` for a forged one."""
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise malformed from None
