"""Node.js functions on a real `berth up`: the three handler styles, the classic default
termination, errors, logs."""
from __future__ import annotations

import base64
import io
import json
import uuid
import zipfile
from typing import Any

import pytest
from berth_process import BerthProcess

ROLE = "arn:aws:iam::000000000000:role/lambda"

INDEX = r'''
let count = 0;
exports.asyncStyle = async (event, context) => {
  count++;
  console.log("async says", JSON.stringify(event));
  return { count, requestId: context.awsRequestId, name: context.functionName,
           remaining: context.getRemainingTimeInMillis(), arn: context.invokedFunctionArn,
           memory: context.memoryLimitInMB, group: context.logGroupName,
           custom: context.clientContext ? context.clientContext.custom : null,
           env: { name: process.env.AWS_LAMBDA_FUNCTION_NAME, root: process.env.LAMBDA_TASK_ROOT,
                  nodePath: process.env.NODE_PATH, tz: process.env.TZ } };
};
exports.callbackWaits = (event, context, callback) => {
  count++;
  let later = "not yet";
  setTimeout(() => { later = "ran"; }, 50);
  callback(null, { count, get later() { return later; } });
};
exports.callbackNoWait = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => {}, 5000);
  callback(null, { style: "callback-no-wait" });
};
exports.classicDone = (event, context) => {
  setTimeout(() => {}, 5000);
  context.done(null, { style: "done" });
};
exports.classicSucceed = (event, context) => { context.succeed({ style: "succeed" }); };
exports.classicFail = (event, context) => { context.fail(new Error("failed the old way")); };
exports.callbackError = (event, context, callback) => { callback(new RangeError("out of range")); };
exports.forgets = (event, context) => { setTimeout(() => console.log("timer fired"), 20); };
exports.throws = async () => { throw new TypeError("bad input"); };
exports.exits = () => { process.exit(4); };
'''


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


@pytest.fixture(scope="module")
def lam(berth_up: BerthProcess) -> Any:
    return berth_up.client("lambda")


@pytest.fixture(scope="module")
def code() -> bytes:
    return make_zip({"index.js": INDEX})


def create(lam: Any, code: bytes, handler: str, timeout: int = 3) -> str:
    name = "node-" + uuid.uuid4().hex[:10]
    lam.create_function(FunctionName=name, Runtime="nodejs20.x", Role=ROLE, Handler=handler,
                        Timeout=timeout, Code={"ZipFile": code})
    return name


def call(lam: Any, name: str, event: Any = None, **kw: Any) -> tuple[dict[str, Any], Any]:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **kw)
    return resp, json.loads(resp["Payload"].read())


def test_async_handler_with_context_and_reuse(lam: Any, code: bytes) -> None:
    name = create(lam, code, "index.asyncStyle")
    custom = base64.b64encode(json.dumps({"custom": {"a": 1}}).encode()).decode()
    resp, body = call(lam, name, {"x": 1}, LogType="Tail", ClientContext=custom)
    assert "FunctionError" not in resp
    assert body["count"] == 1 and body["requestId"] == resp["ResponseMetadata"]["RequestId"]
    assert body["name"] == name and body["memory"] == "128"
    assert body["arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert body["group"] == f"/aws/lambda/{name}" and 2000 < body["remaining"] <= 3000
    assert body["custom"] == {"a": 1}
    assert body["env"]["name"] == name and body["env"]["tz"] == ":UTC"
    assert body["env"]["root"] in body["env"]["nodePath"].split(":")
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert f"\t{body['requestId']}\tINFO\tasync says {{\"x\":1}}" in tail
    assert call(lam, name)[1]["count"] == 2


def test_callback_waits_for_the_event_loop(lam: Any, code: bytes) -> None:
    name = create(lam, code, "index.callbackWaits")
    _, body = call(lam, name)
    # The answer went out after the loop drained, so the timer had run.
    assert body == {"count": 1, "later": "ran"}
    assert call(lam, name)[1]["count"] == 2


@pytest.mark.parametrize("handler, expected", [
    ("index.callbackNoWait", {"style": "callback-no-wait"}),
    ("index.classicDone", {"style": "done"}),
    ("index.classicSucceed", {"style": "succeed"}),
])
def test_answers_that_do_not_wait(lam: Any, code: bytes, handler: str,
                                  expected: dict[str, str]) -> None:
    name = create(lam, code, handler)
    for _ in range(2):  # pending timers stay frozen in the sandbox; the next invoke still works
        resp, body = call(lam, name)
        assert "FunctionError" not in resp and body == expected


@pytest.mark.parametrize("handler, error_type, message", [
    ("index.classicFail", "Error", "failed the old way"),
    ("index.callbackError", "RangeError", "out of range"),
    ("index.throws", "TypeError", "bad input"),
])
def test_errors(lam: Any, code: bytes, handler: str, error_type: str, message: str) -> None:
    name = create(lam, code, handler)
    resp, body = call(lam, name)
    assert resp["FunctionError"] == "Unhandled"
    assert (body["errorType"], body["errorMessage"]) == (error_type, message)
    assert body["trace"][0] == f"{error_type}: {message}"


def test_default_termination(lam: Any, code: bytes) -> None:
    name = create(lam, code, "index.forgets")
    resp, body = call(lam, name, LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": f"RequestId: {rid} Process exited before completing request"}
    assert "timer fired" in base64.b64decode(resp["LogResult"]).decode()
    resp, body = call(lam, name)
    assert body["errorMessage"].endswith("Process exited before completing request")


def test_exit_and_init_errors(lam: Any, code: bytes) -> None:
    name = create(lam, code, "index.exits")
    resp, body = call(lam, name)
    rid = resp["ResponseMetadata"]["RequestId"]
    assert body == {"errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: "
                                    "exit status 4"}
    name = create(lam, code, "index.missing")
    _, body = call(lam, name)
    assert body["errorType"] == "Runtime.HandlerNotFound"
    assert body["errorMessage"] == "index.missing is undefined or not exported"
    name = create(lam, code, "nothere.handler")
    _, body = call(lam, name)
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"].startswith("Error: Cannot find module 'nothere'")
