"""The task metadata endpoint's answers (versions 3 and 4), with ECS's field names, from what
the agent knows of a task: its plan, its containers' runs and their engine's state.
"""
from __future__ import annotations

import ctypes
import datetime as dt
from typing import TYPE_CHECKING, Any

from .drivers.base import ContainerState

if TYPE_CHECKING:
    from .task_runner import ContainerRun, TaskRunner

_STATUS = {"PENDING": "PENDING", "RUNNING": "RUNNING", "STOPPED": "STOPPED"}


def _time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    stamp = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_seconds(epoch: float | None) -> str:
    """A time as the credentials endpoint writes it: 2017-10-20T18:21:59Z."""
    stamp = dt.datetime.fromtimestamp(epoch or 0, dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _labels(runner: TaskRunner, run: ContainerRun) -> dict[str, str]:
    info = runner.plan.info
    ecs = {"com.amazonaws.ecs.cluster": info.cluster,
           "com.amazonaws.ecs.container-name": run.plan.name,
           "com.amazonaws.ecs.task-arn": runner.plan.arn,
           "com.amazonaws.ecs.task-definition-family": info.family,
           "com.amazonaws.ecs.task-definition-version": info.revision}
    own = {k: v for k, v in run.plan.spec.labels.items() if not k.startswith("berth.")}
    return {**own, **ecs}


def container_view(runner: TaskRunner, run: ContainerRun, state: ContainerState | None,
                   version: int) -> dict[str, Any]:
    spec = run.plan.spec
    view: dict[str, Any] = {
        "DockerId": run.cid or "", "Name": run.plan.name, "DockerName": run.plan.name,
        "Image": spec.image, "ImageID": (state.image_id if state else None) or "",
        "Labels": _labels(runner, run),
        "DesiredStatus": "STOPPED" if runner.stop_requested else "RUNNING",
        "KnownStatus": _STATUS.get(run.status, run.status),
        "Limits": {"CPU": spec.cpu_shares or 0, "Memory": spec.memory_mib or 0},
        "Type": "NORMAL",
        "Networks": [{"NetworkMode": runner.plan.network,
                      "IPv4Addresses": [state.ip_address] if state and state.ip_address
                      else []}],
    }
    if state is not None:
        for member, value in (("CreatedAt", state.created_at), ("StartedAt", state.started_at),
                              ("FinishedAt", state.finished_at)):
            if value is not None:
                view[member] = _time(value)
    if run.exit_code is not None:
        view["ExitCode"] = run.exit_code
    if run.ports:
        view["Ports"] = [{"ContainerPort": p.container_port, "Protocol": p.protocol,
                          "HostPort": p.host_port, "HostIp": p.host_ip} for p in run.ports]
    if run.health is not None:
        view["Health"] = {"status": run.health.status}
    if version >= 4:
        arn = runner.plan.info.container_arns.get(run.plan.name)
        if arn:
            view["ContainerARN"] = arn
        config = run.plan.log_configuration or {}
        if config.get("logDriver"):
            view["LogDriver"] = config["logDriver"]
            view["LogOptions"] = dict(config.get("options") or {})
    return view


def task_view(runner: TaskRunner, states: dict[str, ContainerState | None],
              version: int, availability_zone: str) -> dict[str, Any]:
    info = runner.plan.info
    runs = list(runner.runs.values())
    if all(r.status == "STOPPED" for r in runs):
        known = "STOPPED"
    elif all(r.status == "RUNNING" for r in runs):
        known = "RUNNING"
    else:
        known = "PENDING"
    view: dict[str, Any] = {
        "Cluster": info.cluster, "TaskARN": runner.plan.arn, "Family": info.family,
        "Revision": info.revision,
        "DesiredStatus": "STOPPED" if runner.stop_requested else "RUNNING",
        "KnownStatus": known, "AvailabilityZone": availability_zone,
        "Containers": [container_view(runner, r, states.get(r.plan.name), version)
                       for r in runs]}
    limits = {}
    if info.cpu and info.cpu.isdigit():
        limits["CPU"] = int(info.cpu) / 1024          # vCPUs, as ECS reports task limits
    if info.memory and info.memory.isdigit():
        limits["Memory"] = int(info.memory)
    if limits:
        view["Limits"] = limits
    for member, key in (("PullStartedAt", "pullStartedAt"), ("PullStoppedAt", "pullStoppedAt"),
                        ("ExecutionStoppedAt", "executionStoppedAt")):
        if key in runner.times:
            view[member] = _time(runner.times[key])
    if version >= 4:
        view["LaunchType"] = info.launch_type
        if info.service_name:
            view["ServiceName"] = info.service_name
        view["ClockDrift"] = clock_drift()
    return view


class _Timex(ctypes.Structure):
    # struct timex up to `status`; the kernel's struct is larger, hence the padding.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("_rest", ctypes.c_byte * 256)]


STA_UNSYNC = 0x0040
TIME_ERROR = 5


def clock_drift() -> dict[str, Any]:
    """ECS's ClockDrift from the kernel's clock discipline (adjtimex): the error bound in
    milliseconds and whether the clock is synchronised."""
    timex = _Timex()
    try:
        state = ctypes.CDLL(None, use_errno=True).adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        state = -1
    synced = state not in (-1, TIME_ERROR) and not timex.status & STA_UNSYNC
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"ClockErrorBound": timex.maxerror / 1000 if state != -1 else None,
            "ReferenceTimestamp": now,
            "ClockSynchronizationStatus": "SYNCHRONIZED" if synced else "NOT_SYNCHRONIZED"}
