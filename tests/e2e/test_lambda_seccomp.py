"""The seccomp filter of function sandboxes, probed from inside real functions through boto3:
no new namespaces, no mounts, none of the kernel's administration; threads and processes
still work, in Python and in Node.js."""
from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
from berth_process import BerthProcess
from lambda_packages import ROLE, create_python, python_zip, zip_of
from syscall_probe import SOURCE, assert_sealed, needs_x86_64

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="sandbox isolation needs root"),
              needs_x86_64]

NODE_TRIES = r'''
const { spawnSync } = require("child_process");
const status = require("fs").readFileSync("/proc/self/status", "utf8");
exports.handler = async () => {
  const unshare = spawnSync("/usr/bin/unshare", ["--user", "true"], { encoding: "utf8" });
  const shell = spawnSync("/bin/sh", ["-c", "echo spawned"], { encoding: "utf8" });
  return { unshare: unshare.status, why: unshare.stderr.trim(), shell: shell.stdout.trim(),
           seccomp: /Seccomp:\s+(\d)/.exec(status)[1] };
};
'''


@pytest.fixture(scope="module")
def lam(berth_up: BerthProcess) -> Any:
    return berth_up.client("lambda")


def test_a_python_function_cannot_leave_its_sandbox_through_the_kernel(lam: Any) -> None:
    name = "seccomp-" + uuid.uuid4().hex[:8]
    create_python(lam, name, Handler="app.probe", Code={"ZipFile": python_zip(SOURCE)})
    resp = lam.invoke(FunctionName=name, Payload=b"{}")
    found = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp, found
    assert_sealed(found)


def test_a_nodejs_function_and_its_children_are_filtered_too(lam: Any) -> None:
    name = "seccomp-node-" + uuid.uuid4().hex[:8]
    lam.create_function(FunctionName=name, Runtime="nodejs20.x", Role=ROLE,
                        Handler="index.handler", Code={"ZipFile": zip_of({"index.js": NODE_TRIES})})
    resp = lam.invoke(FunctionName=name, Payload=b"{}")
    found = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp, found
    assert found["unshare"] != 0 and "Operation not permitted" in found["why"], found
    assert (found["shell"], found["seccomp"]) == ("spawned", "2"), found
