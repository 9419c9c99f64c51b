"""Fixtures shared by the whole test suite."""
from __future__ import annotations

from typing import Iterator

import pytest

from postgres import PostgresUnavailable, find_bindir, postgres_server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL server for the session, as a SQLAlchemy URL.

    Fails (never skips) without PostgreSQL: `make test` installs it, so its absence is a
    broken setup, not an optional feature.
    """
    try:
        find_bindir()
        problem = ""
    except PostgresUnavailable as exc:
        problem = str(exc)
    if problem:     # failed outside the except block, so the report is just the message
        pytest.fail(problem, pytrace=False)
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """A private Docker Engine for the session, as its `unix://` URL.

    Skips only where dockerd cannot run at all (not root); fails without dockerd installed,
    since `make install` installs it.
    """
    import os

    from dockerd import DockerUnavailable, docker_engine, find_dockerd
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    try:
        find_dockerd()
        problem = ""
    except DockerUnavailable as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)
    with docker_engine() as url:
        yield url
