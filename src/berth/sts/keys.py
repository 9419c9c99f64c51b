"""The keys berth's API accepts: the admin's long-term pair, and temporary credentials issued
by STS (an `ASIA…` key with its session token). The API layer asks for a key's secret while
it verifies a signature, and for its principal once the signature holds."""
from __future__ import annotations

from ..api.principal import Principal
from .principals import admin
from .sessions import ACCESS_KEY_PREFIX, Sessions, invalid_token


class Keys:
    def __init__(self, access_key: str, secret_key: str, account: str,
                 sessions: Sessions) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.admin = admin(account)
        self.sessions = sessions

    def secret(self, access_key: str, token: str | None) -> str | None:
        """The secret to verify a signature with; None for an unknown key. A session token
        that is forged, of other credentials, or expired raises AWS's error."""
        if access_key == self.access_key:
            if token:
                raise invalid_token()   # long-term keys carry no session token
            return self.secret_key
        if access_key.startswith(ACCESS_KEY_PREFIX):
            return self.sessions.resolve(access_key, token)[0]
        return None

    def principal(self, access_key: str, token: str | None) -> Principal:
        """Who signed with a key whose signature was verified."""
        if access_key == self.access_key:
            return self.admin
        return self.sessions.resolve(access_key, token)[1]
