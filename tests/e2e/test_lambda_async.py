"""Asynchronous invocations against real `berth up` processes with boto3: the durable queue,
retries and their backoff, MaximumRetryAttempts, destination records, throttles, the payload
limit, events that outlive a kill -9, and events that wait for a server with a worker.

Functions report through CloudWatch Logs (sandboxes have a private /tmp): each run prints a
`RUN {...}` line, each destination function a `RECORD {...}` line. Retry delays and leases are
shortened through the BERTH_* variables the server reads.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from berth_process import BerthProcess
from botocore.exceptions import ClientError
from function_logs import logged, wait_for
from lambda_packages import create_python, python_zip
from postgres import private_database

RETRY_DELAY, LEASE = 0.5, 2.0
FAST = {"BERTH_LAMBDA_ASYNC_RETRY_DELAY": str(RETRY_DELAY),
        "BERTH_LAMBDA_ASYNC_LEASE": str(LEASE)}
ACCOUNT, REGION = "000000000000", "us-east-1"

APP = '''
import json, os, time
time.sleep(float(os.environ.get("INIT_SECONDS", "0")))

def handler(event, context):
    print("RUN " + json.dumps({"tag": event.get("tag"), "id": context.aws_request_id,
                               "arn": context.invoked_function_arn}))
    if event.get("fail"):
        raise RuntimeError("boom " + event["tag"])
    return {"echo": event.get("tag")}
'''

RECORDER = '''
import json

def handler(event, context):
    print("RECORD " + json.dumps(event))
'''


def start(proc: BerthProcess) -> BerthProcess:
    """Start with the fast async settings in the server's environment."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in FAST.items():
            mp.setenv(key, value)
        return proc.start()


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthProcess]:
    proc = start(BerthProcess(tmp_path_factory.mktemp("berth-async") / "data", command="up"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def lam(up: BerthProcess) -> Any:
    return up.client("lambda")


@pytest.fixture(scope="module")
def logs(up: BerthProcess) -> Any:
    return up.client("logs")


def arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def make(lam: Any, code: str = APP, **env: str) -> str:
    name = "f" + uuid.uuid4().hex[:10]
    create_python(lam, name, Code={"ZipFile": python_zip(code)}, Timeout=30,
                  Environment={"Variables": env})
    return name


def lines(logs: Any, name: str, prefix: str) -> list[tuple[int, Any]]:
    return logged(logs, name, prefix)


def runs(logs: Any, name: str, tag: str) -> list[tuple[int, Any]]:
    return [(ts, line) for ts, line in lines(logs, name, "RUN") if line["tag"] == tag]


def records(logs: Any, name: str, tag: str) -> list[Any]:
    return [rec for _, rec in lines(logs, name, "RECORD")
            if (rec.get("requestPayload") or {}).get("tag") == tag]


def event(lam: Any, name: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    resp = lam.invoke(FunctionName=name, InvocationType="Event",
                      Payload=json.dumps(body).encode(), **kw)
    assert resp["StatusCode"] == 202
    assert "ExecutedVersion" not in resp and "FunctionError" not in resp
    return resp


def test_event_and_invoke_async_run_once_under_their_request_id(lam: Any, logs: Any) -> None:
    name = make(lam)
    resp = event(lam, name, {"tag": "event"})
    legacy = lam.invoke_async(FunctionName=name, InvokeArgs=json.dumps({"tag": "legacy"}))
    assert legacy["Status"] == 202
    got = wait_for(lambda: lines(logs, name, "RUN"), lambda got: len(got) >= 2)
    assert sorted(line["tag"] for _, line in got) == ["event", "legacy"]
    by_tag = {line["tag"]: line for _, line in got}
    assert by_tag["event"]["id"] == resp["ResponseMetadata"]["RequestId"]
    assert by_tag["legacy"]["id"] == legacy["ResponseMetadata"]["RequestId"]
    assert by_tag["event"]["arn"] == arn(name)
    time.sleep(RETRY_DELAY * 2)     # a success is not run again
    assert len(lines(logs, name, "RUN")) == 2


def test_failure_is_retried_twice_with_backoff_then_recorded(lam: Any, logs: Any) -> None:
    name, dlq = make(lam), make(lam, RECORDER)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": arn(dlq)}})
    resp = event(lam, name, {"tag": "fails", "fail": True})
    got = wait_for(lambda: records(logs, dlq, "fails"), lambda got: len(got) >= 1)
    assert len(got) == 1
    record = got[0]
    attempts = runs(logs, name, "fails")
    assert len(attempts) == 3                            # the run plus MaximumRetryAttempts 2
    assert len({line["id"] for _, line in attempts}) == 1   # retries keep the request id
    gaps = [b[0] - a[0] for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= RETRY_DELAY * 1000 * 0.9 and gaps[1] >= RETRY_DELAY * 2000 * 0.9
    assert set(record) == {"version", "timestamp", "requestContext", "requestPayload",
                           "responseContext", "responsePayload"}
    assert record["version"] == "1.0"
    assert time.strptime(record["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")
    assert record["timestamp"].endswith("Z")
    assert record["requestContext"] == {
        "requestId": resp["ResponseMetadata"]["RequestId"],
        "functionArn": arn(name) + ":$LATEST",
        "condition": "RetriesExhausted", "approximateInvokeCount": 3}
    assert record["requestPayload"] == {"tag": "fails", "fail": True}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                         "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["responsePayload"]["errorMessage"] == "boom fails"
    time.sleep(RETRY_DELAY * 4)     # settled: no fourth run, no second record
    assert len(runs(logs, name, "fails")) == 3
    assert len(records(logs, dlq, "fails")) == 1


def test_zero_retries_run_once(lam: Any, logs: Any) -> None:
    name, dlq = make(lam), make(lam, RECORDER)
    config = lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn(dlq)}})
    assert config["MaximumRetryAttempts"] == 0
    event(lam, name, {"tag": "once", "fail": True})
    got = wait_for(lambda: records(logs, dlq, "once"), lambda got: len(got) >= 1)
    assert [r["requestContext"]["approximateInvokeCount"] for r in got] == [1]
    assert got[0]["requestContext"]["condition"] == "RetriesExhausted"
    time.sleep(RETRY_DELAY * 3)
    assert len(runs(logs, name, "once")) == 1


def test_success_destination_of_an_alias(lam: Any, logs: Any) -> None:
    name, sink = make(lam), make(lam, RECORDER)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    lam.put_function_event_invoke_config(
        FunctionName=name, Qualifier="live",
        DestinationConfig={"OnSuccess": {"Destination": arn(sink)}})
    resp = event(lam, name, {"tag": "ok"}, Qualifier="live")
    event(lam, name, {"tag": "unqualified"})    # $LATEST has no config: no record
    got = wait_for(lambda: records(logs, sink, "ok"), lambda got: len(got) >= 1)
    assert len(got) == 1
    assert got[0]["requestContext"] == {
        "requestId": resp["ResponseMetadata"]["RequestId"],
        "functionArn": f"{arn(name)}:{version}", "condition": "Success",
        "approximateInvokeCount": 1}
    assert got[0]["responseContext"] == {"statusCode": 200, "executedVersion": version}
    assert got[0]["responsePayload"] == {"echo": "ok"}
    [(_, run)] = runs(logs, name, "ok")
    assert run["arn"] == arn(name) + ":live"
    assert wait_for(lambda: runs(logs, name, "unqualified"), bool)
    assert records(logs, sink, "unqualified") == []


def test_throttled_events_wait_without_using_attempts(lam: Any, logs: Any) -> None:
    name, dlq = make(lam), make(lam, RECORDER)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn(dlq)}})
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    event(lam, name, {"tag": "held"})           # accepted although it cannot run now
    time.sleep(1.5)
    assert runs(logs, name, "held") == []
    lam.delete_function_concurrency(FunctionName=name)
    got = wait_for(lambda: runs(logs, name, "held"), bool, timeout=10)
    assert len(got) == 1
    assert records(logs, dlq, "held") == []


