"""Who signs a request: berth's admin user, or a session of an assumed role (or of the admin,
from GetSessionToken). Names and ids are AWS's: `arn:aws:iam::ACCOUNT:user/admin` with an
`AIDA…` user id; `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION` with `AROA…:SESSION`.
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from ..api.errors import ServiceError
from ..api.principal import Principal

ADMIN_USER = "admin"
# arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME, as IAM spells role ARNs.
_ROLE_ARN = re.compile(r"arn:(aws[a-zA-Z-]*):iam::(\d{12}):role/((?:[\x21-\x7e]+/)*)"
                       r"([\w+=,.@-]{1,64})")


@dataclass(frozen=True)
class Role:
    arn: str
    partition: str
    account: str
    name: str


def unique_id(prefix: str, seed: str) -> str:
    """An IAM unique id (AIDA…, AROA…): the prefix and 17 characters, stable per seed."""
    digest = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode()
    return prefix + digest[:17]


def admin(account: str) -> Principal:
    arn = f"arn:aws:iam::{account}:user/{ADMIN_USER}"
    return Principal(arn, unique_id("AIDA", arn), account)


def parse_role(arn: str) -> Role:
    m = _ROLE_ARN.fullmatch(arn)
    if m is None:
        raise ServiceError("ValidationError",
                           f"{arn} is not a valid role ARN: expected "
                           "arn:aws:iam::ACCOUNT:role/NAME")
    return Role(arn, m.group(1), m.group(2), m.group(4))


def assumed_role(role: Role, session_name: str) -> Principal:
    return Principal(f"arn:{role.partition}:sts::{role.account}:assumed-role/{role.name}/"
                     f"{session_name}",
                     f"{unique_id('AROA', role.arn)}:{session_name}", role.account,
                     role_arn=role.arn, temporary=True)


def session_of(principal: Principal) -> Principal:
    """The principal of a GetSessionToken session: the same user, temporarily."""
    return Principal(principal.arn, principal.user_id, principal.account, principal.role_arn,
                     temporary=True)
