"""STS over the query protocol, and services berth does not serve, as boto3 and the AWS CLI
see them."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import botocore.exceptions
import pytest

from berth_process import BerthProcess

ROLE = "arn:aws:iam::000000000000:role/service-role/app"


@pytest.fixture(scope="module")
def sts(berth: BerthProcess) -> Any:
    return berth.client("sts")


def _client_error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kwargs)
    return err.value.response


def test_the_admin_keys_are_the_admin_user(sts: Any) -> None:
    me = sts.get_caller_identity()
    assert me["Account"] == "000000000000"
    assert me["Arn"] == "arn:aws:iam::000000000000:user/admin"
    assert me["UserId"].startswith("AIDA") and len(me["UserId"]) == 21


def test_aws_cli_get_caller_identity(berth: BerthProcess) -> None:
    out = json.loads(berth.aws_cli("sts", "get-caller-identity").stdout)
    assert out["Arn"] == "arn:aws:iam::000000000000:user/admin"


def test_assume_role_answers_aws_shaped_credentials(sts: Any) -> None:
    out = sts.assume_role(RoleArn=ROLE, RoleSessionName="worker-1", DurationSeconds=900,
                          SourceIdentity="alice")
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["SecretAccessKey"]) == 40
    remaining = (creds["Expiration"] - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 890 < remaining <= 900
    assert out["AssumedRoleUser"]["Arn"] == \
        "arn:aws:sts::000000000000:assumed-role/app/worker-1"
    assert out["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")
    assert out["AssumedRoleUser"]["AssumedRoleId"].endswith(":worker-1")
    assert out["SourceIdentity"] == "alice"


def test_assume_role_input_is_checked_with_aws_words(sts: Any) -> None:
    err = _client_error(sts.assume_role, RoleArn=ROLE, RoleSessionName="s p a c e")
    assert err["Error"]["Code"] == "ValidationError"
    assert "'roleSessionName' failed to satisfy constraint" in err["Error"]["Message"]
    err = _client_error(sts.assume_role, RoleArn="arn:aws:iam::000000000000:user/bob",
                        RoleSessionName="s1")
    assert err["Error"]["Code"] == "ValidationError"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unimplemented_sts_calls_and_unsigned_ones_answer_xml_errors(sts: Any) -> None:
    err = _client_error(sts.get_access_key_info, AccessKeyId="AKIATESTBERTH0000001")
    assert err["Error"]["Code"] == "InvalidAction"
    assert "GetAccessKeyInfo" in err["Error"]["Message"]
    err = _client_error(sts.assume_role_with_web_identity, RoleArn=ROLE,
                        RoleSessionName="s1", WebIdentityToken="x" * 20)
    assert err["Error"]["Code"] == "MissingAuthenticationToken"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize("service,call,name", [
    ("iam", lambda c: c.list_roles(), "IAM"),
    ("sns", lambda c: c.list_topics(), "SNS"),
    ("s3", lambda c: c.list_buckets(), "S3"),
    ("s3", lambda c: c.put_object(Bucket="b", Key="k/x.txt", Body=b"data"), "S3"),
    ("sqs", lambda c: c.list_queues(), "SQS"),
])
def test_services_berth_does_not_serve_say_so_in_their_own_protocol(
        berth: BerthProcess, service: str, call: Any, name: str) -> None:
    client = berth.client(service)
    err = _client_error(lambda: call(client))
    assert err["Error"]["Code"] == "NotImplemented"
    assert err["Error"]["Message"].startswith(f"berth does not serve {name}.")
    assert "STS" in err["Error"]["Message"] and "Lambda" in err["Error"]["Message"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_aws_iam_list_roles_prints_a_clear_message(berth: BerthProcess) -> None:
    out = berth.aws_cli("iam", "list-roles", check=False)
    assert out.returncode != 0
    assert "An error occurred (NotImplemented) when calling the ListRoles operation: " \
           "berth does not serve IAM." in out.stderr


def _client_with(berth: BerthProcess, service: str, creds: dict[str, Any]) -> Any:
    return berth.client(service, aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def test_role_credentials_sign_as_the_assumed_role(berth: BerthProcess, sts: Any) -> None:
    creds = sts.assume_role(RoleArn=ROLE, RoleSessionName="as-role")["Credentials"]
    me = _client_with(berth, "sts", creds).get_caller_identity()
    assert me["Arn"] == "arn:aws:sts::000000000000:assumed-role/app/as-role"
    _client_with(berth, "logs", creds).describe_log_groups()
    # Role chaining: one hour at most, and no GetSessionToken from session credentials.
    chained = _client_with(berth, "sts", creds)
    err = _client_error(chained.assume_role, RoleArn=ROLE, RoleSessionName="chained",
                        DurationSeconds=7200)
    assert err["Error"]["Message"] == ("The requested DurationSeconds exceeds the 1 hour "
                                       "session limit for roles assumed by role chaining.")
    err = _client_error(chained.get_session_token)
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == \
        ("AccessDenied", 403)
    token = sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert _client_with(berth, "sts", token).get_caller_identity()["Arn"] == \
        "arn:aws:iam::000000000000:user/admin"


def _forged(token: str) -> str:
    """The token with its sealed principal changed and its seal kept."""
    import base64
    body, _, tag = token.partition(".")
    sealed = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    sealed["p"] = sealed["p"].replace("/app/", "/admin-role/")
    text = base64.urlsafe_b64encode(json.dumps(sealed).encode()).decode().rstrip("=")
    return f"{text}.{tag}"


def test_forged_swapped_and_missing_tokens_are_refused_in_each_protocol(
        berth: BerthProcess, sts: Any) -> None:
    a = sts.assume_role(RoleArn=ROLE, RoleSessionName="sa")["Credentials"]
    b = sts.assume_role(RoleArn=ROLE, RoleSessionName="sb")["Credentials"]
    invalid = "The security token included in the request is invalid."
    for token in (_forged(a["SessionToken"]), b["SessionToken"], "x" * 300):
        bad = {**a, "SessionToken": token}
        err = _client_error(_client_with(berth, "sts", bad).get_caller_identity)
        assert (err["Error"]["Code"], err["Error"]["Message"]) == ("InvalidClientTokenId",
                                                                   invalid)
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
        err = _client_error(_client_with(berth, "logs", bad).describe_log_groups)
        assert (err["Error"]["Code"], err["Error"]["Message"]) == \
            ("UnrecognizedClientException", invalid)
        err = _client_error(_client_with(berth, "lambda", bad).list_functions)
        assert err["Error"]["Code"] == "UnrecognizedClientException"
    no_token = berth.client("logs", aws_access_key_id=a["AccessKeyId"],
                            aws_secret_access_key=a["SecretAccessKey"])
    assert _client_error(no_token.describe_log_groups)["Error"]["Code"] == \
        "UnrecognizedClientException"


def test_expired_tokens_are_refused_in_each_protocol(berth: BerthProcess) -> None:
    import time

    from berth.state.store import Store
    from berth.sts.principals import assumed_role, parse_role
    from berth.sts.sessions import Sessions
    # Sealed with the server's own key (from its database), two hours ago, for 15 minutes.
    store = Store(f"sqlite:///{berth.data_dir / 'berth.db'}")
    try:
        issued = Sessions(store, clock=lambda: time.time() - 7200).issue(
            assumed_role(parse_role(ROLE), "old"), 900)
    finally:
        store.dispose()
    creds = {"AccessKeyId": issued.access_key_id, "SecretAccessKey": issued.secret_access_key,
             "SessionToken": issued.session_token}
    expired = "The security token included in the request is expired"
    err = _client_error(_client_with(berth, "sts", creds).get_caller_identity)
    assert (err["Error"]["Code"], err["Error"]["Message"]) == ("ExpiredToken", expired)
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    err = _client_error(_client_with(berth, "logs", creds).describe_log_groups)
    assert (err["Error"]["Code"], err["Error"]["Message"]) == ("ExpiredTokenException", expired)
    err = _client_error(_client_with(berth, "ecs", creds).list_clusters)
    assert err["Error"]["Code"] == "ExpiredTokenException"


def test_presigned_urls_carry_the_session_token(berth: BerthProcess, sts: Any) -> None:
    creds = sts.assume_role(RoleArn=ROLE, RoleSessionName="presign")["Credentials"]
    url = _client_with(berth, "lambda", creds).generate_presigned_url(
        "list_functions", Params={}, ExpiresIn=60)
    assert "X-Amz-Security-Token=" in url
    with berth.http() as http:
        assert http.get(url).status_code == 200
        forged = url.replace("X-Amz-Security-Token=", "X-Amz-Security-Token=x")
        answer = http.get(forged)
    assert answer.status_code == 403
    assert answer.headers["x-amzn-errortype"] == "UnrecognizedClientException"
