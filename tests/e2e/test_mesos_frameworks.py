"""The example Mesos frameworks (examples/) on real clusters: `berth up` with its local agent,
and two `berth server`s sharing PostgreSQL with agents joined to one of them while the
frameworks talk to the other. Agents run the tasks on the runc driver, on the host's own files.

Offers are honoured, declined offers stay away for refuse_seconds, kills are TASK_KILLED, a
stopped agent's tasks are TASK_LOST and its offers rescinded, and a framework beside berth's own
service scheduler never over-commits an instance's memory or ports."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from agent_process import AgentProcess, remove_task_containers, runc_agent
from berth_process import BerthProcess
from ecs.simagent import wait_for
from mesos.recorder import EventLog, Recorder
from postgres import private_database

from berth.mesos import DRIVER_STOPPED, ECSSchedulerDriver, Message, SchedulerDriver

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))
from mesos_copies import Copies  # noqa: E402
from mesos_cron import CronJob  # noqa: E402

# Agents silent for 5 s are disconnected (their tasks are stopped only a minute later). A held
# assignment poll renews its agent's heartbeat every 2 s: less would see live agents as lost.
SERVER_ENV = {"BERTH_ECS_AGENT_TIMEOUT": "5", "BERTH_ECS_AGENT_GRACE": "60",
              "BERTH_AGENT_DRIVER": "runc"}
WAIT = 60


@dataclass
class Site:
    """Where the frameworks run: `servers[-1]` is theirs, agents join `servers[0]`."""
    servers: list[BerthProcess]
    cluster: str
    instances: list[str]
    agents: list[AgentProcess] = field(default_factory=list)

    @property
    def ecs(self) -> Any:
        return self.servers[-1].client("ecs")

    def driver(self, sched: Any, name: str, **kw: Any) -> ECSSchedulerDriver:
        kw.setdefault("offer_interval", 0.5)
        return ECSSchedulerDriver(sched, {"name": name, "user": ""}, self.cluster, self.ecs,
                                  **kw)


def wait_instances(ecs: Any, cluster: str, count: int) -> list[str]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
        except ecs.exceptions.ClusterNotFoundException:
            arns = []
        if len(arns) >= count:
            return sorted(arns)
        time.sleep(0.1)
    raise AssertionError(f"{count} instances never joined {cluster}")


@pytest.fixture(scope="module", params=["up", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Site]:
    root = tmp_path_factory.mktemp(f"mesos-{request.param}")
    if request.param == "up":
        with mock.patch.dict(os.environ, SERVER_ENV):
            up = BerthProcess(root / "data", command="up").start()
        try:
            yield Site([up], "default", wait_instances(up.client("ecs"), "default", 1))
        finally:
            up.stop()
            remove_task_containers(up.data_dir)
        return
    with private_database(request.getfixturevalue("postgres_url"), "mesos") as url:
        with mock.patch.dict(os.environ, SERVER_ENV):
            servers = [BerthProcess(root / f"data{i}", database_url=url).start()
                       for i in range(2)]
        cluster = f"mesos-{uuid.uuid4().hex[:8]}"
        try:
            with runc_agent(servers[0], root / "agent0", cluster) as a0, \
                    runc_agent(servers[0], root / "agent1", cluster) as a1:
                yield Site(servers, cluster, wait_instances(servers[0].client("ecs"),
                                                            cluster, 2), [a0, a1])
        finally:
            for s in servers:
                s.stop()


def live_tasks(ecs: Any, cluster: str) -> list[dict[str, Any]]:
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        arns += ecs.list_tasks(cluster=cluster, desiredStatus=desired,
                               maxResults=100)["taskArns"]
    tasks: list[dict[str, Any]] = []
    for i in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])["tasks"]
    return [t for t in tasks if t["lastStatus"] != "STOPPED"]


def task_log(site: Site, group: str, task_id: str, arn: str) -> list[str]:
    logs = site.servers[-1].client("logs")
    stream = f"mesos/task/{arn.rsplit('/', 1)[-1]}"
    try:
        return [e["message"] for e in logs.get_log_events(
            logGroupName=group, logStreamName=stream)["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


def test_copies_keeps_n_copies_on_the_ports_it_was_offered(site: Site) -> None:
    events = EventLog()
    copies = Copies(3, 'echo "copy on port $PORT0"; exec sleep 600', cpus=0.1, mem=32,
                    ports=1, refuse_seconds=2, on_event=events)
    driver = site.driver(copies, "copies")
    driver.start()
    try:
        running = events.wait(lambda lg: lg.of("status", state="TASK_RUNNING")
                              if len(lg.of("status", state="TASK_RUNNING")) >= 3 else None,
                              WAIT, "three copies running")
        launched = {t: (e["agent"], ports) for e in events.of("launch")
                    for t, ports in e["tasks"].items()}
        ecs = site.ecs
        for status in running:
            task = ecs.describe_tasks(cluster=site.cluster, tasks=[status["arn"]])["tasks"][0]
            agent, ports = launched[status["task"]]
            assert task["containerInstanceArn"] == agent == status["agent"]
            td = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])
            assert [pm["hostPort"] for pm in td["taskDefinition"]["containerDefinitions"][0][
                "portMappings"]] == ports
            # The command ran with the port it was given (its output went to CloudWatch Logs).
            wait_for(lambda s=status, p=ports: f"copy on port {p[0]}" in task_log(
                site, "/mesos/copies", s["task"], s["arn"]), WAIT)

        victim = running[0]["task"]
        killed_at = time.monotonic()
        driver.killTask({"value": victim})
        killed = events.wait(lambda lg: lg.of("status", task=victim, state="TASK_KILLED"),
                             WAIT, "TASK_KILLED")[0]
        assert killed["message"] == "Killed by its Mesos framework"
        events.wait(lambda lg: [e for e in lg.of("status", state="TASK_RUNNING")
                                if e["t"] > killed_at], WAIT, "a replacement running")
        assert len(copies.live) == 3

        # Declines: within refuse_seconds an agent is offered again only with more than it
        # had (the killed copy's resources came back), or after a revive (a copy was missing).
        revived = [e["t"] for e in events.of("status") if e["state"] == "TASK_KILLED"]
        offers = {e["offer"]: e for e in events.of("offer")}
        for decline in events.of("decline"):
            refused = offers[decline["offer"]]
            later = [e for e in events.of("offer", agent=decline["agent"])
                     if e["t"] > decline["t"]]
            if not later or later[0]["t"] - decline["t"] >= 2:
                continue
            grown = any(later[0][k] > refused[k] for k in ("cpus", "mem", "ports"))
            assert grown or any(decline["t"] < r < later[0]["t"] for r in revived), (
                refused, later[0])
    finally:
        assert driver.stop() == DRIVER_STOPPED
    arns = {e["arn"] for e in events.of("status") if e["arn"]}
    wait_for(lambda: all(t["lastStatus"] == "STOPPED" for t in site.ecs.describe_tasks(
        cluster=site.cluster, tasks=list(arns))["tasks"]), WAIT)


def test_cron_runs_on_schedule_and_retries_failures(site: Site) -> None:
    ticks, fails = EventLog(), EventLog()
    tick = CronJob("tick", "*/2 * * * * *", "echo tick", 0.1, 32, on_event=ticks)
    fail = CronJob("fail", "*/3 * * * * *", "echo failing; exit 3", 0.1, 32, retries=1,
                   on_event=fails)
    drivers = [site.driver(tick, "tick"), site.driver(fail, "fail")]
    for d in drivers:
        d.start()
    try:
        done = ticks.wait(lambda lg: lg.of("done") if len(lg.of("done")) >= 2 else None,
                          WAIT, "two runs of tick")
        assert [d["state"] for d in done[:2]] == ["TASK_FINISHED"] * 2, ticks.events
        runs = sorted({dt.datetime.fromisoformat(d["run"]) for d in done})
        assert len(runs) >= 2 and all(r.second % 2 == 0 for r in runs)
        finished = ticks.of("status", state="TASK_FINISHED")
        assert finished[0]["exit_code"] == "0"
        assert finished[0]["message"] == "Command exited with status 0"
        failed = fails.wait(lambda lg: lg.of("done"), WAIT, "a failed run")[0]
        assert (failed["state"], failed["attempts"]) == ("TASK_FAILED", 2)
        statuses = fails.of("status", state="TASK_FAILED")
        assert len(statuses) >= 2 and {s["exit_code"] for s in statuses} == {"3"}
        assert statuses[0]["message"] == "Command exited with status 3"
        assert statuses[0]["reason"] == "REASON_COMMAND_EXECUTOR_FAILED"
        assert statuses[0]["task"].endswith("-0") and statuses[1]["task"].endswith("-1")
    finally:
        tick.stopped.set()
        fail.stopped.set()
        for d in drivers:
            d.stop()


def _claims(task: dict[str, Any], ecs: Any, cache: dict[str, set[int]]) -> set[int]:
    arn = task["taskDefinitionArn"]
    if arn not in cache:
        body = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        cache[arn] = {pm["hostPort"] for c in body["containerDefinitions"]
                      for pm in c.get("portMappings") or [] if pm.get("hostPort")}
    return cache[arn]


def test_beside_the_service_scheduler_nothing_is_over_committed(site: Site) -> None:
    ecs = site.ecs
    instances = ecs.describe_container_instances(
        cluster=site.cluster, containerInstances=site.instances)["containerInstances"]
    registered = {i["containerInstanceArn"]: next(
        r["integerValue"] for r in i["registeredResources"] if r["name"] == "MEMORY")
        for i in instances}
    quarter = min(registered.values()) // 4
    n = len(instances)
    # The service wants host port 31000, the first port every offer holds: both sides want
    # it on every instance. Together they ask for 6n quarters of memory where there are 4n,
    # and the framework alone could fill it all.
    family = f"svc-{uuid.uuid4().hex[:6]}"
    ecs.register_task_definition(family=family, networkMode="host", containerDefinitions=[{
        "name": "svc", "image": "host", "memory": quarter, "cpu": 16,
        "command": ["sleep", "600"], "stopTimeout": 2,
        "portMappings": [{"containerPort": 31000, "hostPort": 31000}]}])
    events = EventLog()
    copies = Copies(4 * n, "exec sleep 600", cpus=0.02, mem=quarter, ports=1,
                    refuse_seconds=1, on_event=events)
    driver = site.driver(copies, "beside")
    driver.start()
    ecs.create_service(cluster=site.cluster, serviceName=family, taskDefinition=family,
                       desiredCount=2 * n)
    ports_cache: dict[str, set[int]] = {}
    try:
        def full() -> bool:
            tasks = live_tasks(ecs, site.cluster)
            return len([t for t in tasks if t["memory"] == str(quarter)]) >= 4 * n
        deadline = time.monotonic() + 5
        checks = 0
        while not full() or time.monotonic() < deadline:
            assert time.monotonic() < deadline + WAIT, "the cluster never filled up"
            memory: dict[str, int] = defaultdict(int)
            ports: dict[str, list[int]] = defaultdict(list)
            for t in live_tasks(ecs, site.cluster):
                memory[t["containerInstanceArn"]] += int(t["memory"])
                ports[t["containerInstanceArn"]] += _claims(t, ecs, ports_cache)
            for arn, used in memory.items():
                assert used <= registered[arn], (arn, used, registered[arn])
            for arn, held in ports.items():
                assert len(held) == len(set(held)), (arn, sorted(held))
            checks += 1
            time.sleep(0.3)
        assert checks >= 3
        # Port 31000 allows one service task per instance; the framework filled the rest.
        service = ecs.describe_services(cluster=site.cluster, services=[family])["services"][0]
        placed = service["runningCount"] + service["pendingCount"]
        assert placed <= n and len(copies.live) == 4 * n - placed
        for inst in ecs.describe_container_instances(
                cluster=site.cluster, containerInstances=site.instances)["containerInstances"]:
            left = next(r["integerValue"] for r in inst["remainingResources"]
                        if r["name"] == "MEMORY")
            assert 0 <= left < quarter
    finally:
        ecs.delete_service(cluster=site.cluster, service=family, force=True)
        driver.stop()
        wait_for(lambda: not live_tasks(ecs, site.cluster), WAIT)


class OneTaskThenHold(Recorder):
    """Launches one long task on the first offer from `agent`, then holds its offers."""

    def __init__(self, agent: str) -> None:
        super().__init__(self.decide)
        self.agent, self.launched = agent, False

    def decide(self, driver: SchedulerDriver, offers: list[Any]) -> None:
        for offer in offers:
            if offer.agent_id.value != self.agent:
                driver.declineOffer(offer.id, {"refuse_seconds": 3600})
            elif not self.launched:
                self.launched = True
                task = Message(task_id={"value": "doomed"}, agent_id=offer.agent_id,
                               command={"value": "exec sleep 600"},
                               resources=[{"name": "mem", "type": "SCALAR",
                                           "scalar": {"value": 16}}])
                driver.launchTasks(offer.id, [task], {"refuse_seconds": 0})


def test_a_stopped_agent_loses_its_tasks_and_offers(site: Site, tmp_path: Path) -> None:
    ecs = site.ecs
    with runc_agent(site.servers[0], tmp_path / "extra", site.cluster) as extra:
        sched = OneTaskThenHold(extra.instance_arn)
        driver = site.driver(sched, "doomed")
        driver.start()
        try:
            sched.log.wait(lambda lg: lg.of("status", task="doomed", state="TASK_RUNNING"),
                           WAIT, "running")
            # The offer of what is left after the launch stays outstanding (held, unanswered).
            launched = sched.log.of("status", task="doomed")[0]["t"]
            held = sched.log.wait(lambda lg: [e for e in lg.of("offer", agent=extra.instance_arn)
                                              if e["t"] > launched], WAIT, "held offer")
            extra.kill9()
            sched.log.wait(lambda lg: lg.of("agent_lost", agent=extra.instance_arn), WAIT,
                           "agent lost")
            sched.log.wait(lambda lg: lg.of("rescinded", offer=held[-1]["offer"]), WAIT,
                           "its offer rescinded")
            lost = sched.log.wait(lambda lg: lg.of("status", task="doomed",
                                                   state="TASK_LOST"), WAIT, "TASK_LOST")[0]
            assert lost["reason"] == "REASON_AGENT_DISCONNECTED"
            task = ecs.describe_tasks(cluster=site.cluster, tasks=[lost["arn"]])["tasks"][0]
            assert task["desiredStatus"] == "STOPPED"
        finally:
            driver.stop()
            ecs.deregister_container_instance(cluster=site.cluster, force=True,
                                              containerInstance=extra.instance_arn)


def test_the_examples_run_as_scripts(site: Site) -> None:
    env = {**site.servers[-1].env(), "PYTHONUNBUFFERED": "1"}
    runs = {
        "copies": [sys.executable, str(EXAMPLES / "mesos_copies.py"), "--copies", "2",
                   "--mem", "16", "--cluster", site.cluster, "--name", "script-copies",
                   "exec sleep 600"],
        "cron": [sys.executable, str(EXAMPLES / "mesos_cron.py"), "--schedule",
                 "* * * * * *", "--mem", "16", "--cluster", site.cluster, "--name",
                 "script-cron", "echo from cron"]}
    wanted = {"copies": lambda lines: len([e for e in lines if e.get("state") ==
                                           "TASK_RUNNING"]) >= 2,
              "cron": lambda lines: any(e["event"] == "done" and e["state"] ==
                                        "TASK_FINISHED" for e in lines)}
    for name, argv in runs.items():
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
        lines: list[dict[str, Any]] = []
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + WAIT
            while not wanted[name](lines):
                assert time.monotonic() < deadline, (name, lines)
                line = proc.stdout.readline()
                assert line, (name, lines)
                lines.append(json.loads(line))
            assert lines[0]["event"] == "registered"
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
    wait_for(lambda: not live_tasks(site.ecs, site.cluster), WAIT)
