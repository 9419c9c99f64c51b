"""ECSSchedulerDriver against a real berth server, with simulated agents (they report task states
as a real agent would, on command or as they converge): offers, launches, declines and their
filters, rescinds, kills, reconciliation, failover, and ECS refusing a stale offer."""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from berth_process import BerthProcess
from ecs.simagent import SimAgent
from mesos.recorder import Recorder

from berth.mesos import (
    DRIVER_ABORTED,
    DRIVER_RUNNING,
    DRIVER_STOPPED,
    ECSSchedulerDriver,
    Message,
)

# Instances are marked disconnected after 2 s of silence (simulated agents call every 0.2 s);
# their tasks stop 60 s later.
BERTH_ENV = {"BERTH_ECS_AGENT_TIMEOUT": "2", "BERTH_ECS_AGENT_GRACE": "60"}


@pytest.fixture
def cluster(ecs: Any) -> str:
    name = f"mesos-{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=name)
    return name


@pytest.fixture
def sims(ecs: Any, cluster: str, agents: list[SimAgent]) -> list[SimAgent]:
    """Two simulated agents of 1024 CPU units and 2048 MiB, converging as real ones do."""
    agents += [SimAgent(ecs, cluster, cpu=1024, memory=2048).start() for _ in range(2)]
    return agents[-2:]


class Driven:
    """A driver with a Recorder, stopped (torn down) after the test."""

    def __init__(self, ecs: Any, cluster: str, recorder: Recorder | None = None,
                 **kw: Any) -> None:
        self.recorder = recorder or Recorder()
        self.log = self.recorder.log
        kw.setdefault("offer_interval", 0.3)
        self.driver = ECSSchedulerDriver(self.recorder, {"name": "test", "user": ""}, cluster,
                                         ecs, **kw)

    def start(self) -> Driven:
        assert self.driver.start() == DRIVER_RUNNING
        self.log.wait(lambda lg: lg.of("registered"), what="registered")
        return self

    def first_offer(self, agent: str | None = None, after: float = 0.0) -> Any:
        def found(_: Any) -> Any:
            offers = [e for e in self.log.of("offer") if e["t"] > after
                      and (agent is None or e["agent"] == agent)]
            return self.recorder.offers[offers[0]["offer"]] if offers else None
        return self.log.wait(found, what=f"an offer for {agent or 'any agent'}")

    def state(self, task_id: str, state: str, timeout: float = 20) -> dict[str, Any]:
        return self.log.wait(lambda lg: [e for e in lg.of("status", task=task_id)
                                         if e["state"] == state], timeout,
                             what=f"{task_id} {state}")[-1]


@pytest.fixture
def driven(ecs: Any, cluster: str) -> Iterator[Any]:
    made: list[Driven] = []

    def make(**kw: Any) -> Driven:
        d = Driven(ecs, cluster, **kw)
        made.append(d)
        return d
    yield make
    for d in made:
        d.driver.stop()


def task_info(offer: Any, task_id: str, cpus: float = 0.25, mem: float = 256,
              ports: tuple[int, ...] = (), command: str = "sleep 100") -> Message:
    task = Message()
    task.task_id.value = task_id
    task.agent_id.value = offer.agent_id.value
    task.name = task_id
    task.command.value = command
    task.resources = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}]
    if ports:
        task.resources.append({"name": "ports", "type": "RANGES", "ranges": {
            "range": [{"begin": p, "end": p} for p in ports]}})
    return task


def resource(offer: Any, name: str) -> Any:
    r = next(r for r in offer.resources if r.name == name)
    return r.scalar.value if r.type == "SCALAR" else [(s.begin, s.end) for s in r.ranges.range]


def describe(ecs: Any, cluster: str, arn: str) -> dict[str, Any]:
    return ecs.describe_tasks(cluster=cluster, tasks=[arn], include=["TAGS"])["tasks"][0]


