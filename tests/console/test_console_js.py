"""The console's JavaScript under Node's test runner, judged by the Python references:
SigV4 signatures against botocore's signer (and berth's verifier), ZIP archives against zipfile.

One `node --test` run per module: this side writes the cases and the archives Python made into
a folder, the JS tests check against them and write back what they produced.
"""
from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from berth.api import sigv4

HERE = Path(__file__).parent
NOW = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
KEY, SECRET = "AKIACONSOLETEST00001", "console/Secret+key0000000000000000000000"
ARN = "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ahello"

# name, method, url, headers, body, region, service, session token
SIGV4_CASES: list[tuple[str, str, str, dict[str, str], bytes, str, str, str | None]] = [
    ("list functions", "GET", "http://127.0.0.1:4750/2015-03-31/functions/?Marker=abc&MaxItems=50",
     {}, b"", "us-east-1", "lambda", None),
    ("create function", "POST", "http://127.0.0.1:4750/2015-03-31/functions",
     {"Content-Type": "application/json"}, b'{"FunctionName": "f", "Code": {"ZipFile": "UEsF"}}',
     "us-east-1", "lambda", None),
    ("invoke by ARN with tail", "POST",
     f"http://127.0.0.1:4750/2015-03-31/functions/{ARN}/invocations",
     {"X-Amz-Invocation-Type": "RequestResponse", "X-Amz-Log-Type": "Tail"},
     '{"name": "héllo ✓"}'.encode(), "eu-west-1", "lambda", None),
    ("filter log events", "POST", "http://localhost:8080/",
     {"Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": "Logs_20140328.FilterLogEvents"},
     b'{"logGroupName": "/aws/lambda/hello"}', "ap-south-1", "logs", None),
    ("sorted query, spaced header, unsigned user-agent", "GET",
     "http://127.0.0.1:4750/2015-03-31/functions/f/aliases?z=1&a=2&a=1&Marker=a%2Fb%3D",
     {"X-Custom": "  spaced    value ", "User-Agent": "berth-console"}, b"", "us-east-1",
     "lambda", None),
    ("dot segments, default port", "PUT", "http://localhost/a/b%20c/./d/../e",
     {"Content-Type": "application/json"}, b"{}", "us-east-1", "lambda", None),
    ("session token", "GET", "http://127.0.0.1:4750/2015-03-31/functions/f", {}, b"",
     "us-east-1", "lambda", "FwoGZXIvYXdzEXAMPLE//token+="),
]

# archive → files (name, content, unix mode); written as zipfile writes them
PY_FILES = [("app.py", b"import helper\n\ndef handler(e, c):\n    return helper.VALUE\n", 0o644),
            ("helper.py", b"VALUE = 42\n" * 200, 0o600),
            ("pkg/run.sh", b"#!/bin/sh\nexit 0\n", 0o755),
            ("data/ünïcode.bin", bytes(range(256)) * 4, 0o644)]


def botocore_signature(method: str, url: str, headers: dict[str, str], body: bytes, region: str,
                       service: str, token: str | None) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=NOW.replace(tzinfo=None)):
        SigV4Auth(Credentials(KEY, SECRET, token), service, region).add_auth(request)
    return {"Authorization": request.headers["Authorization"],
            "X-Amz-Date": request.headers["X-Amz-Date"]}


def python_zip(path: Path, compression: int, streamed: bool = False) -> None:
    class Unseekable(io.RawIOBase):
        """A sink zipfile cannot seek in, so it writes data descriptors after each entry."""
        def __init__(self, target: io.BufferedWriter) -> None:
            self.target = target

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            return self.target.write(data)

    with open(path, "wb") as raw:
        sink: Any = Unseekable(raw) if streamed else raw
        with zipfile.ZipFile(sink, "w", compression) as archive:
            archive.writestr("pkg/", b"")              # a directory entry, left out on unzip
            for name, content, mode in PY_FILES:
                info = zipfile.ZipInfo(name, (2026, 1, 2, 3, 4, 6))
                info.compress_type = compression
                info.external_attr = (stat.S_IFREG | mode) << 16
                archive.writestr(info, content)


