"""ECS clusters and tags end to end: boto3 and the AWS CLI against a real `berth server`."""
from __future__ import annotations

import json

import botocore.exceptions
import pytest
from berth_process import BerthProcess
from ecs.simagent import SimAgent

ARN = "arn:aws:ecs:us-east-1:000000000000:"


def error_of(call, **kw) -> tuple[str, str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kw)
    e = err.value.response
    return e["Error"]["Code"], e["Error"]["Message"], e["ResponseMetadata"]["HTTPStatusCode"]


def test_create_describe_list_delete(ecs) -> None:
    made = ecs.create_cluster(clusterName="alpha", tags=[{"key": "team", "value": "a"}],
                              settings=[{"name": "containerInsights", "value": "enabled"}])
    c = made["cluster"]
    assert c["clusterArn"] == ARN + "cluster/alpha"
    assert c["status"] == "ACTIVE" and c["registeredContainerInstancesCount"] == 0
    assert c["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    # CreateCluster is idempotent: the same ARN again.
    assert ecs.create_cluster(clusterName="alpha")["cluster"]["clusterArn"] == c["clusterArn"]

    out = ecs.describe_clusters(clusters=["alpha", ARN + "cluster/alpha", "ghost"],
                                include=["SETTINGS", "TAGS"])
    assert [x["clusterName"] for x in out["clusters"]] == ["alpha", "alpha"]
    assert out["clusters"][0]["tags"] == [{"key": "team", "value": "a"}]
    assert out["failures"] == [{"arn": ARN + "cluster/ghost", "reason": "MISSING"}]
    plain = ecs.describe_clusters(clusters=["alpha"])["clusters"][0]
    assert "tags" not in plain and "settings" not in plain

    assert ARN + "cluster/alpha" in ecs.list_clusters()["clusterArns"]
    deleted = ecs.delete_cluster(cluster="alpha")["cluster"]
    assert deleted["status"] == "INACTIVE"
    assert ARN + "cluster/alpha" not in ecs.list_clusters()["clusterArns"]
    # An INACTIVE cluster is still described, and unusable.
    assert ecs.describe_clusters(clusters=["alpha"])["clusters"][0]["status"] == "INACTIVE"
    assert error_of(ecs.list_services, cluster="alpha")[0] == "ClusterNotFoundException"
    # Creating it again brings it back.
    assert ecs.create_cluster(clusterName="alpha")["cluster"]["status"] == "ACTIVE"


def test_list_clusters_paginates(ecs) -> None:
    for i in range(5):
        ecs.create_cluster(clusterName=f"page-{i}")
    seen, token = [], None
    for _ in range(20):
        kw = {"maxResults": 2, **({"nextToken": token} if token else {})}
        page = ecs.list_clusters(**kw)
        assert len(page["clusterArns"]) <= 2
        seen += page["clusterArns"]
        token = page.get("nextToken")
        if not token:
            break
    assert [a for a in seen if "/page-" in a] == [ARN + f"cluster/page-{i}" for i in range(5)]
    assert len(seen) == len(set(seen))


def test_update_cluster_and_settings(ecs) -> None:
    ecs.create_cluster(clusterName="upd")
    c = ecs.update_cluster_settings(cluster="upd", settings=[
        {"name": "containerInsights", "value": "enhanced"}])["cluster"]
    assert c["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    c = ecs.update_cluster(cluster="upd", configuration={
        "executeCommandConfiguration": {"logging": "DEFAULT"}})["cluster"]
    assert c["configuration"] == {"executeCommandConfiguration": {"logging": "DEFAULT"}}
    code, _, status = error_of(ecs.update_cluster_settings, cluster="upd",
                               settings=[{"name": "bogus", "value": "x"}])
    assert (code, status) == ("InvalidParameterException", 400)
    code, msg, _ = error_of(ecs.update_cluster, cluster="nope", settings=[])
    assert (code, msg) == ("ClusterNotFoundException", "Cluster not found.")


def test_delete_refused_while_cluster_holds_things(ecs) -> None:
    ecs.create_cluster(clusterName="busy")
    agent = SimAgent(ecs, "busy")
    code, _, _ = error_of(ecs.delete_cluster, cluster="busy")
    assert code == "ClusterContainsContainerInstancesException"

    ecs.register_task_definition(family="busy-td", containerDefinitions=[
        {"name": "a", "image": "busybox", "memory": 64}])
    task = ecs.run_task(cluster="busy", taskDefinition="busy-td")["tasks"][0]
    agent.report(task, "RUNNING")
    ecs.deregister_container_instance(cluster="busy", containerInstance=agent.arn, force=True)
    # The forced deregistration stopped the task, so nothing holds the cluster any more...
    stopped = ecs.describe_tasks(cluster="busy", tasks=[task["taskArn"]])["tasks"][0]
    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stoppedReason"] == "Container instance deregistered"
    # ...except a service.
    ecs.create_service(cluster="busy", serviceName="s", taskDefinition="busy-td",
                       desiredCount=0)
    assert error_of(ecs.delete_cluster, cluster="busy")[0] == "ClusterContainsServicesException"
    ecs.delete_service(cluster="busy", service="s")
    assert ecs.delete_cluster(cluster="busy")["cluster"]["status"] == "INACTIVE"


