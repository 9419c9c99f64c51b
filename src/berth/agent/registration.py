"""Joining a cluster: RegisterContainerInstance with this host's resources and attributes.

An agent that registered before (its state file remembers the instance ARN) registers as the
same instance again, so its tasks stay its own across restarts. Its identity document names a
stable instance id (from the machine id and data dir), so even a lost state file finds the
same instance while it is still registered.
"""
from __future__ import annotations

import hashlib
import json
import logging
import socket
from importlib import metadata
from pathlib import Path
from typing import Any

from .client import ApiError, ControlPlane
from .resources import HostResources
from .state_file import AgentState

log = logging.getLogger(__name__)


def agent_version() -> str:
    try:
        return metadata.version("berth")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def instance_id(data_dir: Path) -> str:
    """A stable id for this host and data dir, shaped like an EC2 instance id."""
    machine = ""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            machine = Path(path).read_text().strip()
            break
        except OSError:
            continue
    seed = f"{machine or socket.gethostname()}:{Path(data_dir).resolve()}"
    return "i-" + hashlib.sha256(seed.encode()).hexdigest()[:17]


def request(cluster: str, resources: HostResources, attributes: dict[str, str | None],
            driver: str, data_dir: Path, region: str, known_arn: str | None, zone: str
            ) -> dict[str, Any]:
    """RegisterContainerInstance's input. The identity document carries what ECS turns into
    attributes: `availabilityZone` becomes ecs.availability-zone (spread by zone needs it)."""
    body: dict[str, Any] = {
        "cluster": cluster, "totalResources": resources.as_ecs(),
        "attributes": [{"name": k, "value": v} if v is not None else {"name": k}
                       for k, v in sorted(attributes.items())],
        "versionInfo": {"agentVersion": agent_version(), "agentHash": f"berth-{driver}",
                        "dockerVersion": f"berth-{driver}"},
        "instanceIdentityDocument": json.dumps({
            "instanceId": instance_id(data_dir), "region": region,
            "availabilityZone": zone, "instanceType": f"berth-{driver}"}),
    }
    if known_arn:
        body["containerInstanceArn"] = known_arn
    return body


async def register(api: ControlPlane, state: AgentState, cluster: str,
                   resources: HostResources, attributes: dict[str, str | None], driver: str,
                   data_dir: Path, zone: str) -> str:
    """Register (again) and remember the instance ARN. Raises Unreachable, ApiError."""
    known = state.instance_arn if state.cluster == cluster else None
    body = request(cluster, resources, attributes, driver, data_dir, api.region, known, zone)
    try:
        answer = await api.ecs("RegisterContainerInstance", body)
    except ApiError as exc:
        if not known or exc.code not in ("InvalidParameterException", "ClientException"):
            raise
        log.warning("could not register again as %s (%s); registering as a new instance",
                    known, exc.message)
        body.pop("containerInstanceArn")
        answer = await api.ecs("RegisterContainerInstance", body)
    arn = answer["containerInstance"]["containerInstanceArn"]
    state.instance_arn, state.cluster, state.endpoint = arn, cluster, api.endpoint
    state.save()
    log.info("registered as %s in cluster %s (%d CPU units, %d MiB)", arn, cluster,
             resources.cpu, resources.memory)
    return arn
