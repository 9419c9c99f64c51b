"""ECS account settings, capacity providers, the capacity providers and default strategy of a
cluster, task scale-in protection and the smaller agent operations, against a real server."""
from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from berth_process import BerthProcess, error_of

ARN = "arn:aws:ecs:us-east-1:000000000000:"
ROOT = "arn:aws:iam::000000000000:root"
ASG = ("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:"
       "0b7f7a2b-0000-0000-0000-{:012d}:autoScalingGroupName/asg-{}")


@pytest.fixture(scope="module")
def berth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthProcess]:
    with mock.patch.dict(os.environ, {"BERTH_ECS_RECONCILE_INTERVAL": "0.2",
                                      "BERTH_ECS_AGENT_TIMEOUT": "3600"}):
        proc = BerthProcess(tmp_path_factory.mktemp("berth") / "data").start()
    yield proc
    proc.stop()


def asg(i: int) -> str:
    return ASG.format(i, i)


def test_account_settings_own_default_and_effective(ecs: Any) -> None:
    assert ecs.list_account_settings()["settings"] == []
    put = ecs.put_account_setting(name="awsvpcTrunking", value="enabled")["setting"]
    assert put == {"name": "awsvpcTrunking", "value": "enabled", "principalArn": ROOT,
                   "type": "user"}
    default = ecs.put_account_setting_default(name="containerInsights", value="enhanced")
    assert default["setting"]["principalArn"] == ROOT
    own = {s["name"]: s["value"] for s in ecs.list_account_settings()["settings"]}
    assert own == {"awsvpcTrunking": "enabled", "containerInsights": "enhanced"}
    effective = ecs.get_paginator("list_account_settings").paginate(
        effectiveSettings=True).build_full_result()["settings"]
    by_name = {s["name"]: s for s in effective}
    assert by_name["taskLongArnFormat"] == {"name": "taskLongArnFormat", "value": "enabled",
                                            "principalArn": ROOT, "type": "aws_managed"}
    assert by_name["fargateTaskRetirementWaitPeriod"]["value"] == "7"
    assert by_name["containerInsights"]["value"] == "enhanced"
    assert len(effective) == 11
    # A role's own setting overrides the account default for that role only.
    role = "arn:aws:iam::000000000000:role/deployer"
    ecs.put_account_setting(name="containerInsights", value="disabled", principalArn=role)
    for_role = ecs.list_account_settings(principalArn=role, name="containerInsights",
                                         effectiveSettings=True)["settings"]
    assert for_role == [{"name": "containerInsights", "value": "disabled",
                         "principalArn": role, "type": "user"}]
    # New clusters take Container Insights from the account setting.
    cluster = ecs.create_cluster(clusterName="insights-" + uuid.uuid4().hex[:6])["cluster"]
    assert cluster["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    deleted = ecs.delete_account_setting(name="containerInsights", principalArn=role)
    assert deleted["setting"]["value"] == "disabled"
    ecs.delete_account_setting(name="containerInsights")
    ecs.delete_account_setting(name="awsvpcTrunking")
    assert ecs.list_account_settings()["settings"] == []


def test_account_settings_refuse_what_ecs_refuses(ecs: Any) -> None:
    assert error_of(ecs.put_account_setting, name="awsvpcTrunking", value="maybe")[
        "Code"] == "InvalidParameterException"
    assert error_of(ecs.put_account_setting, name="fargateTaskRetirementWaitPeriod",
                    value="3")["Code"] == "InvalidParameterException"
    assert error_of(ecs.put_account_setting, name="guardDutyActivate", value="on")[
        "Code"] == "InvalidParameterException"
    assert error_of(ecs.put_account_setting, name="awsvpcTrunking", value="enabled",
                    principalArn="not-an-arn")["Code"] == "InvalidParameterException"
    assert error_of(ecs.delete_account_setting, name="fargateEventWindows")[
        "Code"] == "InvalidParameterException"
    assert ecs.put_account_setting(name="fargateTaskRetirementWaitPeriod", value="14")[
        "setting"]["value"] == "14"
    ecs.delete_account_setting(name="fargateTaskRetirementWaitPeriod")


def test_capacity_providers_are_kept_updated_and_deleted(ecs: Any) -> None:
    made = ecs.create_capacity_provider(
        name="cp-main", autoScalingGroupProvider={
            "autoScalingGroupArn": asg(1), "managedScaling": {"status": "ENABLED",
                                                             "targetCapacity": 80}},
        tags=[{"key": "team", "value": "infra"}])["capacityProvider"]
    assert made == {
        "capacityProviderArn": ARN + "capacity-provider/cp-main", "name": "cp-main",
        "status": "ACTIVE", "type": "EC2_AUTOSCALING", "tags": [{"key": "team",
                                                                 "value": "infra"}],
        "autoScalingGroupProvider": {
            "autoScalingGroupArn": asg(1), "managedTerminationProtection": "DISABLED",
            "managedDraining": "ENABLED",
            "managedScaling": {"status": "ENABLED", "targetCapacity": 80,
                               "minimumScalingStepSize": 1, "maximumScalingStepSize": 10000,
                               "instanceWarmupPeriod": 300}}}
    listed = ecs.describe_capacity_providers()["capacityProviders"]
    names = [p["name"] for p in listed]
    assert names[:2] == ["FARGATE", "FARGATE_SPOT"] and "cp-main" in names
    assert all("tags" not in p for p in listed)
    (tagged,) = ecs.describe_capacity_providers(capacityProviders=["cp-main"],
                                                include=["TAGS"])["capacityProviders"]
    assert tagged["tags"] == [{"key": "team", "value": "infra"}]
    out = ecs.describe_capacity_providers(capacityProviders=["FARGATE", "nope"])
    assert [p["type"] for p in out["capacityProviders"]] == ["FARGATE"]
    assert out["failures"] == [{"arn": ARN + "capacity-provider/nope", "reason": "MISSING"}]
    updated = ecs.update_capacity_provider(name="cp-main", autoScalingGroupProvider={
        "managedScaling": {"targetCapacity": 60}, "managedTerminationProtection": "ENABLED"}
    )["capacityProvider"]
    assert updated["updateStatus"] == "UPDATE_COMPLETE"
    assert updated["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 60
    assert updated["autoScalingGroupProvider"]["managedScaling"]["status"] == "ENABLED"
    assert updated["autoScalingGroupProvider"]["managedTerminationProtection"] == "ENABLED"
    ecs.tag_resource(resourceArn=made["capacityProviderArn"],
                     tags=[{"key": "k", "value": "v"}])
    assert {t["key"] for t in ecs.list_tags_for_resource(
        resourceArn=made["capacityProviderArn"])["tags"]} == {"team", "k"}
    assert error_of(ecs.create_capacity_provider, name="cp-main",
                    autoScalingGroupProvider={"autoScalingGroupArn": asg(2)})[
        "Code"] == "ClientException"
    assert error_of(ecs.create_capacity_provider, name="cp-again",
                    autoScalingGroupProvider={"autoScalingGroupArn": asg(1)})[
        "Code"] == "ClientException"       # one provider per Auto Scaling group
    assert error_of(ecs.create_capacity_provider, name="fargate-mine",
                    autoScalingGroupProvider={"autoScalingGroupArn": asg(3)})[
        "Code"] == "ClientException"
    deleted = ecs.delete_capacity_provider(capacityProvider=made["capacityProviderArn"])
    assert deleted["capacityProvider"]["status"] == "INACTIVE"
    assert deleted["capacityProvider"]["updateStatus"] == "DELETE_COMPLETE"
    assert "cp-main" not in [p["name"] for p in ecs.describe_capacity_providers()[
        "capacityProviders"]]
    assert error_of(ecs.delete_capacity_provider, capacityProvider="cp-main")[
        "Code"] == "InvalidParameterException"


def test_clusters_keep_their_providers_and_default_strategy(ecs: Any) -> None:
    ecs.create_capacity_provider(name="cp-a", autoScalingGroupProvider={
        "autoScalingGroupArn": asg(10)})
    strategy = [{"capacityProvider": "cp-a", "weight": 2, "base": 1}]
    made = ecs.create_cluster(clusterName="with-cp", capacityProviders=["cp-a"],
                              defaultCapacityProviderStrategy=strategy)["cluster"]
    assert made["capacityProviders"] == ["cp-a"]
    assert made["defaultCapacityProviderStrategy"] == strategy
    (described,) = ecs.describe_clusters(clusters=["with-cp"])["clusters"]
    assert described["defaultCapacityProviderStrategy"] == strategy
    assert error_of(ecs.delete_capacity_provider, capacityProvider="cp-a")[
        "Code"] == "ClientException"      # in use by the cluster
    switched = ecs.put_cluster_capacity_providers(
        cluster="with-cp", capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 3}]
    )["cluster"]
    assert switched["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert switched["defaultCapacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE_SPOT", "weight": 3, "base": 0}]
    for providers, strategy, fragment in (
            (["cp-a"], [{"capacityProvider": "FARGATE"}], "not associated with the cluster"),
            (["cp-a", "FARGATE"], [{"capacityProvider": "cp-a"}, {"capacityProvider":
                                                                 "FARGATE"}], "mix"),
            (["nope"], [], "not in an ACTIVE state"),
            (["FARGATE", "FARGATE_SPOT"], [{"capacityProvider": "FARGATE", "base": 1},
                                           {"capacityProvider": "FARGATE_SPOT", "base": 1}],
             "Only one capacity provider")):
        err = error_of(ecs.put_cluster_capacity_providers, cluster="with-cp",
                       capacityProviders=providers, defaultCapacityProviderStrategy=strategy)
        assert err["Code"] == "InvalidParameterException" and fragment in err["Message"]
    assert error_of(ecs.put_cluster_capacity_providers, cluster="nowhere",
                    capacityProviders=[], defaultCapacityProviderStrategy=[])[
        "Code"] == "ClusterNotFoundException"
    ecs.put_cluster_capacity_providers(cluster="with-cp", capacityProviders=[],
                                       defaultCapacityProviderStrategy=[])
    ecs.delete_capacity_provider(capacityProvider="cp-a")


def register_instance(ecs: Any, cluster: str) -> str:
    doc = {"instanceId": "i-" + uuid.uuid4().hex[:17], "region": "us-east-1",
           "availabilityZone": "us-east-1a", "instanceType": "m5.large"}
    return ecs.register_container_instance(
        cluster=cluster, instanceIdentityDocument=json.dumps(doc), totalResources=[
            {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}],
    )["containerInstance"]["containerInstanceArn"]


def test_task_protection_for_service_tasks(ecs: Any) -> None:
    ecs.create_cluster(clusterName="protect")
    instance = register_instance(ecs, "protect")
    ecs.register_task_definition(family="prot", containerDefinitions=[
        {"name": "a", "image": "busybox", "cpu": 10, "memory": 16}])
    ecs.create_service(cluster="protect", serviceName="web", taskDefinition="prot",
                       desiredCount=1)
    deadline = time.monotonic() + 20
    while not (service_tasks := ecs.list_tasks(cluster="protect", serviceName="web")[
            "taskArns"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    (service_task,) = service_tasks
    (standalone,) = [t["taskArn"] for t in ecs.start_task(
        cluster="protect", taskDefinition="prot", containerInstances=[instance])["tasks"]]
    before = dt.datetime.now(dt.timezone.utc)
    out = ecs.update_task_protection(cluster="protect", tasks=[service_task, standalone],
                                     protectionEnabled=True, expiresInMinutes=60)
    (protected,) = out["protectedTasks"]
    assert protected["taskArn"] == service_task and protected["protectionEnabled"] is True
    expires = protected["expirationDate"]
    assert dt.timedelta(minutes=59) < expires - before < dt.timedelta(minutes=61)
    assert out["failures"] == [{"arn": standalone, "reason": "TASK_NOT_VALID",
                                "detail": "The task is not part of a service."}]
    got = ecs.get_task_protection(cluster="protect", tasks=[service_task])["protectedTasks"]
    assert got == [{"taskArn": service_task, "protectionEnabled": True,
                    "expirationDate": expires}]
    ecs.update_task_protection(cluster="protect", tasks=[service_task],
                               protectionEnabled=False)
    assert ecs.get_task_protection(cluster="protect", tasks=[service_task])[
        "protectedTasks"] == [{"taskArn": service_task, "protectionEnabled": False}]
    missing = ARN + "task/protect/" + "0" * 32
    assert ecs.get_task_protection(cluster="protect", tasks=[missing])["failures"] == [
        {"arn": missing, "reason": "MISSING"}]
    assert error_of(ecs.update_task_protection, cluster="protect", tasks=[service_task],
                    protectionEnabled=True, expiresInMinutes=5000)[
        "Code"] == "InvalidParameterException"
    ecs.update_service(cluster="protect", service="web", desiredCount=0)


def test_agent_attachments_and_updates(ecs: Any) -> None:
    ecs.create_cluster(clusterName="agents")
    instance = register_instance(ecs, "agents")
    assert ecs.submit_attachment_state_changes(cluster="agents", attachments=[
        {"attachmentArn": ARN + "attachment/x", "status": "ATTACHED"}])["acknowledgment"] \
        == "ACK"
    assert error_of(ecs.update_container_agent, cluster="agents",
                    containerInstance=instance) == {
        "Code": "NoUpdateAvailableException",
        "Message": "There is no update available for your container agent."}
    assert error_of(ecs.update_container_agent, cluster="agents",
                    containerInstance="0" * 32)["Code"] == "InvalidParameterException"
