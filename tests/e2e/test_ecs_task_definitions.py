"""ECS task definitions end to end: families and revisions, ECS's validation, lists, lifecycle."""
from __future__ import annotations

import json

import botocore.exceptions
import pytest
from berth_process import BerthProcess

ARN = "arn:aws:ecs:us-east-1:000000000000:task-definition/"


def error_of(call, **kw) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kw)
    e = err.value.response
    assert e["ResponseMetadata"]["HTTPStatusCode"] == 400
    return e["Error"]["Code"], e["Error"]["Message"]


WEB = [{"name": "web", "image": "nginx:1.25", "cpu": 256, "memory": 512,
        "memoryReservation": 128, "essential": True, "command": ["nginx", "-g", "daemon off;"],
        "entryPoint": ["/docker-entrypoint.sh"],
        "environment": [{"name": "MODE", "value": "prod"}],
        "portMappings": [{"containerPort": 80, "hostPort": 8080}],
        "healthCheck": {"command": ["CMD-SHELL", "wget -q -O- localhost || exit 1"]},
        "stopTimeout": 20, "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/web", "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "web"}}},
       {"name": "sidecar", "image": "busybox", "memory": 64, "essential": False,
        "dependsOn": [{"containerName": "web", "condition": "HEALTHY"}]}]


def test_register_fills_defaults_and_counts_revisions(ecs) -> None:
    first = ecs.register_task_definition(
        family="web", containerDefinitions=WEB, volumes=[{"name": "data", "host": {
            "sourcePath": "/srv/data"}}], tags=[{"key": "app", "value": "web"}])
    td = first["taskDefinition"]
    assert td["taskDefinitionArn"] == ARN + "web:1"
    assert (td["family"], td["revision"], td["status"]) == ("web", 1, "ACTIVE")
    assert first["tags"] == [{"key": "app", "value": "web"}]
    web, side = td["containerDefinitions"]
    assert web["portMappings"] == [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}]
    assert web["healthCheck"]["interval"] == 30 and web["healthCheck"]["retries"] == 3
    assert web["stopTimeout"] == 20 and web["environment"] == [{"name": "MODE",
                                                                "value": "prod"}]
    assert side["cpu"] == 0 and side["essential"] is False
    assert td["registeredAt"].year >= 2024
    second = ecs.register_task_definition(family="web", containerDefinitions=WEB[:1],
                                          volumes=[{"name": "data"}])["taskDefinition"]
    assert second["revision"] == 2


def test_describe_by_family_revision_and_arn(ecs) -> None:
    ecs.register_task_definition(family="desc", containerDefinitions=[
        {"name": "a", "image": "busybox", "memory": 16}])
    ecs.register_task_definition(family="desc", containerDefinitions=[
        {"name": "a", "image": "busybox:2", "memory": 16}])
    latest = ecs.describe_task_definition(taskDefinition="desc")["taskDefinition"]
    assert latest["revision"] == 2
    one = ecs.describe_task_definition(taskDefinition="desc:1")["taskDefinition"]
    assert one["containerDefinitions"][0]["image"] == "busybox"
    by_arn = ecs.describe_task_definition(taskDefinition=ARN + "desc:1")["taskDefinition"]
    assert by_arn == one
    assert error_of(ecs.describe_task_definition, taskDefinition="nope") == (
        "ClientException", "Unable to describe task definition.")
    assert error_of(ecs.describe_task_definition, taskDefinition="desc:9")[0] == \
        "ClientException"


@pytest.mark.parametrize("defs,extra,needle", [
    ([], {}, "Container list cannot be empty."),
    ([{"name": "a", "image": "x"}], {}, "At least one of 'memory' or 'memoryReservation'"),
    ([{"name": "a", "memory": 64}], {}, "Container.image should not be null or empty."),
    ([{"image": "x", "memory": 64}], {}, "Container.name should not be null or empty."),
    ([{"name": "a", "image": "x", "memory": 64, "essential": False}], {}, "essential"),
    ([{"name": "a", "image": "x", "memory": 2}], {}, "At least 6 MiB"),
    ([{"name": "a", "image": "x", "memory": 64, "memoryReservation": 128}], {},
     "memory reservation"),
    ([{"name": "a", "image": "x", "memory": 64},
      {"name": "a", "image": "y", "memory": 64}], {}, "Duplicate container name"),
    ([{"name": "a", "image": "x", "memory": 64,
       "dependsOn": [{"containerName": "zz", "condition": "START"}]}], {}, "dependsOn"),
    ([{"name": "a", "image": "x", "memory": 64,
       "dependsOn": [{"containerName": "b", "condition": "START"}]},
      {"name": "b", "image": "x", "memory": 64,
       "dependsOn": [{"containerName": "a", "condition": "START"}]}], {}, "cycle"),
    ([{"name": "a", "image": "x", "memory": 64,
       "dependsOn": [{"containerName": "b", "condition": "HEALTHY"}]},
      {"name": "b", "image": "x", "memory": 64}], {}, "has no healthCheck"),
    ([{"name": "a", "image": "x", "memory": 64,
       "portMappings": [{"containerPort": 80, "hostPort": 81}]}], {"networkMode": "host"},
     "must equal the containerPort"),
    ([{"name": "a", "image": "x", "memory": 64, "portMappings": [{"containerPort": 0}]}], {},
     "containerPort"),
    ([{"name": "a", "image": "x", "memory": 64,
       "mountPoints": [{"sourceVolume": "v", "containerPath": "/v"}]}], {}, "unknown volume"),
    ([{"name": "a", "image": "x", "memory": 64,
       "healthCheck": {"command": ["CMD", "true"], "interval": 1}}], {}, "interval"),
    ([{"name": "a", "image": "x", "memory": 600}], {"memory": "512"}, "exceeds the task"),
    ([{"name": "a", "image": "x", "memory": 64}], {"cpu": "lots"}, "Invalid 'cpu'"),
])
def test_registration_is_checked_as_ecs_checks_it(ecs, defs, extra, needle) -> None:
    code, message = error_of(ecs.register_task_definition, family="bad",
                             containerDefinitions=defs, **extra)
    assert code == "ClientException"
    assert needle in message


