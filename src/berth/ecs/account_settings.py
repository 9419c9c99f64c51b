"""ECS account settings: Put/ListAccountSettings, PutAccountSettingDefault, DeleteAccountSetting.

A setting is kept per region for a principal (a user, a role or the root user) or as the
account's default; a principal's effective value is its own, else the account default, else
AWS's. berth signs callers in with the account's keys, so the caller is the root user.
berth forms long ARNs whatever the ARN-format settings say, and runs no Fargate; it keeps
and returns these settings as AWS does. New clusters take containerInsights from here.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..state.store import Store
from . import errors, paging
from .schema import account_settings

# Setting name -> (values it takes, AWS's value when nobody set one).
SETTINGS: dict[str, tuple[tuple[str, ...], str]] = {
    "serviceLongArnFormat": (("enabled", "disabled"), "enabled"),
    "taskLongArnFormat": (("enabled", "disabled"), "enabled"),
    "containerInstanceLongArnFormat": (("enabled", "disabled"), "enabled"),
    "awsvpcTrunking": (("enabled", "disabled"), "disabled"),
    "containerInsights": (("enabled", "disabled", "enhanced"), "disabled"),
    "fargateFIPSMode": (("enabled", "disabled"), "disabled"),
    "tagResourceAuthorization": (("on", "off"), "on"),
    "fargateTaskRetirementWaitPeriod": (("0", "7", "14"), "7"),
    "guardDutyActivate": (("on", "off"), "off"),
    "defaultLogDriverMode": (("blocking", "non-blocking"), "non-blocking"),
    "fargateEventWindows": (("enabled", "disabled"), "disabled"),
}
READ_ONLY = ("guardDutyActivate",)
DEFAULT = "default"     # the principal key of the account-wide default

_t = account_settings


# A principal's own settings and the account's defaults; built once (see Store.rows).
_LIST = sa.select(_t.c.principal, _t.c.name, _t.c.value).where(
    _t.c.region == sa.bindparam("region"),
    sa.or_(_t.c.principal == sa.bindparam("principal"),
           _t.c.principal == sa.bindparam("default")))


def root_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def _check(name: str, value: str) -> None:
    if name in READ_ONLY:
        raise errors.invalid(f"{name} is a read-only setting managed by Amazon GuardDuty.")
    allowed, _ = SETTINGS[name]
    if value not in allowed:
        raise errors.invalid(f"The value '{value}' is not valid for {name}. Valid values: "
                             f"{', '.join(allowed)}.")


def _principal(ctx: RequestContext, given: str | None) -> str:
    """The principal a request means: the caller (the root user) unless it names one."""
    if not given:
        return root_arn(ctx.account_id)
    parts = given.split(":")
    if (len(parts) != 6 or parts[:3] != ["arn", "aws", "iam"] or parts[4] != ctx.account_id
            or not (parts[5] == "root" or parts[5].startswith(("user/", "role/")))):
        raise errors.invalid("Invalid principal ARN.")
    return given


def _view(name: str, value: str, principal: str, kind: str) -> dict[str, str]:
    return {"name": name, "value": value, "principalArn": principal, "type": kind}


def effective(conn: sa.Connection, region: str, account: str, name: str,
              principal: str | None = None) -> str:
    """The value of setting `name` for `principal` (the root user if None)."""
    keys = [principal or root_arn(account), DEFAULT]
    rows = dict(conn.execute(sa.select(_t.c.principal, _t.c.value).where(
        _t.c.region == region, _t.c.name == name, _t.c.principal.in_(keys))).all())
    return rows.get(keys[0]) or rows.get(DEFAULT) or SETTINGS[name][1]


class AccountSettings:
    store: Store

    def put_account_setting(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        _check(req["name"], req["value"])
        principal = _principal(ctx, req.get("principalArn"))
        if req["name"] == "fargateTaskRetirementWaitPeriod" and \
                principal != root_arn(ctx.account_id):
            raise errors.invalid("fargateTaskRetirementWaitPeriod can only be set by the root "
                                 "user.")
        self._put(ctx, principal, req["name"], req["value"])
        return {"setting": _view(req["name"], req["value"], principal, "user")}

    def put_account_setting_default(self, ctx: RequestContext, req: dict[str, Any]
                                    ) -> dict[str, Any]:
        _check(req["name"], req["value"])
        self._put(ctx, DEFAULT, req["name"], req["value"])
        return {"setting": _view(req["name"], req["value"], root_arn(ctx.account_id), "user")}

    def delete_account_setting(self, ctx: RequestContext, req: dict[str, Any]
                               ) -> dict[str, Any]:
        principal = _principal(ctx, req.get("principalArn"))
        name = req["name"]
        keys = [principal] + ([DEFAULT] if principal == root_arn(ctx.account_id) else [])
        with self.store.write() as conn:
            row = conn.execute(sa.select(_t).where(
                _t.c.region == ctx.region, _t.c.name == name,
                _t.c.principal.in_(keys)).order_by(_t.c.principal != principal)).first()
            if row is None:
                raise errors.invalid(f"The account setting {name} is not set for "
                                     f"{principal}.")
            conn.execute(_t.delete().where(_t.c.region == ctx.region, _t.c.name == name,
                                           _t.c.principal == row.principal))
        return {"setting": _view(name, row.value, principal, "user")}

    @quick_read
    def list_account_settings(self, ctx: RequestContext, req: dict[str, Any]
                              ) -> dict[str, Any]:
        principal = _principal(ctx, req.get("principalArn"))
        is_root = principal == root_arn(ctx.account_id)
        rows = self.store.rows(_LIST, {"region": ctx.region, "principal": principal,
                                       "default": DEFAULT})
        own = {name: value for who, name, value in rows if who == principal}
        defaults = {name: value for who, name, value in rows if who == DEFAULT}
        settings = []
        for name, (_, aws_default) in SETTINGS.items():
            if name in own:
                settings.append(_view(name, own[name], principal, "user"))
            elif name in defaults and (is_root or req.get("effectiveSettings")):
                settings.append(_view(name, defaults[name], principal, "user"))
            elif req.get("effectiveSettings"):
                settings.append(_view(name, aws_default, principal, "aws_managed"))
        if req.get("name"):
            settings = [s for s in settings if s["name"] == req["name"]]
        if req.get("value"):
            settings = [s for s in settings if s["value"] == req["value"]]
        limit = paging.limit(req, default=10, maximum=10)
        start = paging.decode(req.get("nextToken")) or 0
        if not isinstance(start, int):
            raise errors.invalid("Invalid nextToken.")
        out: dict[str, Any] = {"settings": settings[start:start + limit]}
        if len(settings) > start + limit:
            out["nextToken"] = paging.encode(start + limit)
        return out

    def _put(self, ctx: RequestContext, principal: str, name: str, value: str) -> None:
        key = {"region": ctx.region, "principal": principal, "name": name}
        with self.store.write() as conn:
            if Store.bump(conn, _t, key, {"value": value}) is None:
                Store.insert(conn, _t, {**key, "value": value})
