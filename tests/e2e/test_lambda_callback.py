"""Functions call berth back as they would call AWS: with their execution role's temporary
credentials and berth's endpoint in their environment, through the SDKs their runtime
carries. Nothing in the zips but the handlers."""
from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import Any, Iterator

import pytest

from berth_process import BerthProcess
from lambda_packages import zip_of

ROLE = "arn:aws:iam::000000000000:role/service-role/callback-role"

PYTHON = r'''
import os, time
import boto3

sts = boto3.client("sts")       # made at init, as functions usually make them

def handler(event, context):
    me = sts.get_caller_identity()
    logs = boto3.client("logs")
    group = event["group"]
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(logGroupName=group, logStreamName="s",
                        logEvents=[{"timestamp": int(time.time() * 1000),
                                    "message": "from " + me["Arn"]}])
    return {"arn": me["Arn"], "user": me["UserId"], "account": me["Account"],
            "boto3": boto3.__file__, "key": os.environ["AWS_ACCESS_KEY_ID"],
            "endpoint": os.environ["AWS_ENDPOINT_URL"],
            "region": [os.environ["AWS_REGION"], os.environ["AWS_DEFAULT_REGION"]],
            "secret_seen": bool(os.environ["AWS_SECRET_ACCESS_KEY"]),
            "token_seen": bool(os.environ["AWS_SESSION_TOKEN"])}
'''

NODE_ESM = r'''
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { CloudWatchLogsClient, DescribeLogGroupsCommand } from "@aws-sdk/client-cloudwatch-logs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const sts = new STSClient({});

export const handler = async (event) => {
  const me = await sts.send(new GetCallerIdentityCommand({}));
  const logs = new CloudWatchLogsClient({});
  const groups = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: event.prefix }));
  const viaRequire = require("@aws-sdk/client-sts");
  const resolved = require.resolve("@aws-sdk/client-sqs");
  let write = "written";
  try { require("node:fs").writeFileSync(resolved + ".x", "x"); } catch (e) { write = e.code; }
  return { arn: me.Arn, groups: groups.logGroups.map((g) => g.logGroupName),
           required: typeof viaRequire.STSClient, resolved, write };
};
'''

NODE_CJS = r'''
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
exports.handler = async () => {
  const me = await new STSClient({}).send(new GetCallerIdentityCommand({}));
  return { arn: me.Arn };
};
'''


@pytest.fixture(scope="module")
def lam(berth_up: BerthProcess) -> Any:
    return berth_up.client("lambda")


def _create(lam: Any, runtime: str, handler: str, files: dict[str, str],
            modes: dict[str, int] | None = None) -> str:
    name = f"cb-{uuid.uuid4().hex[:10]}"
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": zip_of(files, modes)}, Timeout=30)
    return name


