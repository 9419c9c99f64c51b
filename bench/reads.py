"""Every read operation (List*, Describe*, Get*) of ECS, Lambda and CloudWatch Logs: berth
against moto's server, same requests, same client, same run, with realistic state behind
them on both: one ECS cluster of 100 container instances running 1,000 tasks, 10 services and
5 task definition families; 100 Lambda functions (one with versions, an alias and configs);
100 log groups of 100 events each (one with filters, policies and a finished query).

Each operation's request is serialized by botocore from its parameters, then sent by the thin
client of bench/api.py (SigV4 per request, one keep-alive connection, closed loop), from one
client process, `--runs` times interleaving the servers. Every answer is checked against the
state setup put there. Operations of the models that berth does not serve are listed too;
those moto lacks have no ratio.

Target: berth ≥ 5× moto's req/s on every operation both serve.

    .venv/bin/python bench/reads.py [--duration 1] [--warmup 0.3] [--runs 2] [--only ecs]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from unittest import mock
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.api import (ClientPool, Result, Run, Target, _cpu_model, _loadavg,  # noqa: E402
                       make_console, measure_job, median_run, start_berth, start_moto)

REGION, ACCOUNT = "us-east-1", "000000000000"
TARGET_RATIO = 5.0
CLUSTER, FAMILY = "bench", "bench-task"
N_INSTANCES, N_TASKS, N_SERVICES, N_FAMILIES = 100, 1000, 10, 5
N_FUNCTIONS, N_GROUPS, N_EVENTS = 100, 100, 100
ROLE_NAME = "bench-lambda-role"
FN0, GROUP0 = "bench-fn-000", "/bench/g000"


@dataclass
class Spec:
    service: str            # botocore name
    operation: str
    params: Callable[["State"], dict[str, Any]]
    expect: tuple[str, int | None]  # (member, list length or None for "present")


@dataclass
class State:
    """What setup made on one server that requests refer to."""
    task_arns: list[str]
    instance_arns: list[str]
    cluster_arn: str
    function_arn: str
    group_arn: str
    query_id: str
    ptr: str | None


def _list_of_ten(items: list[str]) -> list[str]:
    return items[:10]


SPECS: list[Spec] = [
    # ECS
    Spec("ecs", "ListClusters", lambda s: {}, ("clusterArns", 1)),
    Spec("ecs", "DescribeClusters", lambda s: {"clusters": [CLUSTER]}, ("clusters", 1)),
    Spec("ecs", "ListContainerInstances", lambda s: {"cluster": CLUSTER},
         ("containerInstanceArns", N_INSTANCES)),
    Spec("ecs", "DescribeContainerInstances", lambda s: {
        "cluster": CLUSTER, "containerInstances": _list_of_ten(s.instance_arns)},
         ("containerInstances", 10)),
    Spec("ecs", "ListTaskDefinitions", lambda s: {}, ("taskDefinitionArns", N_FAMILIES)),
    Spec("ecs", "ListTaskDefinitionFamilies", lambda s: {}, ("families", N_FAMILIES)),
    Spec("ecs", "DescribeTaskDefinition", lambda s: {"taskDefinition": FAMILY},
         ("taskDefinition", None)),
    Spec("ecs", "ListTasks", lambda s: {"cluster": CLUSTER}, ("taskArns", 100)),
    Spec("ecs", "DescribeTasks", lambda s: {"cluster": CLUSTER,
                                            "tasks": _list_of_ten(s.task_arns)},
         ("tasks", 10)),
    Spec("ecs", "ListServices", lambda s: {"cluster": CLUSTER}, ("serviceArns", 10)),
    Spec("ecs", "DescribeServices", lambda s: {
        "cluster": CLUSTER, "services": [f"svc-{i}" for i in range(N_SERVICES)]},
         ("services", N_SERVICES)),
    Spec("ecs", "ListTagsForResource", lambda s: {"resourceArn": s.cluster_arn},
         ("tags", 2)),
    Spec("ecs", "ListAttributes", lambda s: {"cluster": CLUSTER,
                                             "targetType": "container-instance",
                                             "attributeName": "bench.rack"},
         ("attributes", N_INSTANCES)),
    Spec("ecs", "ListAccountSettings", lambda s: {"name": "awsvpcTrunking"},
         ("settings", 1)),
    Spec("ecs", "DescribeCapacityProviders", lambda s: {"capacityProviders": ["bench-cp"]},
         ("capacityProviders", 1)),
    Spec("ecs", "GetTaskProtection", lambda s: {"cluster": CLUSTER,
                                                "tasks": _list_of_ten(s.task_arns)},
         ("protectedTasks", 10)),
    # Lambda
    Spec("lambda", "ListFunctions", lambda s: {}, ("Functions", 50)),
    Spec("lambda", "GetFunction", lambda s: {"FunctionName": FN0}, ("Configuration", None)),
    Spec("lambda", "GetFunctionConfiguration", lambda s: {"FunctionName": FN0},
         ("FunctionArn", None)),
    Spec("lambda", "ListVersionsByFunction", lambda s: {"FunctionName": FN0},
         ("Versions", 3)),
    Spec("lambda", "ListAliases", lambda s: {"FunctionName": FN0}, ("Aliases", 1)),
    Spec("lambda", "GetAlias", lambda s: {"FunctionName": FN0, "Name": "live"},
         ("AliasArn", None)),
    Spec("lambda", "GetFunctionConcurrency", lambda s: {"FunctionName": FN0},
         ("ReservedConcurrentExecutions", None)),
    Spec("lambda", "GetFunctionEventInvokeConfig", lambda s: {"FunctionName": FN0},
         ("FunctionArn", None)),
    Spec("lambda", "ListFunctionEventInvokeConfigs", lambda s: {"FunctionName": FN0},
         ("FunctionEventInvokeConfigs", 1)),
    Spec("lambda", "ListTags", lambda s: {"Resource": s.function_arn}, ("Tags", None)),
    Spec("lambda", "GetAccountSettings", lambda s: {}, ("AccountLimit", None)),
    # CloudWatch Logs
    Spec("logs", "DescribeLogGroups", lambda s: {"logGroupNamePrefix": "/bench/"},
         ("logGroups", 50)),
    Spec("logs", "ListLogGroups", lambda s: {"logGroupNamePattern": "^/bench/"},
         ("logGroups", 50)),
    Spec("logs", "DescribeLogStreams", lambda s: {"logGroupName": GROUP0}, ("logStreams", 1)),
    Spec("logs", "GetLogEvents", lambda s: {"logGroupName": GROUP0, "logStreamName": "s",
                                            "startFromHead": True}, ("events", N_EVENTS)),
    Spec("logs", "FilterLogEvents", lambda s: {"logGroupName": GROUP0},
         ("events", N_EVENTS)),
    Spec("logs", "DescribeMetricFilters", lambda s: {"logGroupName": GROUP0},
         ("metricFilters", 1)),
    Spec("logs", "DescribeSubscriptionFilters", lambda s: {"logGroupName": GROUP0},
         ("subscriptionFilters", 1)),
    Spec("logs", "ListTagsLogGroup", lambda s: {"logGroupName": GROUP0}, ("tags", None)),
    Spec("logs", "ListTagsForResource", lambda s: {"resourceArn": s.group_arn},
         ("tags", None)),
    Spec("logs", "DescribeResourcePolicies", lambda s: {}, ("resourcePolicies", 1)),
    Spec("logs", "DescribeDestinations", lambda s: {}, ("destinations", 1)),
    Spec("logs", "DescribeQueryDefinitions", lambda s: {}, ("queryDefinitions", 1)),
    Spec("logs", "DescribeQueries", lambda s: {"logGroupName": GROUP0}, ("queries", 1)),
    Spec("logs", "GetQueryResults", lambda s: {"queryId": s.query_id}, ("results", 10)),
    Spec("logs", "GetLogGroupFields", lambda s: {"logGroupName": GROUP0},
         ("logGroupFields", None)),
    Spec("logs", "GetLogRecord", lambda s: {"logRecordPointer": s.ptr or "none"},
         ("logRecord", None)),
    Spec("logs", "DescribeExportTasks", lambda s: {}, ("exportTasks", 0)),
    Spec("logs", "DescribeAccountPolicies", lambda s: {"policyType": "DATA_PROTECTION_POLICY"},
         ("accountPolicies", 1)),
    Spec("logs", "GetDataProtectionPolicy", lambda s: {"logGroupIdentifier": GROUP0},
         ("policyDocument", None)),
    Spec("logs", "DescribeIndexPolicies", lambda s: {"logGroupIdentifiers": [GROUP0]},
         ("indexPolicies", 1)),
    Spec("logs", "DescribeFieldIndexes", lambda s: {"logGroupIdentifiers": [GROUP0]},
         ("fieldIndexes", 0)),
    Spec("logs", "GetTransformer", lambda s: {"logGroupIdentifier": GROUP0},
         ("transformerConfig", 1)),
    Spec("logs", "ListLogGroupsForQuery", lambda s: {"queryId": s.query_id},
         ("logGroupIdentifiers", 1)),
]


# -- state ---------------------------------------------------------------------------------------

def _clients(target: Target) -> Callable[[str], Any]:
    import boto3
    from botocore.config import Config

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=target.endpoint, region_name=REGION,
                            aws_access_key_id=target.access_key,
                            aws_secret_access_key=target.secret_key,
                            config=Config(retries={"max_attempts": 1}))
    return client


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


def _try(call: Callable[[], Any]) -> Any:
    """Setup steps a server may not support: skipped (their reads then show it)."""
    from botocore.exceptions import ClientError
    try:
        return call()
    except ClientError:
        return None


def setup(target: Target) -> State:
    client = _clients(target)
    ecs, lam, logs = client("ecs"), client("lambda"), client("logs")
    # ECS: instances (moto needs an EC2 instance behind each), definitions, tasks, services.
    cluster = ecs.create_cluster(clusterName=CLUSTER, tags=[
        {"key": "team", "value": "bench"}, {"key": "tier", "value": "1"}])["cluster"]
    ec2_ids: list[str] = []
    if target.name == "moto":
        ec2 = client("ec2")
        image = ec2.describe_images()["Images"][0]["ImageId"]
        ec2_ids = [i["InstanceId"] for i in ec2.run_instances(
            ImageId=image, MinCount=N_INSTANCES, MaxCount=N_INSTANCES,
            InstanceType="m5.xlarge")["Instances"]]
    instance_arns = []
    for i in range(N_INSTANCES):
        doc = {"instanceId": ec2_ids[i] if ec2_ids else f"i-{uuid.uuid4().hex[:17]}",
               "availabilityZone": f"{REGION}{'abc'[i % 3]}", "region": REGION,
               "instanceType": "m5.xlarge"}
        instance_arns.append(ecs.register_container_instance(
            cluster=CLUSTER, instanceIdentityDocument=json.dumps(doc),
            totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                            {"name": "MEMORY", "type": "INTEGER", "integerValue": 7482}],
        )["containerInstance"]["containerInstanceArn"])
    for i in range(0, N_INSTANCES, 10):
        ecs.put_attributes(cluster=CLUSTER, attributes=[
            {"name": "bench.rack", "value": f"r{j % 4}", "targetType": "container-instance",
             "targetId": arn.rsplit("/", 1)[-1]}
            for j, arn in enumerate(instance_arns[i:i + 10], start=i)])
    for f in range(N_FAMILIES):
        ecs.register_task_definition(family=FAMILY if f == 0 else f"{FAMILY}-{f}",
                                     containerDefinitions=[{
                                         "name": "a", "image": "busybox", "cpu": 1,
                                         "memory": 6, "essential": True}])
    task_arns: list[str] = []
    while len(task_arns) < N_TASKS:
        out = ecs.run_task(cluster=CLUSTER, taskDefinition=FAMILY, count=10)
        if len(out["tasks"]) != 10:
            raise RuntimeError(f"{target.name}: RunTask placed {len(out['tasks'])}: "
                               f"{out.get('failures')}")
        task_arns += [t["taskArn"] for t in out["tasks"]]
    for i in range(N_SERVICES):
        ecs.create_service(cluster=CLUSTER, serviceName=f"svc-{i}", taskDefinition=FAMILY,
                           desiredCount=0)
    _try(lambda: ecs.put_account_setting(name="awsvpcTrunking", value="enabled"))
    _try(lambda: ecs.create_capacity_provider(name="bench-cp", autoScalingGroupProvider={
        "autoScalingGroupArn": f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:"
                               "0b7f7a2b-aaaa-bbbb-cccc-000000000000:autoScalingGroupName/"
                               "bench"}))
    _try(lambda: ecs.update_task_protection(cluster=CLUSTER, tasks=task_arns[:10],
                                            protectionEnabled=True))
    # Lambda
    role = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
    if target.name == "moto":
        role = client("iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    code = _zip()
    function_arn = ""
    for i in range(N_FUNCTIONS):
        made = lam.create_function(FunctionName=f"bench-fn-{i:03d}", Runtime="python3.12",
                                   Role=role, Handler="app.handler", Code={"ZipFile": code},
                                   Tags={"team": "bench"})
        function_arn = function_arn or made["FunctionArn"]
    for _ in range(2):
        version = lam.publish_version(FunctionName=FN0)["Version"]
        lam.update_function_configuration(FunctionName=FN0, Description=f"after {version}")
        _wait_updated(lam)
    lam.create_alias(FunctionName=FN0, Name="live", FunctionVersion="1")
    lam.put_function_concurrency(FunctionName=FN0, ReservedConcurrentExecutions=5)
    _try(lambda: lam.put_function_event_invoke_config(FunctionName=FN0,
                                                      MaximumRetryAttempts=1))
    # CloudWatch Logs
    now = int(time.time() * 1000)
    for g in range(N_GROUPS):
        name = f"/bench/g{g:03d}"
        logs.create_log_group(logGroupName=name, tags={"team": "bench"})
        logs.create_log_stream(logGroupName=name, logStreamName="s")
        logs.put_log_events(logGroupName=name, logStreamName="s", logEvents=[
            {"timestamp": now - 60_000 + i,
             "message": json.dumps({"level": "INFO" if i % 5 else "ERROR", "n": i,
                                    "path": f"/api/items/{i % 7}"})}
            for i in range(N_EVENTS)])
    logs.put_metric_filter(logGroupName=GROUP0, filterName="errors", filterPattern="ERROR",
                           metricTransformations=[{"metricName": "Errors",
                                                   "metricNamespace": "Bench",
                                                   "metricValue": "1"}])
    _try(lambda: logs.put_subscription_filter(logGroupName=GROUP0, filterName="all",
                                              filterPattern="", destinationArn=function_arn))
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "route53.amazonaws.com"},
         "Action": "logs:PutLogEvents", "Resource": "*"}]})
    logs.put_resource_policy(policyName="bench", policyDocument=policy)
    _try(lambda: logs.put_destination(
        destinationName="bench", targetArn=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/b",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/bench"))
    _try(lambda: logs.put_query_definition(name="errors", queryString="filter level='ERROR'"))
    _try(lambda: logs.put_account_policy(policyName="bench",
                                         policyType="DATA_PROTECTION_POLICY",
                                         policyDocument=json.dumps({"Name": "bench"})))
    _try(lambda: logs.put_data_protection_policy(logGroupIdentifier=GROUP0,
                                                 policyDocument=json.dumps({"Name": "d"})))
    _try(lambda: logs.put_index_policy(logGroupIdentifier=GROUP0,
                                       policyDocument=json.dumps({"Fields": ["level"]})))
    _try(lambda: logs.put_transformer(logGroupIdentifier=GROUP0,
                                      transformerConfig=[{"parseJSON": {}}]))
    query_id = logs.start_query(logGroupName=GROUP0, startTime=now // 1000 - 3600,
                                endTime=now // 1000 + 60,
                                queryString="fields @message | limit 10")["queryId"]
    ptr = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = logs.get_query_results(queryId=query_id)
        if out["status"] not in ("Scheduled", "Running"):
            break
        time.sleep(0.1)
    for row in out.get("results", [])[:1]:
        ptr = next((f["value"] for f in row if f["field"] == "@ptr"), None)
    group_arn = next(g["logGroupArn"] if "logGroupArn" in g else g["arn"].removesuffix(":*")
                     for g in logs.describe_log_groups(logGroupNamePrefix=GROUP0)["logGroups"])
    return State(task_arns, instance_arns, cluster["clusterArn"], function_arn, group_arn,
                 query_id, ptr)


def _wait_updated(lam: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lam.get_function_configuration(FunctionName=FN0).get(
                "LastUpdateStatus", "Successful") != "InProgress":
            return
        time.sleep(0.05)


# -- requests ------------------------------------------------------------------------------------

def request_job(target: Target, spec: Spec, state: State, warmup: float, duration: float
                ) -> dict[str, Any]:
    """The spec's request as the wire carries it, serialized by botocore."""
    from botocore.serialize import create_serializer

    from berth.api.models import service_model
    model = service_model(spec.service)
    op = model.operation_model(spec.operation)
    request = create_serializer(model.metadata["protocol"], include_validation=True) \
        .serialize_to_request(spec.params(state), op)
    path = request["url_path"]
    if request["query_string"]:
        path += "?" + urlencode(request["query_string"], doseq=True)
    body = request["body"]
    if isinstance(body, str):
        body = body.encode()
    elif isinstance(body, dict):
        body = json.dumps(body).encode() if body else b""
    return {"host": target.host, "port": target.port, "access_key": target.access_key,
            "secret_key": target.secret_key, "service": model.signing_name,
            "method": request["method"], "path": path,
            "headers": {k: v for k, v in request["headers"].items()
                        if k.lower() not in ("user-agent",)},
            "body": body or b"", "expect": spec.expect, "warmup": warmup,
            "duration": duration, "start": 0.0}


