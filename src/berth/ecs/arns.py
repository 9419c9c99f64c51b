"""ECS identifiers: ARNs as AWS forms them, the ids inside them, and reading them back.

Every ECS resource is addressed either by a short name/id or by its full ARN; the helpers here
turn either form into the parts the store keys rows by.
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from ..api.app import random_uuid
from ..api.errors import ServiceError

PREFIX = "arn:aws:ecs:"
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
_ARN_RE = re.compile(r"arn:aws:ecs:([a-z0-9-]+):(\d{12}):([a-z-]+)/(.+)")


def new_id() -> str:
    """The 32-hex id of tasks and container instances: 12 hex digits of milliseconds since the
    epoch, then 80 random bits (the layout of a UUIDv7, without its version digits). Ids made
    close in time sort together, so a RunTask's new rows land on the same few index pages
    instead of one random page each."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.randbits(80):020x}"


def new_deployment_id() -> str:
    return "ecs-svc/" + "".join(str(secrets.randbelow(10)) for _ in range(19))


def base(region: str, account: str) -> str:
    return f"{PREFIX}{region}:{account}:"


def cluster_arn(region: str, account: str, name: str) -> str:
    return f"{base(region, account)}cluster/{name}"


def instance_arn(region: str, account: str, cluster: str, ident: str) -> str:
    return f"{base(region, account)}container-instance/{cluster}/{ident}"


def task_arn(region: str, account: str, cluster: str, ident: str) -> str:
    return f"{base(region, account)}task/{cluster}/{ident}"


def container_arn(region: str, account: str, cluster: str, task_id: str) -> str:
    return f"{base(region, account)}container/{cluster}/{task_id}/{random_uuid()}"


def task_definition_arn(region: str, account: str, family: str, revision: int) -> str:
    return f"{base(region, account)}task-definition/{family}:{revision}"


def service_arn(region: str, account: str, cluster: str, name: str) -> str:
    return f"{base(region, account)}service/{cluster}/{name}"


@dataclass(frozen=True)
class Arn:
    region: str
    account: str
    kind: str       # cluster, container-instance, task, task-definition, service
    rest: str       # what follows "kind/"

    @property
    def parts(self) -> list[str]:
        return self.rest.split("/")


def parse(text: str) -> Arn | None:
    m = _ARN_RE.fullmatch(text)
    if m is None:
        return None
    return Arn(m.group(1), m.group(2), m.group(3), m.group(4))


def invalid_arn(text: str) -> ServiceError:
    return ServiceError("InvalidParameterException", f"The ARN provided is invalid: {text}")


def cluster_name(ident: str | None) -> str:
    """The cluster a request names (name or ARN); `default` when omitted, as ECS does."""
    if not ident:
        return "default"
    if ident.startswith(PREFIX):
        arn = parse(ident)
        if arn is None or arn.kind != "cluster":
            raise invalid_arn(ident)
        return arn.rest
    return ident


def member_id(ident: str, kind: str) -> tuple[str | None, str]:
    """(cluster from the ARN or None, id) for a task or container instance given by id or ARN.

    Old-format ARNs (`task/<id>`, without the cluster) are accepted too.
    """
    if ident.startswith(PREFIX):
        arn = parse(ident)
        if arn is None or arn.kind != kind:
            raise invalid_arn(ident)
        parts = arn.parts
        if len(parts) == 1:
            return None, parts[0]
        return parts[0], parts[-1]
    return None, ident


def service_name(ident: str) -> tuple[str | None, str]:
    """(cluster from the ARN or None, name) for a service given by name or ARN."""
    if ident.startswith(PREFIX):
        arn = parse(ident)
        if arn is None or arn.kind != "service":
            raise invalid_arn(ident)
        parts = arn.parts
        return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    return None, ident


def task_definition_ref(ident: str) -> tuple[str, int | None]:
    """(family, revision or None) from `family`, `family:revision` or an ARN."""
    text = ident
    if ident.startswith(PREFIX):
        arn = parse(ident)
        if arn is None or arn.kind != "task-definition":
            raise ServiceError("ClientException", "Invalid revision number. Number: " + ident)
        text = arn.rest
    family, sep, rev = text.partition(":")
    if not sep:
        return family, None
    if not rev.isdigit() or int(rev) < 1:
        raise ServiceError("ClientException", f"Invalid revision number. Number: {rev}")
    return family, int(rev)
