"""The Logs resources beyond groups, streams and events, in process against a real store:
metric filters, group listing, policies, destinations, query definitions and queries."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest

from berth.api.errors import ServiceError
from logs_harness import Clock, Logs

TRANSFORM = {"metricName": "Errors", "metricNamespace": "App/Web", "metricValue": "1"}


def fails(call: Any, **req: Any) -> tuple[str, str]:
    with pytest.raises(ServiceError) as err:
        call(**req)
    return err.value.code, err.value.message


def test_metric_filters_are_kept_counted_and_described(logs: Logs) -> None:
    for group in ("/a", "/b"):
        logs.create_log_group(logGroupName=group)
    logs.put_metric_filter(logGroupName="/a", filterName="errors", filterPattern="ERROR",
                           metricTransformations=[{**TRANSFORM, "defaultValue": 0.0}])
    logs.put_metric_filter(logGroupName="/b", filterName="errors-json",
                           filterPattern='{ $.level = "ERROR" }',
                           metricTransformations=[{**TRANSFORM, "metricName": "Json"}])
    (only_a,) = logs.describe_metric_filters(logGroupName="/a")["metricFilters"]
    assert only_a == {"filterName": "errors", "filterPattern": "ERROR",
                      "metricTransformations": [{**TRANSFORM, "defaultValue": 0.0}],
                      "creationTime": only_a["creationTime"], "logGroupName": "/a",
                      "applyOnTransformedLogs": False}
    by_prefix = logs.describe_metric_filters(filterNamePrefix="errors")["metricFilters"]
    assert [(f["logGroupName"], f["filterName"]) for f in by_prefix] == [
        ("/a", "errors"), ("/b", "errors-json")]
    by_metric = logs.describe_metric_filters(metricName="Json", metricNamespace="App/Web")
    assert [f["filterName"] for f in by_metric["metricFilters"]] == ["errors-json"]
    assert fails(logs.describe_metric_filters, metricName="Json")[1] == (
        "If you include the metricName parameter in your request, you must also include "
        "the metricNamespace parameter.")
    counts = {g["logGroupName"]: g["metricFilterCount"]
              for g in logs.describe_log_groups()["logGroups"]}
    assert counts == {"/a": 1, "/b": 1}
    # Put again: replaced, not added.
    logs.put_metric_filter(logGroupName="/a", filterName="errors", filterPattern="FATAL",
                           metricTransformations=[TRANSFORM])
    (again,) = logs.describe_metric_filters(logGroupName="/a")["metricFilters"]
    assert again["filterPattern"] == "FATAL" and again["creationTime"] == only_a["creationTime"]
    logs.delete_metric_filter(logGroupName="/a", filterName="errors")
    assert fails(logs.delete_metric_filter, logGroupName="/a", filterName="errors") == (
        "ResourceNotFoundException", "The specified metric filter does not exist.")
    assert fails(logs.put_metric_filter, logGroupName="/none", filterName="f",
                 filterPattern="", metricTransformations=[TRANSFORM]) == (
        "ResourceNotFoundException", "The specified log group does not exist.")
    logs.delete_log_group(logGroupName="/b")        # its filters go with it
    assert logs.describe_metric_filters()["metricFilters"] == []


def test_a_group_takes_at_most_100_metric_filters(logs: Logs) -> None:
    logs.create_log_group(logGroupName="/many")
    for i in range(100):
        logs.put_metric_filter(logGroupName="/many", filterName=f"f{i:03d}",
                               filterPattern="", metricTransformations=[TRANSFORM])
    assert fails(logs.put_metric_filter, logGroupName="/many", filterName="one-more",
                 filterPattern="", metricTransformations=[TRANSFORM]) == (
        "LimitExceededException", "Resource limit exceeded.")
    pages, token = [], None
    while True:
        page = logs.describe_metric_filters(logGroupName="/many",
                                            **({"nextToken": token} if token else {}))
        pages.append(len(page["metricFilters"]))
        token = page.get("nextToken")
        if not token:
            break
    assert pages == [50, 50]


def test_test_metric_filter_reports_matches_and_extracted_values(logs: Logs) -> None:
    out = logs.test_metric_filter(
        filterPattern="[ip, user, status=4*, size]",
        logEventMessages=["10.0.0.1 alice 200 512", "10.0.0.2 bob 404 12", "garbage"])
    assert out == {"matches": [{"eventNumber": 2, "eventMessage": "10.0.0.2 bob 404 12",
                                "extractedValues": {"$ip": "10.0.0.2", "$user": "bob",
                                                    "$status": "404", "$size": "12"}}]}
    out = logs.test_metric_filter(filterPattern="bob", logEventMessages=["a bob", "alice"])
    assert out["matches"] == [{"eventNumber": 1, "eventMessage": "a bob",
                               "extractedValues": {}}]
    assert fails(logs.test_metric_filter, filterPattern="{ $.x = ",
                 logEventMessages=["m"]) == ("InvalidParameterException",
                                             "Invalid metric filter pattern")


def test_list_log_groups_matches_prefixes_substrings_and_tags(logs: Logs) -> None:
    for name, tags in (("/aws/lambda/f", {"team": "a"}), ("/app/discovery", {"team": "b"}),
                       ("/app/web", {}), ("/other", {"team": "a"})):
        logs.create_log_group(logGroupName=name, **({"tags": tags} if tags else {}))
    names = lambda **kw: [g["logGroupName"] for g in logs.list_log_groups(**kw)["logGroups"]]
    assert names() == ["/app/discovery", "/app/web", "/aws/lambda/f", "/other"]
    assert names(logGroupNamePattern="^/aws/lambda|discovery") == [
        "/app/discovery", "/aws/lambda/f"]
    assert names(logGroupNamePattern="web") == ["/app/web"]
    assert names(logGroupNamePattern="WEB") == []      # case-sensitive
    assert names(logGroupTags=[{"key": "team", "values": ["a"]}]) == ["/aws/lambda/f",
                                                                     "/other"]
    first = logs.list_log_groups(limit=3)
    assert len(first["logGroups"]) == 3
    rest = logs.list_log_groups(limit=3, nextToken=first["nextToken"])
    assert [g["logGroupName"] for g in rest["logGroups"]] == ["/other"]
    (one,) = logs.list_log_groups(logGroupNamePattern="other")["logGroups"]
    assert one == {"logGroupName": "/other", "logGroupClass": "STANDARD",
                   "logGroupArn": "arn:aws:logs:us-east-1:000000000000:log-group:/other"}


def test_describe_log_groups_by_pattern_and_identifiers(logs: Logs) -> None:
    for name in ("/app/DataLogs", "/app/datalogs", "/x/GroupDataLogs"):
        logs.create_log_group(logGroupName=name)
    found = logs.describe_log_groups(logGroupNamePattern="DataLogs")["logGroups"]
    assert [g["logGroupName"] for g in found] == ["/app/DataLogs", "/x/GroupDataLogs"]
    assert "storedBytes" not in found[0]
    arn = "arn:aws:logs:us-east-1:000000000000:log-group:/app/datalogs"
    found = logs.describe_log_groups(logGroupIdentifiers=[arn, "/x/GroupDataLogs"])
    assert [g["logGroupName"] for g in found["logGroups"]] == ["/app/datalogs",
                                                               "/x/GroupDataLogs"]
    assert fails(logs.describe_log_groups, logGroupNamePrefix="/a",
                 logGroupNamePattern="b") == (
        "InvalidParameterException",
        "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")


def test_deletion_protection_and_kms_keys(logs: Logs) -> None:
    logs.create_log_group(logGroupName="/kept", deletionProtectionEnabled=True)
    (group,) = logs.describe_log_groups()["logGroups"]
    assert group["deletionProtectionEnabled"] is True
    assert fails(logs.delete_log_group, logGroupName="/kept") == (
        "ValidationException",
        "Cannot delete log group with deletion protection enabled. Disable deletion "
        "protection first.")
    logs.put_log_group_deletion_protection(logGroupIdentifier="/kept",
                                           deletionProtectionEnabled=False)
    logs.associate_kms_key(logGroupName="/kept", kmsKeyId="arn:aws:kms:us-east-1:0:key/k")
    assert logs.describe_log_groups()["logGroups"][0]["kmsKeyId"] == \
        "arn:aws:kms:us-east-1:0:key/k"
    logs.disassociate_kms_key(logGroupName="/kept")
    assert "kmsKeyId" not in logs.describe_log_groups()["logGroups"][0]
    logs.delete_log_group(logGroupName="/kept")


def test_resource_policies(logs: Logs) -> None:
    doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "route53.amazonaws.com"},
         "Action": "logs:PutLogEvents", "Resource": "*"}]})
    for i in range(10):
        out = logs.put_resource_policy(policyName=f"p{i}", policyDocument=doc)
    assert out["resourcePolicy"] == {"policyName": "p9", "policyDocument": doc,
                                     "lastUpdatedTime": out["resourcePolicy"]["lastUpdatedTime"],
                                     "policyScope": "ACCOUNT"}
    assert fails(logs.put_resource_policy, policyName="p10", policyDocument=doc) == (
        "LimitExceededException", "Resource limit exceeded.")
    logs.put_resource_policy(policyName="p3", policyDocument='{"Statement": []}')  # an update
    described = logs.describe_resource_policies()["resourcePolicies"]
    assert len(described) == 10 and described[3]["policyDocument"] == '{"Statement": []}'
    logs.delete_resource_policy(policyName="p3")
    assert fails(logs.delete_resource_policy, policyName="p3") == (
        "ResourceNotFoundException", "Policy with name [p3] does not exist.")
    assert fails(logs.put_resource_policy, policyName="bad", policyDocument="{nope")[0] == \
        "InvalidParameterException"
    # A log group's own policy.
    logs.create_log_group(logGroupName="/scoped")
    arn = "arn:aws:logs:us-east-1:000000000000:log-group:/scoped"
    out = logs.put_resource_policy(resourceArn=arn, policyDocument=doc)
    assert out["resourcePolicy"]["policyScope"] == "RESOURCE" and out["revisionId"]
    scoped = logs.describe_resource_policies(resourceArn=arn)["resourcePolicies"]
    assert [p["resourceArn"] for p in scoped] == [arn]
    assert fails(logs.delete_resource_policy, resourceArn=arn,
                 expectedRevisionId="stale")[0] == "OperationAbortedException"
    logs.delete_resource_policy(resourceArn=arn, expectedRevisionId=out["revisionId"])


def test_account_and_group_policies(logs: Logs) -> None:
    out = logs.put_account_policy(policyName="dp", policyType="DATA_PROTECTION_POLICY",
                                  policyDocument='{"Name": "x"}')
    assert out["accountPolicy"]["accountId"] == "000000000000"
    assert out["accountPolicy"]["scope"] == "ALL"
    listed = logs.describe_account_policies(policyType="DATA_PROTECTION_POLICY")
    assert [p["policyName"] for p in listed["accountPolicies"]] == ["dp"]
    assert logs.describe_account_policies(policyType="FIELD_INDEX_POLICY")[
        "accountPolicies"] == []
    logs.delete_account_policy(policyName="dp", policyType="DATA_PROTECTION_POLICY")
    logs.create_log_group(logGroupName="/g")
    assert logs.get_data_protection_policy(logGroupIdentifier="/g") == {
        "logGroupIdentifier": "/g"}
    logs.put_data_protection_policy(logGroupIdentifier="/g", policyDocument='{"Name": "d"}')
    assert logs.get_data_protection_policy(logGroupIdentifier="/g")["policyDocument"] == \
        '{"Name": "d"}'
    logs.put_index_policy(logGroupIdentifier="/g", policyDocument='{"Fields": ["a"]}')
    (index,) = logs.describe_index_policies(logGroupIdentifiers=["/g"])["indexPolicies"]
    assert index["source"] == "LOG_GROUP" and index["policyDocument"] == '{"Fields": ["a"]}'
    logs.delete_index_policy(logGroupIdentifier="/g")
    assert logs.describe_index_policies(logGroupIdentifiers=["/g"])["indexPolicies"] == []
    config = [{"parseJSON": {}}]
    logs.put_transformer(logGroupIdentifier="/g", transformerConfig=config)
    assert logs.get_transformer(logGroupIdentifier="/g")["transformerConfig"] == config
    logs.delete_transformer(logGroupIdentifier="/g")
    assert fails(logs.get_transformer, logGroupIdentifier="/g")[0] == \
        "ResourceNotFoundException"


def test_destinations_and_their_tags(logs: Logs) -> None:
    out = logs.put_destination(destinationName="d1",
                               targetArn="arn:aws:kinesis:us-east-1:000000000000:stream/s",
                               roleArn="arn:aws:iam::000000000000:role/r", tags={"k": "v"})
    arn = "arn:aws:logs:us-east-1:000000000000:destination:d1"
    assert out["destination"]["arn"] == arn and "accessPolicy" not in out["destination"]
    logs.put_destination_policy(destinationName="d1", accessPolicy='{"Statement": []}')
    (d,) = logs.describe_destinations(DestinationNamePrefix="d")["destinations"]
    assert d["accessPolicy"] == '{"Statement": []}'
    logs.tag_resource(resourceArn=arn, tags={"k2": "v2"})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"k": "v", "k2": "v2"}
    logs.delete_destination(destinationName="d1")
    assert fails(logs.delete_destination, destinationName="d1") == (
        "ResourceNotFoundException", "The specified destination does not exist.")
    assert logs.describe_destinations()["destinations"] == []


def test_query_definitions(logs: Logs) -> None:
    made = logs.put_query_definition(name="errors", queryString="filter level = 'ERROR'",
                                     logGroupNames=["/a"])["queryDefinitionId"]
    logs.put_query_definition(name="slow", queryString="filter ms > 100")
    logs.put_query_definition(name="errors", queryDefinitionId=made,
                              queryString="filter level = 'FATAL'")
    found = logs.describe_query_definitions(queryDefinitionNamePrefix="err")
    (d,) = found["queryDefinitions"]
    assert d["queryDefinitionId"] == made and d["queryString"] == "filter level = 'FATAL'"
    assert d["queryLanguage"] == "CWLI"
    assert logs.delete_query_definition(queryDefinitionId=made) == {"success": True}
    assert fails(logs.delete_query_definition, queryDefinitionId=made)[0] == \
        "ResourceNotFoundException"


def wait_done(logs: Logs, query_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        out = logs.get_query_results(queryId=query_id)
        if out["status"] not in ("Scheduled", "Running") or time.monotonic() > deadline:
            return out
        time.sleep(0.02)


def test_queries_run_in_the_background_and_are_described(logs: Logs,
                                                         fake_clock: Clock) -> None:
    logs.create_log_group(logGroupName="/q")
    logs.create_log_stream(logGroupName="/q", logStreamName="s")
    now = fake_clock.now
    logs.put_log_events(logGroupName="/q", logStreamName="s", logEvents=[
        {"timestamp": now - 3000 + i, "message": json.dumps({"n": i})} for i in range(30)])
    start, end = now // 1000 - 60, now // 1000
    qid = logs.start_query(logGroupName="/q", startTime=start, endTime=end,
                           queryString="stats sum(n) as total")["queryId"]
    out = wait_done(logs, qid)
    assert out["status"] == "Complete"
    assert out["results"] == [[{"field": "total", "value": str(sum(range(30)))}]]
    assert out["statistics"] == {"recordsMatched": 30.0, "recordsScanned": 30.0,
                                 "bytesScanned": float(sum(len(json.dumps({"n": i})) + 26
                                                           for i in range(30)))}
    (described,) = logs.describe_queries(logGroupName="/q")["queries"]
    assert described["queryString"] == (f'SOURCE "/q" START={start}000 END={end}999 | '
                                        "stats sum(n) as total")
    assert described["status"] == "Complete" and described["logGroupName"] == "/q"
    assert logs.describe_queries(logGroupName="/q", status="Running")["queries"] == []
    assert logs.stop_query(queryId=qid) == {"success": False}   # already done
    assert logs.list_log_groups_for_query(queryId=qid)["logGroupIdentifiers"] == [
        "arn:aws:logs:us-east-1:000000000000:log-group:/q"]
    # A newer window leaves the events out; an unknown group is refused up front.
    qid = logs.start_query(logGroupName="/q", startTime=end + 1, endTime=end + 60,
                           queryString="fields @message")["queryId"]
    assert wait_done(logs, qid)["results"] == []
    code, message = fails(logs.start_query, logGroupNames=["/q", "/missing"], startTime=start,
                          endTime=end, queryString="fields @message")
    assert code == "ResourceNotFoundException"
    assert message.startswith("Log group '/missing' does not exist for account ID "
                              "'000000000000' (Service: AWSLogs; Status Code: 400;")
    assert fails(logs.get_query_results, queryId="nope")[0] == "ResourceNotFoundException"