def test_task_level_memory_stands_in_for_container_memory(ecs) -> None:
    td = ecs.register_task_definition(family="tasklevel", cpu="1 vCPU", memory="1 GB",
                                      containerDefinitions=[{"name": "a", "image": "x"}])
    assert td["taskDefinition"]["cpu"] == "1 vCPU" and td["taskDefinition"]["memory"] == "1 GB"


def test_bad_family_and_validation_errors(ecs) -> None:
    code, _ = error_of(ecs.register_task_definition, family="has space",
                       containerDefinitions=[{"name": "a", "image": "x", "memory": 8}])
    assert code == "ClientException"
    code, message = error_of(ecs.register_task_definition, family="x",
                             containerDefinitions=[{"name": "a", "image": "x", "memory": 8}],
                             networkMode="bogus")
    assert code == "InvalidParameterException" and "networkMode" in message


def test_list_sort_filter_paginate(ecs) -> None:
    for fam in ("lst-b", "lst-a", "lst-b"):
        ecs.register_task_definition(family=fam, containerDefinitions=[
            {"name": "a", "image": "x", "memory": 8}])
    asc = [a for a in ecs.list_task_definitions()["taskDefinitionArns"] if "/lst-" in a]
    assert asc == [ARN + "lst-a:1", ARN + "lst-b:1", ARN + "lst-b:2"]
    desc = [a for a in ecs.list_task_definitions(sort="DESC")["taskDefinitionArns"]
            if "/lst-" in a]
    assert desc == list(reversed(asc))
    assert ecs.list_task_definitions(familyPrefix="lst-b")["taskDefinitionArns"] == [
        ARN + "lst-b:1", ARN + "lst-b:2"]
    page1 = ecs.list_task_definitions(familyPrefix="lst-b", maxResults=1)
    assert page1["taskDefinitionArns"] == [ARN + "lst-b:1"]
    page2 = ecs.list_task_definitions(familyPrefix="lst-b", maxResults=1,
                                      nextToken=page1["nextToken"])
    assert page2["taskDefinitionArns"] == [ARN + "lst-b:2"] and "nextToken" not in page2
    fams = ecs.list_task_definition_families(familyPrefix="lst-")["families"]
    assert fams == ["lst-a", "lst-b"]


def test_deregister_then_delete(ecs) -> None:
    ecs.register_task_definition(family="gone", containerDefinitions=[
        {"name": "a", "image": "x", "memory": 8}])
    ecs.register_task_definition(family="gone", containerDefinitions=[
        {"name": "a", "image": "x", "memory": 8}])
    # Deleting an ACTIVE revision is refused per item.
    out = ecs.delete_task_definitions(taskDefinitions=["gone:1"])
    assert out["taskDefinitions"] == [] and "ACTIVE" in out["failures"][0]["reason"]

    dereg = ecs.deregister_task_definition(taskDefinition="gone:1")["taskDefinition"]
    assert dereg["status"] == "INACTIVE" and "deregisteredAt" in dereg
    assert ecs.describe_task_definition(taskDefinition="gone")["taskDefinition"]["revision"] == 2
    assert ecs.list_task_definitions(familyPrefix="gone", status="INACTIVE")[
        "taskDefinitionArns"] == [ARN + "gone:1"]
    assert ecs.list_task_definitions(familyPrefix="gone")["taskDefinitionArns"] == [
        ARN + "gone:2"]
    code, _ = error_of(ecs.deregister_task_definition, taskDefinition="gone")
    assert code == "ClientException"

    out = ecs.delete_task_definitions(taskDefinitions=["gone:1", "gone:7"])
    assert [t["status"] for t in out["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]
    assert out["failures"] == [{"arn": "gone:7", "reason": "The specified task definition "
                                                           "does not exist."}]
    assert ecs.list_task_definitions(familyPrefix="gone", status="DELETE_IN_PROGRESS")[
        "taskDefinitionArns"] == [ARN + "gone:1"]
    # A deregistered revision cannot start tasks.
    ecs.create_cluster(clusterName="tdc")
    code, message = error_of(ecs.run_task, cluster="tdc", taskDefinition="gone:1")
    assert (code, message) == ("ClientException", "TaskDefinition is inactive")
    code, message = error_of(ecs.run_task, cluster="tdc", taskDefinition="never")
    assert (code, message) == ("ClientException", "TaskDefinition not found.")


def test_aws_cli_register_from_json(berth: BerthProcess, tmp_path) -> None:
    spec = {"family": "cli-td", "containerDefinitions": [
        {"name": "a", "image": "busybox", "memory": 32, "command": ["sleep", "5"]}]}
    path = tmp_path / "td.json"
    path.write_text(json.dumps(spec))
    out = json.loads(berth.aws_cli("ecs", "register-task-definition", "--cli-input-json",
                                   f"file://{path}").stdout)
    assert out["taskDefinition"]["taskDefinitionArn"] == ARN + "cli-td:1"
    got = json.loads(berth.aws_cli("ecs", "describe-task-definition", "--task-definition",
                                   "cli-td").stdout)
    assert got["taskDefinition"]["containerDefinitions"][0]["command"] == ["sleep", "5"]