def test_offers_are_what_instances_have_left(ecs: Any, cluster: str, sims: list[SimAgent],
                                             driven: Any) -> None:
    busy, idle = sims
    ecs.register_task_definition(family=f"{cluster}-svc", containerDefinitions=[{
        "name": "a", "image": "x", "cpu": 256, "memory": 512,
        "portMappings": [{"containerPort": 80, "hostPort": 31010}]}])
    ecs.start_task(cluster=cluster, taskDefinition=f"{cluster}-svc",
                   containerInstances=[busy.arn])
    drained = SimAgent(ecs, cluster).start()
    try:
        ecs.update_container_instances_state(cluster=cluster, containerInstances=[drained.arn],
                                             status="DRAINING")
        d = driven().start()
        one, other = d.first_offer(busy.arn), d.first_offer(idle.arn)
        assert (resource(one, "cpus"), resource(one, "mem")) == (0.75, 1536.0)
        assert resource(one, "ports") == [(31000, 31009), (31011, 32000)]
        assert (resource(other, "cpus"), resource(other, "mem")) == (1.0, 2048.0)
        assert resource(other, "ports") == [(31000, 32000)]
        attrs = {a.name: a.text.value for a in one.attributes}
        assert attrs["ecs.os-type"] == "linux" and attrs["ecs.availability-zone"] == "us-east-1a"
        desc = ecs.describe_container_instances(cluster=cluster, containerInstances=[busy.arn])
        assert one.hostname == desc["containerInstances"][0]["ec2InstanceId"]
        assert one.framework_id.value == d.driver.framework_id
        time.sleep(1)          # three offer rounds: a draining instance gets none
        assert d.log.of("offer", agent=drained.arn) == []
        assert len(d.log.of("offer", agent=busy.arn)) == 1     # one offer per agent
    finally:
        drained.stop()


def test_a_launch_takes_what_the_task_asks_from_the_offer(ecs: Any, cluster: str,
                                                          sims: list[SimAgent],
                                                          driven: Any) -> None:
    d = driven().start()
    offer = d.first_offer(sims[0].arn)
    fits = task_info(offer, "fits", cpus=0.5, mem=512, ports=(31007, 31008),
                     command='echo "$PORT0 $PORTS"')
    too_big = task_info(offer, "too-big", cpus=0.25, mem=4096)
    d.driver.launchTasks(offer.id, [fits, too_big], {"refuse_seconds": 0})
    staged = d.state("fits", "TASK_STAGING")
    error = d.state("too-big", "TASK_ERROR")
    assert (error["reason"], error["message"]) == ("REASON_TASK_INVALID",
                                                   "Task uses more resources than offered")
    running = d.state("fits", "TASK_RUNNING")
    assert running["arn"] == staged["arn"]

    task = describe(ecs, cluster, staged["arn"])
    assert task["containerInstanceArn"] == sims[0].arn
    assert (task["cpu"], task["memory"]) == ("512", "512")
    assert task["startedBy"] == d.driver.framework_id
    assert {t["key"]: t["value"] for t in task["tags"]}["mesos.task-id"] == "fits"
    td = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    (container,) = td["containerDefinitions"]
    assert td["family"] == "mesos-test" and td["networkMode"] == "host"
    assert container["image"] == "host"
    assert container["entryPoint"] == ["sh", "-c"]
    assert container["command"] == ['echo "$PORT0 $PORTS"']
    assert {e["name"]: e["value"] for e in container["environment"]} == {
        "PORT0": "31007", "PORT1": "31008", "PORTS": "31007,31008"}
    assert sorted(pm["hostPort"] for pm in container["portMappings"]) == [31007, 31008]
    inst = ecs.describe_container_instances(cluster=cluster, containerInstances=[
        sims[0].arn])["containerInstances"][0]
    ports = next(r for r in inst["remainingResources"] if r["name"] == "PORTS")
    assert {"31007", "31008"} <= set(ports["stringSetValue"])

    # The offer is used up: launching on it again is TASK_LOST, and nothing starts.
    d.driver.launchTasks(offer.id, [task_info(offer, "again")])
    lost = d.state("again", "TASK_LOST")
    assert lost["reason"] == "REASON_INVALID_OFFERS"
    assert "is no longer valid" in lost["message"]
    assert ecs.list_tasks(cluster=cluster, startedBy=d.driver.framework_id)["taskArns"] == [
        staged["arn"]]


