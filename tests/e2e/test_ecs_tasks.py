"""ECS tasks end to end: RunTask and StartTask placement, failures with ECS's reasons, the
lifecycle an agent reports, StopTask, ListTasks filters and DescribeTasks."""
from __future__ import annotations

import re

import botocore.exceptions
import pytest
from berth_process import BerthProcess
from ecs.simagent import SimAgent

ARN = "arn:aws:ecs:us-east-1:000000000000:"


def error_of(call, **kw) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kw)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def ecs(berth: BerthProcess):
    c = berth.client("ecs")
    c.register_task_definition(family="job", containerDefinitions=[
        {"name": "main", "image": "busybox", "cpu": 256, "memory": 512,
         "command": ["sleep", "1"]},
        {"name": "helper", "image": "busybox", "memory": 64, "essential": False}])
    c.register_task_definition(family="porty", containerDefinitions=[
        {"name": "web", "image": "nginx", "memory": 16,
         "portMappings": [{"containerPort": 80, "hostPort": 8080}]}])
    return c


def test_run_task_lifecycle_through_the_agent(ecs) -> None:
    ecs.create_cluster(clusterName="life")
    agent = SimAgent(ecs, "life")
    out = ecs.run_task(cluster="life", taskDefinition="job", startedBy="me", group="batch",
                       tags=[{"key": "k", "value": "v"}],
                       overrides={"containerOverrides": [
                           {"name": "main", "command": ["echo", "hi"], "memory": 300}]})
    assert out["failures"] == []
    task = out["tasks"][0]
    assert re.fullmatch(ARN + r"task/life/[0-9a-f]{32}", task["taskArn"])
    assert task["clusterArn"] == ARN + "cluster/life"
    assert task["taskDefinitionArn"] == ARN + "task-definition/job:1"
    assert task["containerInstanceArn"] == agent.arn
    assert (task["lastStatus"], task["desiredStatus"]) == ("PROVISIONING", "RUNNING")
    assert (task["cpu"], task["memory"]) == ("256", "364")   # override 300 + helper 64
    assert (task["startedBy"], task["group"]) == ("me", "batch")
    assert task["overrides"]["containerOverrides"][0]["command"] == ["echo", "hi"]
    assert [c["name"] for c in task["containers"]] == ["main", "helper"]
    assert task["containers"][0]["containerArn"].startswith(ARN + "container/life/")
    assert task["tags"] == [{"key": "k", "value": "v"}]

    agent.report(task, "PENDING")
    agent.report(task, "RUNNING")
    running = ecs.describe_tasks(cluster="life", tasks=[task["taskArn"]])["tasks"][0]
    assert running["lastStatus"] == "RUNNING" and "startedAt" in running
    assert running["containers"][0]["lastStatus"] == "RUNNING"
    assert running["createdAt"] <= running["startedAt"]
    # A late, out-of-order report never moves a task backwards.
    agent.report(task, "PENDING")
    assert ecs.describe_tasks(cluster="life", tasks=[task["taskArn"]])["tasks"][0][
        "lastStatus"] == "RUNNING"
    ecs.submit_container_state_change(cluster="life", task=task["taskArn"],
                                      containerName="helper", status="STOPPED", exitCode=3,
                                      reason="done")
    helper = ecs.describe_tasks(cluster="life", tasks=[task["taskArn"]])["tasks"][0][
        "containers"][1]
    assert (helper["lastStatus"], helper["exitCode"], helper["reason"]) == ("STOPPED", 3,
                                                                           "done")

    stopping = ecs.stop_task(cluster="life", task=task["taskArn"], reason="enough")["task"]
    assert (stopping["desiredStatus"], stopping["lastStatus"]) == ("STOPPED", "STOPPING")
    assert stopping["stoppedReason"] == "enough" and stopping["stopCode"] == "UserInitiated"
    assert agent.converge() == 1    # the agent sees desiredStatus STOPPED and reports
    done = ecs.describe_tasks(cluster="life", tasks=[task["taskArn"]])["tasks"][0]
    assert done["lastStatus"] == "STOPPED" and done["stoppedReason"] == "enough"
    assert done["containers"][0]["exitCode"] == 0
    assert done["stoppingAt"] <= done["stoppedAt"]
    inst = ecs.describe_container_instances(cluster="life", containerInstances=[agent.arn])
    cpu = next(r for r in inst["containerInstances"][0]["remainingResources"]
               if r["name"] == "CPU")
    assert cpu["integerValue"] == 1024


