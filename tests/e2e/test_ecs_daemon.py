"""DAEMON services end to end, with simulated agents: one task on every instance that meets the
constraints, following instances as they join, drain, change attributes and leave, and placed
before replica tasks when an instance is short of room, as ECS documents."""
from __future__ import annotations

from berth_process import error_of
from ecs.simagent import SimAgent, wait_for

# The reconciler looks every 0.2 s and counts a task as started once it is up 0.5 s.
BERTH_ENV = {"BERTH_ECS_RECONCILE_INTERVAL": "0.2", "BERTH_ECS_TASK_STABLE_AFTER": "0.5"}


def describe(ecs, cluster: str, name: str) -> dict:
    return ecs.describe_services(cluster=cluster, services=[name])["services"][0]


def placement(ecs, cluster: str, name: str) -> dict[str, str]:
    """instance ARN -> task ARN of the service's live tasks (desired RUNNING)."""
    arns = ecs.list_tasks(cluster=cluster, serviceName=name)["taskArns"]
    found = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    return {t["containerInstanceArn"]: t["taskArn"] for t in found
            if t["lastStatus"] != "STOPPED"}


def test_one_task_per_qualifying_instance_following_the_cluster(ecs, agents) -> None:
    ecs.create_cluster(clusterName="dmn")
    ecs.register_task_definition(family="logger", containerDefinitions=[
        {"name": "log", "image": "busybox", "cpu": 64, "memory": 64}])
    a = SimAgent(ecs, "dmn", zone="us-east-1a", attributes={"role": "web"}).start()
    b = SimAgent(ecs, "dmn", zone="us-east-1b", attributes={"role": "web"}).start()
    c = SimAgent(ecs, "dmn", zone="us-east-1b", attributes={"role": "db"}).start()
    agents += [a, b, c]
    svc = ecs.create_service(cluster="dmn", serviceName="logs", taskDefinition="logger",
                             schedulingStrategy="DAEMON", placementConstraints=[
                                 {"type": "memberOf", "expression": "attribute:role == web"}]
                             )["service"]
    assert svc["schedulingStrategy"] == "DAEMON"
    assert svc["deploymentConfiguration"]["maximumPercent"] == 100
    assert svc["deploymentConfiguration"]["minimumHealthyPercent"] == 0
    on = wait_for(lambda: (p := placement(ecs, "dmn", "logs")) and set(p) == {a.arn, b.arn}
                  and p)
    s = wait_for(lambda: (d := describe(ecs, "dmn", "logs"))["runningCount"] == 2
                 and any("steady state" in e["message"] for e in d["events"]) and d)
    assert s["desiredCount"] == 2
    assert ecs.list_services(cluster="dmn", schedulingStrategy="DAEMON")["serviceArns"] == [
        s["serviceArn"]]

    # An instance that joins and qualifies gets its task; one that stops qualifying loses it.
    d = SimAgent(ecs, "dmn", attributes={"role": "web"}).start()
    agents.append(d)
    wait_for(lambda: set(placement(ecs, "dmn", "logs")) == {a.arn, b.arn, d.arn})
    ecs.put_attributes(cluster="dmn", attributes=[
        {"name": "role", "value": "db", "targetType": "container-instance", "targetId": b.arn}])
    wait_for(lambda: set(placement(ecs, "dmn", "logs")) == {a.arn, d.arn})
    wait_for(lambda: describe(ecs, "dmn", "logs")["desiredCount"] == 2)
    assert on[a.arn] == placement(ecs, "dmn", "logs")[a.arn]     # the others were left alone

    # A deregistered instance's task is gone with it.
    d.stop()
    ecs.deregister_container_instance(cluster="dmn", containerInstance=d.arn, force=True)
    wait_for(lambda: set(placement(ecs, "dmn", "logs")) == {a.arn}
             and describe(ecs, "dmn", "logs")["desiredCount"] == 1)

    # A new task definition replaces the task in place (maximumPercent 100).
    ecs.register_task_definition(family="logger", containerDefinitions=[
        {"name": "log", "image": "busybox", "cpu": 64, "memory": 96}])
    ecs.update_service(cluster="dmn", service="logs", taskDefinition="logger:2")
    wait_for(lambda: (p := placement(ecs, "dmn", "logs")) and p[a.arn] != on[a.arn]
             and ecs.describe_tasks(cluster="dmn", tasks=[p[a.arn]])["tasks"][0][
                 "taskDefinitionArn"].endswith(":2"))
    # A daemon goes without scaling down first.
    ecs.delete_service(cluster="dmn", service="logs")
    wait_for(lambda: describe(ecs, "dmn", "logs")["status"] == "INACTIVE")
    assert placement(ecs, "dmn", "logs") == {}


