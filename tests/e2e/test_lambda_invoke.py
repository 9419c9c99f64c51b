"""Invoke against a real `berth up`: warm reuse, freezing, the ends of an invocation, logs,
limits, and the Invoke API's own behaviour, with boto3 and the AWS CLI as clients."""
from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
import uuid
import zipfile
from typing import Any

import pytest
from berth_process import BerthProcess
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::000000000000:role/lambda"

APP = r'''
import json, os, signal, threading, time

with open("/tmp/inits", "a") as f:      # one line per init of this sandbox
    f.write("init\n")
COUNT = 0
TICKS = 0

def _tick():
    global TICKS
    while True:
        TICKS += 1
        time.sleep(0.005)

def handler(event, context):
    global COUNT
    COUNT += 1
    action = event.get("action")
    if action == "sleep":
        time.sleep(event["seconds"])
    elif action == "exit":
        os._exit(event["code"])
    elif action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "oom":
        hog = [bytearray(16 * 1024 * 1024) for _ in range(64)]
        return len(hog)
    elif action == "raise":
        raise ValueError("boom")
    elif action == "set":
        return {1, 2}
    elif action == "big":
        return "x" * (7 * 1024 * 1024)
    elif action == "ticker":
        if not any(t.name == "ticker" for t in threading.enumerate()):
            threading.Thread(target=_tick, name="ticker", daemon=True).start()
            time.sleep(0.05)
        return TICKS
    elif action == "print":
        print(event["text"])
    elif action == "env":
        return {"env": dict(os.environ), "ctx": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
            "client_custom": context.client_context.custom if context.client_context else None,
            "identity_id": context.identity.cognito_identity_id}}
    elif action == "tmp":
        path = "/tmp/" + event["name"]
        existed = os.path.exists(path)
        with open(path, "a") as f:
            f.write("x")
        return {"existed": existed, "tmpdir": os.environ.get("TMPDIR")}
    with open("/tmp/inits") as f:
        inits = len(f.read().splitlines())
    return {"count": COUNT, "inits": inits}
'''


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def create(lam: Any, handler: str = "app.handler", timeout: int = 3, memory: int = 128,
           env: dict[str, str] | None = None, files: dict[str, str] | None = None) -> str:
    name = "f-" + uuid.uuid4().hex[:10]
    kw: dict[str, Any] = {}
    if env:
        kw["Environment"] = {"Variables": env}
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler=handler,
                        Timeout=timeout, MemorySize=memory,
                        Code={"ZipFile": make_zip(files or {"app.py": APP})}, **kw)
    return name


def call(lam: Any, name: str, event: dict[str, Any] | None = None, **kw: Any
         ) -> tuple[dict[str, Any], Any]:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **kw)
    return resp, json.loads(resp["Payload"].read())


@pytest.fixture(scope="module")
def lam(berth_up: BerthProcess) -> Any:
    return berth_up.client("lambda")


@pytest.fixture(scope="module")
def logs(berth_up: BerthProcess) -> Any:
    return berth_up.client("logs")


def test_warm_sandbox_is_reused_and_inits_once(lam: Any) -> None:
    name = create(lam)
    results = [call(lam, name)[1] for _ in range(5)]
    assert [r["count"] for r in results] == [1, 2, 3, 4, 5]
    assert all(r["inits"] == 1 for r in results)


def test_tmp_survives_reuse_and_is_private(lam: Any) -> None:
    name = create(lam)
    first = call(lam, name, {"action": "tmp", "name": "kept"})[1]
    second = call(lam, name, {"action": "tmp", "name": "kept"})[1]
    assert (first["existed"], second["existed"]) == (False, True)
    # Another function's sandbox has a /tmp of its own.
    other = create(lam)
    assert call(lam, other, {"action": "tmp", "name": "kept"})[1]["existed"] is False


def test_background_thread_does_not_run_while_frozen(lam: Any) -> None:
    name = create(lam)
    call(lam, name, {"action": "ticker"})
    a = call(lam, name, {"action": "ticker"})[1]
    time.sleep(0.4)                     # the freezer cgroup holds it
    b = call(lam, name, {"action": "ticker"})[1]
    time.sleep(1.5)
    c = call(lam, name, {"action": "ticker"})[1]
    # Running, the ticker would add ~80 and ~300; frozen, only the handlers' own moments count.
    assert b - a < 15, (a, b)
    assert c - b < 15, (b, c)


def test_timeout_kills_the_sandbox_and_the_next_invoke_recovers(lam: Any) -> None:
    name = create(lam, timeout=1)
    call(lam, name)
    resp, body = call(lam, name, {"action": "sleep", "seconds": 5}, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["FunctionError"] == "Unhandled"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z " + rid +
                        r" Task timed out after 1\.00 seconds", body["errorMessage"]), body
    assert "Task timed out after 1.00 seconds" in base64.b64decode(resp["LogResult"]).decode()
    resp, body = call(lam, name)
    assert "FunctionError" not in resp
    assert body["count"] == 1           # a fresh sandbox