def test_a_declined_offer_is_not_made_again_within_refuse_seconds(
        cluster: str, sims: list[SimAgent], driven: Any) -> None:
    d = driven().start()
    agent = sims[0].arn
    offer = d.first_offer(agent)
    declined_at = time.monotonic()
    d.driver.declineOffer(offer.id, {"refuse_seconds": 3})
    again = d.first_offer(agent, after=declined_at)
    gap = d.log.of("offer", offer=again.id.value)[0]["t"] - declined_at
    assert 3 <= gap < 3 + 2, gap
    # Refused for an hour: only reviveOffers brings it back.
    declined_at = time.monotonic()
    d.driver.declineOffer(again.id, {"refuse_seconds": 3600})
    time.sleep(1.5)
    assert d.recorder.offer_for(agent, after=declined_at) is None
    d.driver.reviveOffers()
    d.first_offer(agent, after=declined_at)


def test_suppressed_offers_come_back_on_revive(sims: list[SimAgent], driven: Any) -> None:
    d = driven().start()
    offer = d.first_offer(sims[0].arn)
    d.driver.suppressOffers()
    declined_at = time.monotonic()
    d.driver.declineOffer(offer.id, {"refuse_seconds": 0})
    time.sleep(1.5)
    assert d.recorder.offer_for(sims[0].arn, after=declined_at) is None
    d.driver.reviveOffers()
    d.first_offer(sims[0].arn, after=declined_at)


def test_an_offer_is_rescinded_when_its_instance_changes_and_ecs_refuses_stale_ones(
        ecs: Any, cluster: str, sims: list[SimAgent], driven: Any) -> None:
    d = driven().start()
    agent = sims[0].arn
    offer = d.first_offer(agent)
    ecs.register_task_definition(family=f"{cluster}-big", containerDefinitions=[{
        "name": "a", "image": "x", "cpu": 128, "memory": 1800}])
    # Another scheduler takes most of the instance's memory: the held offer is void.
    placed_at = time.monotonic()
    rival = ecs.start_task(cluster=cluster, taskDefinition=f"{cluster}-big",
                           containerInstances=[agent])
    assert rival["failures"] == []
    d.log.wait(lambda lg: lg.of("rescinded", offer=offer.id.value), what="the rescind")
    fresh = d.first_offer(agent, after=placed_at)
    assert resource(fresh, "mem") == 2048 - 1800

    # A launch on an offer gone stale between two reads: ECS's compare-and-swap refuses it,
    # the framework hears TASK_LOST, and the instance is never over-committed.
    slow = driven(offer_interval=60).start()
    stale = slow.first_offer(sims[1].arn)
    rival = ecs.start_task(cluster=cluster, taskDefinition=f"{cluster}-big",
                           containerInstances=[sims[1].arn])
    assert rival["failures"] == []
    slow.driver.launchTasks(stale.id, [task_info(stale, "late", mem=1024)])
    lost = slow.state("late", "TASK_LOST")
    assert lost["reason"] == "REASON_INVALID_OFFERS"
    assert "RESOURCE:MEMORY" in lost["message"]
    inst = ecs.describe_container_instances(cluster=cluster, containerInstances=[
        sims[1].arn])["containerInstances"][0]
    assert next(r for r in inst["remainingResources"]
                if r["name"] == "MEMORY")["integerValue"] == 2048 - 1800


