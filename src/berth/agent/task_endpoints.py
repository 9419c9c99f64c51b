"""The ECS endpoints a task's containers call: task metadata (v3 and v4: `/`, `/task`,
`/stats`, `/task/stats`) and task-role credentials (v2), as the ECS agent serves them.

Containers on the host's network (runc, process, docker `host`) reach one listener of the
agent on 127.0.0.1 and get `AWS_CONTAINER_CREDENTIALS_FULL_URI` with an
`AWS_CONTAINER_AUTHORIZATION_TOKEN` (every SDK accepts a loopback full URI). A container in a
network namespace of its own (docker `bridge`) gets AWS's own address inside that namespace:
169.254.170.2 (port 80) serves its metadata and its task's credentials at the relative URI
AWS uses, and 169.254.170.2:4750 forwards to berth, as its AWS_ENDPOINT_URL. Those listeners
are made once the container runs: an SDK asking for credentials in its first milliseconds
retries (they all do).

Ids in the URIs and the token are derived from a key the agent keeps (state.json), so a
restarted agent answers the containers it adopts at the URIs they were given.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import netns, task_metadata
from .client import ApiError, ControlPlane, Credentials, Unreachable
from .drivers.base import ContainerNotFound, ContainerSpec, ContainerState, Driver, DriverError

if TYPE_CHECKING:
    from .task_runner import ContainerRun, TaskRunner

log = logging.getLogger(__name__)

LINK_LOCAL = "169.254.170.2"
LINK_LOCAL_PORT = 80
FORWARD_PORT = 4750                 # berth's API, forwarded, inside a task's namespace
ROLE_SECONDS = 6 * 3600             # a task role's credentials last six hours, as on ECS
REFRESH_BEFORE = 30 * 60.0          # ... and are renewed half an hour before they expire
MAX_REQUEST = 16 * 1024
READ_TIMEOUT = 10.0


@dataclass(frozen=True)
class Scope:
    """Which tasks a listener answers for: every task (the host's, with a token) or one."""
    runner: TaskRunner | None


class TaskEndpoints:
    def __init__(self, api: ControlPlane, driver: Driver, availability_zone: str, key: bytes,
                 port: int) -> None:
        self.api = api
        self.driver = driver
        self.availability_zone = availability_zone
        self.key = key
        self.port = port
        self.containers: dict[str, tuple[TaskRunner, str]] = {}    # metadata id -> container
        self.tasks: dict[str, TaskRunner] = {}                      # credentials id -> task
        self.roles: dict[tuple[str, str], Credentials] = {}
        self._role_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._servers: dict[str, list[asyncio.AbstractServer]] = {}   # by task ARN
        self._host: asyncio.AbstractServer | None = None
        self._last_stats: dict[str, dict[str, Any]] = {}

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> int:
        """Listen on the host's loopback; returns the port (the one asked for, else any)."""
        try:
            self._host = await asyncio.start_server(self._serve_host, "127.0.0.1", self.port)
        except OSError:
            log.warning("task metadata port %d is taken; using another", self.port)
            self._host = await asyncio.start_server(self._serve_host, "127.0.0.1", 0)
        self.port = self._host.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        for servers in list(self._servers.values()):
            for server in servers:
                server.close()
        self._servers.clear()
        if self._host is not None:
            self._host.close()

    # -- tasks ---------------------------------------------------------------------------

    def _id(self, *parts: str) -> str:
        digest = hmac.new(self.key, "\0".join(parts).encode(), hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def register(self, runner: TaskRunner) -> ControlPlane:
        """Serve the task's containers; returns the client the agent's own calls for the task
        (awslogs) go through: signed as its execution role, where it has one."""
        for name in runner.runs:
            self.containers[self._id("metadata", runner.arn, name)] = (runner, name)
        if runner.plan.info.task_role_arn:
            self.tasks[self._id("credentials", runner.arn)] = runner
        role = runner.plan.info.execution_role_arn
        if not role:
            return self.api
        task_id = runner.plan.task_id
        return ControlPlane(self.api.endpoint, self.api.credentials, self.api.region,
                            renew=lambda: self.role_credentials(role, task_id))

    async def unregister(self, runner: TaskRunner) -> None:
        for name in runner.runs:
            self.containers.pop(self._id("metadata", runner.arn, name), None)
        self.tasks.pop(self._id("credentials", runner.arn), None)
        for server in self._servers.pop(runner.arn, []):
            server.close()
        for key in [k for k in self.roles if k[1] == runner.plan.task_id]:
            self.roles.pop(key, None)
            self._role_locks.pop(key, None)
        if runner.api is not self.api:
            await runner.api.close()

    def token(self, runner: TaskRunner) -> str:
        return self._id("token", runner.arn).replace("-", "")

    def spec_for(self, runner: TaskRunner, name: str, endpoint: str,
                 region: str) -> ContainerSpec:
        """The container's spec with what reaches berth and the task's metadata and role:
        region and endpoint unless the task sets them, the endpoints' variables always."""
        spec = runner.runs[name].plan.spec
        ours = self.environment(runner, name, endpoint)
        defaults = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
        if "AWS_ENDPOINT_URL" in ours:
            defaults["AWS_ENDPOINT_URL"] = ours.pop("AWS_ENDPOINT_URL")
        return replace(spec, environment={**defaults, **spec.environment, **ours})

    def environment(self, runner: TaskRunner, name: str, endpoint: str) -> dict[str, str]:
        """The variables a container is given; `endpoint` is berth's as this host reaches
        it. A container in its own network namespace (bridge) uses AWS's link-local address;
        one on the host's network this host's loopback; one without a network none."""
        metadata = self._id("metadata", runner.arn, name)
        env = {"AWS_EXECUTION_ENV": "AWS_ECS_EC2"}
        if runner.plan.network == "none":
            return env          # no network: nothing it could reach
        if runner.plan.network == "bridge":
            base = f"http://{LINK_LOCAL}"
            scheme = urlsplit(endpoint).scheme or "http"
            env["AWS_ENDPOINT_URL"] = f"{scheme}://{LINK_LOCAL}:{FORWARD_PORT}"
        else:
            base = f"http://127.0.0.1:{self.port}"
            env["AWS_ENDPOINT_URL"] = endpoint
        env["ECS_CONTAINER_METADATA_URI_V4"] = f"{base}/v4/{metadata}"
        env["ECS_CONTAINER_METADATA_URI"] = f"{base}/v3/{metadata}"
        if runner.plan.info.task_role_arn:
            path = f"/v2/credentials/{self._id('credentials', runner.arn)}"
            if runner.plan.network == "bridge":
                env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = path
            else:
                env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = base + path
                env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = self.token(runner)
        return env

    async def attach(self, runner: TaskRunner, run: ContainerRun, endpoint: str) -> None:
        """For a running container in a network namespace of its own: serve it at
        169.254.170.2 there, and forward 169.254.170.2:4750 to berth at `endpoint`."""
        if runner.plan.network != "bridge" or not run.cid:
            return
        try:
            state = await asyncio.to_thread(self.driver.state, run.cid)
            if state.pid is None:
                return
            socks = await asyncio.to_thread(netns.listen_in, f"/proc/{state.pid}/ns/net",
                                            LINK_LOCAL, [LINK_LOCAL_PORT, FORWARD_PORT])
        except (OSError, DriverError) as exc:
            log.warning("task %s: no metadata endpoint in container %s's network: %s",
                        runner.plan.task_id, run.plan.name, exc)
            return
        target = urlsplit(endpoint)
        port = target.port or (443 if target.scheme == "https" else 80)
        servers = [
            await asyncio.start_server(lambda r, w: self._serve(r, w, Scope(runner)),
                                       sock=socks[0]),
            await asyncio.start_server(lambda r, w: _forward(r, w, target.hostname or "", port),
                                       sock=socks[1])]
        self._servers.setdefault(runner.arn, []).extend(servers)

    # -- credentials ---------------------------------------------------------------------

    async def role_credentials(self, role_arn: str, session: str) -> Credentials:
        """The role's credentials for `session`, assumed through STS, renewed before they
        expire."""
        key = (role_arn, session)
        lock = self._role_locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self.roles.get(key)
            if found is None or (found.expiration or 0) - time.time() < REFRESH_BEFORE:
                found = await self.api.assume_role(role_arn, session, ROLE_SECONDS)
                self.roles[key] = found
            return found

    # -- HTTP ----------------------------------------------------------------------------

    async def _serve_host(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        await self._serve(reader, writer, Scope(None))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     scope: Scope) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            if len(head) > MAX_REQUEST:
                raise ValueError("request head too large")
            line, *fields = head.decode("latin-1").split("\r\n")
            method, path, _ = line.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (f.partition(":") for f in fields if f)}
            status, body = await self.answer(method, path.split("?", 1)[0], headers, scope)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ValueError, ConnectionError):
            writer.close()
            return
        data = json.dumps(body).encode()
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                  405: "Method Not Allowed", 500: "Internal Server Error"}.get(status, "")
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
                     .encode() + data)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    async def answer(self, method: str, path: str, headers: dict[str, str],
                     scope: Scope) -> tuple[int, Any]:
        if method != "GET":
            return 405, {"message": "Only GET is allowed"}
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["v2", "credentials"] and len(parts) == 3:
            return await self._credentials(parts[2], headers, scope)
        if len(parts) >= 2 and parts[0] in ("v3", "v4"):
            return await self._metadata(int(parts[0][1]), parts[1], parts[2:], scope)
        return 404, {"message": f"No endpoint at {path}"}

    async def _credentials(self, ident: str, headers: dict[str, str],
                           scope: Scope) -> tuple[int, Any]:
        runner = self.tasks.get(ident)
        if runner is None or (scope.runner is not None and scope.runner is not runner):
            return 400, {"code": "InvalidIdInRequest",
                         "message": "CredentialsV2Request: Credentials not found"}
        if scope.runner is None and not hmac.compare_digest(
                headers.get("authorization", ""), self.token(runner)):
            return 401, {"code": "AccessDenied", "message": "Authorization token is invalid"}
        role = runner.plan.info.task_role_arn or ""
        try:
            creds = await self.role_credentials(role, runner.plan.task_id)
        except (ApiError, Unreachable) as exc:
            log.warning("task %s: no credentials for role %s: %s", runner.plan.task_id,
                        role, exc)
            return 500, {"code": "InternalServerError",
                         "message": f"Could not get credentials for {role}: {exc}"}
        return 200, {"RoleArn": role, "AccessKeyId": creds.access_key,
                     "SecretAccessKey": creds.secret_key, "Token": creds.session_token,
                     "Expiration": task_metadata.iso_seconds(creds.expiration)}

    async def _metadata(self, version: int, ident: str, rest: list[str],
                        scope: Scope) -> tuple[int, Any]:
        found = self.containers.get(ident)
        if found is None or (scope.runner is not None and scope.runner is not found[0]):
            return 404, {"message": "Unable to find container for the endpoint"}
        runner, name = found
        if rest == []:
            state = await self._state(runner.runs[name])
            return 200, task_metadata.container_view(runner, runner.runs[name], state, version)
        if rest == ["task"]:
            states = {n: await self._state(r) for n, r in runner.runs.items()}
            return 200, task_metadata.task_view(runner, states, version,
                                                self.availability_zone)
        if rest == ["stats"]:
            return 200, await self._stats(runner.runs[name])
        if rest == ["task", "stats"]:
            return 200, {r.cid: await self._stats(r) for r in runner.runs.values() if r.cid}
        return 404, {"message": "No such metadata path"}

    async def _state(self, run: ContainerRun) -> ContainerState | None:
        if not run.cid:
            return None
        try:
            return await asyncio.to_thread(self.driver.state, run.cid)
        except DriverError:
            return None

    async def _stats(self, run: ContainerRun) -> dict[str, Any] | None:
        if not run.cid or run.status != "RUNNING":
            return None
        try:
            sample = await asyncio.to_thread(self.driver.stats, run.cid)
        except (ContainerNotFound, DriverError):
            return None
        previous = self._last_stats.get(run.cid)
        if previous is not None:
            sample["precpu_stats"] = previous.get("cpu_stats", sample.get("precpu_stats"))
            sample["preread"] = previous.get("read", sample.get("preread"))
        self._last_stats[run.cid] = sample
        return sample


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   host: str, port: int) -> None:
    """Splice one connection from a task's namespace to berth, both ways."""
    try:
        up_reader, up_writer = await asyncio.open_connection(host, port)
    except OSError:
        writer.close()
        return

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(1 << 16):
                dst.write(data)
                await dst.drain()
        except ConnectionError:
            pass
        finally:
            try:
                if dst.can_write_eof():
                    dst.write_eof()
            except OSError:
                pass

    try:
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    finally:
        up_writer.close()
        writer.close()
