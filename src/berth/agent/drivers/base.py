"""The container driver contract: what the agent asks of a container engine and what it gets back.

Drivers know nothing of tasks: they run one container from a `ContainerSpec` with its limits and
report its `ContainerState`. Methods are synchronous; the agent calls them from worker threads.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

# Below this the engines refuse (Docker: 6 MB) or the runtime's own init dies while joining the
# cgroup, so asking for less is answered with a clear error up front.
MIN_MEMORY_MIB = 6
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NETWORK_MODES = frozenset({"bridge", "host", "none"})

# Labels a driver reads back to find its containers again after an agent restart.
LABEL_TASK_ARN = "berth.task-arn"
LABEL_CONTAINER_NAME = "berth.container-name"


@dataclass(frozen=True)
class PortMapping:
    """A published port; `host_port` is already chosen by the agent."""
    container_port: int
    host_port: int
    protocol: str = "tcp"
    host_ip: str = "0.0.0.0"


@dataclass(frozen=True)
class Mount:
    """A host directory (`source`) or, with `source=None`, a fresh tmpfs at `target`."""
    target: str
    source: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class Ulimit:
    """A resource limit by its ECS/Docker name (`nofile`, `nproc`, `core`, ...)."""
    name: str
    soft: int
    hard: int


@dataclass
class ContainerSpec:
    """One container to run. `command`/`entrypoint` None means the image's Cmd/Entrypoint
    (Docker's rule: an entrypoint given without a command drops the image's Cmd)."""
    name: str
    image: str
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None                 # "name", "uid", "uid:gid", "name:group"
    cpu_shares: int | None = None
    memory_mib: int | None = None           # hard limit: beyond it the kernel OOM-kills
    memory_reservation_mib: int | None = None   # soft limit
    pids_limit: int | None = None
    ulimits: list[Ulimit] = field(default_factory=list)
    ports: list[PortMapping] = field(default_factory=list)
    network: str = "bridge"                 # "bridge" | "host" | "none"
    mounts: list[Mount] = field(default_factory=list)
    read_only_root: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    stop_timeout: int = 30
    # An init as PID 1 (ECS linuxParameters.initProcessEnabled, Docker's --init): it forwards
    # signals and reaps zombies, so a command that ignores SIGTERM as PID 1 still stops on it.
    init: bool = False


@dataclass
class ContainerState:
    """What a driver knows about one container. Times are epoch seconds."""
    id: str
    name: str
    status: str                             # "created" | "running" | "exited" | "unknown"
    exit_code: int | None = None            # 128+N when killed by signal N (137 = SIGKILL)
    oom_killed: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    created_at: float | None = None
    pid: int | None = None                  # its first process on the host, while it runs
    image_id: str | None = None             # the image's digest, where the engine has one
    ip_address: str | None = None           # its address on a bridge network


@dataclass(frozen=True)
class LogLine:
    """One line a container wrote; pass `cursor` back as `after=` to continue behind it."""
    timestamp: float
    stream: str                             # "stdout" | "stderr"
    text: str                               # without the line break
    cursor: str


@dataclass(frozen=True)
class ExecResult:
    """A command run inside a container; `exit_code` None means it timed out and was killed."""
    exit_code: int | None
    output: str


class DriverError(Exception):
    """A container operation failed; `reason` is the ECS stoppedReason prefix for it."""
    reason = "CannotStartContainerError"

    @property
    def stopped_reason(self) -> str:
        return f"{self.reason}: {self}"


class ImageNotFound(DriverError):
    """The image is neither present nor pullable."""
    reason = "CannotPullContainerError"


class CannotStart(DriverError):
    """The container cannot be created or started: bad command, impossible limit, engine error."""
    reason = "CannotStartContainerError"


class ContainerNotFound(DriverError):
    """No container with that id (already removed, or never created by this driver)."""
    reason = "CannotInspectContainerError"


class Driver(Protocol):
    name: str                               # "docker" | "runc" | "process"
    network_modes: frozenset[str]           # the ContainerSpec.network values it can run

    def create(self, spec: ContainerSpec) -> str:
        """Create (not start) a container; returns its id. Raises ImageNotFound, CannotStart."""

    def start(self, cid: str) -> None:
        """Start a created container. Raises CannotStart."""

    def state(self, cid: str) -> ContainerState:
        """The container's state now. Raises ContainerNotFound."""

    def wait(self, cid: str, timeout: float) -> ContainerState:
        """Block until the container has exited or `timeout` seconds passed; returns the state."""

    def stop(self, cid: str, timeout: float) -> None:
        """SIGTERM to the container's main process, SIGKILL to all of it after `timeout` s."""

    def remove(self, cid: str) -> None:
        """Kill if running and delete the container and its files. Idempotent."""

    def logs(self, cid: str, after: str | None = None, follow: bool = False) -> Iterator[LogLine]:
        """Lines written so far (behind cursor `after`); with `follow`, keep yielding new ones
        until the container has exited and its output is drained."""

    def exec(self, cid: str, cmd: list[str], timeout: float) -> ExecResult:
        """Run `cmd` inside the running container (health checks)."""

    def list(self, labels: dict[str, str]) -> list[ContainerState]:
        """Every container of this driver carrying all of `labels` (running or not)."""

    def offer(self, archives: Mapping[str, Path]) -> None:
        """Images this host has without a registry (berth's built-in ones: name → `docker
        save` archive), to run when a task names them."""

    def stats(self, cid: str) -> dict[str, Any]:
        """Its resource usage now, in the Docker Engine's stats format (drivers/stats.py).
        Raises ContainerNotFound."""

    def close(self) -> None:
        """Release client resources; containers keep running."""