def test_kill_and_reconcile(ecs: Any, cluster: str, sims: list[SimAgent],
                            driven: Any) -> None:
    d = driven().start()
    offer = d.first_offer(sims[0].arn)
    d.driver.launchTasks(offer.id, [task_info(offer, "a"), task_info(offer, "b")])
    d.state("a", "TASK_RUNNING")
    arn_b = d.state("b", "TASK_RUNNING")["arn"]

    d.driver.killTask({"value": "a"})
    killed = d.state("a", "TASK_KILLED")
    assert killed["message"] == "Killed by its Mesos framework"
    assert describe(ecs, cluster, killed["arn"])["lastStatus"] == "STOPPED"
    d.driver.killTask({"value": "never-launched"})
    unknown = d.state("never-launched", "TASK_LOST")
    assert unknown["reason"] == "REASON_RECONCILIATION"

    # Stopped by someone else (the console, a user's StopTask): also TASK_KILLED.
    ecs.stop_task(cluster=cluster, task=arn_b, reason="stopped from the console")
    assert d.state("b", "TASK_KILLED")["message"] == "stopped from the console"

    offer = d.first_offer(sims[1].arn)
    d.driver.launchTasks(offer.id, [task_info(offer, "c")])
    d.state("c", "TASK_RUNNING")
    before = len(d.log.of("status"))
    d.driver.reconcileTasks([{"task_id": {"value": "c"}}, {"task_id": {"value": "a"}},
                             {"task_id": {"value": "nope"}}])
    answers = d.log.wait(lambda lg: lg.of("status")[before:] if len(
        lg.of("status")) >= before + 3 else None, what="three reconciliation answers")
    assert {(e["task"], e["state"], e["reason"]) for e in answers} == {
        ("c", "TASK_RUNNING", "REASON_RECONCILIATION"),
        ("a", "TASK_KILLED", "REASON_RECONCILIATION"),
        ("nope", "TASK_LOST", "REASON_RECONCILIATION")}
    before = len(d.log.of("status"))
    d.driver.reconcileTasks([])     # implicit: every live task
    implicit = d.log.wait(lambda lg: lg.of("status")[before:], what="implicit reconciliation")
    assert [(e["task"], e["state"]) for e in implicit] == [("c", "TASK_RUNNING")]


def test_failover_keeps_tasks_and_teardown_stops_them(ecs: Any, cluster: str,
                                                      sims: list[SimAgent],
                                                      driven: Any) -> None:
    first = driven().start()
    offer = first.first_offer(sims[0].arn)
    first.driver.launchTasks(offer.id, [task_info(offer, "keep")])
    arn = first.state("keep", "TASK_RUNNING")["arn"]
    framework_id = first.driver.framework_id
    assert first.driver.stop(failover=True) == DRIVER_STOPPED
    assert describe(ecs, cluster, arn)["desiredStatus"] == "RUNNING"

    second = Driven(ecs, cluster)
    second.driver = ECSSchedulerDriver(second.recorder, {"name": "test",
                                                         "id": {"value": framework_id}},
                                       cluster, ecs, offer_interval=0.3)
    second.start()
    assert second.log.of("registered")[0]["framework_id"] == framework_id
    second.driver.reconcileTasks([])
    answer = second.state("keep", "TASK_RUNNING")
    assert (answer["reason"], answer["arn"]) == ("REASON_RECONCILIATION", arn)
    assert second.driver.stop() == DRIVER_STOPPED         # no failover: torn down
    assert describe(ecs, cluster, arn)["desiredStatus"] == "STOPPED"


def test_a_silent_agent_is_lost_with_its_tasks_and_offers(ecs: Any, cluster: str,
                                                          sims: list[SimAgent],
                                                          driven: Any) -> None:
    d = driven().start()
    doomed = sims[0]
    offer = d.first_offer(doomed.arn)
    d.driver.launchTasks(offer.id, [task_info(offer, "on-doomed")], {"refuse_seconds": 0})
    arn = d.state("on-doomed", "TASK_RUNNING")["arn"]
    # What is left after the launch is offered and stays outstanding (held, unanswered).
    held = d.first_offer(doomed.arn, after=d.log.of("status", task="on-doomed")[0]["t"])
    doomed.stop()           # no more heartbeats: disconnected after 2 s
    d.log.wait(lambda lg: lg.of("agent_lost", agent=doomed.arn), what="agent lost")
    d.log.wait(lambda lg: lg.of("rescinded", offer=held.id.value), what="its offer rescinded")
    lost = d.state("on-doomed", "TASK_LOST")
    assert lost["reason"] == "REASON_AGENT_DISCONNECTED"
    # ECS is told to stop the lost task: it must not run on unseen if the agent returns.
    assert describe(ecs, cluster, arn)["desiredStatus"] == "STOPPED"
    time.sleep(1)
    assert all(e["agent"] != doomed.arn or e["t"] < lost["t"] for e in d.log.of("offer"))


