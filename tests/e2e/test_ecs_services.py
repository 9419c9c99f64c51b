"""ECS services end to end: the reconciler keeps desiredCount, replaces tasks that stop, rolls
new task definitions within minimumHealthyPercent/maximumPercent, moves tasks off DRAINING
instances, and records ECS's events."""
from __future__ import annotations

import threading
import time

import botocore.exceptions
import pytest
from berth_process import BerthProcess
from ecs.simagent import SimAgent, wait_for

ARN = "arn:aws:ecs:us-east-1:000000000000:"


def error_of(call, **kw) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kw)
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


# The reconciler looks every 0.2 s and counts a task as started once it is up 0.5 s.
BERTH_ENV = {"BERTH_ECS_RECONCILE_INTERVAL": "0.2", "BERTH_ECS_TASK_STABLE_AFTER": "0.5"}


@pytest.fixture(scope="module")
def ecs(berth: BerthProcess):
    c = berth.client("ecs")
    for rev in (1, 2):
        c.register_task_definition(family="svc", containerDefinitions=[
            {"name": "app", "image": f"app:{rev}", "cpu": 128, "memory": 128}])
    return c



def describe(ecs, cluster: str, name: str) -> dict:
    return ecs.describe_services(cluster=cluster, services=[name])["services"][0]


def live_tasks(ecs, cluster: str, name: str) -> list[dict]:
    arns = ecs.list_tasks(cluster=cluster, serviceName=name)["taskArns"]
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


def steady(ecs, cluster: str, name: str, count: int, revision: int | None = None):
    def check():
        s = describe(ecs, cluster, name)
        ok = (s["runningCount"] == count and s["pendingCount"] == 0
              and len(s["deployments"]) == 1
              and any("has reached a steady state" in e["message"] for e in s["events"]))
        if ok and revision is not None:
            ok = all(t["taskDefinitionArn"].endswith(f":{revision}")
                     for t in live_tasks(ecs, cluster, name))
        return s if ok else None
    return wait_for(check, timeout=15)


def test_create_keep_running_and_replace(ecs, agents) -> None:
    ecs.create_cluster(clusterName="keep")
    agents += [SimAgent(ecs, "keep").start(), SimAgent(ecs, "keep").start()]
    svc = ecs.create_service(cluster="keep", serviceName="web", taskDefinition="svc:1",
                             desiredCount=2, tags=[{"key": "t", "value": "1"}])["service"]
    assert svc["serviceArn"] == ARN + "service/keep/web"
    assert svc["status"] == "ACTIVE" and svc["desiredCount"] == 2
    assert svc["deploymentConfiguration"]["maximumPercent"] == 200
    assert svc["deployments"][0]["status"] == "PRIMARY"
    assert svc["deployments"][0]["id"].startswith("ecs-svc/")
    s = steady(ecs, "keep", "web", 2)
    messages = [e["message"] for e in s["events"]]
    assert any(m.startswith("(service web) has started 2 tasks: (task ") for m in messages)
    assert s["deployments"][0]["rolloutState"] == "COMPLETED"
    tasks = live_tasks(ecs, "keep", "web")
    assert {t["group"] for t in tasks} == {"service:web"}
    assert {t["startedBy"] for t in tasks} == {s["deployments"][0]["id"]}
    # Service tasks spread over instances by default.
    assert len({t["containerInstanceArn"] for t in tasks}) == 2

    # A task that stops is replaced.
    victim = tasks[0]["taskArn"]
    ecs.stop_task(cluster="keep", task=victim)
    wait_for(lambda: victim not in [t["taskArn"] for t in live_tasks(ecs, "keep", "web")]
             and describe(ecs, "keep", "web")["runningCount"] == 2)
    # The simulated agent reports the stop on its own schedule: STOPPING, then STOPPED.
    stopped = wait_for(lambda: next(
        (t for t in ecs.describe_tasks(cluster="keep", tasks=[victim])["tasks"]
         if t["lastStatus"] == "STOPPED"), None))
    assert stopped["desiredStatus"] == "STOPPED"

    # So is one whose container crashes.
    crashed = live_tasks(ecs, "keep", "web")[0]
    agent = next(a for a in agents if a.arn == crashed["containerInstanceArn"])
    agent.report(crashed, "STOPPED", exit_code=1)
    wait_for(lambda: crashed["taskArn"] not in [t["taskArn"] for t in
                                                 live_tasks(ecs, "keep", "web")]
             and describe(ecs, "keep", "web")["runningCount"] == 2)

    # Scale out and in.
    ecs.update_service(cluster="keep", service="web", desiredCount=4)
    wait_for(lambda: describe(ecs, "keep", "web")["runningCount"] == 4)
    ecs.update_service(cluster="keep", service="web", desiredCount=1)
    wait_for(lambda: len(live_tasks(ecs, "keep", "web")) == 1)
    assert any("has stopped" in e["message"] for e in describe(ecs, "keep", "web")["events"])


