"""Temporary credentials: issued for a principal, resolved again from the access key and the
session token a request carries.

A session token is the session itself, sealed: its principal, access key id and expiry, with a
MAC under a key kept in the store (`sts_keys`). The secret access key is derived from the same
key and the same sealed bytes. So nothing of a session is stored, issuing costs two HMACs
(no database write on the path that starts a function), and every server replica sharing the
database resolves every token. A token that does not open, or opens to another access key, is
"invalid"; one past its expiry is "expired", in AWS's words.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa

from ..api.errors import ServiceError
from ..api.principal import Principal
from ..state.store import Store
from .schema import sts_keys

log = logging.getLogger(__name__)

ACCESS_KEY_PREFIX = "ASIA"
_RESOLVED_CACHE = 4096          # tokens kept resolved (a token is valid for hours)
_RELOAD_EVERY = 5.0             # seconds between store reads for an unknown key id

INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"


def invalid_token() -> ServiceError:
    return ServiceError("UnrecognizedClientException", INVALID_TOKEN, status=403)


@dataclass(frozen=True)
class TemporaryCredentials:
    """An `ASIA…` access key with its secret and session token, valid until `expiration`
    (epoch seconds). The secret and the token never appear in a repr, hence in no log."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: float
    principal: Principal

    def remaining(self, now: float | None = None) -> float:
        return self.expiration - (time.time() if now is None else now)


@dataclass(frozen=True)
class _Resolved:
    access_key_id: str
    secret: str = field(repr=False)
    expiration: float
    principal: Principal


class Sessions:
    """Issues and resolves temporary credentials; thread-safe. `load` reads (or creates) the
    keys from the store: call it off the event loop before the first request."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._keys: dict[str, bytes] = {}
        self._current: str | None = None
        self._lock = threading.Lock()
        self._resolved: dict[str, _Resolved] = {}
        self._reloaded = 0.0

    def load(self) -> None:
        with self._lock:
            if self._current is None:
                self._read_keys(create=True)

    def _read_keys(self, create: bool) -> None:
        """Every key of the store; the oldest signs. Creates the first when there is none
        (replicas racing here each insert one: all of them verify)."""
        with self.store.read() as conn:
            rows = conn.execute(sa.select(sts_keys).order_by(sts_keys.c.created,
                                                             sts_keys.c.id)).all()
        if not rows and create:
            key_id = secrets.token_hex(4)
            try:
                with self.store.write() as conn:
                    conn.execute(sts_keys.insert().values(
                        id=key_id, secret=secrets.token_bytes(32), created=time.time()))
            except sa.exc.IntegrityError:
                pass
            with self.store.read() as conn:
                rows = conn.execute(sa.select(sts_keys).order_by(sts_keys.c.created,
                                                                 sts_keys.c.id)).all()
        self._keys = {row.id: bytes(row.secret) for row in rows}
        self._current = rows[0].id if rows else None

    def issue(self, principal: Principal, duration: float) -> TemporaryCredentials:
        if self._current is None:
            self.load()
        assert self._current is not None
        key_id = self._current
        key = self._keys[key_id]
        # 16 characters of A-Z and 2-7, as AWS's key ids are spelled.
        access_key = ACCESS_KEY_PREFIX + base64.b32encode(secrets.token_bytes(10)).decode()
        expiration = int(self.clock() + duration)
        sealed = orjson.dumps({"v": 1, "k": key_id, "a": access_key, "x": expiration,
                               "p": principal.arn, "u": principal.user_id,
                               "c": principal.account, "r": principal.role_arn})
        token = (base64.urlsafe_b64encode(sealed).decode().rstrip("=") + "."
                 + base64.urlsafe_b64encode(_mac(key, b"token", sealed)).decode().rstrip("="))
        return TemporaryCredentials(access_key, _secret(key, sealed), token, expiration,
                                    principal)

    def resolve(self, access_key: str, token: str | None) -> tuple[str, Principal]:
        """The secret and principal of temporary credentials, or the AWS error for a token
        that is missing, forged, of another key, or expired."""
        if not token:
            raise invalid_token()
        found = self._resolved.get(token)
        if found is None:
            found = self._open(token)
            if len(self._resolved) >= _RESOLVED_CACHE:
                self._resolved.clear()
            self._resolved[token] = found
        if found.access_key_id != access_key:
            raise invalid_token()
        if self.clock() >= found.expiration:
            raise ServiceError("ExpiredTokenException", EXPIRED_TOKEN, status=403)
        return found.secret, found.principal

    def _open(self, token: str) -> _Resolved:
        body, _, tag = token.partition(".")
        try:
            sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            given = base64.urlsafe_b64decode(tag + "=" * (-len(tag) % 4))
            fields = orjson.loads(sealed)
            key = self._key(str(fields["k"]))
            if key is None or not hmac.compare_digest(_mac(key, b"token", sealed), given):
                raise ValueError("not sealed by berth")
            principal = Principal(str(fields["p"]), str(fields["u"]), str(fields["c"]),
                                  fields["r"], temporary=True)
            return _Resolved(str(fields["a"]), _secret(key, sealed), float(fields["x"]),
                             principal)
        except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise invalid_token() from None

    def _key(self, key_id: str) -> bytes | None:
        key = self._keys.get(key_id)
        if key is None and time.monotonic() - self._reloaded > _RELOAD_EVERY:
            # A key another replica made at its first start, maybe.
            with self._lock:
                self._reloaded = time.monotonic()
                self._read_keys(create=False)
            key = self._keys.get(key_id)
        return key


def _mac(key: bytes, purpose: bytes, sealed: bytes) -> bytes:
    return hmac.new(key, purpose + b"\0" + sealed, hashlib.sha256).digest()


def _secret(key: bytes, sealed: bytes) -> str:
    return base64.b64encode(_mac(key, b"secret", sealed)).decode()[:40]