def test_a_task_whose_essential_container_exits(ecs) -> None:
    ecs.create_cluster(clusterName="exit")
    agent = SimAgent(ecs, "exit")
    task = ecs.run_task(cluster="exit", taskDefinition="job")["tasks"][0]
    agent.report(task, "RUNNING")
    agent.report(task, "STOPPED", exit_code=137)
    t = ecs.describe_tasks(cluster="exit", tasks=[task["taskArn"]])["tasks"][0]
    assert (t["lastStatus"], t["desiredStatus"]) == ("STOPPED", "STOPPED")
    assert t["stopCode"] == "EssentialContainerExited"
    assert t["stoppedReason"] == "Essential container in task exited"
    assert [c["exitCode"] for c in t["containers"]] == [137, 137]


def test_stop_before_an_agent_picked_it_up(ecs) -> None:
    ecs.create_cluster(clusterName="early")
    SimAgent(ecs, "early")
    task = ecs.run_task(cluster="early", taskDefinition="job")["tasks"][0]
    stopped = ecs.stop_task(cluster="early", task=task["taskArn"].rsplit("/", 1)[1])["task"]
    assert stopped["lastStatus"] == "STOPPED" and stopped["stoppedReason"] == \
        "Task stopped by user"
    code, message = error_of(ecs.stop_task, cluster="early", task="0" * 32)
    assert (code, message) == ("InvalidParameterException",
                               "The referenced task was not found.")


def test_failures_carry_ecs_reasons(ecs) -> None:
    ecs.create_cluster(clusterName="full")
    agent = SimAgent(ecs, "full", cpu=600, memory=700)
    out = ecs.run_task(cluster="full", taskDefinition="job", count=3)
    # 256 CPU and 576 MiB each: one fits, then memory runs out first.
    assert len(out["tasks"]) == 1
    assert out["failures"] == [{"arn": agent.arn, "reason": "RESOURCE:MEMORY"}] * 2
    cpu_hog = ecs.register_task_definition(family="cpuhog", containerDefinitions=[
        {"name": "a", "image": "x", "cpu": 500, "memory": 8}])["taskDefinition"]
    out = ecs.run_task(cluster="full", taskDefinition=cpu_hog["taskDefinitionArn"])
    assert out["failures"] == [{"arn": agent.arn, "reason": "RESOURCE:CPU"}]
    first = ecs.run_task(cluster="full", taskDefinition="porty")
    assert len(first["tasks"]) == 1
    second = ecs.run_task(cluster="full", taskDefinition="porty")
    assert second["failures"] == [{"arn": agent.arn, "reason": "RESOURCE:PORTS"}]
    distinct = ecs.run_task(cluster="full", taskDefinition="cpuhog", count=2,
                            overrides={"containerOverrides": [{"name": "a", "cpu": 1}]},
                            placementConstraints=[{"type": "distinctInstance"}])
    assert len(distinct["tasks"]) == 1
    assert distinct["failures"][0]["reason"] == \
        "DistinctInstance placement constraint unsatisfied."
    member = ecs.run_task(cluster="full", taskDefinition="cpuhog",
                          overrides={"containerOverrides": [{"name": "a", "cpu": 1}]},
                          placementConstraints=[{"type": "memberOf",
                                                 "expression": "attribute:ecs.os-type == "
                                                               "windows"}])
    assert member["failures"][0]["reason"] == "MemberOf placement constraint unsatisfied."


