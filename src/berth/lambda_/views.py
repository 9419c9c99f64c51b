"""The wire shapes of the control plane's records: FunctionConfiguration, AliasConfiguration."""
from __future__ import annotations

import datetime as dt
from typing import Any

from .arns import LATEST, function_arn

PENDING = {"State": "Pending", "StateReason": "The function is being created.",
           "StateReasonCode": "Creating"}
UPDATING = {"State": "Active", "LastUpdateStatus": "InProgress",
            "LastUpdateStatusReason": "The function is being created.",
            "LastUpdateStatusReasonCode": "Creating"}
SETTLED = {"State": "Active", "LastUpdateStatus": "Successful"}


def lambda_time(epoch: float) -> str:
    """Lambda's LastModified form: 2024-05-01T12:00:00.000+0000."""
    moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def function_configuration(row: Any, region: str, account_id: str,
                           status: dict[str, str] = SETTLED) -> dict[str, Any]:
    """`status` is the phase the answering operation reports: Pending for a create, InProgress
    for an update, settled for reads (berth applies changes before it answers)."""
    qualifier = None if row.function_version == LATEST else row.function_version
    extra = dict(row.extra or {})
    view: dict[str, Any] = {
        "FunctionName": row.function_name,
        "FunctionArn": function_arn(region, account_id, row.function_name, qualifier),
        "Runtime": row.runtime,
        "Role": row.role,
        "Handler": row.handler,
        "CodeSize": row.code_size,
        "Description": row.description or "",
        "Timeout": row.timeout,
        "MemorySize": row.memory_size,
        "LastModified": lambda_time(row.last_modified),
        "CodeSha256": row.code_sha256,
        "Version": row.function_version,
        "TracingConfig": extra.get("TracingConfig") or {"Mode": "PassThrough"},
        "RevisionId": row.revision_id,
        "PackageType": "Zip",
        "Architectures": list(row.architectures),
        "EphemeralStorage": {"Size": row.ephemeral_storage},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{row.function_name}",
                          **(extra.get("LoggingConfig") or {})},
        **status,
    }
    if row.handler is None:
        del view["Handler"]
    if row.environment:
        view["Environment"] = {"Variables": dict(row.environment)}
    if extra.get("DeadLetterConfig", {}).get("TargetArn"):
        view["DeadLetterConfig"] = extra["DeadLetterConfig"]
    if extra.get("KMSKeyArn"):
        view["KMSKeyArn"] = extra["KMSKeyArn"]
    vpc = extra.get("VpcConfig")
    if vpc and (vpc.get("SubnetIds") or vpc.get("SecurityGroupIds")):
        view["VpcConfig"] = {"SubnetIds": vpc.get("SubnetIds", []),
                             "SecurityGroupIds": vpc.get("SecurityGroupIds", []), "VpcId": ""}
    return view


def alias_configuration(row: Any, region: str, account_id: str) -> dict[str, Any]:
    view: dict[str, Any] = {
        "AliasArn": function_arn(region, account_id, row.function_name, row.name),
        "Name": row.name,
        "FunctionVersion": row.function_version,
        "Description": row.description or "",
        "RevisionId": row.revision_id,
    }
    if row.weights:
        view["RoutingConfig"] = {"AdditionalVersionWeights": dict(row.weights)}
    return view
