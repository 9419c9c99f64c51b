"""ECS container instances end to end: registration as an agent does it, resources, the query
language filter, attributes, draining and deregistration."""
from __future__ import annotations

import botocore.exceptions
import pytest
from berth_process import BerthProcess
from ecs.simagent import SimAgent, identity_document, resources

ARN = "arn:aws:ecs:us-east-1:000000000000:"


def error_of(call, **kw) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kw)
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def res(view: dict, kind: str, name: str):
    r = next(x for x in view[kind] if x["name"] == name)
    return r.get("stringSetValue", r["integerValue"])


@pytest.fixture(scope="module")
def ecs(berth: BerthProcess):
    c = berth.client("ecs")
    c.create_cluster(clusterName="ci")
    c.register_task_definition(family="small", containerDefinitions=[
        {"name": "a", "image": "busybox", "cpu": 100, "memory": 200,
         "portMappings": [{"containerPort": 80, "hostPort": 8080}]}])
    c.register_task_definition(family="tiny", containerDefinitions=[
        {"name": "a", "image": "busybox", "cpu": 10, "memory": 20}])
    return c


def test_register_describe_and_remaining_resources(ecs) -> None:
    doc = identity_document(zone="us-east-1b", instance_type="m5.large")
    inst = ecs.register_container_instance(
        cluster="ci", instanceIdentityDocument=doc,
        totalResources=resources(2048, 4096, ("22", "2375")),
        versionInfo={"agentVersion": "1.80.0", "agentHash": "abc", "dockerVersion": "24"},
        attributes=[{"name": "stack", "value": "prod"},
                    {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.17"}],
        tags=[{"key": "rack", "value": "r1"}])["containerInstance"]
    arn = inst["containerInstanceArn"]
    assert arn.startswith(ARN + "container-instance/ci/") and len(arn.rsplit("/", 1)[1]) == 32
    assert inst["status"] == "ACTIVE" and inst["agentConnected"] is True
    assert inst["ec2InstanceId"].startswith("i-")
    assert res(inst, "registeredResources", "CPU") == 2048
    assert res(inst, "registeredResources", "PORTS") == ["22", "2375"]
    attrs = {a["name"]: a.get("value") for a in inst["attributes"]}
    assert attrs["ecs.availability-zone"] == "us-east-1b"
    assert attrs["ecs.instance-type"] == "m5.large"
    assert attrs["stack"] == "prod"
    assert attrs["com.amazonaws.ecs.capability.docker-remote-api.1.17"] is None
    assert inst["tags"] == [{"key": "rack", "value": "r1"}]

    task = ecs.run_task(cluster="ci", taskDefinition="small",
                        placementConstraints=[{"type": "memberOf",
                                               "expression": "attribute:stack == prod"}])
    assert task["failures"] == [] and task["tasks"][0]["containerInstanceArn"] == arn
    got = ecs.describe_container_instances(cluster="ci", containerInstances=[
        arn, arn.rsplit("/", 1)[1], "f" * 32])
    described = got["containerInstances"][0]
    assert res(described, "remainingResources", "CPU") == 2048 - 100
    assert res(described, "remainingResources", "MEMORY") == 4096 - 200
    assert res(described, "remainingResources", "PORTS") == ["22", "2375", "8080"]
    assert described["pendingTasksCount"] == 1 and described["runningTasksCount"] == 0
    assert got["containerInstances"][1]["containerInstanceArn"] == arn   # by bare id too
    assert got["failures"] == [{"arn": "f" * 32, "reason": "MISSING"}]

    # The same EC2 instance registering again (agent restart) keeps its ARN and its claims.
    again = ecs.register_container_instance(
        cluster="ci", instanceIdentityDocument=doc,
        totalResources=resources(4096, 4096))["containerInstance"]
    assert again["containerInstanceArn"] == arn
    assert res(again, "remainingResources", "CPU") == 4096 - 100
    ecs.stop_task(cluster="ci", task=task["tasks"][0]["taskArn"])
    after = ecs.describe_container_instances(cluster="ci", containerInstances=[arn])
    assert res(after["containerInstances"][0], "remainingResources", "CPU") == 4096


def test_list_with_status_and_filter(ecs) -> None:
    ecs.create_cluster(clusterName="flt")
    a = SimAgent(ecs, "flt", zone="us-east-1a", attributes={"tier": "web"})
    b = SimAgent(ecs, "flt", zone="us-east-1b", attributes={"tier": "db"})
    listed = ecs.list_container_instances(cluster="flt")["containerInstanceArns"]
    assert sorted(listed) == sorted([a.arn, b.arn])
    web = ecs.list_container_instances(cluster="flt", filter="attribute:tier == web")
    assert web["containerInstanceArns"] == [a.arn]
    zone = ecs.list_container_instances(
        cluster="flt", filter="attribute:ecs.availability-zone in [us-east-1b, us-east-1c]")
    assert zone["containerInstanceArns"] == [b.arn]
    ecs.update_container_instances_state(cluster="flt", containerInstances=[b.arn],
                                         status="DRAINING")
    assert ecs.list_container_instances(cluster="flt", status="DRAINING")[
        "containerInstanceArns"] == [b.arn]
    assert ecs.list_container_instances(cluster="flt", status="ACTIVE")[
        "containerInstanceArns"] == [a.arn]
    page = ecs.list_container_instances(cluster="flt", maxResults=1)
    rest = ecs.list_container_instances(cluster="flt", maxResults=1,
                                        nextToken=page["nextToken"])
    assert sorted(page["containerInstanceArns"] + rest["containerInstanceArns"]) == sorted(
        [a.arn, b.arn])
    code, _ = error_of(ecs.list_container_instances, cluster="flt",
                       filter="attribute:tier ==")
    assert code == "InvalidParameterException"


def test_attributes(ecs) -> None:
    ecs.create_cluster(clusterName="attr")
    a = SimAgent(ecs, "attr")
    put = ecs.put_attributes(cluster="attr", attributes=[
        {"name": "gpu", "value": "none", "targetId": a.arn},
        {"name": "flag", "targetId": a.arn.rsplit("/", 1)[1]}])
    assert put["attributes"][0]["targetType"] == "container-instance"
    listed = ecs.list_attributes(cluster="attr", targetType="container-instance",
                                 attributeName="gpu")["attributes"]
    assert listed == [{"name": "gpu", "value": "none", "targetType": "container-instance",
                       "targetId": a.arn}]
    assert ecs.list_attributes(cluster="attr", targetType="container-instance",
                               attributeName="gpu", attributeValue="v100")["attributes"] == []
    # Attributes feed placement at once.
    ok = ecs.run_task(cluster="attr", taskDefinition="tiny", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:flag exists"}])
    assert len(ok["tasks"]) == 1
    ecs.delete_attributes(cluster="attr", attributes=[{"name": "flag", "targetId": a.arn}])
    miss = ecs.run_task(cluster="attr", taskDefinition="tiny", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:flag exists"}])
    assert miss["tasks"] == [] and miss["failures"][0]["reason"].startswith("MemberOf")

    code, _ = error_of(ecs.put_attributes, cluster="attr", attributes=[
        {"name": "x", "value": "y", "targetId": "0" * 32}])
    assert code == "TargetNotFoundException"
    code, _ = error_of(ecs.put_attributes, cluster="attr", attributes=[
        {"name": "bad name!", "value": "y", "targetId": a.arn}])
    assert code == "InvalidParameterException"
    code, _ = error_of(ecs.put_attributes, cluster="attr", attributes=[
        {"name": f"c{i}", "value": "v", "targetId": a.arn} for i in range(10)])
    assert code == "AttributeLimitExceededException"


def test_draining_takes_no_new_tasks(ecs) -> None:
    ecs.create_cluster(clusterName="drain")
    a = SimAgent(ecs, "drain")
    out = ecs.update_container_instances_state(cluster="drain", containerInstances=[
        a.arn, "0" * 32], status="DRAINING")
    assert out["containerInstances"][0]["status"] == "DRAINING"
    assert out["failures"] == [{"arn": "0" * 32, "reason": "MISSING"}]
    code, message = error_of(ecs.run_task, cluster="drain", taskDefinition="small")
    assert (code, message) == ("InvalidParameterException",
                               "No Container Instances were found in your cluster.")
    started = ecs.start_task(cluster="drain", taskDefinition="small", containerInstances=[a.arn])
    assert started["tasks"] == [] and started["failures"][0]["reason"] == "INACTIVE"
    ecs.update_container_instances_state(cluster="drain", containerInstances=[a.arn],
                                         status="ACTIVE")
    assert len(ecs.run_task(cluster="drain", taskDefinition="small")["tasks"]) == 1
    code, _ = error_of(ecs.update_container_instances_state, cluster="drain",
                       containerInstances=[a.arn], status="REGISTERING")
    assert code == "InvalidParameterException"


def test_deregister(ecs) -> None:
    ecs.create_cluster(clusterName="dereg")
    a = SimAgent(ecs, "dereg")
    gone = ecs.deregister_container_instance(cluster="dereg", containerInstance=a.arn)
    assert gone["containerInstance"]["status"] == "INACTIVE"
    assert gone["containerInstance"]["agentConnected"] is False
    assert ecs.list_container_instances(cluster="dereg")["containerInstanceArns"] == []
    described = ecs.describe_container_instances(cluster="dereg", containerInstances=[a.arn])
    assert described["containerInstances"][0]["status"] == "INACTIVE"
    code, _ = error_of(ecs.deregister_container_instance, cluster="dereg",
                       containerInstance=a.arn)
    assert code == "InvalidParameterException"
    code, _ = error_of(ecs.register_container_instance, cluster="nope",
                       totalResources=resources(1, 1))
    assert code == "ClusterNotFoundException"
    code, _ = error_of(ecs.register_container_instance, cluster="dereg",
                       instanceIdentityDocument="{not json")
    assert code == "InvalidParameterException"