def test_bad_requests(ecs) -> None:
    ecs.create_cluster(clusterName="bad")
    SimAgent(ecs, "bad")
    assert error_of(ecs.run_task, cluster="bad", taskDefinition="job", count=11)[0] == \
        "InvalidParameterException"
    assert error_of(ecs.run_task, cluster="bad", taskDefinition="job", count=0)[0] == \
        "InvalidParameterException"
    assert error_of(ecs.run_task, cluster="ghost", taskDefinition="job") == (
        "ClusterNotFoundException", "Cluster not found.")
    assert error_of(ecs.run_task, cluster="bad", taskDefinition="job",
                    placementStrategy=[{"type": "binpack", "field": "disk"}])[0] == \
        "InvalidParameterException"
    assert error_of(ecs.run_task, cluster="bad", taskDefinition="job",
                    placementConstraints=[{"type": "memberOf", "expression": "(("}])[0] == \
        "InvalidParameterException"
    assert error_of(ecs.run_task, cluster="bad", taskDefinition="job",
                    overrides={"containerOverrides": [{"name": "nope"}]})[0] == \
        "InvalidParameterException"
    assert error_of(ecs.run_task, cluster="bad", taskDefinition="job",
                    launchType="FARGATE")[0] == "InvalidParameterException"
    assert error_of(ecs.describe_tasks, cluster="bad", tasks=["arn:aws:ecs:bogus"])[0] == \
        "InvalidParameterException"
    ecs.create_cluster(clusterName="empty")
    assert error_of(ecs.run_task, cluster="empty", taskDefinition="job") == (
        "InvalidParameterException", "No Container Instances were found in your cluster.")


def test_placement_strategies(ecs) -> None:
    ecs.create_cluster(clusterName="strat")
    big = SimAgent(ecs, "strat", cpu=4096, memory=8192, zone="us-east-1a")
    small = SimAgent(ecs, "strat", cpu=1024, memory=2048, zone="us-east-1b")
    packed = ecs.run_task(cluster="strat", taskDefinition="job", count=3,
                          placementStrategy=[{"type": "binpack", "field": "memory"}])
    # binpack(memory) fills the instance with the least memory left first.
    assert [t["containerInstanceArn"] for t in packed["tasks"]] == [small.arn] * 3
    # small is now full for this task (320 MiB left), so everything else lands on big.
    rest = ecs.run_task(cluster="strat", taskDefinition="job", count=2,
                        placementStrategy=[{"type": "binpack", "field": "memory"}])
    assert [t["containerInstanceArn"] for t in rest["tasks"]] == [big.arn] * 2

    ecs.create_cluster(clusterName="spread")
    zones = [SimAgent(ecs, "spread", cpu=4096, memory=8192, zone=z)
             for z in ("us-east-1a", "us-east-1b", "us-east-1b")]
    spread = ecs.run_task(cluster="spread", taskDefinition="job", count=4, placementStrategy=[
        {"type": "spread", "field": "attribute:ecs.availability-zone"},
        {"type": "spread", "field": "instanceId"}])
    on = [t["containerInstanceArn"] for t in spread["tasks"]]
    # Two per zone; within us-east-1b, one per instance.
    assert on.count(zones[0].arn) == 2
    assert on.count(zones[1].arn) == 1 and on.count(zones[2].arn) == 1
    rnd = ecs.run_task(cluster="spread", taskDefinition="job", count=3,
                       placementStrategy=[{"type": "random"}])
    assert len(rnd["tasks"]) == 3


def test_start_task_names_the_instances(ecs) -> None:
    ecs.create_cluster(clusterName="custom")
    a = SimAgent(ecs, "custom")
    b = SimAgent(ecs, "custom", cpu=100, memory=100)
    out = ecs.start_task(cluster="custom", taskDefinition="job",
                         containerInstances=[a.arn, b.arn.rsplit("/", 1)[1], "0" * 32],
                         startedBy="my-scheduler")
    assert [t["containerInstanceArn"] for t in out["tasks"]] == [a.arn]
    assert out["tasks"][0]["startedBy"] == "my-scheduler"
    reasons = {f["arn"]: f["reason"] for f in out["failures"]}
    assert reasons == {b.arn: "RESOURCE:CPU",
                       ARN + "container-instance/custom/" + "0" * 32: "MISSING"}
    twice = ecs.start_task(cluster="custom", taskDefinition="porty",
                           containerInstances=[a.arn, a.arn])
    assert len(twice["tasks"]) == 1 and twice["failures"][0]["reason"] == "RESOURCE:PORTS"


