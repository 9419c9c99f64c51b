"""RunTask's idempotency: a `clientToken` (the AWS SDKs and CLI send one on every RunTask, and
retry with it) runs its tasks at most once per cluster within 24 hours.

The same token with the same parameters answers what the first request placed (described as
they are now); with other parameters it is a ConflictException. The token's row is written in
the same transaction as the first tasks it places (and takes the later ones of the same request
in theirs), so a crash can never leave tasks placed without their token, nor a token without
its tasks. Two requests racing with one token: the second commit finds the row taken and rolls
back, and its request answers the first one's result.
"""
from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..api.errors import ServiceError
from ..state.store import Store
from . import errors
from .clock import now
from .schema import client_tokens

TTL = 24 * 3600.0
MAX_LENGTH = 64

# Bind names apart from the column names: UPDATE reserves those for its SET clause.
_KEY = (client_tokens.c.region == sa.bindparam("k_region"),
        client_tokens.c.cluster == sa.bindparam("k_cluster"),
        client_tokens.c.token == sa.bindparam("k_token"))
_FIND = sa.select(client_tokens).where(*_KEY)
_BRIEF = sa.select(client_tokens.c.request_hash, client_tokens.c.created_at).where(*_KEY)
_OWNER = sa.select(client_tokens.c.owner).where(*_KEY)
_INSERT = client_tokens.insert()


@dataclass(frozen=True)
class ClientToken:
    """One RunTask request's claim on its token."""
    region: str
    cluster: str
    token: str
    request_hash: str
    owner: str          # the request id: which request's commits may add to the row
    task_arns: list[str] = field(default_factory=list)   # what its commits recorded so far


@dataclass(frozen=True)
class Earlier:
    """What the first request with this token placed: task ARNs and failures."""
    task_arns: list[str]
    failures: list[dict[str, str]]


class Taken(Exception):
    """Another request with the same token committed first."""


def begin(store: Store, region: str, cluster: str, token: str, req: dict[str, Any],
          owner: str) -> ClientToken | Earlier:
    """Check the token; the earlier result if it was used with the same parameters, else the
    claim this request commits with. ConflictException for other parameters."""
    if not 1 <= len(token) <= MAX_LENGTH or any(not 33 <= ord(c) <= 126 for c in token):
        raise errors.invalid(f"clientToken must be 1 to {MAX_LENGTH} ASCII characters from "
                             "33 to 126.")
    params = {k: v for k, v in req.items() if k != "clientToken"}
    digest = hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()
    key = _key(region, cluster, token)
    found = store.rows(_BRIEF, key)     # the usual case, a new token: one prepared read
    if not found:
        return ClientToken(region, cluster, token, digest, owner)
    request_hash, created_at = found[0]
    if created_at < now() - TTL:
        with store.write() as conn:
            conn.execute(client_tokens.delete().where(*_KEY), key)
        return ClientToken(region, cluster, token, digest, owner)
    with store.read() as conn:
        row = conn.execute(_FIND, key).one()
    if request_hash != digest:
        raise ServiceError("ConflictException", "The specified client token has already been "
                           "used in a request with different parameters.",
                           resourceIds=list(row.task_arns))
    return Earlier(list(row.task_arns), list(row.failures))


def record(store: Store, conn: Connection, claim: ClientToken, task_arns: list[str]) -> None:
    """In the transaction that inserts tasks of the claim's request: add them to its row, or
    create the row; Taken if another request holds the token."""
    key = _key(claim.region, claim.cluster, claim.token)
    owner = conn.execute(_OWNER, key).scalar()
    if owner is None:
        # SQLite: this transaction holds the one write lock, so the read above is the truth.
        # PostgreSQL: a rival may insert meanwhile; its row shows as a key violation, which
        # a savepoint keeps from aborting the whole transaction before it rolls back.
        try:
            with nullcontext() if store.is_sqlite else conn.begin_nested():
                store.execute_many(conn, _INSERT, [{
                    "region": claim.region, "cluster": claim.cluster, "token": claim.token,
                    "request_hash": claim.request_hash, "owner": claim.owner,
                    "task_arns": [*claim.task_arns, *task_arns], "failures": [],
                    "created_at": now()}])
        except sa.exc.IntegrityError:
            raise Taken from None
    elif owner == claim.owner:
        conn.execute(client_tokens.update().where(*_KEY).values(
            task_arns=[*claim.task_arns, *task_arns]), key)
    else:
        raise Taken
    claim.task_arns.extend(task_arns)


def finish(store: Store, claim: ClientToken, failures: list[dict[str, str]]) -> None:
    """Keep the request's failures with its token (created here when nothing was placed)."""
    key = _key(claim.region, claim.cluster, claim.token)
    try:
        with store.write() as conn:
            done = conn.execute(client_tokens.update().where(
                *_KEY, client_tokens.c.owner == claim.owner).values(failures=failures), key)
            if not done.rowcount and conn.execute(_OWNER, key).scalar() is None:
                conn.execute(_INSERT, {
                    "region": claim.region, "cluster": claim.cluster, "token": claim.token,
                    "request_hash": claim.request_hash, "owner": claim.owner, "task_arns": [],
                    "failures": failures, "created_at": now()})
    except sa.exc.IntegrityError:
        pass    # a request with the same token recorded its own result first


def _key(region: str, cluster: str, token: str) -> dict[str, str]:
    return {"k_region": region, "k_cluster": cluster, "k_token": token}
