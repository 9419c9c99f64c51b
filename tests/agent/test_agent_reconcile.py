"""The agent's reconciliation on the process driver (real processes, no control plane needed:
reports wait in the reporter): malformed assignments are refused without harm to the rest,
a task runs to its exit code, and a desiredStatus of STOPPED stops it with SIGTERM."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from berth.agent.agent import Agent
from berth.agent.client import Credentials
from berth.agent.drivers.process import ProcessDriver
from berth.agent.task_plan import LABEL_INSTANCE
from berth.config import Settings

INSTANCE = "arn:aws:ecs:us-east-1:000000000000:container-instance/c/abcdef"
PREFIX = "arn:aws:ecs:us-east-1:000000000000:task/c/"


def task(ident: str, command: list[str], desired: str = "RUNNING") -> dict[str, Any]:
    return {"taskArn": PREFIX + ident, "desiredStatus": desired, "lastStatus": "PENDING",
            "hostPorts": [], "taskDefinition": {"containerDefinitions": [
                {"name": "c", "image": "host", "memory": 32, "command": command}]}}


def test_bad_assignments_are_refused_and_good_ones_run(tmp_path: Path) -> None:
    driver = ProcessDriver(tmp_path)
    agent = Agent(Settings(data_dir=tmp_path), "http://127.0.0.1:9", Credentials("a", "b"),
                  driver=driver)
    good = task("good", ["sh", "-c", "echo hi; exit 4"])
    sleeper = task("sleeper", ["sleep", "30"])
    malformed = {"taskArn": PREFIX + "bad1", "taskDefinition": "not a definition"}
    unusable = {"taskArn": PREFIX + "bad2", "taskDefinition": {"containerDefinitions": [
        {"name": "c", "image": "host", "portMappings": "80"}]}}
    assignment = ["junk", None, {"taskArn": 5}, malformed, unusable, good, sleeper]

    async def main() -> None:
        await agent.prepare()
        agent.instance_arn = INSTANCE
        try:
            agent.reconcile(assignment)
            assert set(agent.runners) == {PREFIX + "good", PREFIX + "sleeper"}
            assert agent.refused == {PREFIX + "bad1", PREFIX + "bad2"}
            for arn in (PREFIX + "bad1", PREFIX + "bad2"):
                report = agent.ctx.reporter.latest(arn)
                assert report is not None and report.status == "STOPPED"
                assert (report.reason or "").startswith(
                    "CannotStartContainerError: malformed task")

            runner = agent.runners[PREFIX + "good"]
            await asyncio.wait_for(runner.finished.wait(), 20)
            report = agent.ctx.reporter.latest(PREFIX + "good")
            assert report is not None and report.status == "STOPPED"
            assert report.reason == "Essential container in task exited"
            assert report.containers[0]["exitCode"] == 4
            assert "pullStartedAt" in report.times and "executionStoppedAt" in report.times

            # The same assignment again changes nothing; then the sleeper is to stop.
            agent.reconcile(assignment)
            assert set(agent.runners) == {PREFIX + "good", PREFIX + "sleeper"}
            sleeping = agent.runners[PREFIX + "sleeper"]
            for _ in range(100):
                if sleeping.runs["c"].status == "RUNNING":
                    break
                await asyncio.sleep(0.05)
            assert sleeping.runs["c"].status == "RUNNING"
            agent.reconcile([good, task("sleeper", ["sleep", "30"], desired="STOPPED")])
            await asyncio.wait_for(sleeping.finished.wait(), 10)
            report = agent.ctx.reporter.latest(PREFIX + "sleeper")
            assert report is not None and report.containers[0]["exitCode"] == 143   # SIGTERM
            assert report.reason is None        # the control plane keeps StopTask's reason
        finally:
            await agent.close()

    try:
        asyncio.run(main())
    finally:
        for st in ProcessDriver(tmp_path).list({LABEL_INSTANCE: INSTANCE}):
            driver.remove(st.id)
