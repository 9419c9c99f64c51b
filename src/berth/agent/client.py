"""The agent's client for berth's control plane: ECS and CloudWatch Logs operations (AWS JSON
1.1), STS AssumeRole (query) for its tasks' roles, and the assignment long poll, each signed
with SigV4 as any AWS SDK signs.

Errors are two types: `Unreachable` (no answer: connection refused, timeout, a 5xx) — the
caller retries later — and `ApiError` (the server answered no, with an AWS error code).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

log = logging.getLogger(__name__)

ECS_TARGET = "AmazonEC2ContainerServiceV20141113"
LOGS_TARGET = "Logs_20140328"
POLL_PATH = "/_berth/agent/v1/poll"
HEALTH_PATH = "/_berth/agent/v1/health"
JSON_11 = "application/x-amz-json-1.1"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
STS_VERSION = "2011-06-15"
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


@dataclass(frozen=True)
class Credentials:
    """Keys that sign requests: the admin's, or temporary ones of a role (with their session
    token and expiry, epoch seconds). The secret and the token never show in a repr."""
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expiration: float | None = None


class Unreachable(Exception):
    """No usable answer from the control plane; worth trying again later."""


class ApiError(Exception):
    """The control plane refused the call with an AWS error."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class ControlPlane:
    """`renew`, when given, is asked for the credentials before every call (a role's,
    renewed before they expire) instead of signing with `credentials` throughout."""

    def __init__(self, endpoint: str, credentials: Credentials, region: str,
                 timeout: float = 30.0,
                 renew: Callable[[], Awaitable[Credentials]] | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.credentials = credentials
        self.renew = renew
        self.region = region
        self._boto_credentials = BotoCredentials(credentials.access_key, credentials.secret_key,
                                                 credentials.session_token)
        # The agent's connections go to its own control plane, never through a proxy.
        self._http = httpx.AsyncClient(timeout=timeout, trust_env=False)

    async def close(self) -> None:
        await self._http.aclose()

    async def ecs(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("ecs", self.region, "/", body,
                                {"X-Amz-Target": f"{ECS_TARGET}.{operation}"})

    async def logs(self, operation: str, body: dict[str, Any], region: str | None = None
                   ) -> dict[str, Any]:
        return await self._call("logs", region or self.region, "/", body,
                                {"X-Amz-Target": f"{LOGS_TARGET}.{operation}"})

    async def poll(self, body: dict[str, Any], wait: float) -> dict[str, Any]:
        """berth's assignment channel: held by the server for up to `wait` seconds."""
        return await self._call("ecs", self.region, POLL_PATH, {**body, "waitSeconds": wait},
                                {}, timeout=wait + 15.0)

    async def health(self, body: dict[str, Any]) -> dict[str, Any]:
        """berth's container health report: {"cluster", "task", "containers":
        [{"containerName", "healthStatus"}]} (ECS's state changes have no member for it)."""
        return await self._call("ecs", self.region, HEALTH_PATH, body, {})

    async def assume_role(self, role_arn: str, session_name: str, seconds: int
                          ) -> Credentials:
        """STS AssumeRole: temporary credentials of `role_arn` (a task's role)."""
        data = urlencode({"Action": "AssumeRole", "Version": STS_VERSION, "RoleArn": role_arn,
                          "RoleSessionName": session_name,
                          "DurationSeconds": str(seconds)}).encode()
        resp = await self._post("sts", self.region, "/", data, {"Content-Type": FORM})
        if resp.status_code != 200:
            code, message = _xml_error(resp)
            if resp.status_code >= 500:
                raise Unreachable(f"{self.endpoint}: {resp.status_code} {code}: {message}")
            raise ApiError(code, message, resp.status_code)
        try:
            creds = ElementTree.fromstring(resp.content).find(
                f"{{{STS_NAMESPACE}}}AssumeRoleResult/{{{STS_NAMESPACE}}}Credentials")
            value = {child.tag.rpartition("}")[2]: child.text or "" for child in creds or ()}
            expiration = dt.datetime.fromisoformat(value["Expiration"].replace("Z", "+00:00"))
            return Credentials(value["AccessKeyId"], value["SecretAccessKey"],
                               value["SessionToken"], expiration.timestamp())
        except (ElementTree.ParseError, KeyError, ValueError) as exc:
            raise Unreachable(f"{self.endpoint}: AssumeRole answered no credentials") from exc

    async def _post(self, service: str, region: str, path: str, data: bytes,
                    headers: dict[str, str], timeout: float | None = None) -> httpx.Response:
        url = self.endpoint + path
        if self.renew is not None:
            credentials = await self.renew()
            if credentials is not self.credentials:
                self.credentials = credentials
                self._boto_credentials = BotoCredentials(
                    credentials.access_key, credentials.secret_key, credentials.session_token)
        request = AWSRequest("POST", url, data=data, headers=headers)
        SigV4Auth(self._boto_credentials, service, region).add_auth(request)
        try:
            return await self._http.post(url, content=data,
                                         headers=dict(request.headers.items()),
                                         timeout=timeout if timeout is not None else
                                         httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{self.endpoint}: {type(exc).__name__}: {exc}") from exc

    async def _call(self, service: str, region: str, path: str, body: dict[str, Any],
                    headers: dict[str, str], timeout: float | None = None) -> dict[str, Any]:
        resp = await self._post(service, region, path, json.dumps(body).encode(),
                                {"Content-Type": JSON_11, **headers}, timeout)
        if resp.status_code == 200:
            try:
                answer = resp.json() if resp.content else {}
            except ValueError as exc:
                raise Unreachable(f"{self.endpoint}: the answer is not JSON") from exc
            return answer if isinstance(answer, dict) else {}
        code, message = _error(resp)
        if resp.status_code >= 500 or code in ("ThrottlingException", "ServiceUnavailable"):
            raise Unreachable(f"{self.endpoint}: {resp.status_code} {code}: {message}")
        raise ApiError(code, message, resp.status_code)


def _xml_error(resp: httpx.Response) -> tuple[str, str]:
    try:
        error = ElementTree.fromstring(resp.content).find(f"{{{STS_NAMESPACE}}}Error")
    except ElementTree.ParseError:
        error = None
    if error is None:
        return f"HTTP{resp.status_code}", resp.text[:200]
    fields = {child.tag.rpartition("}")[2]: child.text or "" for child in error}
    return fields.get("Code", f"HTTP{resp.status_code}"), fields.get("Message", "")


def _error(resp: httpx.Response) -> tuple[str, str]:
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP{resp.status_code}", resp.text[:200]
    if not isinstance(body, dict):
        return f"HTTP{resp.status_code}", str(body)[:200]
    code = str(body.get("__type") or body.get("code") or f"HTTP{resp.status_code}")
    code = code.rsplit("#", 1)[-1]
    return code, str(body.get("message") or body.get("Message") or "")
