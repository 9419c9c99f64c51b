"""Logs' pagination tokens (see api/tokens.py), with Logs' wording for a bad one."""
from __future__ import annotations

from typing import Any

from ..api import tokens
from ..api.errors import ServiceError

encode_token = tokens.encode_token


def decode_token(token: str | None) -> Any:
    if not token:  # the usual case: spare building the error
        return None
    return tokens.decode_token(token, ServiceError(
        "InvalidParameterException", "The specified nextToken is invalid."))
