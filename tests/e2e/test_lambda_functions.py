"""Lambda functions end to end: create, read, list, update, delete, tags, concurrency, account
settings and the code download, through boto3 and the AWS CLI against a real `berth server`."""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from botocore.exceptions import ClientError

from berth_process import BerthProcess
from lambda_packages import ROLE, create_python, python_zip, zip_of

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


@pytest.fixture(scope="module")
def lam(berth: BerthProcess) -> Any:
    return berth.client("lambda")


def error_of(call: Callable[[], Any]) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call()
    resp = info.value.response
    return (resp["Error"]["Code"], resp["Error"]["Message"],
            resp["ResponseMetadata"]["HTTPStatusCode"])


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_create_reports_pending_then_active(lam: Any) -> None:
    code = python_zip()
    created = create_python(lam, "hello", Description="says hi", MemorySize=256, Timeout=30,
                            Environment={"Variables": {"GREETING": "hi"}},
                            EphemeralStorage={"Size": 1024}, Architectures=["arm64"],
                            Code={"ZipFile": code})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating")
    assert created["FunctionArn"] == ARN + "hello"
    assert (created["Version"], created["PackageType"]) == ("$LATEST", "Zip")
    assert created["CodeSha256"] == b64sha(code) and created["CodeSize"] == len(code)
    lam.get_waiter("function_active_v2").wait(FunctionName="hello",
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    got = lam.get_function(FunctionName="hello")
    config = got["Configuration"]
    assert (config["State"], config["LastUpdateStatus"]) == ("Active", "Successful")
    assert config["RevisionId"] == created["RevisionId"]
    assert (config["MemorySize"], config["Timeout"], config["Description"]) == (256, 30,
                                                                                 "says hi")
    assert config["Environment"]["Variables"] == {"GREETING": "hi"}
    assert config["EphemeralStorage"] == {"Size": 1024}
    assert config["Architectures"] == ["arm64"] and config["Role"] == ROLE
    assert got["Code"]["RepositoryType"] == "S3"
    assert "Tags" not in got and "Concurrency" not in got
    plain = lam.get_function_configuration(FunctionName="hello")
    plain.pop("ResponseMetadata")
    assert plain == config
    by_arn = lam.get_function_configuration(FunctionName=ARN + "hello")
    by_partial = lam.get_function_configuration(FunctionName="000000000000:function:hello")
    assert by_arn["RevisionId"] == by_partial["RevisionId"] == config["RevisionId"]
    defaults = create_python(lam, "defaults")
    assert (defaults["MemorySize"], defaults["Timeout"], defaults["EphemeralStorage"],
            defaults["Architectures"]) == (128, 3, {"Size": 512}, ["x86_64"])


def test_code_location_downloads_the_zip(berth: BerthProcess, lam: Any) -> None:
    code = zip_of({"bootstrap": "#!/bin/sh\n", "lib/x.txt": "x" * 5000},
                  {"bootstrap": 0o100755})
    lam.create_function(FunctionName="download-me", Runtime="provided.al2023", Role=ROLE,
                        Code={"ZipFile": code})
    location = lam.get_function(FunctionName="download-me")["Code"]["Location"]
    assert location.startswith(berth.endpoint + "/_berth/lambda/code/")
    body = httpx.get(location, timeout=10)     # unsigned, like a presigned S3 URL
    assert body.status_code == 200, body.text
    assert hashlib.sha256(body.content).digest() == base64.b64decode(b64sha(code))
    tampered = location[:-4] + ("0000" if not location.endswith("0000") else "1111")
    assert httpx.get(tampered, timeout=10).status_code == 403
    assert httpx.get(berth.endpoint + "/_berth/lambda/code/nothing",
                     timeout=10).status_code == 403


def test_create_with_the_aws_cli(berth: BerthProcess, tmp_path: Path) -> None:
    package = tmp_path / "fn.zip"
    package.write_bytes(python_zip())
    out = berth.aws_cli("lambda", "create-function", "--function-name", "from-cli",
                        "--runtime", "nodejs20.x", "--handler", "index.handler",
                        "--role", ROLE, "--zip-file", f"fileb://{package}",
                        "--environment", "Variables={STAGE=test}", "--tags", "team=core")
    created = json.loads(out.stdout)
    assert created["FunctionName"] == "from-cli" and created["State"] == "Pending"
    assert created["CodeSha256"] == b64sha(package.read_bytes())
    berth.aws_cli("lambda", "wait", "function-active-v2", "--function-name", "from-cli")
    got = json.loads(berth.aws_cli("lambda", "get-function", "--function-name",
                                   "from-cli").stdout)
    assert got["Configuration"]["Environment"]["Variables"] == {"STAGE": "test"}
    assert got["Tags"] == {"team": "core"}
    failed = berth.aws_cli("lambda", "get-function", "--function-name", "missing",
                           check=False)
    assert failed.returncode != 0 and "ResourceNotFoundException" in failed.stderr
    berth.aws_cli("lambda", "delete-function", "--function-name", "from-cli")


BAD_CREATES: list[tuple[dict[str, Any], str, str, int]] = [
    ({"Runtime": "java21"}, "InvalidParameterValueException",
     "The runtime parameter of java21 is not supported", 400),
    ({"Runtime": "python3.7"}, "InvalidParameterValueException",
     "The runtime parameter of python3.7 is no longer supported", 400),
    ({"Handler": None}, "InvalidParameterValueException",
     "Runtime and Handler are mandatory parameters", 400),
    ({"MemorySize": 10241}, "ValidationException",
     "Member must have value less than or equal to 10240", 400),
    ({"Timeout": 901}, "ValidationException",
     "Member must have value less than or equal to 900", 400),
    ({"EphemeralStorage": {"Size": 20000}}, "ValidationException",
     "less than or equal to 10240", 400),
    ({"Environment": {"Variables": {"AWS_REGION": "x"}}}, "InvalidParameterValueException",
     "Reserved keys used in this request: AWS_REGION", 400),
    ({"Environment": {"Variables": {"BIG": "v" * 4100}}}, "InvalidParameterValueException",
     "exceeded the 4KB limit", 400),
    ({"Code": {"ZipFile": b"this is not a zip"}}, "InvalidParameterValueException",
     "Could not unzip uploaded file. Please check your file, then try to upload again.", 400),
    ({"Code": {"S3Bucket": "bucket", "S3Key": "key.zip"}}, "InvalidParameterValueException",
     "upload the package as ZipFile", 400),
    ({"PackageType": "Image", "Code": {"ImageUri": "repo/image:1"}},
     "InvalidParameterValueException", "zip packages only", 400),
    ({"Role": "not-a-role"}, "ValidationException", "at 'role' failed to satisfy", 400),
]


@pytest.mark.parametrize("change,code,message,status", BAD_CREATES,
                         ids=[f"{c}-{i}" for i, (_, c, _m, _s) in enumerate(BAD_CREATES)])
def test_create_refusals(lam: Any, change: dict[str, Any], code: str, message: str,
                         status: int) -> None:
    kw: dict[str, Any] = {"Runtime": "python3.12", "Handler": "app.handler", "Role": ROLE,
                          "Code": {"ZipFile": python_zip()}, **change}
    kw = {k: v for k, v in kw.items() if v is not None}
    got = error_of(lambda: lam.create_function(FunctionName="refused", **kw))
    assert got[0] == code and message in got[1] and got[2] == status, got
    assert error_of(lambda: lam.get_function(FunctionName="refused"))[0] == \
        "ResourceNotFoundException"


def test_duplicate_and_missing_functions(lam: Any) -> None:
    create_python(lam, "twice")
    assert error_of(lambda: create_python(lam, "twice")) == (
        "ResourceConflictException", "Function already exist: twice", 409)
    for call in (lambda: lam.get_function(FunctionName="ghost"),
                 lambda: lam.get_function_configuration(FunctionName="ghost"),
                 lambda: lam.update_function_code(FunctionName="ghost",
                                                  ZipFile=python_zip()),
                 lambda: lam.update_function_configuration(FunctionName="ghost", Timeout=5),
                 lambda: lam.delete_function(FunctionName="ghost")):
        assert error_of(call) == ("ResourceNotFoundException",
                                  f"Function not found: {ARN}ghost", 404)
    assert error_of(lambda: lam.get_function(FunctionName="twice", Qualifier="9"))[1] == \
        f"Function not found: {ARN}twice:9"


def test_size_limits(lam: Any) -> None:
    big = zip_of({"blob.bin": os.urandom(52_428_800 + 1024)})
    code, message, status = error_of(lambda: create_python(lam, "too-big",
                                                           Code={"ZipFile": big}))
    assert (code, status) == ("RequestEntityTooLargeException", 413)
    assert "Request must be smaller than 69905067 bytes" in message
    # 251 MB of zeros compresses to well under a megabyte but unzips past the quota.
    wide = zip_of({"zeros.bin": bytes(251 * 1024 * 1024)})
    assert len(wide) < 1024 * 1024
    assert error_of(lambda: create_python(lam, "too-wide", Code={"ZipFile": wide})) == (
        "InvalidParameterValueException", "Unzipped size must be smaller than 262144000 bytes",
        400)


def test_list_functions_pages(lam: Any) -> None:
    names = [f"page-{i:02d}" for i in range(7)]
    for name in names:
        create_python(lam, name)
    lam.publish_version(FunctionName="page-03")
    seen: list[str] = []
    marker = None
    for _ in range(20):
        kw = {"Marker": marker} if marker else {}
        resp = lam.list_functions(MaxItems=3, **kw)
        assert len(resp["Functions"]) <= 3
        seen += [f["FunctionName"] for f in resp["Functions"]]
        marker = resp.get("NextMarker")
        if not marker:
            break
    assert [s for s in seen if s.startswith("page-")] == names
    assert len(seen) == len(set(seen))
    listed = lam.list_functions()["Functions"]
    assert all(f["Version"] == "$LATEST" for f in listed)
    assert not any("State" in f or "LastUpdateStatus" in f for f in listed)   # as AWS
    everything = [(f["FunctionName"], f["Version"])
                  for page in lam.get_paginator("list_functions").paginate(
                      FunctionVersion="ALL", PaginationConfig={"PageSize": 4})
                  for f in page["Functions"]]
    assert ("page-03", "$LATEST") in everything and ("page-03", "1") in everything
    assert everything.index(("page-03", "$LATEST")) + 1 == everything.index(("page-03", "1"))
    assert error_of(lambda: lam.list_functions(Marker="garbage!"))[0] == \
        "InvalidParameterValueException"


def test_update_code_and_configuration(lam: Any) -> None:
    first = create_python(lam, "changing", Environment={"Variables": {"KEY_A": "1"}})
    new_code = python_zip("def handler(e, c):\n    return 2\n")
    updated = lam.update_function_code(FunctionName="changing", ZipFile=new_code)
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["CodeSha256"] == b64sha(new_code)
    assert updated["RevisionId"] != first["RevisionId"]
    lam.get_waiter("function_updated_v2").wait(FunctionName="changing",
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    got = lam.get_function_configuration(FunctionName="changing")
    assert (got["LastUpdateStatus"], got["CodeSha256"]) == ("Successful", b64sha(new_code))
    assert got["Environment"]["Variables"] == {"KEY_A": "1"}     # code updates keep config
    # A stale RevisionId is refused; the current one is accepted.
    assert error_of(lambda: lam.update_function_configuration(
        FunctionName="changing", Timeout=10, RevisionId=first["RevisionId"]))[0] == \
        "PreconditionFailedException"
    conf = lam.update_function_configuration(
        FunctionName="changing", Timeout=10, MemorySize=512, Handler="app.other",
        Environment={"Variables": {"KEY_B": "2"}}, RevisionId=got["RevisionId"])
    assert conf["LastUpdateStatus"] == "InProgress"
    assert (conf["Timeout"], conf["MemorySize"], conf["Handler"]) == (10, 512, "app.other")
    assert conf["Environment"]["Variables"] == {"KEY_B": "2"}     # replaced, not merged
    assert conf["CodeSha256"] == b64sha(new_code) and conf["RevisionId"] != got["RevisionId"]
    assert error_of(lambda: lam.update_function_code(
        FunctionName="changing", ZipFile=new_code, RevisionId=first["RevisionId"]))[0] == \
        "PreconditionFailedException"
    assert error_of(lambda: lam.update_function_configuration(
        FunctionName="changing", Runtime="ruby3.3"))[0] == "InvalidParameterValueException"
    assert error_of(lambda: lam.update_function_code(
        FunctionName="changing", ZipFile=b"PK\x03\x04 broken"))[1].startswith(
        "Could not unzip uploaded file")
    dry = lam.update_function_code(FunctionName="changing", ZipFile=python_zip("x = 1\n"),
                                   DryRun=True)
    assert dry["CodeSha256"] == b64sha(python_zip("x = 1\n"))
    assert lam.get_function_configuration(
        FunctionName="changing")["CodeSha256"] == b64sha(new_code)
    cleared = lam.update_function_configuration(FunctionName="changing",
                                                Environment={"Variables": {}})
    assert "Environment" not in cleared or not cleared["Environment"].get("Variables")


def test_delete_function_and_versions(lam: Any, berth: BerthProcess) -> None:
    create_python(lam, "doomed", Publish=True,
                  Code={"ZipFile": python_zip("# only doomed:1 has this code\n")})
    code_dir = berth.data_dir / "lambda" / "code"
    sha_hex = base64.b64decode(lam.get_function_configuration(
        FunctionName="doomed")["CodeSha256"]).hex()
    lam.update_function_code(FunctionName="doomed", ZipFile=python_zip("y = 2\n"))
    lam.publish_version(FunctionName="doomed")
    assert error_of(lambda: lam.delete_function(FunctionName="doomed",
                                                Qualifier="$LATEST"))[0] == \
        "InvalidParameterValueException"
    resp = lam.delete_function(FunctionName="doomed", Qualifier="1")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    versions = [v["Version"] for v in lam.list_versions_by_function(
        FunctionName="doomed")["Versions"]]
    assert versions == ["$LATEST", "2"]
    # Version 1 held the only reference to the first zip: it is gone from disk.
    assert not (code_dir / f"{sha_hex}.zip").exists()
    assert error_of(lambda: lam.delete_function(FunctionName="doomed", Qualifier="1"))[0] == \
        "ResourceNotFoundException"
    lam.delete_function(FunctionName=ARN + "doomed")
    assert error_of(lambda: lam.get_function(FunctionName="doomed"))[2] == 404
    assert error_of(lambda: lam.delete_function(FunctionName="doomed"))[2] == 404
    # The name is free again, and versions start over.
    again = create_python(lam, "doomed", Publish=True)
    assert again["Version"] == "1"


def test_tags(lam: Any) -> None:
    arn = create_python(lam, "tagged", Tags={"env": "dev"})["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"team": "core", "env": "prod"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"env": "prod", "team": "core"}
    lam.untag_resource(Resource=arn, TagKeys=["env", "absent"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "core"}
    assert lam.get_function(FunctionName="tagged")["Tags"] == {"team": "core"}
    assert error_of(lambda: lam.tag_resource(Resource=arn + ":1", Tags={"a": "b"}))[0] == \
        "InvalidParameterValueException"
    assert error_of(lambda: lam.list_tags(Resource=ARN + "nobody"))[0] == \
        "ResourceNotFoundException"


def test_concurrency_and_account_settings(lam: Any) -> None:
    before = lam.get_account_settings()
    assert before["AccountLimit"]["CodeSizeUnzipped"] == 262144000
    assert before["AccountLimit"]["CodeSizeZipped"] == 52428800
    assert before["AccountLimit"]["ConcurrentExecutions"] == 1000
    create_python(lam, "reserved-a")
    create_python(lam, "reserved-b")
    assert lam.get_function_concurrency(FunctionName="reserved-a").get(
        "ReservedConcurrentExecutions") is None
    assert lam.put_function_concurrency(
        FunctionName="reserved-a", ReservedConcurrentExecutions=500)[
        "ReservedConcurrentExecutions"] == 500
    code, message, _ = error_of(lambda: lam.put_function_concurrency(
        FunctionName="reserved-b", ReservedConcurrentExecutions=401))
    assert code == "InvalidParameterValueException" and "minimum value of [100]" in message
    lam.put_function_concurrency(FunctionName="reserved-b", ReservedConcurrentExecutions=400)
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
    assert settings["AccountUsage"]["FunctionCount"] == before["AccountUsage"][
        "FunctionCount"] + 2
    assert settings["AccountUsage"]["TotalCodeSize"] == before["AccountUsage"][
        "TotalCodeSize"] + 2 * len(python_zip())
    assert lam.get_function(FunctionName="reserved-a")["Concurrency"] == {
        "ReservedConcurrentExecutions": 500}
    # Changing reserved concurrency on the same function replaces its own reservation.
    lam.put_function_concurrency(FunctionName="reserved-a", ReservedConcurrentExecutions=450)
    lam.delete_function_concurrency(FunctionName="reserved-a")
    lam.delete_function_concurrency(FunctionName="reserved-b")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName="reserved-a")
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000
    assert error_of(lambda: lam.put_function_concurrency(
        FunctionName="nobody", ReservedConcurrentExecutions=1))[0] == \
        "ResourceNotFoundException"
