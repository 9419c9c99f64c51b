"""Input validation from the operation's input shape, worded as AWS words it.

`validate` checks required members, types, enums, lengths, ranges and patterns, and converts
wire forms to Python ones (base64 blobs to bytes, timestamps to epoch seconds). Constraint
violations are collected and reported together ("2 validation errors detected: ..."); a value of
the wrong JSON type is a `SerializationException`, as the AWS JSON services answer.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from functools import lru_cache
from typing import Any

from botocore.model import Shape

from .errors import ServiceError


class _Collector:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, value: Any, path: str, constraint: str) -> None:
        self.messages.append(
            f"Value {_show(value)} at '{path}' failed to satisfy constraint: {constraint}")


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"'{str(value).lower()}'"
    if isinstance(value, bytes):
        return "'java.nio.HeapByteBuffer'"
    text = str(value)
    # AWS quotes the offending value; a 10,000-item list must not become a 500 KB message.
    return f"'{text[:256]}...'" if len(text) > 256 else f"'{text}'"


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # a Java-only construct; the handler enforces what matters


def _member_path(parent: str, name: str) -> str:
    wire = name[:1].lower() + name[1:]
    return f"{parent}.{wire}" if parent else wire


def validate(shape: Shape | None, params: dict[str, Any], code: str) -> dict[str, Any]:
    """Return `params` converted; raise the service's validation error `code` on violations."""
    if shape is None:
        return {}
    found = _Collector()
    out = _structure(shape, params, "", found)
    if found.messages:
        n = len(found.messages)
        head = f"{n} validation error{'s' if n > 1 else ''} detected: "
        raise ServiceError(code, head + "; ".join(found.messages))
    return out


def _type_error(path: str, expected: str) -> ServiceError:
    where = path or "the request"
    return ServiceError("SerializationException",
                        f"Cannot deserialize {where}: expected {expected}")


def _structure(shape: Shape, value: Any, path: str, found: _Collector) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _type_error(path, "an object")
    members = shape.members
    for name in shape.required_members:
        if value.get(name) is None:
            found.add(None, _member_path(path, name), "Member must not be null")
    out: dict[str, Any] = {}
    for name, item in value.items():
        member = members.get(name)
        if member is None or item is None:
            continue  # unknown members are ignored, as the AWS JSON services do
        out[name] = _value(member, item, _member_path(path, name), found)
    return out


def _value(shape: Shape, value: Any, path: str, found: _Collector) -> Any:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        return _structure(shape, value, path, found)
    if kind == "list":
        if not isinstance(value, list):
            raise _type_error(path, "a list")
        _length(value, meta, path, found)
        return [_value(shape.member, v, f"{path}.{i + 1}.member", found)
                for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise _type_error(path, "a map")
        _length(value, meta, path, found)
        for k in value:
            _value(shape.key, k, f"{path}.key", found)
        return {k: _value(shape.value, v, f"{path}.value", found) for k, v in value.items()}
    if kind == "string":
        if not isinstance(value, str):
            raise _type_error(path, "a string")
        _length(value, meta, path, found)
        if shape.enum and value not in shape.enum:
            found.add(value, path,
                      f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = meta.get("pattern")
        if pattern:
            rx = _regex(pattern)
            if rx is not None and not rx.fullmatch(value):
                found.add(value, path,
                          f"Member must satisfy regular expression pattern: {pattern}")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _type_error(path, "an integer")
        _range(value, meta, path, found)
        return value
    if kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(path, "a number")
        _range(value, meta, path, found)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _type_error(path, "a boolean")
        return value
    if kind == "blob":
        if isinstance(value, bytes):
            data = value
        elif isinstance(value, str):
            try:
                data = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise _type_error(path, "base64-encoded data") from None
        else:
            raise _type_error(path, "base64-encoded data")
        _length(data, meta, path, found)
        return data
    if kind == "timestamp":
        return _timestamp(value, path)
    return value


def _timestamp(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise _type_error(path, "a timestamp")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _type_error(path, "a timestamp") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return parsed.timestamp()
    raise _type_error(path, "a timestamp")


def _length(value: Any, meta: dict[str, Any], path: str, found: _Collector) -> None:
    n = len(value)
    if "min" in meta and n < meta["min"]:
        found.add(value, path, f"Member must have length greater than or equal to {meta['min']}")
    if "max" in meta and n > meta["max"]:
        found.add(value, path, f"Member must have length less than or equal to {meta['max']}")


def _range(value: float, meta: dict[str, Any], path: str, found: _Collector) -> None:
    if "min" in meta and value < meta["min"]:
        found.add(value, path, f"Member must have value greater than or equal to {meta['min']}")
    if "max" in meta and value > meta["max"]:
        found.add(value, path, f"Member must have value less than or equal to {meta['max']}")