def test_list_and_describe(ecs) -> None:
    ecs.create_cluster(clusterName="lst")
    a = SimAgent(ecs, "lst")
    b = SimAgent(ecs, "lst")
    t1 = ecs.start_task(cluster="lst", taskDefinition="job", containerInstances=[a.arn],
                        startedBy="x")["tasks"][0]
    t2 = ecs.start_task(cluster="lst", taskDefinition="porty",
                        containerInstances=[b.arn])["tasks"][0]
    t3 = ecs.start_task(cluster="lst", taskDefinition="porty",
                        containerInstances=[a.arn])["tasks"][0]
    ecs.stop_task(cluster="lst", task=t3["taskArn"])

    def arns(**kw):
        return sorted(ecs.list_tasks(cluster="lst", **kw)["taskArns"])

    assert arns() == sorted([t1["taskArn"], t2["taskArn"]])
    assert arns(containerInstance=a.arn) == [t1["taskArn"]]
    assert arns(family="porty") == [t2["taskArn"]]
    assert arns(startedBy="x") == [t1["taskArn"]]
    assert arns(desiredStatus="STOPPED") == [t3["taskArn"]]
    first = ecs.list_tasks(cluster="lst", maxResults=1)
    second = ecs.list_tasks(cluster="lst", maxResults=1, nextToken=first["nextToken"])
    assert sorted(first["taskArns"] + second["taskArns"]) == arns()

    got = ecs.describe_tasks(cluster="lst", tasks=[t1["taskArn"], t2["taskArn"].rsplit(
        "/", 1)[1], "f" * 32])
    assert [t["taskArn"] for t in got["tasks"]] == [t1["taskArn"], t2["taskArn"]]
    assert got["failures"] == [{"arn": ARN + "task/lst/" + "f" * 32, "reason": "MISSING"}]
    c = ecs.describe_clusters(clusters=["lst"])["clusters"][0]
    assert (c["pendingTasksCount"], c["runningTasksCount"]) == (2, 0)


def test_discover_poll_endpoint_and_heartbeat(berth: BerthProcess, ecs) -> None:
    ecs.create_cluster(clusterName="disc")
    a = SimAgent(ecs, "disc")
    out = ecs.discover_poll_endpoint(cluster="disc", containerInstance=a.arn)
    assert out["endpoint"] == berth.endpoint + "/"
    assert error_of(ecs.discover_poll_endpoint, cluster="disc",
                    containerInstance="0" * 32)[0] == "InvalidParameterException"
    assert error_of(ecs.submit_task_state_change, cluster="disc", task="0" * 32,
                    status="RUNNING")[0] == "InvalidParameterException"
    assert error_of(ecs.submit_task_state_change, cluster="disc", task="0" * 32,
                    status="EXPLODED")[0] == "InvalidParameterException"