def test_async_payload_limit_is_256_kb(lam: Any, logs: Any) -> None:
    name = make(lam)
    limit = 262_144
    exact = json.dumps({"tag": "max", "pad": ""})
    exact = json.dumps({"tag": "max", "pad": "x" * (limit - len(exact))}).encode()
    assert len(exact) == limit
    for call in (lambda body: lam.invoke(FunctionName=name, InvocationType="Event",
                                         Payload=body),
                 lambda body: lam.invoke_async(FunctionName=name, InvokeArgs=body)):
        with pytest.raises(ClientError) as err:
            call(exact + b" ")
        assert err.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
        assert "262145 byte payload is too large for the Event invocation type" in str(err.value)
    assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=exact)[
        "StatusCode"] == 202
    assert wait_for(lambda: runs(logs, name, "max"), bool)
    # A synchronous invocation keeps its 6 MB limit.
    assert lam.invoke(FunctionName=name, Payload=exact + b" ")["StatusCode"] == 200


def queue_rows(data_dir: Path) -> list[tuple[str, str | None]]:
    db = sqlite3.connect(data_dir / "berth.db")
    try:
        return db.execute("SELECT function_name, lease_owner FROM lambda_async_events").fetchall()
    finally:
        db.close()


def test_events_survive_kill9_and_run_after_restart(tmp_path: Path) -> None:
    proc = start(BerthProcess(tmp_path / "data", command="up"))
    try:
        lam, logs = proc.client("lambda"), proc.client("logs")
        name = make(lam, INIT_SECONDS="3")      # runs cannot finish before the kill
        tags = [f"k{i}" for i in range(3)]
        for tag in tags:
            event(lam, name, {"tag": tag})
        time.sleep(1.0)                          # the dispatcher has claimed them
        proc.kill9()
        left = queue_rows(proc.data_dir)
        assert len(left) == 3 and all(row[0] == name for row in left)
        assert all(owner is not None for _, owner in left)   # leased by the dead server
        start(proc)
        got = wait_for(lambda: lines(logs, name, "RUN"),
                       lambda got: {line["tag"] for _, line in got} >= set(tags), timeout=30)
        assert {line["tag"] for _, line in got} == set(tags)
        assert wait_for(lambda: queue_rows(proc.data_dir), lambda rows: not rows) == []
    finally:
        proc.stop()


