"""Custom runtimes (`provided.al2023`): the official awslambdaric, shipped inside the zip with
its native extension, answers invocations through berth's Runtime API unmodified."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from berth_process import BerthProcess

ROLE = "arn:aws:iam::000000000000:role/lambda"
PYTHON = os.path.realpath(sys.executable)   # the interpreter the wheels are built for

APP = '''
import os
import runtime_client          # awslambdaric's compiled extension, from the zip
COUNT = 0

def handler(event, context):
    global COUNT
    COUNT += 1
    if event.get("fail"):
        raise KeyError("missing thing")
    return {"count": COUNT, "echo": event, "native": runtime_client.__file__,
            "request_id": context.aws_request_id, "function": context.function_name,
            "remaining": context.get_remaining_time_in_millis()}
'''


@pytest.fixture(scope="session")
def ric_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """awslambdaric and its dependencies, installed from PyPI once per test session."""
    target = tmp_path_factory.mktemp("awslambdaric")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--only-binary=:all:", "--target", str(target), "awslambdaric"],
                   check=True, timeout=240)
    return target


def custom_zip(ric_dir: Path, handler: str = "app.handler") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        boot = zipfile.ZipInfo("bootstrap")
        boot.external_attr = 0o755 << 16
        z.writestr(boot, f"#!/bin/sh\nexec {PYTHON} -m awslambdaric {handler}\n")
        z.writestr("app.py", APP)
        for path in ric_dir.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                info = zipfile.ZipInfo(str(path.relative_to(ric_dir)))
                info.external_attr = (path.stat().st_mode & 0o777) << 16
                z.writestr(info, path.read_bytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def lam(berth_up: BerthProcess) -> Any:
    return berth_up.client("lambda")


def create(lam: Any, code: bytes) -> str:
    name = "ric-" + uuid.uuid4().hex[:10]
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE,
                        Handler="unused", Code={"ZipFile": code})
    return name


def call(lam: Any, name: str, event: Any) -> tuple[dict[str, Any], Any]:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return resp, json.loads(resp["Payload"].read())


def test_awslambdaric_answers_invocations(lam: Any, ric_dir: Path) -> None:
    name = create(lam, custom_zip(ric_dir))
    resp, body = call(lam, name, {"hello": "ric"})
    assert "FunctionError" not in resp, body
    assert body["count"] == 1 and body["echo"] == {"hello": "ric"}
    assert body["native"].endswith(".so")        # the compiled extension from the zip
    assert body["request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert body["function"] == name and 0 < body["remaining"] <= 3000
    assert call(lam, name, {})[1]["count"] == 2  # warm reuse through the real client
    resp, body = call(lam, name, {"fail": True})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "KeyError" and body["errorMessage"] == "'missing thing'"
    assert call(lam, name, {})[1]["count"] == 4


def test_awslambdaric_init_error(lam: Any, ric_dir: Path) -> None:
    name = create(lam, custom_zip(ric_dir, handler="nosuchmodule.handler"))
    resp, body = call(lam, name, {})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"] == ("Unable to import module 'nosuchmodule': No module named "
                                    "'nosuchmodule'")


def test_missing_bootstrap(lam: Any) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", APP)
    name = create(lam, buf.getvalue())
    resp, body = call(lam, name, {})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert "Couldn't find valid bootstrap(s)" in body["errorMessage"]
