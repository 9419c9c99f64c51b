"""Checks on a function's configuration as Lambda makes them, and the stored form of it.

Pure functions from request members to column values; they raise the error AWS answers for
the same input. CreateFunction and UpdateFunctionConfiguration share them.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from ..api.errors import ServiceError
from . import limits

SUPPORTED_RUNTIMES = (
    "python3.9", "python3.10", "python3.11", "python3.12", "python3.13",
    "nodejs18.x", "nodejs20.x", "nodejs22.x",
    "provided", "provided.al2", "provided.al2023",
)
# Runtimes AWS itself has retired for creating and updating functions.
DEPRECATED_RUNTIMES = frozenset({
    "nodejs", "nodejs4.3", "nodejs4.3-edge", "nodejs6.10", "nodejs8.10", "nodejs10.x",
    "nodejs12.x", "nodejs14.x", "nodejs16.x", "python2.7", "python3.6", "python3.7",
    "python3.8", "dotnetcore1.0", "dotnetcore2.0", "dotnetcore2.1", "dotnetcore3.1",
    "dotnet6", "go1.x", "ruby2.5", "ruby2.7", "java8",
})

RESERVED_ENVIRONMENT = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})

# Settings berth keeps and echoes back without acting on them.
ECHOED = ("TracingConfig", "DeadLetterConfig", "KMSKeyArn", "VpcConfig", "LoggingConfig")


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message)


def _range_error(value: int, member: str, low: int, high: int) -> ServiceError:
    bound = (f"greater than or equal to {low}" if value < low
             else f"less than or equal to {high}")
    return ServiceError("ValidationException",
                        f"1 validation error detected: Value '{value}' at '{member}' failed "
                        f"to satisfy constraint: Member must have value {bound}")


def check_runtime(runtime: str) -> None:
    if runtime in SUPPORTED_RUNTIMES:
        return
    if runtime in DEPRECATED_RUNTIMES:
        raise invalid(f"The runtime parameter of {runtime} is no longer supported for creating "
                      "or updating AWS Lambda functions. We recommend you use a supported "
                      "runtime while creating or updating functions.")
    raise invalid(f"The runtime parameter of {runtime} is not supported for creating or "
                  "updating functions. We recommend you use a supported runtime while "
                  f"creating or updating functions: {', '.join(SUPPORTED_RUNTIMES)}.")


def needs_handler(runtime: str) -> bool:
    return not runtime.startswith("provided")


def check_environment(variables: Mapping[str, str]) -> dict[str, str]:
    reserved = sorted(k for k in variables if k in RESERVED_ENVIRONMENT)
    if reserved:
        raise invalid("Lambda was unable to configure your environment variables because the "
                      "environment variables you have provided contains reserved keys that "
                      "are currently not supported for modification. Reserved keys used in "
                      f"this request: {', '.join(reserved)}")
    # AWS measures the variables as a JSON object, keys and values together.
    measured = json.dumps(dict(variables), separators=(",", ":"))
    if len(measured.encode()) > limits.ENVIRONMENT_BYTES:
        raise invalid("Lambda was unable to configure your environment variables because the "
                      "environment variables you have provided exceeded the 4KB limit. "
                      f"String measured: {measured}")
    return dict(variables)


def check_unsupported(req: Mapping[str, Any]) -> None:
    if req.get("Layers"):
        raise invalid("berth does not support layers; include the dependencies in the "
                      "function's zip file.")
    if req.get("FileSystemConfigs"):
        raise invalid("berth does not support file system configurations.")
    if (req.get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions":
        raise invalid("berth does not support SnapStart.")
    if req.get("ImageConfig"):
        raise invalid("ImageConfig applies only to functions with package type Image, which "
                      "berth does not support.")


def check_architectures(architectures: list[str]) -> list[str]:
    if len(architectures) != 1:
        raise ServiceError("ValidationException",
                           f"1 validation error detected: Value '{architectures}' at "
                           "'architectures' failed to satisfy constraint: Member must have "
                           "length less than or equal to 1")
    return list(architectures)


def config_values(req: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The configuration columns after applying `req` to `current` (None: a new function)."""
    base: dict[str, Any] = dict(current) if current else {
        "runtime": None, "handler": None, "role": "", "description": "",
        "memory_size": 128, "timeout": 3, "environment": {}, "ephemeral_storage": 512,
        "architectures": ["x86_64"], "extra": {}}
    check_unsupported(req)
    if "Runtime" in req:
        check_runtime(req["Runtime"])
        base["runtime"] = req["Runtime"]
    for member, column in (("Handler", "handler"), ("Role", "role"),
                           ("Description", "description")):
        if member in req:
            base[column] = req[member]
    if "MemorySize" in req:
        low, high = limits.MEMORY_RANGE
        if not low <= req["MemorySize"] <= high:
            raise _range_error(req["MemorySize"], "memorySize", low, high)
        base["memory_size"] = req["MemorySize"]
    if "Timeout" in req:
        low, high = limits.TIMEOUT_RANGE
        if not low <= req["Timeout"] <= high:
            raise _range_error(req["Timeout"], "timeout", low, high)
        base["timeout"] = req["Timeout"]
    if "Environment" in req:
        base["environment"] = check_environment(req["Environment"].get("Variables") or {})
    if "EphemeralStorage" in req:
        size = req["EphemeralStorage"]["Size"]
        low, high = limits.EPHEMERAL_RANGE
        if not low <= size <= high:
            raise _range_error(size, "ephemeralStorage.size", low, high)
        base["ephemeral_storage"] = size
    if req.get("Architectures"):
        base["architectures"] = check_architectures(req["Architectures"])
    extra = dict(base.get("extra") or {})
    for member in ECHOED:
        if member in req:
            extra[member] = req[member]
    base["extra"] = extra
    if base["runtime"] is None:
        raise invalid("Runtime and Handler are mandatory parameters for functions created "
                      "with deployment packages.")
    if needs_handler(base["runtime"]) and not base["handler"]:
        raise invalid("Runtime and Handler are mandatory parameters for functions created "
                      "with deployment packages.")
    return base


def fingerprint(values: Mapping[str, Any]) -> str:
    """A digest of code and configuration: equal digests mean nothing new to publish."""
    keys = ("code_sha256", "runtime", "handler", "role", "description", "memory_size",
            "timeout", "environment", "ephemeral_storage", "architectures", "extra")
    blob = json.dumps({k: values.get(k) for k in keys}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
