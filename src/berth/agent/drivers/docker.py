"""The docker driver: containers on a Docker Engine through the `docker` SDK.

The engine does the work (images, cgroups, networks, logs); this module maps a ContainerSpec to
the Engine API and the Engine's answers back to ContainerState, CannotStart, ImageNotFound.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
import signal
import struct
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import docker
import docker.errors
import docker.types
import docker.utils

from ..images import HOST_IMAGE, normalize_name, runnable
from .base import (
    CannotStart,
    ContainerNotFound,
    ContainerSpec,
    ContainerState,
    DriverError,
    ExecResult,
    ImageNotFound,
    LogLine,
    validate,
)

log = logging.getLogger(__name__)

NAME_LABEL = "berth.name"       # the spec's name; Docker's own name must be unique per engine
BERTH_NETWORK = "berth"         # made when the engine has no default bridge (--bridge=none)
_BAD_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_.-]")
_STATUS = {"created": "created", "running": "running", "paused": "running",
           "restarting": "running", "exited": "exited", "dead": "exited", "removing": "exited"}


def parse_time(value: str | None) -> float | None:
    """Docker's RFC 3339 nanosecond times as epoch seconds; its zero time as None."""
    ns = parse_time_ns(value)
    return None if ns is None else ns / 1e9


def parse_time_ns(value: str | None) -> int | None:
    if not value or value.startswith("0001-01-01"):
        return None
    base, _, rest = value.partition(".")
    frac = re.match(r"\d*", rest).group(0) if rest else ""          # type: ignore[union-attr]
    zone = rest[len(frac):] if rest else base[19:]
    base = base[:19]
    stamp = datetime.fromisoformat(base + (zone.replace("Z", "+00:00") or "+00:00"))
    return int(stamp.timestamp()) * 10**9 + int((frac + "000000000")[:9])


