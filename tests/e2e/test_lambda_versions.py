"""Lambda versions, aliases, asynchronous-invocation settings and `resolve` (the record the
function worker runs), against a real `berth server`."""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from berth.api.errors import ServiceError
from berth.lambda_.event_config import lookup
from berth.lambda_.resolve import resolve
from berth.state.store import Store
from berth_process import BerthProcess
from lambda_packages import create_python, python_zip

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def lam(berth: BerthProcess) -> Any:
    return berth.client("lambda")


@pytest.fixture(scope="module")
def store(berth: BerthProcess) -> Any:
    """The server's own database, read from this process as the worker would."""
    db = Store(f"sqlite:///{berth.data_dir / 'berth.db'}")
    yield db
    db.dispose()


def error_of(call: Callable[[], Any]) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call()
    resp = info.value.response
    return (resp["Error"]["Code"], resp["Error"]["Message"],
            resp["ResponseMetadata"]["HTTPStatusCode"])


def test_publish_only_when_something_changed(lam: Any) -> None:
    latest = create_python(lam, "pub", Description="first")
    v1 = lam.publish_version(FunctionName="pub")
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (v1["Version"], v1["FunctionArn"]) == ("1", ARN + "pub:1")
    assert (v1["CodeSha256"], v1["Description"]) == (latest["CodeSha256"], "first")
    lam.get_waiter("published_version_active").wait(
        FunctionName="pub", Qualifier="1", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    # Nothing changed since version 1: AWS answers with version 1 again.
    again = lam.publish_version(FunctionName="pub", Description="ignored")
    assert (again["Version"], again["RevisionId"]) == ("1", v1["RevisionId"])
    lam.update_function_configuration(FunctionName="pub", MemorySize=1024)
    v2 = lam.publish_version(FunctionName="pub", Description="bigger")
    assert (v2["Version"], v2["MemorySize"], v2["Description"]) == ("2", 1024, "bigger")
    # Versions are snapshots: later changes to $LATEST leave them alone.
    lam.update_function_code(FunctionName="pub", ZipFile=python_zip("z = 3\n"))
    one = lam.get_function_configuration(FunctionName="pub", Qualifier="1")
    assert (one["MemorySize"], one["CodeSha256"]) == (128, latest["CodeSha256"])
    assert one["FunctionArn"] == ARN + "pub:1" and one["Version"] == "1"
    current = lam.get_function_configuration(FunctionName="pub")
    assert error_of(lambda: lam.publish_version(
        FunctionName="pub", CodeSha256=latest["CodeSha256"]))[0] == \
        "InvalidParameterValueException"
    assert error_of(lambda: lam.publish_version(
        FunctionName="pub", RevisionId=latest["RevisionId"]))[0] == \
        "PreconditionFailedException"
    v3 = lam.publish_version(FunctionName="pub", CodeSha256=current["CodeSha256"],
                             RevisionId=current["RevisionId"])
    assert v3["Version"] == "3"
    by_publish = lam.update_function_code(FunctionName="pub", ZipFile=python_zip("z = 4\n"),
                                          Publish=True)
    assert by_publish["Version"] == "4"
    assert error_of(lambda: lam.publish_version(FunctionName="nobody"))[2] == 404


def test_list_versions_pages(lam: Any) -> None:
    create_python(lam, "many")
    for i in range(11):
        lam.update_function_configuration(FunctionName="many", Timeout=i + 1)
        assert lam.publish_version(FunctionName="many")["Version"] == str(i + 1)
    seen, marker = [], None
    for _ in range(20):
        kw = {"Marker": marker} if marker else {}
        resp = lam.list_versions_by_function(FunctionName="many", MaxItems=5, **kw)
        seen += [v["Version"] for v in resp["Versions"]]
        marker = resp.get("NextMarker")
        if not marker:
            break
    assert seen == ["$LATEST"] + [str(i) for i in range(1, 12)]
    assert error_of(lambda: lam.list_versions_by_function(FunctionName="nobody"))[0] == \
        "ResourceNotFoundException"


def test_aliases(lam: Any) -> None:
    create_python(lam, "aliased")
    lam.publish_version(FunctionName="aliased")
    lam.update_function_configuration(FunctionName="aliased", Timeout=9)
    lam.publish_version(FunctionName="aliased")
    live = lam.create_alias(FunctionName="aliased", Name="live", FunctionVersion="1",
                            Description="prod")
    assert live["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (live["AliasArn"], live["FunctionVersion"]) == (ARN + "aliased:live", "1")
    assert error_of(lambda: lam.create_alias(FunctionName="aliased", Name="live",
                                             FunctionVersion="1")) == (
        "ResourceConflictException", f"Alias already exists: {ARN}aliased:live", 409)
    got = lam.get_alias(FunctionName="aliased", Name="live")
    assert (got["Description"], got["RevisionId"]) == ("prod", live["RevisionId"])
    canary = lam.update_alias(FunctionName="aliased", Name="live",
                              RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
                              RevisionId=live["RevisionId"])
    assert canary["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    assert canary["RevisionId"] != live["RevisionId"] and canary["Description"] == "prod"
    assert error_of(lambda: lam.update_alias(FunctionName="aliased", Name="live",
                                             FunctionVersion="2",
                                             RevisionId=live["RevisionId"]))[0] == \
        "PreconditionFailedException"
    # Aliases resolve for reads, and a version in use by an alias cannot be deleted.
    assert lam.get_function_configuration(FunctionName="aliased",
                                          Qualifier="live")["Version"] == "1"
    assert error_of(lambda: lam.delete_function(FunctionName="aliased", Qualifier="2")) == (
        "ResourceConflictException",
        "Unable to delete version because the following aliases reference it: [live]", 409)
    lam.create_alias(FunctionName="aliased", Name="dev", FunctionVersion="$LATEST")
    names = [a["Name"] for a in lam.list_aliases(FunctionName="aliased")["Aliases"]]
    assert names == ["dev", "live"]
    paged = [a["Name"] for page in lam.get_paginator("list_aliases").paginate(
        FunctionName="aliased", PaginationConfig={"PageSize": 1}) for a in page["Aliases"]]
    assert paged == ["dev", "live"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName="aliased",
                                                FunctionVersion="1")["Aliases"]] == ["live"]
    lam.delete_alias(FunctionName="aliased", Name="dev")
    assert error_of(lambda: lam.get_alias(FunctionName="aliased", Name="dev")) == (
        "ResourceNotFoundException", f"Cannot find alias arn: {ARN}aliased:dev", 404)
    assert error_of(lambda: lam.delete_alias(FunctionName="aliased", Name="dev"))[2] == 404
    assert error_of(lambda: lam.create_alias(FunctionName="aliased", Name="v9",
                                             FunctionVersion="9"))[0] == \
        "ResourceNotFoundException"


@pytest.mark.parametrize("version,weights,code,fragment", [
    ("$LATEST", {"1": 0.5}, "InvalidParameterValueException", "$LATEST is not supported"),
    ("1", {"1": 0.5}, "InvalidParameterValueException", "same version"),
    ("1", {"2": 0.5, "3": 0.2}, "InvalidParameterValueException", "greater than 1"),
    ("1", {"7": 0.5}, "ResourceNotFoundException", "weighted:7"),
    ("1", {"2": 1.5}, "ValidationException", "less than or equal to 1"),
    ("1", {"x": 0.5}, "ValidationException", "regular expression"),
])
def test_weighted_alias_validation(lam: Any, version: str, weights: dict[str, float],
                                   code: str, fragment: str) -> None:
    try:
        create_python(lam, "weighted")
        for timeout in (4, 5, 6):
            lam.update_function_configuration(FunctionName="weighted", Timeout=timeout)
            lam.publish_version(FunctionName="weighted")
    except ClientError:
        pass    # made by an earlier case
    got = error_of(lambda: lam.create_alias(
        FunctionName="weighted", Name="canary", FunctionVersion=version,
        RoutingConfig={"AdditionalVersionWeights": weights}))
    assert got[0] == code and fragment in got[1], got


def test_resolve_names_versions_and_aliases(lam: Any, store: Store) -> None:
    create_python(lam, "target", Environment={"Variables": {"MODE": "one"}})
    v1 = lam.publish_version(FunctionName="target")
    lam.update_function_configuration(FunctionName="target", MemorySize=256,
                                      Environment={"Variables": {"MODE": "two"}})
    v2 = lam.publish_version(FunctionName="target")
    lam.create_alias(FunctionName="target", Name="split", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}})
    lam.put_function_concurrency(FunctionName="target", ReservedConcurrentExecutions=7)

    config, invoked = resolve(store, "us-east-1", ACCOUNT, "target")
    assert (config.version, invoked) == ("$LATEST", ARN + "target")
    assert (config.memory_size, config.environment) == (256, {"MODE": "two"})
    assert (config.runtime, config.handler, config.timeout) == ("python3.12", "app.handler", 3)
    assert config.function_arn == ARN + "target" and config.reserved_concurrency == 7
    assert config.code_sha256 == v2["CodeSha256"] and config.log_group == "/aws/lambda/target"

    one, invoked = resolve(store, "us-east-1", ACCOUNT, ARN + "target:1")
    assert (one.version, one.revision_id, invoked) == ("1", v1["RevisionId"], ARN + "target:1")
    assert one.environment == {"MODE": "one"} and one.memory_size == 128
    same, _ = resolve(store, "us-east-1", ACCOUNT, "000000000000:function:target", "1")
    assert same == one
    latest, invoked = resolve(store, "us-east-1", ACCOUNT, "target", "$LATEST")
    assert invoked == ARN + "target:$LATEST" and latest.sandbox_key[2] == "$LATEST"

    picks = Counter()
    for _ in range(400):
        chosen, invoked = resolve(store, "us-east-1", ACCOUNT, "target:split")
        assert invoked == ARN + "target:split"
        picks[chosen.version] += 1
    assert set(picks) == {"1", "2"} and 60 <= picks["2"] <= 180, picks

    # Every change of code or configuration gives $LATEST a new revision (new sandboxes).
    before = resolve(store, "us-east-1", ACCOUNT, "target")[0].revision_id
    lam.update_function_configuration(FunctionName="target", Timeout=4)
    after = resolve(store, "us-east-1", ACCOUNT, "target")[0]
    lam.update_function_code(FunctionName="target", ZipFile=python_zip("n = 1\n"))
    last = resolve(store, "us-east-1", ACCOUNT, "target")[0]
    assert len({before, after.revision_id, last.revision_id}) == 3
    assert after.timeout == 4 and last.code_sha256 != after.code_sha256

    for name, qualifier, arn in [("nobody", None, ARN + "nobody"),
                                 ("target", "9", ARN + "target:9"),
                                 ("target:ghost", None, ARN + "target:ghost")]:
        with pytest.raises(ServiceError) as err:
            resolve(store, "us-east-1", ACCOUNT, name, qualifier)
        assert (err.value.code, err.value.message) == ("ResourceNotFoundException",
                                                       f"Function not found: {arn}")
    with pytest.raises(ServiceError) as err:
        resolve(store, "us-west-2", ACCOUNT, "target")      # functions are per region
    assert err.value.code == "ResourceNotFoundException"
    with pytest.raises(ServiceError) as err:
        resolve(store, "us-east-1", ACCOUNT, "target:1", "2")
    assert err.value.code == "InvalidParameterValueException"


