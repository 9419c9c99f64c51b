"""berth's agent assignment channel end to end: a SigV4-signed long poll that hands an
instance its desired state, wakes on new work, and keeps the agent's heartbeat."""
from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from berth_process import ACCESS_KEY, SECRET_KEY, BerthProcess
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from ecs.simagent import SimAgent

PATH = "/_berth/agent/v1/poll"


def poll(berth: BerthProcess, body: dict[str, Any], secret: str = SECRET_KEY,
         timeout: float = 30) -> httpx.Response:
    data = json.dumps(body).encode()
    req = AWSRequest("POST", berth.endpoint + PATH, data=data,
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, secret), "ecs", "us-east-1").add_auth(req)
    return httpx.post(berth.endpoint + PATH, content=data, headers=dict(req.headers.items()),
                      timeout=timeout)


@pytest.fixture(scope="module")
def ecs(berth: BerthProcess):
    c = berth.client("ecs")
    c.create_cluster(clusterName="chan")
    c.register_task_definition(family="chan", containerDefinitions=[
        {"name": "a", "image": "busybox", "memory": 32, "command": ["sleep", "60"]}])
    return c


def test_poll_hands_out_tasks_and_marks_them_pending(berth: BerthProcess, ecs) -> None:
    agent = SimAgent(ecs, "chan")
    first = poll(berth, {"cluster": "chan", "containerInstance": agent.arn, "waitSeconds": 0})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["containerInstanceArn"] == agent.arn and body["status"] == "ACTIVE"
    assert body["tasks"] == [] and body["token"]

    task = ecs.run_task(cluster="chan", taskDefinition="chan")["tasks"][0]
    got = poll(berth, {"cluster": "chan", "containerInstance": agent.arn,
                       "token": body["token"], "waitSeconds": 5}).json()
    assert [t["taskArn"] for t in got["tasks"]] == [task["taskArn"]]
    handed = got["tasks"][0]
    assert handed["desiredStatus"] == "RUNNING" and handed["lastStatus"] == "PENDING"
    assert handed["taskDefinition"]["containerDefinitions"][0]["command"] == ["sleep", "60"]
    assert ecs.describe_tasks(cluster="chan", tasks=[task["taskArn"]])["tasks"][0][
        "lastStatus"] == "PENDING"

    # Nothing changed: the poll is held for waitSeconds, then answers the same state.
    t0 = time.monotonic()
    same = poll(berth, {"cluster": "chan", "containerInstance": agent.arn,
                        "token": got["token"], "waitSeconds": 1}).json()
    assert time.monotonic() - t0 >= 0.9
    assert same["token"] == got["token"]

    # A held poll wakes as soon as there is news: here, StopTask.
    answer: dict[str, Any] = {}

    def held() -> None:
        answer.update(poll(berth, {"cluster": "chan", "containerInstance": agent.arn,
                                   "token": got["token"], "waitSeconds": 20}).json())

    waiter = threading.Thread(target=held)
    t0 = time.monotonic()
    waiter.start()
    time.sleep(0.3)
    ecs.stop_task(cluster="chan", task=task["taskArn"])
    waiter.join(25)
    assert time.monotonic() - t0 < 5
    assert answer["tasks"][0]["desiredStatus"] == "STOPPED"
    agent.report(answer["tasks"][0], "STOPPED", exit_code=0)
    final = poll(berth, {"cluster": "chan", "containerInstance": agent.arn,
                         "waitSeconds": 0}).json()
    assert final["tasks"] == []


def test_poll_errors_are_aws_shaped(berth: BerthProcess, ecs) -> None:
    bad_sig = poll(berth, {"containerInstance": "x"}, secret="wrong")
    assert bad_sig.status_code == 403
    assert bad_sig.json()["__type"] == "InvalidSignatureException"
    unsigned = httpx.post(berth.endpoint + PATH, content=b"{}")
    assert unsigned.status_code == 403
    missing = poll(berth, {"cluster": "chan"})
    assert missing.status_code == 400 and missing.json()["__type"] == \
        "InvalidParameterException"
    unknown = poll(berth, {"cluster": "chan", "containerInstance": "0" * 32})
    assert unknown.status_code == 400
    no_cluster = poll(berth, {"cluster": "ghost", "containerInstance": "0" * 32})
    assert no_cluster.json()["__type"] == "ClusterNotFoundException"
