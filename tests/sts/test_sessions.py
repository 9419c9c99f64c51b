"""Temporary credentials: issued, resolved again by any store sharing the key, refused when
forged, swapped, expired or unknown, and never shown in a repr."""
from __future__ import annotations

from pathlib import Path

import pytest

from berth.api.errors import ServiceError
from berth.state.store import Store
from berth.sts import schema  # noqa: F401  (registers the tables)
from berth.sts.principals import admin, assumed_role, parse_role, session_of
from berth.sts.sessions import Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'berth.db'}")
    s.create_all()
    yield s
    s.dispose()


def _error(fn, *args) -> ServiceError:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError) as info:
        fn(*args)
    return info.value


def test_issued_credentials_resolve_to_their_principal_on_any_replica(store: Store) -> None:
    clock = Clock()
    role = parse_role("arn:aws:iam::000000000000:role/service-role/app-role")
    principal = assumed_role(role, "my-function")
    assert principal.arn == "arn:aws:sts::000000000000:assumed-role/app-role/my-function"
    assert principal.user_id.startswith("AROA") and principal.user_id.endswith(":my-function")
    creds = Sessions(store, clock).issue(principal, 3600)
    assert creds.access_key_id.startswith("ASIA") and len(creds.access_key_id) == 20
    assert len(creds.secret_access_key) == 40 and creds.expiration == clock.now + 3600
    other = Sessions(store, clock)     # another replica: the same key, from the store
    other.load()
    secret, resolved = other.resolve(creds.access_key_id, creds.session_token)
    assert secret == creds.secret_access_key
    assert resolved.arn == principal.arn and resolved.role_arn == role.arn
    assert resolved.temporary and resolved.user_id == principal.user_id
    text = repr(creds)
    assert creds.secret_access_key not in text and creds.session_token not in text


def test_expired_forged_swapped_and_missing_tokens_are_refused(store: Store) -> None:
    clock = Clock()
    sessions = Sessions(store, clock)
    a = sessions.issue(session_of(admin("000000000000")), 900)
    b = sessions.issue(session_of(admin("000000000000")), 900)
    invalid = "The security token included in the request is invalid."
    for key, token in ((a.access_key_id, b.session_token), (a.access_key_id, None),
                       (a.access_key_id, a.session_token[:-2] + "xx"),
                       (a.access_key_id, "garbage"), (a.access_key_id, "a.b.c")):
        err = _error(sessions.resolve, key, token)
        assert (err.code, err.message, err.status) == ("UnrecognizedClientException",
                                                       invalid, 403)
    clock.now += 901
    err = _error(sessions.resolve, a.access_key_id, a.session_token)
    assert (err.code, err.status) == ("ExpiredTokenException", 403)
    assert err.message == "The security token included in the request is expired"


def test_a_token_sealed_under_another_store_key_is_invalid(store: Store,
                                                         tmp_path: Path) -> None:
    elsewhere = Store(f"sqlite:///{tmp_path / 'other.db'}")
    elsewhere.create_all()
    try:
        foreign = Sessions(elsewhere).issue(admin("000000000000"), 900)
    finally:
        elsewhere.dispose()
    err = _error(Sessions(store).resolve, foreign.access_key_id, foreign.session_token)
    assert err.code == "UnrecognizedClientException"


def test_role_arns_are_checked() -> None:
    for bad in ("arn:aws:iam::000000000000:user/bob", "arn:aws:iam::0:role/x", "role/x",
                "arn:aws:iam::000000000000:role/"):
        assert _error(parse_role, bad).code == "ValidationError"
    role = parse_role("arn:aws-cn:iam::123456789012:role/a/b/c")
    assert (role.partition, role.account, role.name) == ("aws-cn", "123456789012", "c")
