"""Reads the operations share: a function, a version, an alias, each answering AWS's error when
it is missing. They take an open connection, so a caller's reads and writes stay one
transaction."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..api.errors import ServiceError
from ..state.store import VersionConflict
from .arns import LATEST, FunctionRef, function_arn
from .resolve import function_not_found
from .schema import lambda_aliases, lambda_functions, lambda_versions

Row = sa.Row[Any]


# Built once: on every read's path, building a statement costs more than running it.
_FUNCTION = sa.select(lambda_functions).where(
    lambda_functions.c.region == sa.bindparam("region"),
    lambda_functions.c.name == sa.bindparam("name"))
_VERSION = sa.select(lambda_versions).where(
    lambda_versions.c.region == sa.bindparam("region"),
    lambda_versions.c.function_name == sa.bindparam("name"),
    lambda_versions.c.function_version == sa.bindparam("version"))
_ALIAS = sa.select(lambda_aliases).where(
    lambda_aliases.c.region == sa.bindparam("region"),
    lambda_aliases.c.function_name == sa.bindparam("name"),
    lambda_aliases.c.name == sa.bindparam("alias"))


def get_function(conn: Connection, ref: FunctionRef) -> Row:
    row = conn.execute(_FUNCTION, {"region": ref.region, "name": ref.name}).first()
    if row is None:
        raise function_not_found(function_arn(ref.region or "", ref.account or "", ref.name))
    return row


def find_version(conn: Connection, region: str, name: str, version: str) -> Row | None:
    return conn.execute(_VERSION, {"region": region, "name": name,
                                   "version": version}).first()


def get_version(conn: Connection, ref: FunctionRef, version: str) -> Row:
    row = find_version(conn, ref.region or "", ref.name, version)
    if row is None:
        raise function_not_found(function_arn(ref.region or "", ref.account or "", ref.name,
                                              version))
    return row


def find_alias(conn: Connection, region: str, name: str, alias: str) -> Row | None:
    return conn.execute(_ALIAS, {"region": region, "name": name, "alias": alias}).first()


def get_qualified(conn: Connection, ref: FunctionRef) -> Row:
    """The version row a qualifier names: $LATEST, a number, or an alias's primary version."""
    qualifier = ref.qualifier or LATEST
    get_function(conn, ref)
    if qualifier == LATEST or qualifier.isdigit():
        return get_version(conn, ref, qualifier)
    alias = find_alias(conn, ref.region or "", ref.name, qualifier)
    if alias is None:
        raise function_not_found(function_arn(ref.region or "", ref.account or "", ref.name,
                                              qualifier))
    return get_version(conn, ref, alias.function_version)


def check_qualifier_exists(conn: Connection, ref: FunctionRef) -> str:
    """The qualifier, verified to name a version or alias of the function ($LATEST if none)."""
    get_qualified(conn, ref)
    return ref.qualifier or LATEST


def precondition_failed(what: str = "GetFunction") -> ServiceError:
    return ServiceError("PreconditionFailedException",
                        "The Revision Id provided does not match the latest Revision Id. "
                        f"Call the {what} API to retrieve the latest Revision Id")


@contextmanager
def one_update_at_a_time(arn: str) -> Iterator[None]:
    """A concurrent change won the compare-and-swap (or inserted the same key first): answer
    as Lambda does to overlapping updates, so the caller retries on fresh state."""
    try:
        yield
    except (VersionConflict, sa.exc.IntegrityError):
        raise ServiceError("ResourceConflictException",
                           "The operation cannot be performed at this time. An update is in "
                           f"progress for resource: {arn}") from None


def current_revisions(conn: Connection, functions: set[tuple[str, str]]
                      ) -> dict[tuple[str, str, str], str]:
    """(region, name, version) -> RevisionId of every version of `functions` (region, name)
    that still exists: what sandboxes of those functions may still run."""
    names = sorted({name for _, name in functions})
    found: dict[tuple[str, str, str], str] = {}
    for start in range(0, len(names), 500):
        rows = conn.execute(sa.select(
            lambda_versions.c.region, lambda_versions.c.function_name,
            lambda_versions.c.function_version, lambda_versions.c.revision_id).where(
            lambda_versions.c.function_name.in_(names[start:start + 500])))
        for region, name, version, revision in rows:
            if (region, name) in functions:
                found[(region, name, version)] = revision
    return found