def test_rolling_update_respects_min_and_max_percent(ecs, agents) -> None:
    ecs.create_cluster(clusterName="roll")
    agents += [SimAgent(ecs, "roll", cpu=4096, memory=4096).start(every=0.05)]
    ecs.create_service(cluster="roll", serviceName="api", taskDefinition="svc:1",
                       desiredCount=4, deploymentConfiguration={
                           "minimumHealthyPercent": 50, "maximumPercent": 100})
    steady(ecs, "roll", "api", 4, revision=1)

    seen_live: list[int] = []
    seen_running: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            s = describe(ecs, "roll", "api")
            seen_live.append(s["runningCount"] + s["pendingCount"])
            seen_running.append(s["runningCount"])
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        updated = ecs.update_service(cluster="roll", service="api",
                                     taskDefinition="svc:2")["service"]
        assert [d["status"] for d in updated["deployments"]] == ["PRIMARY", "ACTIVE"]
        s = steady(ecs, "roll", "api", 4, revision=2)
    finally:
        stop.set()
        watcher.join()
    assert s["taskDefinition"] == ARN + "task-definition/svc:2"
    assert len(s["deployments"]) == 1 and s["deployments"][0]["status"] == "PRIMARY"
    # maximumPercent 100: never more than 4 live; minimumHealthyPercent 50: never < 2 running.
    assert max(seen_live) <= 4
    assert min(seen_running) >= 2

    forced = ecs.update_service(cluster="roll", service="api", forceNewDeployment=True)
    assert len(forced["service"]["deployments"]) == 2
    steady(ecs, "roll", "api", 4, revision=2)


def test_draining_moves_service_tasks(ecs, agents) -> None:
    ecs.create_cluster(clusterName="dr")
    first = SimAgent(ecs, "dr").start()
    agents.append(first)
    ecs.create_service(cluster="dr", serviceName="w", taskDefinition="svc:1", desiredCount=2)
    steady(ecs, "dr", "w", 2)
    second = SimAgent(ecs, "dr").start()
    agents.append(second)
    ecs.update_container_instances_state(cluster="dr", containerInstances=[first.arn],
                                         status="DRAINING")
    wait_for(lambda: {t["containerInstanceArn"] for t in live_tasks(ecs, "dr", "w")}
             == {second.arn} and describe(ecs, "dr", "w")["runningCount"] == 2, timeout=15)
    inst = ecs.describe_container_instances(cluster="dr", containerInstances=[first.arn])
    assert inst["containerInstances"][0]["runningTasksCount"] == 0


def test_unplaceable_service_records_why(ecs, agents) -> None:
    ecs.create_cluster(clusterName="tight")
    agents.append(SimAgent(ecs, "tight", cpu=200, memory=1024).start())
    ecs.create_service(cluster="tight", serviceName="big", taskDefinition="svc:1",
                       desiredCount=2)
    def one_running_and_explained() -> dict | None:
        s = describe(ecs, "tight", "big")
        explained = any("was unable to place a task" in e["message"] for e in s["events"])
        return s if s["runningCount"] == 1 and explained else None

    s = wait_for(one_running_and_explained)
    message = next(e["message"] for e in s["events"] if "unable to place" in e["message"])
    assert "insufficient CPU units available" in message
    ecs.create_cluster(clusterName="nohosts")
    ecs.create_service(cluster="nohosts", serviceName="x", taskDefinition="svc:1",
                       desiredCount=1)
    wait_for(lambda: any("No Container Instances were found in your cluster." in e["message"]
                         for e in describe(ecs, "nohosts", "x")["events"]))