def _invoke(lam: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    body = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp, body
    return body


def test_a_python_function_calls_sts_and_logs_as_its_role(berth_up: BerthProcess,
                                                         lam: Any) -> None:
    name = _create(lam, "python3.12", "app.handler", {"app.py": PYTHON})
    group = f"/callback/{name}"
    out = _invoke(lam, name, {"group": group})
    assert out["arn"] == f"arn:aws:sts::000000000000:assumed-role/callback-role/{name}"
    assert out["user"].startswith("AROA") and out["user"].endswith(":" + name)
    assert out["account"] == "000000000000"
    assert out["boto3"].startswith("/var/runtime/sdk/"), out["boto3"]   # the runtime's
    assert out["key"].startswith("ASIA") and out["secret_seen"] and out["token_seen"]
    assert out["endpoint"] == berth_up.endpoint
    assert out["region"] == ["us-east-1", "us-east-1"]
    events = berth_up.client("logs").get_log_events(logGroupName=group, logStreamName="s")
    assert [e["message"] for e in events["events"]] == [f"from {out['arn']}"]
    # A warm sandbox keeps working with the credentials it started with.
    assert _invoke(lam, name, {"group": group + "-2"})["key"] == out["key"]


def test_a_node_function_imports_the_sdk_and_calls_as_its_role(berth_up: BerthProcess,
                                                              lam: Any) -> None:
    name = _create(lam, "nodejs20.x", "index.handler", {"index.mjs": NODE_ESM})
    prefix = f"/cb-node/{name}"
    berth_up.client("logs").create_log_group(logGroupName=prefix + "/a")
    out = _invoke(lam, name, {"prefix": prefix})
    assert out["arn"] == f"arn:aws:sts::000000000000:assumed-role/callback-role/{name}"
    assert out["groups"] == [prefix + "/a"]
    assert out["required"] == "function"
    assert out["resolved"].startswith("/var/runtime/node_modules/@aws-sdk/client-sqs/")
    assert out["write"] == "EROFS"          # the runtime's SDK is read-only
    cjs = _create(lam, "nodejs20.x", "index.handler", {"index.js": NODE_CJS})
    assert _invoke(lam, cjs, {})["arn"].endswith(f"/callback-role/{cjs}")


def test_a_package_in_the_zip_wins_over_the_runtimes(lam: Any) -> None:
    py = _create(lam, "python3.12", "app.handler", {
        "app.py": "import boto3\ndef handler(e, c):\n    return {'v': boto3.VERSION}\n",
        "boto3/__init__.py": "VERSION = 'the zip'\n"})
    assert _invoke(lam, py, {}) == {"v": "the zip"}
    node = _create(lam, "nodejs20.x", "index.handler", {
        "index.mjs": "import { who } from '@aws-sdk/client-sts';\n"
                     "export const handler = async () => ({ who });\n",
        "node_modules/@aws-sdk/client-sts/package.json":
            '{"name": "@aws-sdk/client-sts", "type": "module", "main": "index.js"}',
        "node_modules/@aws-sdk/client-sts/index.js": "export const who = 'the zip';\n"})
    assert _invoke(lam, node, {}) == {"who": "the zip"}


def test_the_python_sdk_is_read_only_in_the_sandbox(lam: Any) -> None:
    name = _create(lam, "python3.12", "app.handler", {"app.py": (
        "import os, botocore\n"
        "def handler(e, c):\n"
        "    try:\n"
        "        open(os.path.dirname(botocore.__file__) + '/x', 'w')\n"
        "    except OSError as exc:\n"
        "        return exc.strerror\n"
        "    return 'written'\n")})
    assert _invoke(lam, name, {}) == "Read-only file system"


WARM = r'''
import os, boto3
sts = boto3.client("sts")       # made at init: it must follow the credentials it is given
COUNT = 0

def handler(event, context):
    global COUNT
    COUNT += 1
    return {"count": COUNT, "key": os.environ["AWS_ACCESS_KEY_ID"],
            "arn": sts.get_caller_identity()["Arn"]}
'''

WARM_NODE = r'''
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
const sts = new STSClient({});  // made at init: it must follow the credentials it is given
let count = 0;
export const handler = async () => {
  count++;
  const me = await sts.send(new GetCallerIdentityCommand({}));
  return { count, key: process.env.AWS_ACCESS_KEY_ID, arn: me.Arn };
};
'''

CUSTOM_BOOTSTRAP = r'''#!/bin/sh
exec {python} -S -c '
import http.client, json, os, uuid
boot = uuid.uuid4().hex
api = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    r = api.getresponse()
    r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    body = json.dumps({{"boot": boot, "key": os.environ["AWS_ACCESS_KEY_ID"]}})
    api.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, body)
    api.getresponse().read()
'
'''


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthProcess]:
    """A `berth up` whose sandboxes' credentials last 6 s (a new set after 3 s): hours of a
    warm sandbox's life in seconds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BERTH_LAMBDA_CREDENTIALS_LIFETIME", "6")
        proc = BerthProcess(tmp_path_factory.mktemp("short") / "data", command="up").start()
    yield proc
    proc.stop()


def _until(moment: float) -> None:
    while time.time() < moment:
        time.sleep(0.05)


@pytest.mark.parametrize("runtime,handler,files", [
    ("python3.12", "app.handler", {"app.py": WARM}),
    ("nodejs20.x", "index.handler", {"index.mjs": WARM_NODE})])
def test_a_warm_sandbox_keeps_working_past_its_first_credentials(
        short_lived: BerthProcess, runtime: str, handler: str, files: dict[str, str]) -> None:
    lam = short_lived.client("lambda")
    name = _create(lam, runtime, handler, files)
    first = _invoke(lam, name, {})
    start = time.time()             # its credentials were issued before this
    assert first["arn"].endswith(f"/callback-role/{name}")
    _until(start + 3.5)             # the set it started with is half spent: a new one comes
    second = _invoke(lam, name, {})
    assert second["count"] == 2 and second["key"] != first["key"]
    assert second["arn"] == first["arn"]
    _until(start + 7)               # the first set has expired; the init-time client follows
    third = _invoke(lam, name, {})
    assert third["count"] == 3 and third["arn"] == first["arn"]


def test_a_custom_runtime_is_retired_before_its_credentials_expire(
        short_lived: BerthProcess) -> None:
    # A runtime that is not berth's cannot take a new set: its sandbox is not reused once
    # its set may expire during an invocation (here at once: 6 s < the timeout + a minute).
    lam = short_lived.client("lambda")
    name = _create(lam, "provided.al2023", "unused", {
        "bootstrap": CUSTOM_BOOTSTRAP.format(python=os.path.realpath(sys.executable))},
        modes={"bootstrap": 0o100755})
    one, two = _invoke(lam, name, {}), _invoke(lam, name, {})
    assert one["boot"] != two["boot"]
    assert one["key"].startswith("ASIA") and two["key"].startswith("ASIA")