@pytest.fixture(scope="module")
def node_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed", pytrace=False)
    folder = tmp_path_factory.mktemp("console-js")
    cases = []
    for name, method, url, headers, body, region, service, token in SIGV4_CASES:
        cases.append({"name": name, "method": method, "url": url, "headers": headers,
                      "body_b64": base64.b64encode(body).decode(), "region": region,
                      "service": service, "token": token, "access_key": KEY,
                      "secret_key": SECRET, "now": NOW.isoformat(),
                      "expected": botocore_signature(method, url, headers, body, region,
                                                     service, token)})
    (folder / "sigv4-cases.json").write_text(json.dumps(cases))
    expected = {}
    for archive, compression, streamed in [("deflated.zip", zipfile.ZIP_DEFLATED, False),
                                           ("stored.zip", zipfile.ZIP_STORED, False),
                                           ("streamed.zip", zipfile.ZIP_DEFLATED, True)]:
        python_zip(folder / archive, compression, streamed)
        expected[archive] = [{"name": n, "b64": base64.b64encode(c).decode(), "mode": m}
                             for n, c, m in PY_FILES]
    (folder / "python-zips.json").write_text(json.dumps(expected))
    run = subprocess.run(
        [node, "--test", "--test-reporter=tap", str(HERE / "sigv4.test.mjs"),
         str(HERE / "zip.test.mjs")],
        env={"PATH": "/usr/bin:/bin", "CONSOLE_FIXTURES": str(folder)},
        capture_output=True, text=True, timeout=60, check=False)
    return run, folder


def test_node_tests_pass(node_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    run, _ = node_run
    assert run.returncode == 0, run.stdout + run.stderr
    counts = dict(re.findall(r"^# (pass|fail|skipped) (\d+)$", run.stdout, re.MULTILINE))
    assert counts == {"pass": "11", "fail": "0", "skipped": "0"}, run.stdout


def test_streamed_fixture_really_has_data_descriptors(
        node_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Guards the unzip test: the streamed archive must carry zero sizes in its local headers."""
    _, folder = node_run
    with zipfile.ZipFile(folder / "streamed.zip") as archive:
        assert all(info.flag_bits & 0x08 for info in archive.infolist())


def test_js_signed_requests_pass_berths_verifier(
        node_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, folder = node_run
    signed = {s["name"]: s["headers"] for s in json.loads((folder / "sigv4-signed.json").read_text())}
    assert len(signed) == len(SIGV4_CASES)
    for name, method, url, _, body, region, service, _ in SIGV4_CASES:
        parts = urlsplit(url)
        headers = {k.lower(): v for k, v in signed[name].items()}
        headers["host"] = parts.netloc
        identity = sigv4.verify(method, parts.path, parts.query, headers, body,
                                {KEY: SECRET}.get, now=NOW)
        assert (identity.access_key, identity.region, identity.service) == (KEY, region, service)


def test_js_zip_opens_with_zipfile(node_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, folder = node_run
    with zipfile.ZipFile(folder / "js.zip") as archive:
        assert archive.testzip() is None                       # every CRC checks out
        infos = {i.filename: i for i in archive.infolist()}
        assert list(infos) == ["app.py", "lib/ünïcode ✓.txt", "bin/tool", "empty", "bytes.bin"]
        assert archive.read("app.py") == b'def handler(event, context):\n    return {"ok": True}\n'
        assert archive.read("lib/ünïcode ✓.txt") == "héllo\n".encode()
        assert archive.read("empty") == b""
        assert archive.read("bytes.bin") == bytes(range(256))
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos.values())
        assert infos["bin/tool"].external_attr >> 16 == stat.S_IFREG | 0o755
        assert infos["app.py"].external_attr >> 16 == stat.S_IFREG | 0o644
        assert infos["app.py"].date_time == (2026, 1, 2, 3, 4, 6)
