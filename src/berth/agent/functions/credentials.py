"""Execution-role credentials for sandboxes, as Lambda hands them out.

A sandbox starts with its role's temporary credentials in its environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), where every SDK's default chain finds them. They are
issued per role and function (the session is named after the function, so the caller is
`assumed-role/ROLE/FUNCTION`) and kept: a cold start takes them from the cache, and a new set is
issued only once half of their lifetime has passed. A warm sandbox outlives its first set, so
it is kept current: berth's Python and Node.js runtimes take the newer set from the next
invocation's `Berth-Aws-Credentials` header into their environment before the handler runs
(with AWS_CREDENTIAL_EXPIRATION set, SDK clients made at init re-read the environment before
their set expires); sandboxes of other runtimes are retired before theirs expires.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ...lambda_.model import FunctionConfig
from ..client import Credentials

log = logging.getLogger(__name__)

LIFETIME = 12 * 3600.0           # seconds a set is valid: the longest session STS gives a role
REFRESH_HEADER = "Berth-Aws-Credentials"
# Runtimes whose bootstrap is berth's and takes a newer set from REFRESH_HEADER.
REFRESHING_RUNTIMES = ("python", "nodejs")
# A sandbox that cannot take a newer set is not given an invocation its set may not outlast.
EXPIRY_MARGIN = 60.0

# role ARN, session name, seconds -> credentials, or None when the role cannot be assumed
Issue = Callable[[str, str, float], "Credentials | None"]


@dataclass(frozen=True)
class Callback:
    """How sandboxes reach berth: the endpoint they call and their roles' credentials."""
    endpoint: str
    roles: "RoleCredentials"


class RoleCredentials:
    def __init__(self, issue: Issue, lifetime: float = LIFETIME,
                 clock: Callable[[], float] = time.time) -> None:
        self.issue = issue
        self.lifetime = lifetime
        self.clock = clock
        self._cache: dict[tuple[str, str], Credentials] = {}

    def for_function(self, config: FunctionConfig) -> Credentials | None:
        if not config.role:
            return None
        key = (config.role, config.name)
        found = self._cache.get(key)
        if found is not None and (found.expiration or 0) - self.clock() > self.lifetime / 2:
            return found
        try:
            fresh = self.issue(config.role, config.name, self.lifetime)
        except Exception:
            log.exception("could not issue credentials for role %s", config.role)
            return found
        if fresh is not None:
            self._cache[key] = fresh
        return fresh


def refreshes(config: FunctionConfig) -> bool:
    """Whether the function's runtime takes newer credentials while it stays warm."""
    return config.runtime.startswith(REFRESHING_RUNTIMES)


def expiring(credentials: Credentials | None, config: FunctionConfig,
             now: float | None = None) -> bool:
    """Whether `credentials` may expire before an invocation that starts now has ended."""
    if credentials is None or credentials.expiration is None:
        return False
    left = credentials.expiration - (time.time() if now is None else now)
    return left < config.timeout + EXPIRY_MARGIN


def _expiry_text(expiration: float | None) -> str:
    stamp = dt.datetime.fromtimestamp(expiration or 0, dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def environment(credentials: Credentials | None) -> dict[str, str]:
    """The variables that carry a set into a sandbox."""
    if credentials is None:
        return {}
    env = {"AWS_ACCESS_KEY_ID": credentials.access_key,
           "AWS_SECRET_ACCESS_KEY": credentials.secret_key}
    if credentials.session_token:
        env["AWS_SESSION_TOKEN"] = credentials.session_token
        env["AWS_CREDENTIAL_EXPIRATION"] = _expiry_text(credentials.expiration)
    return env


def refresh_header(credentials: Credentials) -> str:
    """The header line that hands a newer set to a warm sandbox of berth's runtimes."""
    return f"{REFRESH_HEADER}: {json.dumps(environment(credentials))}\r\n"
