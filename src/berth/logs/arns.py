"""Naming of Logs resources: the ARNs AWS forms for groups, streams and destinations, and
the reverse mapping from a `logGroupIdentifier` or `resourceArn` back to a group name."""
from __future__ import annotations

from typing import Any

from ..api.app import RequestContext
from ..api.errors import ServiceError


def group_arn(ctx: RequestContext, name: str) -> str:
    return f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:{name}"


def stream_arn(ctx: RequestContext, group: str, stream: str) -> str:
    return f"{group_arn(ctx, group)}:log-stream:{stream}"


def destination_arn(ctx: RequestContext, name: str) -> str:
    return f"arn:aws:logs:{ctx.region}:{ctx.account_id}:destination:{name}"


def destination_name_from_arn(ctx: RequestContext, arn: str) -> str | None:
    """The destination an ARN of this region and account names, else None."""
    parts = arn.split(":", 6)
    if (len(parts) != 7 or parts[:3] != ["arn", "aws", "logs"] or parts[5] != "destination"
            or parts[3] != ctx.region or parts[4] != ctx.account_id):
        return None
    return parts[6] or None


def group_name_from_arn(ctx: RequestContext, arn: str) -> str | None:
    """The group an ARN of this region and account names (`:*` allowed), else None."""
    parts = arn.split(":", 6)
    if len(parts) != 7 or parts[:3] != ["arn", "aws", "logs"] or parts[5] != "log-group":
        return None
    if parts[3] != ctx.region or parts[4] != ctx.account_id:
        return None
    name = parts[6]
    if name.endswith(":*"):
        name = name[:-2]
    # Group names cannot hold ':'; anything after one (e.g. ':log-stream:x') is not a group.
    return name if name and ":" not in name else None


def resolve_group(ctx: RequestContext, req: dict[str, Any]) -> str:
    """The group named by `logGroupName` or `logGroupIdentifier` (a name or an ARN)."""
    name, ident = req.get("logGroupName"), req.get("logGroupIdentifier")
    if name and ident:
        raise ServiceError("ValidationException",
                           "LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if name:
        return str(name)
    if not ident:
        raise ServiceError("InvalidParameterException",
                           "Either logGroupName or logGroupIdentifier must be specified.")
    return resolve_identifier(ctx, str(ident))


def resolve_identifier(ctx: RequestContext, ident: str) -> str:
    """The group a `logGroupIdentifier` names: a group name, or a group ARN of this account
    and region (ResourceNotFoundException for any other ARN)."""
    if not ident.startswith("arn:"):
        return ident
    resolved = group_name_from_arn(ctx, ident)
    if resolved is None:
        raise ServiceError("ResourceNotFoundException",
                           "The specified log group does not exist.")
    return resolved