@pytest.mark.parametrize("event, status", [
    ({"action": "exit", "code": 3}, "exit status 3"),
    ({"action": "kill"}, "signal: killed"),
])
def test_runtime_exit_is_reported_and_the_next_invoke_recovers(lam: Any, event: dict[str, Any],
                                                               status: str) -> None:
    name = create(lam)
    assert call(lam, name)[1]["count"] == 1
    resp, body = call(lam, name, event)
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["FunctionError"] == "Unhandled"
    assert body == {"errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: "
                                    f"{status}"}
    assert call(lam, name)[1] == {"count": 1, "inits": 1}


def test_out_of_memory_is_a_kill(lam: Any) -> None:
    name = create(lam, memory=128)
    resp, body = call(lam, name, {"action": "oom"})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorMessage"].endswith("Runtime exited with error: signal: killed"), body
    assert call(lam, name)[1]["count"] == 1


def test_error_result(lam: Any) -> None:
    name = create(lam)
    resp, body = call(lam, name, {"action": "raise"})
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "boom"
    assert any('app.py' in line and "in handler" in line for line in body["stackTrace"])
    assert not any("berth_runtime" in line for line in body["stackTrace"])
    assert call(lam, name)[1]["count"] == 2      # an error result keeps the sandbox


@pytest.mark.parametrize("handler, error_type, message", [
    ("missing.handler", "Runtime.ImportModuleError",
     "Unable to import module 'missing': No module named 'missing'"),
    ("app.nope", "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"),
])
def test_init_errors(lam: Any, handler: str, error_type: str, message: str) -> None:
    name = create(lam, handler=handler)
    for _ in range(2):                  # every invoke initialises anew, and fails the same way
        resp, body = call(lam, name)
        assert resp["FunctionError"] == "Unhandled"
        assert (body["errorType"], body["errorMessage"]) == (error_type, message)


def test_unmarshalable_result_and_oversized_response(lam: Any) -> None:
    name = create(lam)
    resp, body = call(lam, name, {"action": "set"})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.MarshalError"
    assert body["errorMessage"] == ("Unable to marshal response: Object of type set is not "
                                    "JSON serializable")
    resp, body = call(lam, name, {"action": "big"})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge"


def test_request_too_large_and_bad_json(lam: Any) -> None:
    name = create(lam)
    with pytest.raises(ClientError) as err:
        lam.invoke(FunctionName=name, Payload=b'"' + b"x" * 6_291_456 + b'"')
    assert err.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "6291456 bytes for the InvokeFunction operation" in str(err.value)
    with pytest.raises(ClientError) as err:
        lam.invoke(FunctionName=name, Payload=b"{not json")
    assert err.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as err:
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_tail_and_cloudwatch_logs(lam: Any, logs: Any) -> None:
    name = create(lam)
    resp, _ = call(lam, name, {"action": "print", "text": "hello from the function"},
                   LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    tail = base64.b64decode(resp["LogResult"]).decode()
    lines = tail.splitlines()
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert "hello from the function" in lines
    assert lines[-2] == f"END RequestId: {rid}"
    assert re.fullmatch(rf"REPORT RequestId: {rid}\tDuration: \d+\.\d\d ms\tBilled Duration: "
                        r"\d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\t"
                        r"Init Duration: \d+\.\d\d ms", lines[-1]), lines[-1]
    long = call(lam, name, {"action": "print", "text": "y" * 9000}, LogType="Tail")[0]
    assert len(base64.b64decode(long["LogResult"])) == 4096
    second = call(lam, name)[0]["ResponseMetadata"]["RequestId"]
    deadline = time.monotonic() + 10
    messages: list[str] = []
    while time.monotonic() < deadline:
        streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}").get(
            "logStreams", []) if _group_exists(logs, name) else []
        if streams:
            assert len(streams) == 1
            stream = streams[0]["logStreamName"]
            assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", stream)
            messages = [e["message"] for e in logs.get_log_events(
                logGroupName=f"/aws/lambda/{name}", logStreamName=stream,
                startFromHead=True)["events"]]
            if f"END RequestId: {second}" in messages:
                break
        time.sleep(0.2)
    assert messages[0] == f"START RequestId: {rid} Version: $LATEST"
    reports = [m for m in messages if m.startswith("REPORT")]
    assert len(reports) == 3
    assert "Init Duration" in reports[0] and "Init Duration" not in reports[2]
    assert f"START RequestId: {second} Version: $LATEST" in messages


def _group_exists(logs: Any, name: str) -> bool:
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    return bool(groups)