def test_events_wait_for_a_server_with_a_worker(tmp_path: Path) -> None:
    server = start(BerthProcess(tmp_path / "data"))
    try:
        lam = server.client("lambda")
        name = make(lam)
        event(lam, name, {"tag": "waited"})
        time.sleep(0.5)
        assert [row[1] for row in queue_rows(server.data_dir)] == [None]   # nobody runs it
    finally:
        server.stop()
    up = start(BerthProcess(tmp_path / "data", command="up"))
    try:
        got = wait_for(lambda: runs(up.client("logs"), name, "waited"), bool)
        assert len(got) == 1
    finally:
        up.stop()


@pytest.fixture
def private_postgres(postgres_url: str) -> Iterator[str]:
    """A database of the test's own on the session's PostgreSQL: the replicas' dispatchers
    take every due event in the database."""
    with private_database(postgres_url, "async") as private:
        yield private


def test_two_replicas_on_postgresql_run_each_event_once(private_postgres: str,
                                                        tmp_path: Path) -> None:
    replicas = [BerthProcess(tmp_path / f"r{i}", command="up", database_url=private_postgres)
                for i in range(2)]
    try:
        for proc in replicas:
            start(proc)
        clients = [proc.client("lambda") for proc in replicas]
        name = make(clients[0])  # uploaded to one replica; the other runs it from the store
        tags = [f"e{i}" for i in range(12)]
        for i, tag in enumerate(tags):       # each replica enqueues half
            event(clients[i % 2], name, {"tag": tag})
        logs = replicas[1].client("logs")
        got = wait_for(lambda: lines(logs, name, "RUN"),
                       lambda got: {line["tag"] for _, line in got} >= set(tags), timeout=20)
        time.sleep(1.0)                      # a second run would have shown by now
        got = lines(logs, name, "RUN")
        assert sorted(line["tag"] for _, line in got) == sorted(tags)
    finally:
        for proc in replicas:
            if proc.proc is not None:
                proc.stop()


RECORDED = '''
import json, os, socket

def handler(event, context):
    # The side effect first, acknowledged by the test, then the log line.
    with socket.create_connection(("127.0.0.1", int(os.environ["RECORDER"])), 5) as conn:
        conn.sendall(event["tag"].encode() + b"\\n")
        conn.recv(1)
    print("RUN " + json.dumps({"tag": event["tag"]}))
'''


class Recorder:
    """A loopback TCP server that notes every tag a function sends it."""

    def __init__(self) -> None:
        import socketserver
        import threading
        self.tags: list[str] = []
        recorder = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                tag = self.rfile.readline().decode().strip()
                if tag:     # else the sandbox was killed while it connected
                    recorder.tags.append(tag)
                    self.wfile.write(b"k")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_no_log_line_of_an_event_that_ran_is_lost_to_a_kill9(tmp_path: Path) -> None:
    recorder = Recorder()
    proc = start(BerthProcess(tmp_path / "data", command="up"))
    try:
        lam, logs = proc.client("lambda"), proc.client("logs")
        name = make(lam, RECORDED, RECORDER=str(recorder.port))
        tags = [f"e{i}" for i in range(300)]
        for tag in tags:
            event(lam, name, {"tag": tag})
        # Kill while events run and complete.
        assert wait_for(lambda: list(recorder.tags), lambda got: len(got) >= 60, 30)
        proc.kill9()
        start(proc)
        assert wait_for(lambda: list(recorder.tags), lambda got: set(got) >= set(tags), 60)
        ran = set(recorder.tags)
        logged = wait_for(lambda: {line["tag"] for _, line in lines(logs, name, "RUN")},
                          lambda got: got >= ran, 30)
        assert ran - logged == set(), f"{len(ran - logged)} events ran without their log line"
    finally:
        proc.stop()
        recorder.close()
