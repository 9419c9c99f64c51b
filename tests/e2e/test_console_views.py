"""The console's cluster view, log browser and function configuration against a real
`berth up`, in headless Chromium: each view shows real state (tasks its agent ran, a service it
keeps, logs they wrote), and what is done on the page happens (the instance drains, the service
scales, a task runs, configuration is saved). A screenshot of each view goes to the test
output."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
from agent_process import stopped, wait_task
from berth_process import BerthProcess
from console.chromium import Chromium
from console.session import screenshot, signed_in, wait_text
from ecs.simagent import wait_for
from lambda_packages import ROLE, zip_of

SERVICE_COMMAND = "trap 'exit 0' TERM; sleep 600 & wait"


@pytest.fixture(scope="module")
def cluster_state(berth_up: BerthProcess) -> dict[str, Any]:
    """berth up's agent in `default`, a task that wrote two lines and exited 3, and a service
    of one task."""
    ecs = berth_up.client("ecs")
    instance = wait_for(lambda: _instances(ecs), 30)[0]
    ecs.register_task_definition(family="console-echo", containerDefinitions=[{
        "name": "echo", "image": "host", "memory": 32,
        "command": ["sh", "-c", "echo line one; echo line two; exit 3"],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/console-echo", "awslogs-stream-prefix": "ecs",
            "awslogs-create-group": "true"}}}])
    arn = ecs.run_task(taskDefinition="console-echo")["tasks"][0]["taskArn"]
    wait_task(ecs, "default", arn, stopped)
    logs = berth_up.client("logs")
    stream = f"ecs/echo/{arn.rsplit('/', 1)[-1]}"
    wait_for(lambda: len(logs.get_log_events(logGroupName="/ecs/console-echo",
                                             logStreamName=stream)["events"]) == 2, 30)
    ecs.register_task_definition(family="console-svc", containerDefinitions=[{
        "name": "svc", "image": "host", "memory": 32, "stopTimeout": 2,
        "command": ["sh", "-c", SERVICE_COMMAND]}])
    ecs.create_service(serviceName="console-svc", taskDefinition="console-svc", desiredCount=1)
    wait_for(lambda: ecs.describe_services(services=["console-svc"])["services"][0][
        "runningCount"] == 1, 30)
    return {"instance": instance, "task": arn, "stream": stream}


def _instances(ecs: Any) -> list[dict[str, Any]]:
    try:
        arns = ecs.list_container_instances()["containerInstanceArns"]
    except ecs.exceptions.ClusterNotFoundException:
        return []
    return ecs.describe_container_instances(containerInstances=arns)["containerInstances"] \
        if arns else []


def body(browser: Chromium) -> str:
    return browser.text("#cluster-body")


def test_the_cluster_view(berth_up: BerthProcess, cluster_state: dict[str, Any],
                          browser: Chromium) -> None:
    ecs = berth_up.client("ecs")
    instance = cluster_state["instance"]
    signed_in(browser, berth_up)
    browser.click("#views a[data-view=cluster]")
    wait_text(browser, "#cluster-list", "default")
    assert wait_text(browser, "#cluster-facts", "ACTIVE · 1 instances")
    text = wait_text(browser, "#cluster-body", instance["ec2InstanceId"])
    assert "connected" in text and "berth.driver=" in text and "MiB remaining" in text
    registered = next(r["integerValue"] for r in instance["registeredResources"]
                      if r["name"] == "MEMORY")
    assert f"used of {registered} MiB" in text
    screenshot(browser, "cluster-instances")

    # Drain from the page, and activate again.
    browser.click("#cluster-body button[data-action=DRAINING]")
    wait_text(browser, "#cluster-body", "DRAINING")
    assert _instances(ecs)[0]["status"] == "DRAINING"
    browser.click("#cluster-body button[data-action=ACTIVE]")
    wait_text(browser, "#cluster-status", "is ACTIVE")
    assert _instances(ecs)[0]["status"] == "ACTIVE"

    # Tasks: the service's running task, then the stopped one with its exit code.
    browser.click("#cluster-tabs button[data-tab=tasks]")
    wait_text(browser, "#cluster-body", "console-svc:1")
    browser.click("#cluster-body button[data-filter=stopped]")
    task_id = cluster_state["task"].rsplit("/", 1)[-1]
    text = wait_text(browser, "#cluster-body", task_id)
    row = browser.text(f"#cluster-body tr[data-key='{task_id}']")
    assert "exit 3" in row and "Essential container in task exited" in row
    assert "STOPPED → STOPPED" in row
    screenshot(browser, "cluster-tasks")
    browser.click(f"#cluster-body tr[data-key='{task_id}'] td a")
    detail = wait_text(browser, "#task-detail", "Containers")
    assert cluster_state["task"] in detail and "console-echo:1" in detail
    container_row = browser.text("#task-detail tr[data-key=echo]")
    assert "host" in container_row and "3" in container_row
    screenshot(browser, "task-detail")

    # Its logs link opens the log browser on the task's stream.
    browser.click("#task-detail tr[data-key=echo] a.logs-link")
    events = wait_text(browser, "#logs-events", "line two")
    assert "line one" in events
    assert browser.text("#logs-group-title") == "/ecs/console-echo"
    assert browser.text("#logs-events-title") == cluster_state["stream"]


def test_scaling_a_service_and_running_a_task_from_the_page(
        berth_up: BerthProcess, cluster_state: dict[str, Any], browser: Chromium) -> None:
    ecs = berth_up.client("ecs")
    signed_in(browser, berth_up, path="#view=cluster&cluster=default&tab=services")
    wait_text(browser, "#cluster-body", "console-svc")
    browser.click("#cluster-body tr[data-key=console-svc] a")
    detail = wait_text(browser, "#service-detail", "PRIMARY")
    assert "1 running · 0 pending · 1 desired" in detail
    assert browser.text("#service-events")
    browser.fill("#desired-count", "2")
    browser.click("#set-desired")
    wait_text(browser, "#cluster-status", "desired count 2")
    assert ecs.describe_services(services=["console-svc"])["services"][0]["desiredCount"] == 2
    wait_for(lambda: ecs.describe_services(services=["console-svc"])["services"][0][
        "runningCount"] == 2, 30)
    browser.click("#refresh-cluster")
    wait_text(browser, "#service-detail", "2 running · 0 pending · 2 desired")
    screenshot(browser, "service-detail")

    browser.click("#cluster-tabs button[data-tab=run]")
    wait_text(browser, "#run-family", "console-echo")
    browser.evaluate("(() => { const s = document.getElementById('run-family');"
                     " s.value = 'console-echo'; })()")
    browser.click("#run-task")
    started = wait_text(browser, "#run-result", "Started")
    task_id = started.split()[-1]
    task = ecs.describe_tasks(tasks=[task_id])["tasks"][0]
    assert task["startedBy"] == "console" and task["taskDefinitionArn"].endswith(
        "console-echo:1")
    screenshot(browser, "run-task")
    ecs.update_service(service="console-svc", desiredCount=0)


def test_the_log_browser_filters_and_follows(berth_up: BerthProcess,
                                             browser: Chromium) -> None:
    logs = berth_up.client("logs")
    logs.create_log_group(logGroupName="/console/app")
    logs.create_log_stream(logGroupName="/console/app", logStreamName="web-1")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/console/app", logStreamName="web-1", logEvents=[
        {"timestamp": now + i, "message": m}
        for i, m in enumerate(["INFO starting", "ERROR disk full", "INFO done"])])
    signed_in(browser, berth_up, path="#view=logs")
    browser.click("#views a[data-view=logs]")
    wait_text(browser, "#logs-groups", "/console/app")
    browser.click("#logs-groups button[data-name='/console/app']")
    wait_text(browser, "#logs-streams", "web-1")
    browser.click("#logs-streams tr[data-key=web-1] a")
    wait_text(browser, "#logs-events-title", "^web-1$")
    events = wait_text(browser, "#logs-events", "INFO done")
    assert [line.split("  ", 1)[1] for line in events.splitlines()] == [
        "INFO starting", "ERROR disk full", "INFO done"]
    browser.fill("#logs-filter", "ERROR")
    browser.click("#logs-search button[type=submit]")
    wait_text(browser, "#logs-events-title", "matching ERROR")
    wait_text(browser, "#logs-events", "^[^\\n]*  ERROR disk full$")     # that line alone
    screenshot(browser, "logs-filter")

    browser.fill("#logs-filter", "")
    browser.click("#logs-search button[type=submit]")
    wait_text(browser, "#logs-events-title", "^web-1$")
    wait_text(browser, "#logs-events", "INFO starting")
    browser.click("#logs-follow")
    wait_text(browser, "#logs-status", "Following")
    logs.put_log_events(logGroupName="/console/app", logStreamName="web-1", logEvents=[
        {"timestamp": int(time.time() * 1000), "message": "INFO arrived later"}])
    followed = wait_text(browser, "#logs-events", "arrived later")
    assert followed.count("INFO done") == 1       # appended, not read again
    screenshot(browser, "logs-follow")


def test_function_configuration_versions_and_aliases(berth_up: BerthProcess,
                                                     browser: Chromium) -> None:
    lam = berth_up.client("lambda")
    lam.create_function(FunctionName="console-config", Runtime="python3.12", Role=ROLE,
                        Handler="app.handler", Environment={"Variables": {"GREETING": "hi"}},
                        Code={"ZipFile": zip_of({"app.py": "def handler(e, c):\n    return 1\n"})})
    signed_in(browser, berth_up, path="#fn=console-config")
    browser.wait_for("document.getElementById('cfg-env').value === 'GREETING=hi'")
    assert browser.evaluate("document.getElementById('cfg-memory').value") == "128"
    assert browser.evaluate("document.getElementById('cfg-timeout').value") == "3"
    browser.fill("#cfg-memory", "256")
    browser.fill("#cfg-timeout", "12")
    browser.fill("#cfg-env", "GREETING=hello there\nMODE=test")
    browser.click("#save-config")
    wait_text(browser, "#config-status", "Saved: 256 MB, 12 s, 2 variables")
    config = lam.get_function_configuration(FunctionName="console-config")
    assert (config["MemorySize"], config["Timeout"]) == (256, 12)
    assert config["Environment"]["Variables"] == {"GREETING": "hello there", "MODE": "test"}

    browser.fill("#version-description", "first cut")
    browser.click("#publish-version")
    wait_text(browser, "#config-status", "Published version 1")
    wait_text(browser, "#cfg-versions", "first cut")
    assert [v["Version"] for v in lam.list_versions_by_function(
        FunctionName="console-config")["Versions"]] == ["$LATEST", "1"]
    browser.fill("#alias-name", "live")
    browser.wait_for("document.getElementById('alias-version').value === '1'")
    browser.click("#put-alias")
    wait_text(browser, "#cfg-aliases", "live")
    assert lam.get_alias(FunctionName="console-config", Name="live")["FunctionVersion"] == "1"

    browser.fill("#cfg-env", "not a variable")
    browser.click("#save-config")
    wait_text(browser, "#config-status", "expected KEY=value")
    screenshot(browser, "function-config")
    assert json.loads(lam.invoke(FunctionName="console-config:live")["Payload"].read()) == 1
