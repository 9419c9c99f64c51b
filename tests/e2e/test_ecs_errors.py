"""Every ECS operation berth serves, fed odd input generated from the service model: each
answer is a 200 or an AWS-shaped 4xx error, never a 500."""
from __future__ import annotations

import json
from typing import Any

import botocore.session
import httpx
import pytest
from berth_process import ACCESS_KEY, SECRET_KEY, BerthProcess
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import Shape

MODEL = botocore.session.get_session().get_service_model("ecs")
TARGET = MODEL.metadata["targetPrefix"]
OPERATIONS = sorted(
    ["CreateCluster", "DescribeClusters", "ListClusters", "UpdateCluster",
     "UpdateClusterSettings", "DeleteCluster", "RegisterContainerInstance",
     "DeregisterContainerInstance", "DescribeContainerInstances", "ListContainerInstances",
     "UpdateContainerInstancesState", "PutAttributes", "DeleteAttributes", "ListAttributes",
     "RegisterTaskDefinition", "DescribeTaskDefinition", "ListTaskDefinitions",
     "ListTaskDefinitionFamilies", "DeregisterTaskDefinition", "DeleteTaskDefinitions",
     "RunTask", "StartTask", "StopTask", "ListTasks", "DescribeTasks",
     "SubmitTaskStateChange", "SubmitContainerStateChange", "DiscoverPollEndpoint",
     "CreateService", "UpdateService", "DeleteService", "DescribeServices", "ListServices",
     "TagResource", "UntagResource", "ListTagsForResource"])
ARN = "arn:aws:ecs:us-east-1:000000000000:"
# Leaf values per variant: plausible names, ARNs of the wrong kind, empties and extremes.
VARIANTS: list[dict[str, Any]] = [
    {"string": "odd", "integer": 1, "boolean": True},
    {"string": ARN + "task-definition/odd:1", "integer": 0, "boolean": False},
    {"string": ARN + "cluster/odd/extra/parts", "integer": -5, "boolean": True},
    {"string": "", "integer": 2 ** 31 - 1, "boolean": False},
    {"string": "arn:aws:ecs:", "integer": 10, "boolean": True},
]


def build(shape: Shape, leaf: dict[str, Any], depth: int = 0) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if depth > 5:
            return {}
        return {name: build(member, leaf, depth + 1) for name, member in shape.members.items()}
    if kind == "list":
        return [build(shape.member, leaf, depth + 1)]
    if kind == "map":
        return {"k": build(shape.value, leaf, depth + 1)}
    if kind == "string":
        return shape.enum[0] if shape.enum else leaf["string"]
    if kind in ("integer", "long"):
        return leaf["integer"]
    if kind in ("double", "float"):
        return float(leaf["integer"])
    if kind == "boolean":
        return leaf["boolean"]
    if kind == "timestamp":
        return 1_700_000_000
    return leaf["string"]


def send(berth: BerthProcess, operation: str, body: dict[str, Any]) -> httpx.Response:
    data = json.dumps(body).encode()
    req = AWSRequest("POST", berth.endpoint + "/", data=data, headers={
        "X-Amz-Target": f"{TARGET}.{operation}", "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "ecs", "us-east-1").add_auth(req)
    return httpx.post(berth.endpoint + "/", content=data, headers=dict(req.headers.items()),
                      timeout=30)


@pytest.fixture(scope="module")
def seeded(berth: BerthProcess) -> BerthProcess:
    """A cluster named like the generated strings, so requests get past the first lookup."""
    ecs = berth.client("ecs")
    ecs.create_cluster(clusterName="odd")
    ecs.register_container_instance(cluster="odd", totalResources=[
        {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}])
    ecs.register_task_definition(family="odd", containerDefinitions=[
        {"name": "odd", "image": "x", "memory": 16}])
    return berth


@pytest.mark.parametrize("operation", OPERATIONS)
def test_odd_input_never_breaks_an_operation(seeded: BerthProcess, operation: str) -> None:
    shape = MODEL.operation_model(operation).input_shape
    bodies = [build(shape, leaf) for leaf in VARIANTS] + [{}]
    for body in bodies:
        resp = send(seeded, operation, body)
        assert resp.status_code < 500, (operation, body, resp.text)
        if resp.status_code != 200:
            err = resp.json()
            assert err["__type"] and err["message"], (operation, resp.text)