def probe(target: Target, job: dict[str, Any]) -> str | None:
    """None if one request answers what setup put there, else why not."""
    from bench.api import _Client
    client = _Client(job)
    try:
        status, data, _ = client.call()
    finally:
        client.close()
    if status is None or not 200 <= status < 300:
        return f"HTTP {status}: {data[:160].decode('utf-8', 'replace')}"
    return client.check(data)


# -- running and reporting -------------------------------------------------------------------

def unserved_reads() -> dict[str, list[str]]:
    """The read operations of each model that berth does not serve."""
    from botocore import xform_name

    from berth.api.models import service_model
    from berth.ecs.service import EcsService
    from berth.lambda_.service import LambdaService
    from berth.logs.service import LogsService
    out = {}
    for service, provider in (("ecs", EcsService), ("lambda", LambdaService),
                              ("logs", LogsService)):
        names = service_model(service).operation_names
        out[service] = [n for n in names if n.startswith(("List", "Describe", "Get"))
                        and not hasattr(provider, xform_name(n))]
    return out


def run(duration: float = 1.0, warmup: float = 0.3, runs: int = 2,
        only: list[str] | None = None, **_: Any) -> Result:
    from importlib.metadata import version

    from rich.table import Table
    from rich.text import Text

    started = time.monotonic()
    load_before = _loadavg()
    specs = [s for s in SPECS if not only or s.service in only]
    pool = ClientPool(1)
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-reads-"))
    targets: list[Target] = []
    results: dict[tuple[str, str], list[Run]] = {}
    skipped: dict[tuple[str, str], str] = {}
    setup_s: dict[str, float] = {}
    try:
        # Instances registered through the API have no agent beating for them: keep them
        # connected for the whole run.
        with mock.patch.dict(os.environ, {"BERTH_ECS_AGENT_TIMEOUT": "86400"}):
            targets.append(start_berth(workdir))
        targets.append(start_moto(workdir))
        states = {}
        for target in targets:
            t0 = time.monotonic()
            states[target.name] = setup(target)
            setup_s[target.name] = time.monotonic() - t0
        jobs = {(t.name, s.operation + s.service): request_job(t, s, states[t.name], warmup,
                                                              duration)
                for t in targets for s in specs}
        for target in targets:
            for spec in specs:
                why = probe(target, jobs[(target.name, spec.operation + spec.service)])
                if why:
                    skipped[(target.name, spec.operation + spec.service)] = why
        for rep in range(runs):
            order = targets if rep % 2 == 0 else targets[::-1]
            for spec in specs:
                for target in order:
                    key = (target.name, spec.operation + spec.service)
                    if key in skipped:
                        continue
                    job = {**jobs[key], "start": time.monotonic() + 0.05}
                    results.setdefault(key, []).append(measure_job(pool, target, job, 1))
    except BaseException:
        print(f"bench reads: servers' data and logs kept in {workdir}", file=sys.stderr)
        raise
    finally:
        pool.close()
        for target in targets:
            target.stop()
    shutil.rmtree(workdir, ignore_errors=True)

    table = Table(title=f"Every read operation: berth vs moto {version('moto')}, 1 client "
                        f"(median of {runs} runs × {duration:g} s, {warmup:g} s warm-up)",
                  title_justify="left")
    for name, justify in (("service", "left"), ("operation", "left"), ("berth req/s", "right"),
                          ("moto req/s", "right"), ("ratio", "right"), ("berth p50 ms", "right"),
                          ("berth p99 ms", "right"), ("moto p50 ms", "right"),
                          ("srv CPU µs/req berth / moto", "right"), ("target", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    targets_met, valid = True, True
    notes: list[str] = []

    ratios = []
    for spec in specs:
        key = spec.operation + spec.service
        b, m = median_run(results.get(("berth", key))), median_run(results.get(("moto", key)))
        for who, run_ in (("berth", b), ("moto", m)):
            if run_ is not None and run_.errors:
                valid = False
                notes.append(f"INVALID: {who} {spec.service} {spec.operation}: {run_.errors} "
                             f"errors, e.g. {run_.error_sample}")
        if b is None:
            targets_met = False
            notes.append(f"berth {spec.service} {spec.operation}: "
                         f"{skipped.get(('berth', key), 'not run')}")
        if m is None:
            notes.append(f"moto {spec.service} {spec.operation}: "
                         f"{skipped.get(('moto', key), 'not run')}")
        if b is not None and m is not None and m.reqs > 0:
            ratio = b.reqs / m.reqs
            ratios.append(ratio)
            hit = ratio >= TARGET_RATIO
            targets_met &= hit
            mark = Text(f"≥{TARGET_RATIO:g}× {'✓' if hit else '✗'}",
                        style="green" if hit else "red")
            shown = Text(f"{ratio:.1f}×", style="bold")
        else:
            mark = Text("no peer" if b is not None else "berth: not run", style="yellow")
            shown = Text("—")
        cpu = " / ".join(f"{r.server_cpu_us:,.0f}" if r else "—" for r in (b, m))
        table.add_row(spec.service, spec.operation,
                      f"{b.reqs:,.0f}" if b else "—", f"{m.reqs:,.0f}" if m else "—", shown,
                      f"{b.p50_ms:.2f}" if b else "—", f"{b.p99_ms:.2f}" if b else "—",
                      f"{m.p50_ms:.2f}" if m else "—", cpu, mark)
    unserved = unserved_reads()
    for service in sorted(unserved):
        if only and service not in only:
            continue
        for name in unserved[service]:
            table.add_row(service, name, "—", "", "", "", "", "", "",
                          Text("not served by berth", style="dim"))
    context = Text(
        f"machine: {os.cpu_count()} CPUs ({_cpu_model()}), load avg {load_before} before / "
        f"{_loadavg()} after; setup " + ", ".join(f"{k} {v:.0f} s" for k, v in
                                                  setup_s.items())
        + f"; whole bench {time.monotonic() - started:.0f} s; lowest ratio "
        + (f"{min(ratios):.1f}×" if ratios else "—") + ".", style="dim")
    renderables: list[Any] = [table, context]
    renderables += [Text(n, style="red" if "INVALID" in n or n.startswith("berth") else "dim")
                    for n in notes]
    verdict = ("targets met" if targets_met and valid else
               "targets NOT met" if valid else "run had errors: numbers are not valid")
    renderables.append(Text(f"reads: {verdict} (berth ≥ {TARGET_RATIO:g}× moto req/s on every "
                            "operation both serve)",
                            style="bold green" if targets_met and valid else "bold red"))
    return Result(renderables, targets_met, valid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--only", action="append", choices=["ecs", "lambda", "logs"])
    args = parser.parse_args(argv)
    result = run(args.duration, args.warmup, args.runs, args.only)
    console = make_console()
    for r in result.renderables:
        console.print(r)
    return 0 if result.valid else 1


if __name__ == "__main__":
    sys.exit(main())
