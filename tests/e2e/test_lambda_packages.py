"""Function packages with symlinks and impossible names, through boto3 against `berth up`:
links work inside the sandbox (those pointing outside the package resolve in the sandbox's own
view), and what cannot be unpacked is refused when uploaded, never at Invoke."""
from __future__ import annotations

import io
import json
import os
import stat
import uuid
import zipfile
from typing import Any

import botocore.exceptions
import pytest
from berth_process import BerthProcess, error_of
from lambda_packages import ROLE, python_zip

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox view needs root")

LINK = stat.S_IFLNK | 0o777

PY_APP = r'''
import os

def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as exc:
        return type(exc).__name__

def handler(event, context):
    return {
        "through_link": _read("/var/task/data/latest.txt"),
        "chained": _read("/var/task/chain1"),
        "dir_link": sorted(os.listdir("/var/task/current")),
        "abs_target": os.readlink("/var/task/hostname"),
        "abs_read": _read("/var/task/hostname") == _read("/etc/hostname"),
        "up": os.path.realpath("/var/task/up"),
        "shadow": _read("/var/task/shadow"),
        "dangling": _read("/var/task/nowhere"),
    }
'''

NODE_APP = r'''
const { execFileSync } = require("child_process");
exports.handler = async () => ({
  required: require("alias").name,
  bin: execFileSync("/var/task/node_modules/.bin/hello", { encoding: "utf8" }).trim(),
});
'''


def zip_with(files: dict[str, str], links: dict[str, str] | None = None,
             modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (modes or {}).get(name, 0o100644) << 16
            z.writestr(info, text)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3          # Unix: the mode bits say it is a link
            info.external_attr = LINK << 16
            z.writestr(info, target)
    return buf.getvalue()


@pytest.fixture(scope="module")
def lam(berth_up: BerthProcess) -> Any:
    return berth_up.client("lambda")


def invoke(lam: Any, name: str) -> tuple[dict[str, Any], Any]:
    resp = lam.invoke(FunctionName=name, Payload=b"{}")
    return resp, json.loads(resp["Payload"].read())


def test_python_package_with_links_inside_and_outside_invokes(lam: Any) -> None:
    code = zip_with(
        {"app.py": PY_APP, "data/v1.txt": "version one", "releases/r1/a.txt": "a"},
        {"data/latest.txt": "v1.txt", "current": "releases/r1",
         "chain1": "chain2", "chain2": "data/latest.txt",
         "hostname": "/etc/hostname", "up": "../../../..", "shadow": "/etc/shadow",
         "nowhere": "/no/such/file"})
    name = "links-" + uuid.uuid4().hex[:8]
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE,
                        Handler="app.handler", Code={"ZipFile": code})
    resp, body = invoke(lam, name)
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, body
    assert body == {"through_link": "version one", "chained": "version one",
                    "dir_link": ["a.txt"], "abs_target": "/etc/hostname", "abs_read": True,
                    "up": "/", "shadow": "PermissionError",
                    "dangling": "FileNotFoundError"}


def test_node_modules_links_work(lam: Any) -> None:
    code = zip_with(
        {"index.js": NODE_APP,
         "node_modules/real-pkg/index.js": "module.exports = { name: 'real-pkg' };\n",
         "node_modules/hello/cli.js": "#!/usr/bin/env node\nconsole.log('hello from bin');\n"},
        {"node_modules/alias": "real-pkg", "node_modules/.bin/hello": "../hello/cli.js"},
        modes={"node_modules/hello/cli.js": 0o100755})
    name = "nodelinks-" + uuid.uuid4().hex[:8]
    lam.create_function(FunctionName=name, Runtime="nodejs20.x", Role=ROLE,
                        Handler="index.handler", Code={"ZipFile": code})
    resp, body = invoke(lam, name)
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, body
    assert body == {"required": "real-pkg", "bin": "hello from bin"}


UNPACKABLE = {
    "a 300-character file name": zip_with({"app.py": "x = 1\n", "d/" + "n" * 300: "x"}),
    "a 256-byte name in UTF-8": zip_with({"app.py": "x = 1\n", "é" * 128: "x"}),
    "a path longer than PATH_MAX": zip_with(
        {"app.py": "x = 1\n", "/".join(["d" * 200] * 21) + "/f": "x"}),
    "a file beneath a symlink": zip_with({"app.py": "x = 1\n", "lib/x.py": "x"},
                                         {"lib": "/usr/lib"}),
    "a link target longer than PATH_MAX": zip_with({"app.py": "x = 1\n"},
                                                   {"long": "a/" * 2100}),
}


@pytest.mark.parametrize("what", list(UNPACKABLE))
def test_a_package_that_cannot_be_unpacked_is_refused_on_upload(lam: Any, what: str) -> None:
    name = "unpackable-" + uuid.uuid4().hex[:8]
    err = error_of(lam.create_function, FunctionName=name, Runtime="python3.12", Role=ROLE,
                   Handler="app.handler", Code={"ZipFile": UNPACKABLE[what]})
    assert err["Code"] == "InvalidParameterValueException", err
    assert err["Message"].startswith("Could not unzip uploaded file."), err
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        lam.get_function(FunctionName=name)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # The same package as an update is refused too, and the function keeps its code.
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE,
                        Handler="app.handler", Code={"ZipFile": python_zip()})
    before = lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
    err = error_of(lam.update_function_code, FunctionName=name,
                   ZipFile=UNPACKABLE[what])
    assert err["Code"] == "InvalidParameterValueException", err
    assert lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"] == before
    resp, body = invoke(lam, name)
    assert resp["StatusCode"] == 200 and body == {"ok": True}