def test_bad_cluster_or_keys_abort_with_an_error(ecs: Any, berth: BerthProcess,
                                                 tmp_path: Path) -> None:
    recorder = Recorder()
    driver = ECSSchedulerDriver(recorder, {"name": "x"}, "no-such-cluster", ecs)
    driver.start()
    assert driver.join() == DRIVER_ABORTED
    assert "not found" in recorder.log.of("error")[0]["message"]

    wrong = berth.client("ecs", aws_secret_access_key="wrong-secret")
    recorder = Recorder()
    driver = ECSSchedulerDriver(recorder, {"name": "x"}, "default", wrong)
    assert driver.run() == DRIVER_ABORTED
    assert recorder.log.of("error")[0]["message"].startswith("InvalidSignatureException")
    assert recorder.log.of("registered") == []
    with pytest.raises(ValueError):
        ECSSchedulerDriver(recorder, {"name": "x", "id": {"value": "has spaces"}}, "c", ecs)


def test_a_named_task_definition_runs_with_the_tasks_resources(
        ecs: Any, cluster: str, sims: list[SimAgent], driven: Any) -> None:
    ecs.register_task_definition(family=f"{cluster}-web", containerDefinitions=[{
        "name": "web", "image": "x", "memory": 64,
        "portMappings": [{"containerPort": 31020, "hostPort": 31020}]}], networkMode="host")
    d = driven().start()
    offer = d.first_offer(sims[0].arn)
    good = task_info(offer, "named", cpus=0.5, mem=300, ports=(31020,))
    bad = task_info(offer, "named-bad", cpus=0.25, mem=300, ports=(31021,))
    for t in (good, bad):
        t.labels.labels = [{"key": "berth.task-definition", "value": f"{cluster}-web"}]
    d.driver.launchTasks(offer.id, [good, bad])
    arn = d.state("named", "TASK_RUNNING")["arn"]
    task = describe(ecs, cluster, arn)
    assert task["taskDefinitionArn"].endswith(f"{cluster}-web:1")
    assert (task["cpu"], task["memory"]) == ("512", "300")
    error = d.state("named-bad", "TASK_ERROR")
    assert error["message"] == (f"task definition {cluster}-web claims host ports 31020, which "
                                "are not in the task's ports resource")


def test_losing_the_control_plane_voids_offers_until_it_is_back(tmp_path: Path) -> None:
    with mock.patch.dict(os.environ, BERTH_ENV):
        own = BerthProcess(tmp_path / "data").start()
    try:
        ecs = own.client("ecs")
        ecs.create_cluster(clusterName="away")
        sim = SimAgent(ecs, "away").start()
        d = Driven(ecs, "away").start()
        held = d.first_offer(sim.arn)
        own.stop()
        d.log.wait(lambda lg: lg.of("disconnected"), what="disconnected")
        gone_at = time.monotonic()
        own.start()                         # the same port and data dir
        d.log.wait(lambda lg: lg.of("reregistered"), what="reregistered")
        # The offer held while the control plane was away is void: a new one comes.
        fresh = d.first_offer(sim.arn, after=gone_at)
        assert fresh.id.value != held.id.value
        d.driver.launchTasks(held.id, [task_info(held, "on-void-offer")])
        assert d.state("on-void-offer", "TASK_LOST")["reason"] == "REASON_INVALID_OFFERS"
        d.driver.stop()
        sim.stop()
    finally:
        own.stop()