def test_udp_host_ports_are_a_resource_of_their_own(berth: BerthProcess, ecs) -> None:
    from test_ecs_agent_channel import poll
    ecs.create_cluster(clusterName="udp")
    agent = SimAgent(ecs, "udp")
    for family, protocol in (("dns", "udp"), ("dns-tcp", "tcp")):
        ecs.register_task_definition(family=family, containerDefinitions=[
            {"name": "dns", "image": "x", "memory": 16,
             "portMappings": [{"containerPort": 53, "hostPort": 8053, "protocol": protocol}]}])
    first = ecs.run_task(cluster="udp", taskDefinition="dns")["tasks"][0]
    second = ecs.run_task(cluster="udp", taskDefinition="dns")
    assert second["tasks"] == []
    assert second["failures"] == [{"arn": agent.arn, "reason": "RESOURCE:PORTS_UDP"}]
    # TCP 8053 is another port: it still fits, and then it is taken too.
    assert len(ecs.run_task(cluster="udp", taskDefinition="dns-tcp")["tasks"]) == 1
    assert ecs.run_task(cluster="udp", taskDefinition="dns-tcp")["failures"] == [
        {"arn": agent.arn, "reason": "RESOURCE:PORTS"}]
    described = ecs.describe_container_instances(
        cluster="udp", containerInstances=[agent.arn])["containerInstances"][0]
    remaining = {r["name"]: r.get("stringSetValue") for r in described["remainingResources"]}
    assert remaining["PORTS_UDP"] == ["8053"] and "8053" in remaining["PORTS"]
    # The agent is told which host ports of each protocol its tasks hold.
    handed = poll(berth, {"cluster": "udp", "containerInstance": agent.arn,
                          "waitSeconds": 0}).json()["tasks"]
    by_family = {t["taskDefinitionArn"].rsplit("/", 1)[1]: t for t in handed}
    assert (by_family["dns:1"]["hostPorts"], by_family["dns:1"]["hostUdpPorts"]) == ([], [8053])
    assert (by_family["dns-tcp:1"]["hostPorts"],
            by_family["dns-tcp:1"]["hostUdpPorts"]) == ([8053], [])
    # Stopping the UDP task frees its port for the next one.
    ecs.stop_task(cluster="udp", task=first["taskArn"])
    agent.report(first, "STOPPED", exit_code=0)
    again = ecs.run_task(cluster="udp", taskDefinition="dns")
    assert len(again["tasks"]) == 1 and again["failures"] == []


def test_run_task_client_token_runs_once(ecs) -> None:
    import threading
    ecs.create_cluster(clusterName="idem")
    ecs.create_cluster(clusterName="idem2")
    agent = SimAgent(ecs, "idem", cpu=600)
    SimAgent(ecs, "idem2")
    # 256 CPU units each: two of the three asked for fit.
    first = ecs.run_task(cluster="idem", taskDefinition="job", clientToken="tok-2", count=3)
    again = ecs.run_task(cluster="idem", taskDefinition="job", clientToken="tok-2", count=3)
    assert len(first["tasks"]) == 2 and first["failures"] == [
        {"arn": agent.arn, "reason": "RESOURCE:CPU"}]
    assert [t["taskArn"] for t in again["tasks"]] == [t["taskArn"] for t in first["tasks"]]
    assert again["failures"] == first["failures"]
    assert len(ecs.list_tasks(cluster="idem")["taskArns"]) == 2
    code, message = error_of(ecs.run_task, cluster="idem", taskDefinition="job",
                             clientToken="tok-2", count=1)
    assert code == "ConflictException" and "different parameters" in message
    # Per cluster: the same token elsewhere is a request of its own.
    other = ecs.run_task(cluster="idem2", taskDefinition="job", clientToken="tok-2", count=3)
    assert len(other["tasks"]) == 3
    for bad in ("x" * 65, "has space"):
        code, _ = error_of(ecs.run_task, cluster="idem2", taskDefinition="job",
                           clientToken=bad)
        assert code == "InvalidParameterException"
    # Retries racing each other still run the tasks once.
    ecs.create_cluster(clusterName="idem3")
    SimAgent(ecs, "idem3")
    answers: list[dict] = []
    threads = [threading.Thread(target=lambda: answers.append(ecs.run_task(
        cluster="idem3", taskDefinition="job", clientToken="tok-race", count=2)))
        for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    arns = {tuple(sorted(t["taskArn"] for t in a["tasks"])) for a in answers}
    assert len(answers) == 4 and len(arns) == 1 and len(next(iter(arns))) == 2
    assert len(ecs.list_tasks(cluster="idem3")["taskArns"]) == 2