def test_delete_refused_while_tasks_run(ecs) -> None:
    ecs.create_cluster(clusterName="tasky")
    agent = SimAgent(ecs, "tasky")
    ecs.register_task_definition(family="tasky-td", containerDefinitions=[
        {"name": "a", "image": "busybox", "memory": 64}])
    task = ecs.run_task(cluster="tasky", taskDefinition="tasky-td")["tasks"][0]
    agent.report(task, "RUNNING")
    assert error_of(ecs.delete_cluster, cluster="tasky")[0] == "ClusterContainsTasksException"
    # Deregistering without force is refused while the task lives.
    code, _, _ = error_of(ecs.deregister_container_instance, cluster="tasky",
                          containerInstance=agent.arn)
    assert code == "InvalidParameterException"
    agent.report(task, "STOPPED", exit_code=0)
    assert error_of(ecs.delete_cluster, cluster="tasky")[0] == \
        "ClusterContainsContainerInstancesException"
    ecs.deregister_container_instance(cluster="tasky", containerInstance=agent.arn)
    assert ecs.delete_cluster(cluster="tasky")["cluster"]["status"] == "INACTIVE"


def test_default_cluster_is_what_an_omitted_cluster_means(berth: BerthProcess, ecs) -> None:
    # Nothing exists yet: operations on the default cluster say so, as ECS does.
    code, msg, _ = error_of(ecs.list_container_instances)
    assert (code, msg) == ("ClusterNotFoundException", "Cluster not found.")
    # An agent joining without naming a cluster brings `default` into being.
    inst = ecs.register_container_instance(totalResources=[
        {"name": "CPU", "type": "INTEGER", "integerValue": 512},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 512}])["containerInstance"]
    assert inst["containerInstanceArn"].startswith(ARN + "container-instance/default/")
    assert ecs.list_container_instances()["containerInstanceArns"] == [
        inst["containerInstanceArn"]]
    c = ecs.describe_clusters()["clusters"][0]
    assert c["clusterName"] == "default" and c["registeredContainerInstancesCount"] == 1


def test_tags_on_every_resource_kind(ecs) -> None:
    ecs.create_cluster(clusterName="tagged")
    agent = SimAgent(ecs, "tagged")
    td = ecs.register_task_definition(family="tagged-td", containerDefinitions=[
        {"name": "a", "image": "busybox", "memory": 32}])["taskDefinition"]
    task = ecs.run_task(cluster="tagged", taskDefinition="tagged-td")["tasks"][0]
    svc = ecs.create_service(cluster="tagged", serviceName="svc", taskDefinition="tagged-td",
                             desiredCount=0)["service"]
    for arn in (ARN + "cluster/tagged", td["taskDefinitionArn"], task["taskArn"],
                svc["serviceArn"], agent.arn):
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "k1", "value": "v1"},
                                                {"key": "k2", "value": "v2"}])
        ecs.untag_resource(resourceArn=arn, tagKeys=["k1"])
        assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [
            {"key": "k2", "value": "v2"}], arn
    assert ecs.describe_tasks(cluster="tagged", tasks=[task["taskArn"]],
                              include=["TAGS"])["tasks"][0]["tags"] == [
        {"key": "k2", "value": "v2"}]

    code, _, _ = error_of(ecs.list_tags_for_resource, resourceArn=ARN + "task/tagged/" + "0" * 32)
    assert code == "ResourceNotFoundException"
    code, _, _ = error_of(ecs.tag_resource, resourceArn=ARN + "cluster/ghost",
                          tags=[{"key": "a", "value": "b"}])
    assert code == "ClusterNotFoundException"
    code, _, _ = error_of(ecs.list_tags_for_resource, resourceArn="not-an-arn")
    assert code == "InvalidParameterException"
    code, _, _ = error_of(ecs.tag_resource, resourceArn=ARN + "cluster/tagged",
                          tags=[{"key": "aws:reserved", "value": "x"}])
    assert code == "InvalidParameterException"


def test_aws_cli(berth: BerthProcess) -> None:
    made = json.loads(berth.aws_cli("ecs", "create-cluster", "--cluster-name", "cli").stdout)
    assert made["cluster"]["clusterArn"] == ARN + "cluster/cli"
    listed = json.loads(berth.aws_cli("ecs", "list-clusters").stdout)
    assert ARN + "cluster/cli" in listed["clusterArns"]
    failed = berth.aws_cli("ecs", "delete-cluster", "--cluster", "ghost", check=False)
    assert failed.returncode != 0 and "ClusterNotFoundException" in failed.stderr


def test_bad_input_is_an_aws_error_never_a_500(berth: BerthProcess, ecs) -> None:
    code, _, status = error_of(ecs.create_cluster, clusterName="bad name!")
    assert (code, status) == ("InvalidParameterException", 400)
    code, _, status = error_of(ecs.describe_clusters, clusters=["x"] * 101)
    assert (code, status) == ("InvalidParameterException", 400)
    code, _, status = error_of(ecs.list_clusters, maxResults=0)
    assert (code, status) == ("InvalidParameterException", 400)
    code, _, _ = error_of(ecs.list_clusters, nextToken="%%%not-a-token")
    assert code == "InvalidParameterException"
