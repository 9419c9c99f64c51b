"""Opaque pagination tokens: the position to resume after, in a form clients do not parse."""
from __future__ import annotations

import base64
import json
from typing import Any

from ..api.errors import ServiceError


def encode_token(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def decode_token(token: str | None) -> Any:
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise ServiceError("InvalidParameterException",
                           "The specified nextToken is invalid.") from None
