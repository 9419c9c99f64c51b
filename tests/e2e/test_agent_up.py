"""`berth up` is the whole platform on one machine: its local agent joins cluster `default`, so a
newcomer's first RunTask runs without starting anything else."""
from __future__ import annotations

import time
from pathlib import Path

from agent_process import container, remove_task_containers, stopped, wait_task
from berth_process import BerthProcess
from botocore.exceptions import ClientError


def test_berth_up_runs_a_newcomers_first_task(tmp_path: Path) -> None:
    up = BerthProcess(tmp_path / "data", command="up").start()
    arn = ""
    try:
        ecs = up.client("ecs")
        deadline, instances = time.monotonic() + 20, []
        while not instances and time.monotonic() < deadline:
            try:
                instances = ecs.list_container_instances()["containerInstanceArns"]
            except ClientError:     # `default` appears with the agent's registration
                pass
            time.sleep(0.1)
        assert len(instances) == 1, up.log_path.read_text()
        inst = ecs.describe_container_instances(containerInstances=instances)[
            "containerInstances"][0]
        attrs = {a["name"]: a.get("value") for a in inst["attributes"]}
        assert attrs["berth.driver"] in ("docker", "runc", "process")
        assert inst["agentConnected"] is True

        ecs.register_task_definition(family="hello", containerDefinitions=[{
            "name": "hello", "image": "host", "memory": 32,
            "command": ["sh", "-c", "echo hello from berth"],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/hello", "awslogs-stream-prefix": "ecs",
                "awslogs-create-group": "true"}}}])
        arn = ecs.run_task(taskDefinition="hello")["tasks"][0]["taskArn"]
        task = wait_task(ecs, "default", arn, stopped)
        assert container(task, "hello")["exitCode"] == 0, task
        events = up.client("logs").get_log_events(
            logGroupName="/ecs/hello", logStreamName=f"ecs/hello/{arn.rsplit('/', 1)[-1]}")
        assert [e["message"] for e in events["events"]] == ["hello from berth"]
    finally:
        began = time.monotonic()
        assert up.stop() == 0
        assert time.monotonic() - began < 10     # the local agent does not hold up the stop
        remove_task_containers(up.data_dir, [arn] if arn else [])
