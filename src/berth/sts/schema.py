"""Tables of STS: the keys that sign and derive temporary credentials.

A session token carries everything about its session and a MAC under one of these keys; its
secret is derived from the same key. No session is stored: any replica sharing the database
verifies any token, and nothing secret of a session is ever written anywhere.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..state.store import metadata

sts_keys = sa.Table(
    "sts_keys", metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("secret", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)
