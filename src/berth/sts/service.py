"""The STS provider: who am I, and temporary credentials for roles and for the admin.

berth has no IAM: any well-formed role ARN can be assumed by an authenticated caller, and no
policy narrows what a session may do. What STS itself enforces is kept: session durations,
the one-hour limit of role chaining, no GetSessionToken from session credentials.
"""
from __future__ import annotations

import asyncio
from typing import Any

from ..api.app import RequestContext
from ..api.errors import ServiceError
from ..api.principal import Principal
from ..config import Settings
from ..state.store import Store
from . import schema  # noqa: F401  (registers the tables)
from .principals import assumed_role, parse_role, session_of
from .sessions import Sessions, TemporaryCredentials

ASSUME_ROLE_DEFAULT = 3600
CHAINED_MAX = 3600              # a role assumed with role credentials: one hour at most
SESSION_TOKEN_DEFAULT = 43200


def credentials_view(creds: TemporaryCredentials) -> dict[str, Any]:
    return {"AccessKeyId": creds.access_key_id, "SecretAccessKey": creds.secret_access_key,
            "SessionToken": creds.session_token, "Expiration": creds.expiration}


def _caller(ctx: RequestContext) -> Principal:
    assert ctx.caller is not None, "STS is called over the API, never in process"
    return ctx.caller


class StsService:
    def __init__(self, store: Store, settings: Settings, sessions: Sessions) -> None:
        self.store = store
        self.settings = settings
        self.sessions = sessions

    async def startup(self) -> None:
        await asyncio.to_thread(self.sessions.load)

    async def get_caller_identity(self, ctx: RequestContext, req: dict[str, Any]
                                  ) -> dict[str, Any]:
        caller = _caller(ctx)
        return {"UserId": caller.user_id, "Account": caller.account, "Arn": caller.arn}

    async def assume_role(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        role = parse_role(req["RoleArn"])
        duration = req.get("DurationSeconds", ASSUME_ROLE_DEFAULT)
        if _caller(ctx).role_arn is not None and duration > CHAINED_MAX:
            raise ServiceError("ValidationError",
                               "The requested DurationSeconds exceeds the 1 hour session limit "
                               "for roles assumed by role chaining.")
        principal = assumed_role(role, req["RoleSessionName"])
        creds = self.sessions.issue(principal, duration)
        out: dict[str, Any] = {
            "Credentials": credentials_view(creds),
            "AssumedRoleUser": {"AssumedRoleId": principal.user_id, "Arn": principal.arn}}
        if req.get("SourceIdentity"):
            out["SourceIdentity"] = req["SourceIdentity"]
        return out

    async def get_session_token(self, ctx: RequestContext, req: dict[str, Any]
                                ) -> dict[str, Any]:
        caller = _caller(ctx)
        if caller.temporary:
            raise ServiceError("AccessDenied",
                               "Cannot call GetSessionToken with session credentials",
                               status=403)
        duration = req.get("DurationSeconds", SESSION_TOKEN_DEFAULT)
        creds = self.sessions.issue(session_of(caller), duration)
        return {"Credentials": credentials_view(creds)}
