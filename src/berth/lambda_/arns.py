"""Function references as Lambda accepts them (name, partial ARN, full ARN, with a qualifier)
and the ARNs berth answers with, formed exactly as AWS forms them."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..api.errors import ServiceError

LATEST = "$LATEST"

_REF = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?")


@dataclass(frozen=True)
class FunctionRef:
    """A parsed FunctionName: the name plus whatever the caller spelled out around it."""

    name: str
    qualifier: str | None = None
    region: str | None = None
    account: str | None = None


def parse_function_ref(value: str) -> FunctionRef:
    m = _REF.fullmatch(value)
    if m is None or len(m.group("name")) > 64:
        raise ServiceError("ValidationException",
                           f"1 validation error detected: Value '{value}' at 'functionName' "
                           "failed to satisfy constraint: Member must satisfy regular "
                           "expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}"
                           r"(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)"
                           r"(:(\$LATEST|[a-zA-Z0-9-_]+))?")
    return FunctionRef(m.group("name"), m.group("qualifier"), m.group("region"),
                       m.group("account"))


def function_ref(value: str, region: str, account_id: str,
                 qualifier: str | None = None) -> FunctionRef:
    """Parse `value` for a request in `region`/`account_id`, merging a separate Qualifier.

    A qualifier in the ARN and a different Qualifier parameter contradict each other; an ARN of
    another region or account cannot be reached from this endpoint.
    """
    ref = parse_function_ref(value)
    if ref.region is not None and ref.region != region:
        raise ServiceError("InvalidParameterValueException",
                           f"Functions from '{ref.region}' are not reachable in this region "
                           f"('{region}')")
    if ref.account is not None and ref.account != account_id:
        raise ServiceError("AccessDeniedException",
                           f"The account {ref.account} is not the caller's account.",
                           status=403)
    if qualifier is not None and ref.qualifier is not None and qualifier != ref.qualifier:
        raise ServiceError("InvalidParameterValueException",
                           "The derived qualifier from the function name does not match the "
                           "specified qualifier.")
    return FunctionRef(ref.name, qualifier if qualifier is not None else ref.qualifier,
                       region, account_id)


def function_arn(region: str, account_id: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account_id}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn
