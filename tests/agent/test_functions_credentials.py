"""Execution-role credentials for sandboxes: kept per role and function, reissued once half
spent, never issued for a function without a role; which sandboxes take newer ones and which
are retired instead."""
from __future__ import annotations

import json

from berth.agent.client import Credentials
from berth.agent.functions import credentials as role_credentials
from berth.agent.functions.credentials import RoleCredentials
from berth.lambda_.model import FunctionConfig


def config(name: str = "fn", role: str = "arn:aws:iam::000000000000:role/r",
           runtime: str = "python3.12", timeout: int = 3) -> FunctionConfig:
    return FunctionConfig("us-east-1", "000000000000", name, "$LATEST",
                          f"arn:aws:lambda:us-east-1:000000000000:function:{name}", runtime,
                          "app.handler", 128, timeout, "sha", "rev", role=role)


class Issuer:
    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.calls: list[tuple[str, str, float]] = []

    def __call__(self, role: str, session: str, seconds: float) -> Credentials:
        self.calls.append((role, session, seconds))
        return Credentials(f"ASIA{len(self.calls):016d}", "secret", "token",
                           self.clock[0] + seconds)


def test_credentials_are_kept_per_role_and_function_and_reissued_half_spent() -> None:
    now = [1000.0]
    issue = Issuer(now)
    roles = RoleCredentials(issue, lifetime=100, clock=lambda: now[0])
    first = roles.for_function(config())
    assert roles.for_function(config()) is first                    # a cold start: cached
    assert issue.calls == [("arn:aws:iam::000000000000:role/r", "fn", 100)]
    other = roles.for_function(config(name="other"))
    assert other is not first and issue.calls[-1][1] == "other"
    now[0] += 49
    assert roles.for_function(config()) is first
    now[0] += 2                                                     # past half its life
    second = roles.for_function(config())
    assert second is not first and second.expiration == now[0] + 100
    assert roles.for_function(config(role="")) is None
    assert len(issue.calls) == 3


def test_a_failed_issue_keeps_the_set_there_was() -> None:
    now = [0.0]
    issue = Issuer(now)
    roles = RoleCredentials(issue, lifetime=10, clock=lambda: now[0])
    first = roles.for_function(config())

    def broken(*_: object) -> Credentials:
        raise RuntimeError("store unavailable")
    roles.issue = broken
    now[0] = 6
    assert roles.for_function(config()) is first


def test_which_sandboxes_take_newer_credentials_and_which_expire() -> None:
    assert role_credentials.refreshes(config(runtime="python3.9"))
    assert role_credentials.refreshes(config(runtime="nodejs20.x"))
    assert not role_credentials.refreshes(config(runtime="provided.al2023"))
    creds = Credentials("ASIA1", "s", "t", 1000.0)
    assert not role_credentials.expiring(creds, config(timeout=30), now=1000 - 91)
    assert role_credentials.expiring(creds, config(timeout=30), now=1000 - 89)
    assert not role_credentials.expiring(None, config(), now=5000)


def test_the_environment_and_the_refresh_header_carry_the_whole_set() -> None:
    creds = Credentials("ASIA1", "the-secret", "the-token", 1_700_000_000.0)
    env = role_credentials.environment(creds)
    assert env == {"AWS_ACCESS_KEY_ID": "ASIA1", "AWS_SECRET_ACCESS_KEY": "the-secret",
                   "AWS_SESSION_TOKEN": "the-token",
                   "AWS_CREDENTIAL_EXPIRATION": "2023-11-14T22:13:20Z"}
    name, _, value = role_credentials.refresh_header(creds).rstrip("\r\n").partition(": ")
    assert name == "Berth-Aws-Credentials" and json.loads(value) == env
    assert "the-secret" not in repr(creds) and "the-token" not in repr(creds)
