"""Who signed a request, as GetCallerIdentity names it: what the verifier hands the handlers
(in `RequestContext.caller`) and what an authorization layer would decide on."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """`role_arn` is set for an assumed role; `temporary` for any session's credentials
    (AssumeRole, GetSessionToken)."""

    arn: str
    user_id: str
    account: str
    role_arn: str | None = None
    temporary: bool = False