def test_environment_and_context(lam: Any) -> None:
    name = create(lam, memory=256, env={"GREETING": "hi", "TZ": "Europe/Paris"})
    custom = {"custom": {"k": "v"}, "client": {"app_title": "t"}}
    resp, body = call(lam, name, {"action": "env"},
                      ClientContext=base64.b64encode(json.dumps(custom).encode()).decode())
    env, ctx = body["env"], body["ctx"]
    rid = resp["ResponseMetadata"]["RequestId"]
    assert env["GREETING"] == "hi" and env["TZ"] == "Europe/Paris"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}",
                        env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert f"{env['LAMBDA_TASK_ROOT']}/lib" in env["LD_LIBRARY_PATH"].split(":")
    assert env["LAMBDA_TASK_ROOT"] in env["PYTHONPATH"].split(":")
    assert env["LAMBDA_RUNTIME_DIR"] and env["PATH"]
    assert ctx["aws_request_id"] == rid
    assert ctx["function_name"] == name and ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert ctx["memory_limit_in_mb"] == "256"
    assert ctx["log_group_name"] == f"/aws/lambda/{name}"
    assert ctx["log_stream_name"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 2000 < ctx["remaining"] <= 3000
    assert ctx["client_custom"] == {"k": "v"}
    assert ctx["identity_id"] is None
    # Qualified: the invoked ARN names the qualifier; ExecutedVersion the version run.
    resp = lam.invoke(FunctionName=name, Qualifier="$LATEST", Payload=b'{"action": "env"}')
    body = json.loads(resp["Payload"].read())
    assert body["ctx"]["invoked_function_arn"].endswith(f":function:{name}:$LATEST")
    assert resp["ExecutedVersion"] == "$LATEST"


def test_reserved_concurrency_throttles(lam: Any) -> None:
    name = create(lam)
    call(lam, name)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    time.sleep(1.2)     # the Invoke path's cached configuration expires (lambda_config_ttl)
    outcomes: list[Any] = []

    def slow() -> None:
        try:
            outcomes.append(call(lam, name, {"action": "sleep", "seconds": 1.5})[0]["StatusCode"])
        except ClientError as exc:
            outcomes.append(exc.response)

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.4)
    for t in threads:
        t.join(10)
    assert 200 in outcomes
    throttled = [o for o in outcomes if isinstance(o, dict)]
    assert len(throttled) == 1
    assert throttled[0]["Error"]["Code"] == "TooManyRequestsException"
    assert throttled[0]["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert throttled[0]["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_dry_run_and_event(lam: Any, logs: Any) -> None:
    name = create(lam)
    assert lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    marker = uuid.uuid4().hex
    resp = lam.invoke(FunctionName=name, InvocationType="Event",
                      Payload=json.dumps({"action": "print", "text": marker}).encode())
    assert resp["StatusCode"] == 202
    legacy = uuid.uuid4().hex      # the deprecated InvokeAsync is an Event invocation too
    assert lam.invoke_async(FunctionName=name, InvokeArgs=json.dumps(
        {"action": "print", "text": legacy}).encode())["Status"] == 202
    deadline = time.monotonic() + 10
    found: set[str] = set()
    while time.monotonic() < deadline and len(found) < 2:
        time.sleep(0.2)
        if not _group_exists(logs, name):
            continue
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        found = {e["message"] for e in events} & {marker, legacy}
    assert found == {marker, legacy}


def test_aws_cli_invoke(berth_up: BerthProcess, lam: Any, tmp_path: Any) -> None:
    name = create(lam)
    out = tmp_path / "out.json"
    result = berth_up.aws_cli("lambda", "invoke", "--function-name", name,
                              "--payload", '{"action": "print", "text": "cli"}',
                              "--log-type", "Tail", str(out))
    meta = json.loads(result.stdout)
    assert meta["StatusCode"] == 200 and meta["ExecutedVersion"] == "$LATEST"
    assert "cli" in base64.b64decode(meta["LogResult"]).decode().splitlines()
    assert json.loads(out.read_text()) == {"count": 1, "inits": 1}


def test_without_a_worker_invoke_is_a_clear_error(berth: BerthProcess) -> None:
    lam = berth.client("lambda")
    name = create(lam)
    assert lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(ClientError) as err:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert err.value.response["Error"]["Code"] == "ServiceException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert "No function worker is available" in err.value.response["Error"]["Message"]


def test_a_captured_invoke_replayed_with_another_body_is_refused(berth_up: BerthProcess,
                                                                 lam: Any) -> None:
    """Issue 10: the victim's signed Invoke, its body's hash declared in
    X-Amz-Content-SHA256, replayed with another body, made the function return the
    attacker's answer."""
    import hashlib
    import http.client

    from berth_process import ACCESS_KEY, SECRET_KEY
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    name = create(lam, files={"app.py": "def handler(event, context):\n    return event\n"})
    path = f"/2015-03-31/functions/{name}/invocations"
    benign = b'{"id":"benign"}'
    req = AWSRequest("POST", berth_up.endpoint + path, data=benign)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1").add_auth(req)
    captured = {**dict(req.headers), "X-Amz-Content-SHA256": hashlib.sha256(benign).hexdigest()}
    conn = http.client.HTTPConnection("127.0.0.1", berth_up.port, timeout=30)
    try:
        conn.request("POST", path, body=b'{"ok":"EVIL"}', headers=captured)
        resp = conn.getresponse()
        answer = resp.read()
        assert resp.status == 403, answer
        assert resp.getheader("x-amzn-errortype") == "InvalidSignatureException"
        assert b"EVIL" not in answer
        conn.request("POST", path, body=benign, headers=captured)    # as the victim signed it
        resp = conn.getresponse()
        assert (resp.status, json.loads(resp.read())) == (200, {"id": "benign"})
    finally:
        conn.close()