def test_event_invoke_config(lam: Any, store: Store) -> None:
    create_python(lam, "async-fn")
    create_python(lam, "on-failure")
    lam.publish_version(FunctionName="async-fn")
    lam.create_alias(FunctionName="async-fn", Name="prod", FunctionVersion="1")
    assert error_of(lambda: lam.get_function_event_invoke_config(FunctionName="async-fn")) == (
        "ResourceNotFoundException",
        f"The function {ARN}async-fn:$LATEST doesn't have an EventInvokeConfig", 404)
    put = lam.put_function_event_invoke_config(
        FunctionName="async-fn", MaximumRetryAttempts=1, MaximumEventAgeInSeconds=120,
        DestinationConfig={"OnFailure": {"Destination": ARN + "on-failure"}})
    assert put["FunctionArn"] == ARN + "async-fn:$LATEST"
    assert (put["MaximumRetryAttempts"], put["MaximumEventAgeInSeconds"]) == (1, 120)
    assert put["DestinationConfig"]["OnFailure"] == {"Destination": ARN + "on-failure"}
    updated = lam.update_function_event_invoke_config(
        FunctionName="async-fn", MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": ARN + "on-failure:$LATEST"}})
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (0, 120)
    assert updated["DestinationConfig"] == {
        "OnSuccess": {"Destination": ARN + "on-failure:$LATEST"},
        "OnFailure": {"Destination": ARN + "on-failure"}}
    # Put replaces everything it is not given.
    replaced = lam.put_function_event_invoke_config(FunctionName="async-fn",
                                                    MaximumEventAgeInSeconds=60)
    assert "MaximumRetryAttempts" not in replaced
    assert replaced["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    lam.put_function_event_invoke_config(FunctionName="async-fn", Qualifier="prod",
                                         MaximumRetryAttempts=2)
    listed = lam.list_function_event_invoke_configs(FunctionName="async-fn")
    assert sorted(c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"]) == [
        ARN + "async-fn:$LATEST", ARN + "async-fn:prod"]
    settings = lookup(store, "us-east-1", "async-fn", "prod")
    assert settings.maximum_retry_attempts == 2 and settings.maximum_event_age == 21600
    assert lookup(store, "us-east-1", "async-fn", None).maximum_event_age == 60
    assert lookup(store, "us-east-1", "async-fn", "1").maximum_retry_attempts == 2  # default
    assert error_of(lambda: lam.put_function_event_invoke_config(
        FunctionName="async-fn", MaximumRetryAttempts=3))[0] == "ValidationException"
    assert error_of(lambda: lam.put_function_event_invoke_config(
        FunctionName="async-fn", MaximumEventAgeInSeconds=21601))[0] == "ValidationException"
    assert error_of(lambda: lam.put_function_event_invoke_config(
        FunctionName="async-fn", Qualifier="nope", MaximumRetryAttempts=1))[0] == \
        "ResourceNotFoundException"
    assert error_of(lambda: lam.put_function_event_invoke_config(
        FunctionName="async-fn", DestinationConfig={
            "OnFailure": {"Destination": "arn:aws:dynamodb:us-east-1:000000000000:table/t"}}
    ))[0] == "InvalidParameterValueException"
    assert error_of(lambda: lam.update_function_event_invoke_config(
        FunctionName="on-failure", MaximumRetryAttempts=1))[0] == "ResourceNotFoundException"
    lam.delete_function_event_invoke_config(FunctionName="async-fn", Qualifier="prod")
    assert error_of(lambda: lam.delete_function_event_invoke_config(
        FunctionName="async-fn", Qualifier="prod"))[2] == 404
    # Deleting the alias or the function takes their settings with them.
    lam.delete_function(FunctionName="async-fn")
    assert lookup(store, "us-east-1", "async-fn", None).maximum_event_age == 21600


def test_control_plane_on_postgresql(postgres_url: str, tmp_path: Any) -> None:
    proc = BerthProcess(tmp_path / "data", database_url=postgres_url).start()
    db = Store(postgres_url)
    try:
        pg = proc.client("lambda")
        create_python(pg, "pg-fn", Tags={"db": "pg"}, Environment={"Variables": {"K1": "v"}})
        pg.publish_version(FunctionName="pg-fn")
        pg.update_function_code(FunctionName="pg-fn", ZipFile=python_zip("p = 1\n"),
                                Publish=True)
        pg.create_alias(FunctionName="pg-fn", Name="live", FunctionVersion="1",
                        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
        pg.put_function_concurrency(FunctionName="pg-fn", ReservedConcurrentExecutions=3)
        pg.put_function_event_invoke_config(FunctionName="pg-fn", Qualifier="live",
                                            MaximumRetryAttempts=0)
        assert [v["Version"] for v in pg.list_versions_by_function(
            FunctionName="pg-fn")["Versions"]] == ["$LATEST", "1", "2"]
        assert pg.list_tags(Resource=ARN + "pg-fn")["Tags"] == {"db": "pg"}
        versions = {resolve(db, "us-east-1", ACCOUNT, "pg-fn", "live")[0].version
                    for _ in range(60)}
        assert versions == {"1", "2"}
        config, _ = resolve(db, "us-east-1", ACCOUNT, "pg-fn")
        assert config.reserved_concurrency == 3 and config.environment == {"K1": "v"}
        assert lookup(db, "us-east-1", "pg-fn", "live").maximum_retry_attempts == 0
        # Racing updates: each one either lands or is told to retry; none is lost half-way.
        def bump(i: int) -> str:
            try:
                return proc.client("lambda").update_function_configuration(
                    FunctionName="pg-fn", Timeout=10 + i)["RevisionId"]
            except ClientError as exc:
                return exc.response["Error"]["Code"]
        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(bump, range(12)))
        landed = [o for o in outcomes if o != "ResourceConflictException"]
        assert landed and all(len(o) == 36 for o in landed), outcomes
        final = pg.get_function_configuration(FunctionName="pg-fn")
        assert final["RevisionId"] in landed and 10 <= final["Timeout"] < 22
        pg.delete_function(FunctionName="pg-fn")
        assert error_of(lambda: pg.get_alias(FunctionName="pg-fn", Name="live"))[2] == 404
        assert lookup(db, "us-east-1", "pg-fn", "live").maximum_retry_attempts == 2
    finally:
        db.dispose()
        proc.stop()