def validate(spec: ContainerSpec, network_modes: frozenset[str]) -> None:
    """The checks every driver makes before asking its engine: raise CannotStart, never hang."""
    if spec.network not in network_modes:
        raise CannotStart(f"network mode {spec.network!r} is not supported by this driver "
                          f"(supported: {', '.join(sorted(network_modes))})")
    if spec.memory_mib is not None and spec.memory_mib < MIN_MEMORY_MIB:
        raise CannotStart(f"memory limit {spec.memory_mib} MiB is below the minimum of "
                          f"{MIN_MEMORY_MIB} MiB")
    if (spec.memory_reservation_mib is not None and spec.memory_mib is not None
            and spec.memory_reservation_mib > spec.memory_mib):
        raise CannotStart(f"memory reservation {spec.memory_reservation_mib} MiB exceeds the "
                          f"memory limit {spec.memory_mib} MiB")
    if spec.pids_limit is not None and spec.pids_limit < 1:
        raise CannotStart(f"pids limit {spec.pids_limit} must be at least 1")
    if spec.cpu_shares is not None and spec.cpu_shares < 2:
        raise CannotStart(f"cpu shares {spec.cpu_shares} must be at least 2")
    for port in spec.ports:
        if spec.network == "host" and port.host_port != port.container_port:
            raise CannotStart(f"in host network mode the host port must equal the container "
                              f"port (got {port.host_port} for {port.container_port})")
        if port.protocol not in ("tcp", "udp"):
            raise CannotStart(f"unknown port protocol {port.protocol!r}")
    for ulimit in spec.ulimits:
        if ulimit.soft > ulimit.hard:
            raise CannotStart(f"ulimit {ulimit.name}: soft limit {ulimit.soft} exceeds hard "
                              f"limit {ulimit.hard}")


def image_argv(spec: ContainerSpec, image_entrypoint: list[str] | None,
               image_cmd: list[str] | None) -> list[str]:
    """The process to run, by Docker's (and so ECS's) rules for overriding an image's defaults."""
    entrypoint = spec.entrypoint if spec.entrypoint is not None else (image_entrypoint or [])
    if spec.command is not None:
        cmd = spec.command
    elif spec.entrypoint is None:
        cmd = image_cmd or []
    else:
        cmd = []
    argv = [*entrypoint, *cmd]
    if not argv:
        raise CannotStart("no command specified: the image has neither Entrypoint nor Cmd")
    return argv
