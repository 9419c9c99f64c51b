"""Wire forms of the two AWS protocols berth speaks: JSON 1.1 and REST-JSON.

Parsing turns an HTTP request into the operation's input dict (before validation); serializing
turns a handler's result or a ServiceError into status, headers and body.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any, Mapping

import orjson
from urllib.parse import parse_qsl, unquote

from botocore.model import OperationModel, Shape

from .errors import ServiceError
from .models import uri_param


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def parse_json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = orjson.loads(body)
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        raise ServiceError("SerializationException",
                           "Start of structure or map found where not expected, or the "
                           "request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise ServiceError("SerializationException",
                           "The request body must be a JSON object.")
    return value


def parse_rest(op: OperationModel, groups: dict[str, str], raw_query: str,
               headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """Collect a REST-JSON request's members from its path, query, headers and body."""
    shape = op.input_shape
    if shape is None:
        return {}
    params: dict[str, Any] = {}
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    payload = shape.serialization.get("payload")
    for name, member in shape.members.items():
        loc = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if loc == "uri":
            raw = uri_param(groups, wire)
            if raw is not None:
                params[name] = _scalar(member, unquote(raw), name)
        elif loc == "querystring":
            if member.type_name == "list":
                if wire in query:
                    params[name] = [_scalar(member.member, v, name) for v in query[wire]]
            elif member.type_name == "map":
                params[name] = {k: v[-1] for k, v in query.items()}
            elif wire in query:
                params[name] = _scalar(member, query[wire][-1], name)
        elif loc == "header":
            value = headers.get(wire.lower())
            if value is not None:
                params[name] = _scalar(member, value, name)
        elif loc == "headers":
            prefix = wire.lower()
            params[name] = {k[len(prefix):]: v for k, v in headers.items()
                            if k.startswith(prefix)}
    if payload:
        member = shape.members[payload]
        if member.type_name in ("blob", "string"):
            if body:
                params[payload] = body if member.type_name == "blob" else body.decode()
        elif body.strip():
            params[payload] = parse_json_body(body)
    elif any("location" not in m.serialization for m in shape.members.values()):
        for key, value in parse_json_body(body).items():
            member = shape.members.get(key)
            if member is not None and "location" not in member.serialization:
                params[key] = value
    return params


def _scalar(shape: Shape, raw: str, name: str) -> Any:
    return scalar_from_text(shape.type_name, raw, name[:1].lower() + name[1:],
                            "ValidationException")


def scalar_from_text(kind: str, raw: str, path: str, code: str) -> Any:
    """A value written as text (a URI, a header, a query or form field) as its shape's type;
    one that is not of that type is the service's validation error `code` at `path`."""
    try:
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("double", "float"):
            return float(raw)
        if kind == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        if kind == "blob":
            return base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        raise ServiceError(code, f"1 validation error detected: Value '{raw[:256]}' at "
                                 f"'{path}' failed to satisfy constraint: Member must be of "
                                 f"type {kind}") from None
    return raw


def serialize_rest(op: OperationModel, result: Mapping[str, Any]
                   ) -> tuple[int, dict[str, str], bytes, str]:
    """Split a REST-JSON result into status, headers, body and content type."""
    status = int(op.http.get("responseCode", 200))
    shape = op.output_shape
    if shape is None:
        return status, {}, b"", "application/json"
    headers: dict[str, str] = {}
    body_members: dict[str, Any] = {}
    payload = shape.serialization.get("payload")
    for name, value in result.items():
        member = shape.members.get(name)
        if member is None or value is None:
            continue
        loc = member.serialization.get("location")
        if loc == "statusCode":
            status = int(value)
        elif loc == "header":
            headers[member.serialization.get("name", name)] = _header_value(value)
        elif loc == "headers":
            prefix = member.serialization.get("name", name)
            headers.update({prefix + k: str(v) for k, v in value.items()})
        elif name != payload:
            body_members[name] = value
    if payload:
        member = shape.members[payload]
        value = result.get(payload)
        if member.type_name == "blob":
            return status, headers, bytes(value or b""), "application/octet-stream"
        if member.type_name == "string":
            return status, headers, (value or "").encode(), "text/plain"
        return status, headers, dumps(value or {}), "application/json"
    return status, headers, dumps(body_members), "application/json"


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return str(value)