def test_a_draining_instance_keeps_its_daemon_until_replica_tasks_are_gone(ecs, agents) -> None:
    ecs.create_cluster(clusterName="drn")
    ecs.register_task_definition(family="d-agent", containerDefinitions=[
        {"name": "x", "image": "busybox", "cpu": 32, "memory": 32}])
    ecs.register_task_definition(family="d-app", containerDefinitions=[
        {"name": "x", "image": "busybox", "cpu": 32, "memory": 32}])
    # The replica's tasks need the agent's report to leave: hold the stop until told.
    a = SimAgent(ecs, "drn").start()
    b = SimAgent(ecs, "drn").start(converge=False)
    agents += [a, b]
    ecs.create_service(cluster="drn", serviceName="agent", taskDefinition="d-agent",
                       schedulingStrategy="DAEMON")
    ecs.create_service(cluster="drn", serviceName="app", taskDefinition="d-app",
                       desiredCount=2, placementConstraints=[{"type": "distinctInstance"}],
                       deploymentConfiguration={"minimumHealthyPercent": 50})
    wait_for(lambda: b.converge() >= 0 and len(placement(ecs, "drn", "agent")) == 2
             and len(placement(ecs, "drn", "app")) == 2
             and describe(ecs, "drn", "app")["runningCount"] == 2)
    ecs.update_container_instances_state(cluster="drn", containerInstances=[b.arn],
                                         status="DRAINING")
    app_task = placement(ecs, "drn", "app")[b.arn]
    # The replica task on b is asked to stop; the daemon's is not, while that one is there.
    wait_for(lambda: ecs.describe_tasks(cluster="drn", tasks=[app_task])["tasks"][0][
        "desiredStatus"] == "STOPPED")
    daemon_task = placement(ecs, "drn", "agent")[b.arn]
    assert ecs.describe_tasks(cluster="drn", tasks=[daemon_task])["tasks"][0][
        "desiredStatus"] == "RUNNING"
    b.converge()        # the replica task stops; now the daemon's goes too
    wait_for(lambda: b.converge() >= 0 and b.arn not in placement(ecs, "drn", "agent"))
    assert describe(ecs, "drn", "agent")["desiredCount"] == 1


def test_the_daemon_is_placed_before_replica_tasks_when_room_is_short(ecs, agents) -> None:
    ecs.create_cluster(clusterName="tight-d")
    a = SimAgent(ecs, "tight-d", cpu=1024, memory=1000).start()
    agents.append(a)
    ecs.register_task_definition(family="big-app", containerDefinitions=[
        {"name": "x", "image": "busybox", "cpu": 10, "memory": 400}])
    ecs.register_task_definition(family="big-daemon", containerDefinitions=[
        {"name": "x", "image": "busybox", "cpu": 10, "memory": 400}])
    ecs.create_service(cluster="tight-d", serviceName="app", taskDefinition="big-app",
                       desiredCount=2)
    wait_for(lambda: describe(ecs, "tight-d", "app")["runningCount"] == 2)
    ecs.create_service(cluster="tight-d", serviceName="daemon", taskDefinition="big-daemon",
                       schedulingStrategy="DAEMON")
    wait_for(lambda: any("has insufficient memory available" in e["message"]
                         for e in describe(ecs, "tight-d", "daemon")["events"]))
    # One replica task stops; its service wants it back, but the room goes to the daemon.
    victim = next(iter(placement(ecs, "tight-d", "app").values()))
    ecs.stop_task(cluster="tight-d", task=victim)
    wait_for(lambda: len(placement(ecs, "tight-d", "daemon")) == 1)
    wait_for(lambda: any("was unable to place a task" in e["message"]
                         for e in describe(ecs, "tight-d", "app")["events"]))
    app = describe(ecs, "tight-d", "app")
    assert app["runningCount"] + app["pendingCount"] == 1 and app["desiredCount"] == 2


def test_daemon_service_parameters_as_ecs_checks_them(ecs) -> None:
    ecs.create_cluster(clusterName="dmn-errs")
    ecs.register_task_definition(family="dd", containerDefinitions=[
        {"name": "x", "image": "busybox", "memory": 16}])
    assert error_of(ecs.create_service, cluster="dmn-errs", serviceName="a",
                    taskDefinition="dd", schedulingStrategy="DAEMON",
                    placementStrategy=[{"type": "random"}])["Code"] == "InvalidParameterException"
    assert error_of(ecs.create_service, cluster="dmn-errs", serviceName="a",
                    taskDefinition="dd", schedulingStrategy="DAEMON",
                    deploymentConfiguration={"maximumPercent": 200}
                    )["Code"] == "InvalidParameterException"
    ecs.create_service(cluster="dmn-errs", serviceName="a", taskDefinition="dd",
                       schedulingStrategy="DAEMON")
    assert error_of(ecs.update_service, cluster="dmn-errs", service="a", desiredCount=3
                    )["Code"] == "InvalidParameterException"