class DockerDriver:
    name = "docker"
    network_modes = frozenset({"bridge", "host", "none"})

    def __init__(self, base_url: str, bridge_network: str | None = None, pull: bool = True,
                 timeout: float = 120.0) -> None:
        try:
            self.client = docker.DockerClient(base_url=base_url, timeout=int(timeout))
        except docker.errors.DockerException as exc:
            raise DriverError(f"cannot reach the Docker Engine at {base_url}: {exc}") from exc
        self.api = self.client.api
        self.local = base_url.startswith("unix://")
        self.pull = pull
        self._bridge = bridge_network
        self._bridge_lock = threading.Lock()
        self._offered: dict[str, Path] = {}

    def close(self) -> None:
        self.client.close()

    def offer(self, archives: Mapping[str, Path]) -> None:
        """Remembered, not loaded: an offered image enters the engine when a task names it."""
        self._offered = {normalize_name(name): path for name, path in archives.items()}

    # -- create / start ------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> str:
        validate(spec, self.network_modes)
        self._ensure_image(spec.image)
        mib = 1024 * 1024
        memory = spec.memory_mib * mib if spec.memory_mib else None
        bridged = spec.network == "bridge"
        host_config = self.api.create_host_config(
            network_mode=self._bridge_network() if bridged else spec.network,
            port_bindings={f"{p.container_port}/{p.protocol}": (p.host_ip, p.host_port)
                           for p in spec.ports} if bridged else None,
            cpu_shares=spec.cpu_shares, mem_limit=memory,
            memswap_limit=memory,       # no swap: a container over its limit is OOM-killed
            mem_reservation=spec.memory_reservation_mib * mib
            if spec.memory_reservation_mib else None,
            pids_limit=spec.pids_limit,
            ulimits=[docker.types.Ulimit(name=u.name, soft=u.soft, hard=u.hard)
                     for u in spec.ulimits] or None,
            mounts=[docker.types.Mount(m.target, m.source or "",
                                       type="bind" if m.source else "tmpfs",
                                       read_only=m.read_only) for m in spec.mounts] or None,
            read_only=spec.read_only_root or None,
            init=spec.init or None,
        )
        name = _BAD_NAME_CHARS.sub("-", spec.name).lstrip("-_.") or "container"
        try:
            created = self.api.create_container(
                spec.image, command=spec.command, entrypoint=spec.entrypoint,
                environment=spec.environment, working_dir=spec.working_dir or None,
                user=spec.user or None, labels={**spec.labels, NAME_LABEL: spec.name},
                ports=[(p.container_port, p.protocol) for p in spec.ports] if bridged else None,
                host_config=host_config, name=f"{name}-{secrets.token_hex(4)}",
                stop_timeout=spec.stop_timeout)
        except docker.errors.ImageNotFound as exc:
            raise ImageNotFound(_explain(exc)) from exc
        except docker.errors.APIError as exc:
            raise CannotStart(_explain(exc)) from exc
        return created["Id"]

    def _ensure_image(self, image: str) -> None:
        if image == HOST_IMAGE:
            raise ImageNotFound("the image 'host' runs on the host's own file system, which the"
                                " docker driver does not offer (the runc driver does)")
        try:
            self.api.inspect_image(image)
            return
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise ImageNotFound(_explain(exc)) from exc
        offered = self._offered.get(normalize_name(image))
        if offered is not None:
            try:
                with open(offered, "rb") as archive:
                    for _ in self.api.load_image(archive):
                        pass
                return
            except (OSError, docker.errors.APIError) as exc:
                log.warning("loading built-in image %s from %s: %s", image, offered, exc)
        why = "berth pulls from no registry"
        if self.pull:
            repository, tag = docker.utils.parse_repository_tag(image)
            try:
                self.client.images.pull(repository, tag=tag or "latest")
                return
            except docker.errors.APIError as exc:
                why = f"pulling it failed: {_explain(exc)}"
        raise ImageNotFound(f"image {image!r} is not on the Docker Engine and {why}; this host "
                            f"can run {runnable(self._local_images())}")

    def _local_images(self) -> list[str]:
        """The engine's tagged images and the offered ones (loaded when first used)."""
        try:
            tags = {t for img in self.api.images() for t in img.get("RepoTags") or []
                    if t != "<none>:<none>"}
        except docker.errors.APIError:
            tags = set()
        return sorted(tags | set(self._offered))

    def _bridge_network(self) -> str:
        with self._bridge_lock:
            if self._bridge is None:
                names = {n["Name"] for n in self.api.networks()}
                if "bridge" in names:
                    self._bridge = "bridge"
                else:
                    if BERTH_NETWORK not in names:
                        try:
                            self.api.create_network(BERTH_NETWORK, driver="bridge")
                        except docker.errors.APIError as exc:
                            if exc.status_code != 409:     # made meanwhile by another agent
                                raise CannotStart(_explain(exc)) from exc
                    self._bridge = BERTH_NETWORK
            return self._bridge

    def start(self, cid: str) -> None:
        try:
            self.api.start(cid)
        except docker.errors.NotFound as exc:
            raise ContainerNotFound(_explain(exc)) from exc
        except docker.errors.APIError as exc:
            raise CannotStart(_explain(exc)) from exc

    # -- observe -------------------------------------------------------------------------

    def _inspect(self, cid: str) -> dict[str, Any]:
        try:
            return self.api.inspect_container(cid)
        except docker.errors.NotFound as exc:
            raise ContainerNotFound(f"no container {cid!r}") from exc

    def state(self, cid: str) -> ContainerState:
        return _state(self._inspect(cid))

    def wait(self, cid: str, timeout: float) -> ContainerState:
        deadline = time.monotonic() + timeout
        while True:
            st = self.state(cid)
            if st.status == "exited" or time.monotonic() >= deadline:
                return st
            time.sleep(0.05)

    def stats(self, cid: str) -> dict[str, Any]:
        try:
            return dict(self.api.stats(cid, stream=False, one_shot=True))
        except docker.errors.NotFound as exc:
            raise ContainerNotFound(f"no container {cid!r}") from exc
        except docker.errors.APIError as exc:
            raise DriverError(_explain(exc)) from exc

    def list(self, labels: dict[str, str]) -> list[ContainerState]:
        found = self.api.containers(all=True, filters={"label": [f"{k}={v}"
                                                                 for k, v in labels.items()]})
        states = []
        for summary in found:
            try:
                states.append(self.state(summary["Id"]))
            except ContainerNotFound:
                continue        # removed meanwhile
        return states

    def logs(self, cid: str, after: str | None = None, follow: bool = False) -> Iterator[LogLine]:
        after_ns = int(after) if after else 0
        params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow)}
        if after_ns:
            params["since"] = f"{after_ns // 10**9}.{after_ns % 10**9:09d}"
        # The SDK's logs() drops which stream a chunk came from; read the frames ourselves.
        res = self.api._get(self.api._url("/containers/{0}/logs", cid), params=params,
                            stream=True)
        if res.status_code == 404:
            raise ContainerNotFound(f"no container {cid!r}")
        self.api._raise_for_status(res)
        if follow:
            self.api._disable_socket_timeout(self.api._get_raw_response_socket(res))
        pending = {1: b"", 2: b""}
        try:
            while True:
                header = res.raw.read(8)
                if len(header) < 8:
                    break
                stream_id, length = struct.unpack(">BxxxL", header)
                data = res.raw.read(length) if length else b""
                lines = (pending.get(stream_id, b"") + data).split(b"\n")
                pending[stream_id] = lines.pop()
                for raw in lines:
                    line = _log_line(stream_id, raw, after_ns)
                    if line is not None:
                        yield line
            for stream_id, raw in pending.items():
                line = _log_line(stream_id, raw, after_ns) if raw else None
                if line is not None:
                    yield line
        finally:
            res.close()

    # -- act -----------------------------------------------------------------------------

    def stop(self, cid: str, timeout: float) -> None:
        try:
            self.api.stop(cid, timeout=max(0, round(timeout)))
        except docker.errors.NotFound as exc:
            raise ContainerNotFound(f"no container {cid!r}") from exc
        except docker.errors.APIError as exc:
            raise DriverError(_explain(exc)) from exc

    def remove(self, cid: str) -> None:
        try:
            self.api.remove_container(cid, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:      # removal already in progress
                raise DriverError(_explain(exc)) from exc

    def exec(self, cid: str, cmd: list[str], timeout: float) -> ExecResult:
        try:
            exec_id = self.api.exec_create(cid, cmd, stdout=True, stderr=True)["Id"]
        except docker.errors.NotFound as exc:
            raise ContainerNotFound(f"no container {cid!r}") from exc
        except docker.errors.APIError as exc:
            raise DriverError(_explain(exc)) from exc
        result: dict[str, bytes] = {}

        def run() -> None:
            try:
                result["out"] = self.api.exec_start(exec_id)
            except docker.errors.APIError as exc:
                result["out"] = _explain(exc).encode()

        worker = threading.Thread(target=run, name=f"exec-{cid[:12]}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            self._kill_exec(exec_id)
            worker.join(5)
            return ExecResult(None, result.get("out", b"").decode(errors="replace"))
        info = self.api.exec_inspect(exec_id)
        return ExecResult(info.get("ExitCode"), result.get("out", b"").decode(errors="replace"))

    def _kill_exec(self, exec_id: str) -> None:
        """The Engine API cannot kill an exec; on a local engine its host pid can be."""
        pid = self.api.exec_inspect(exec_id).get("Pid")
        if self.local and pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        elif pid:
            log.warning("exec %s timed out on a remote engine and keeps running", exec_id[:12])


def _state(info: dict[str, Any]) -> ContainerState:
    s = info.get("State") or {}
    status = _STATUS.get(s.get("Status", ""), "unknown")
    labels = dict((info.get("Config") or {}).get("Labels") or {})
    name = labels.pop(NAME_LABEL, (info.get("Name") or "").lstrip("/"))
    started = parse_time(s.get("StartedAt"))
    finished = parse_time(s.get("FinishedAt")) if status == "exited" else None
    if started is not None and finished is not None and finished < started:
        # The engine stamps start and exit from different events; a container that exits
        # at once can come back ending a fraction of a millisecond before it started.
        finished = started
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    address = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)
    return ContainerState(
        id=info["Id"], name=name, status=status,
        exit_code=s.get("ExitCode") if status == "exited" else None,
        oom_killed=bool(s.get("OOMKilled")), started_at=started, finished_at=finished,
        error=s.get("Error") or None, labels=labels, created_at=parse_time(info.get("Created")),
        pid=s.get("Pid") or None if status == "running" else None,
        image_id=info.get("Image") or None, ip_address=address)


def _log_line(stream_id: int, raw: bytes, after_ns: int) -> LogLine | None:
    stamp, _, text = raw.partition(b" ")
    ts = parse_time_ns(stamp.decode(errors="replace"))
    if ts is None or ts <= after_ns:
        return None
    return LogLine(ts / 1e9, "stderr" if stream_id == 2 else "stdout",
                   text.decode(errors="replace"), str(ts))


def _explain(exc: docker.errors.APIError) -> str:
    """The Engine's own message, without the SDK's HTTP decoration."""
    explanation = getattr(exc, "explanation", None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc).strip()
