"""berth's assignment channel: an agent long-polls for its instance's desired state.

    POST /_berth/agent/v1/poll          (SigV4-signed, service "ecs", like every berth call)
    {"containerInstance": ARN, "cluster": NAME?, "token": LAST_TOKEN?, "waitSeconds": 0-25}
 -> {"containerInstanceArn", "status", "token", "tasks": [Task + taskDefinition + hostPorts]}

The answer is level-triggered: every task on the instance not yet STOPPED, with its
desiredStatus, so an agent that missed an answer loses nothing. It comes back at once when the
state differs from `token`, else when it changes or `waitSeconds` pass. Handing a PROVISIONING
task out makes it PENDING. A held poll is the agent's heartbeat.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..api import protocol, sigv4
from ..api.body import BodyLimits, ClientGone, RequestBody
from ..api.errors import ServiceError

if TYPE_CHECKING:
    from .service import EcsService

log = logging.getLogger(__name__)

PREFIX = "/_berth/agent/"
POLL_PATH = "/_berth/agent/v1/poll"
# Container health from the agents' health checks (ECS's state changes have no member for it):
# {"cluster"?, "task", "containers": [{"containerName", "healthStatus"}]}
HEALTH_PATH = "/_berth/agent/v1/health"
HEALTH_STATUSES = ("HEALTHY", "UNHEALTHY", "UNKNOWN")
MAX_WAIT = 25.0
RECHECK = 2.0          # re-read the store this often while holding a poll (other replicas)
MAX_BODY = 64 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class AgentChannel:
    """An ASGI app for PREFIX, mounted beside the AWS API (ApiApp `extra`)."""

    def __init__(self, ecs: EcsService, lookup_secret: sigv4.SecretLookup,
                 body_limits: BodyLimits) -> None:
        self.ecs = ecs
        self.lookup_secret = lookup_secret
        self.body_limits = body_limits
        self.closing = False

    def close(self) -> None:
        """The server is stopping: answer the held polls now, or the graceful shutdown waits
        for each of them to run out."""
        self.closing = True
        self.ecs.wakeups.all_instances()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_body = RequestBody(receive, headers, self.body_limits)
        try:
            if scope["path"] not in (POLL_PATH, HEALTH_PATH):
                raise ServiceError("UnknownOperationException",
                                   f"No agent operation at {scope['path']}", status=404)
            if scope["method"] != "POST":
                raise ServiceError("UnknownOperationException", "Use POST.", status=405)
            raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
            pending = sigv4.check("POST", raw_path.split("?", 1)[0],
                                  scope.get("query_string", b"").decode("latin-1"), headers,
                                  self.lookup_secret, service="ecs")
            body = await request_body.read(MAX_BODY, throttled=lambda: ServiceError(
                "ThrottlingException", "Rate exceeded"))
            request_body.release()
            identity = pending.verify(request_body.sha256)
            if scope["path"] == HEALTH_PATH:
                await asyncio.to_thread(self.ecs.submit_container_health, identity.region,
                                        _parse_health(body))
                status, payload = 200, {"acknowledgment": "true"}
            else:
                req = _parse(body)
                status, payload = 200, await self._poll(identity.region, req, receive)
        except ClientGone:
            return
        except ServiceError as exc:
            status = exc.status or 400
            payload = {"__type": exc.code, "message": exc.message}
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("agent poll failed")
            status, payload = 500, {"__type": "InternalFailure",
                                    "message": "An internal error occurred."}
        finally:
            request_body.release()
        data = protocol.dumps(payload)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    async def _poll(self, region: str, req: dict[str, Any], receive: Receive) -> dict[str, Any]:
        ecs = self.ecs
        seen = req.get("token") or ""
        wait = min(max(float(req.get("waitSeconds", 20)), 0.0), MAX_WAIT)
        deadline = time.monotonic() + wait
        current = await asyncio.to_thread(ecs.assignment, region, req.get("cluster"),
                                          req["containerInstance"])
        arn = current.instance_arn
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            while current.token == seen and not gone.done() and not self.closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await ecs.wakeups.wait_instance(arn, min(left, RECHECK))
                token = await asyncio.to_thread(ecs.held_poll_token, arn)
                if token != current.token:
                    current = await asyncio.to_thread(ecs.assignment, region,
                                                      req.get("cluster"), arn)
        finally:
            gone.cancel()
        return {"containerInstanceArn": arn, "status": current.instance_status,
                "token": current.token, "tasks": current.tasks}


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _parse(body: bytes) -> dict[str, Any]:
    try:
        req = json.loads(body or b"{}")
    except ValueError:
        raise ServiceError("SerializationException", "The body is not valid JSON.") from None
    if not isinstance(req, dict) or not isinstance(req.get("containerInstance"), str):
        raise ServiceError("InvalidParameterException",
                           "containerInstance (an ARN or id) is required.")
    if "waitSeconds" in req and not isinstance(req["waitSeconds"], (int, float)):
        raise ServiceError("InvalidParameterException", "waitSeconds must be a number.")
    if req.get("cluster") is not None and not isinstance(req["cluster"], str):
        raise ServiceError("InvalidParameterException", "cluster must be a string.")
    return req


def _parse_health(body: bytes) -> dict[str, Any]:
    try:
        req = json.loads(body or b"{}")
    except ValueError:
        raise ServiceError("SerializationException", "The body is not valid JSON.") from None
    if (not isinstance(req, dict) or not isinstance(req.get("task"), str)
            or not isinstance(req.get("containers"), list)):
        raise ServiceError("InvalidParameterException", "task and containers are required.")
    for c in req["containers"]:
        if (not isinstance(c, dict) or not isinstance(c.get("containerName"), str)
                or c.get("healthStatus") not in HEALTH_STATUSES):
            raise ServiceError("InvalidParameterException",
                               "Each container needs a containerName and a healthStatus of "
                               + ", ".join(HEALTH_STATUSES) + ".")
    if req.get("cluster") is not None and not isinstance(req["cluster"], str):
        raise ServiceError("InvalidParameterException", "cluster must be a string.")
    return req
