"""The ECS exceptions, worded as ECS words them; handlers raise these where the fact is known."""
from __future__ import annotations

from ..api.errors import ServiceError


def client(message: str) -> ServiceError:
    return ServiceError("ClientException", message)


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def cluster_not_found() -> ServiceError:
    return ServiceError("ClusterNotFoundException", "Cluster not found.")


def service_not_found() -> ServiceError:
    return ServiceError("ServiceNotFoundException", "Service not found.")


def service_not_active() -> ServiceError:
    return ServiceError("ServiceNotActiveException", "Service was not ACTIVE.")


def task_definition_not_found() -> ServiceError:
    return client("Unable to describe task definition.")


def resource_not_found() -> ServiceError:
    return ServiceError("ResourceNotFoundException", "The specified resource wasn't found.")


def target_not_found(target: str) -> ServiceError:
    return ServiceError("TargetNotFoundException", f"Could not find {target}.")
