"""Which protocol a request to a service berth does not serve is answered in."""
from __future__ import annotations

from berth.api import unserved


def test_the_protocol_is_read_off_the_request_then_the_model() -> None:
    json_req = {"x-amz-target": "AmazonSQS.ListQueues"}
    form = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert unserved.request_protocol(json_req, "", "sqs") == "json"
    assert unserved.request_protocol(form, "", "iam") == "query"
    assert unserved.request_protocol({}, "Action=ListTopics&Version=2010-03-31", "sns") == \
        "query"
    assert unserved.request_protocol({}, "", "s3") == "rest-xml"
    assert unserved.request_protocol({}, "", "ec2") == "query"
    assert unserved.request_protocol({}, "", "apigateway") == "rest-json"
    assert unserved.request_protocol({}, "", "no-such-service") == "rest-json"
    assert unserved.request_protocol({}, "", "../etc") == "rest-json"


def test_messages_name_the_service_and_what_berth_serves() -> None:
    assert unserved.message("iam", ["STS", "Lambda"]) == \
        "berth does not serve IAM. The services berth serves are: Lambda, STS."
    assert unserved.message("made-up", ["STS"]).startswith("berth does not serve made-up.")
    assert unserved.namespace("sns") == "http://sns.amazonaws.com/doc/2010-03-31/"