def test_delete_service(ecs, agents) -> None:
    ecs.create_cluster(clusterName="del")
    agents.append(SimAgent(ecs, "del").start())
    ecs.create_service(cluster="del", serviceName="d", taskDefinition="svc", desiredCount=2)
    steady(ecs, "del", "d", 2)
    code, message = error_of(ecs.delete_service, cluster="del", service="d")
    assert (code, message) == ("InvalidParameterException",
                               "The service cannot be stopped while it is scaled above 0.")
    gone = ecs.delete_service(cluster="del", service="d", force=True)["service"]
    assert gone["status"] == "DRAINING" and gone["desiredCount"] == 0
    wait_for(lambda: describe(ecs, "del", "d")["status"] == "INACTIVE")
    assert live_tasks(ecs, "del", "d") == []
    assert ecs.list_services(cluster="del")["serviceArns"] == []
    assert error_of(ecs.update_service, cluster="del", service="d", desiredCount=1)[0] == \
        "ServiceNotActiveException"
    # The name is free again.
    again = ecs.create_service(cluster="del", serviceName="d", taskDefinition="svc",
                               desiredCount=0)["service"]
    assert again["status"] == "ACTIVE"


def test_service_errors_list_and_describe(ecs) -> None:
    ecs.create_cluster(clusterName="errs")
    for name in ("a", "b", "c"):
        ecs.create_service(cluster="errs", serviceName=name, taskDefinition="svc",
                           desiredCount=0)
    assert error_of(ecs.create_service, cluster="errs", serviceName="a", taskDefinition="svc",
                    desiredCount=0) == ("InvalidParameterException",
                                        "Creation of service was not idempotent.")
    assert error_of(ecs.create_service, cluster="errs", serviceName="n",
                    taskDefinition="svc")[0] == "InvalidParameterException"
    assert error_of(ecs.create_service, cluster="errs", serviceName="n", desiredCount=1,
                    taskDefinition="nope") == ("ClientException", "TaskDefinition not found.")
    assert error_of(ecs.create_service, cluster="errs", serviceName="n", desiredCount=1,
                    taskDefinition="svc", deploymentConfiguration={
                        "minimumHealthyPercent": 150})[0] == "InvalidParameterException"
    assert error_of(ecs.create_service, cluster="errs", serviceName="n", desiredCount=1,
                    taskDefinition="svc", placementStrategy=[
                        {"type": "spread", "field": "bogus"}])[0] == "InvalidParameterException"
    assert error_of(ecs.create_service, cluster="ghost", serviceName="n", desiredCount=1,
                    taskDefinition="svc")[0] == "ClusterNotFoundException"
    assert error_of(ecs.update_service, cluster="errs", service="zz", desiredCount=1) == (
        "ServiceNotFoundException", "Service not found.")
    assert error_of(ecs.delete_service, cluster="errs", service="zz")[0] == \
        "ServiceNotFoundException"

    first = ecs.list_services(cluster="errs", maxResults=2)
    rest = ecs.list_services(cluster="errs", nextToken=first["nextToken"])
    assert first["serviceArns"] + rest["serviceArns"] == [
        ARN + f"service/errs/{n}" for n in ("a", "b", "c")]
    got = ecs.describe_services(cluster="errs", services=["a", ARN + "service/errs/b", "zz"],
                                include=["TAGS"])
    assert [s["serviceName"] for s in got["services"]] == ["a", "b"]
    assert got["failures"] == [{"arn": ARN + "service/errs/zz", "reason": "MISSING"}]
    assert got["services"][0]["clusterArn"] == ARN + "cluster/errs"
