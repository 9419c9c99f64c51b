"""Input validation from the operation's input shape, worded as AWS words it.

`validate` checks required members, types, enums, lengths, ranges and patterns, and converts
wire forms to Python ones (base64 blobs to bytes, timestamps to epoch seconds). Constraint
violations are collected and reported together ("2 validation errors detected: ..."); a value of
the wrong JSON type is a `SerializationException`, as the AWS JSON services answer.

Each shape is turned once into a checker with its constraints looked up ahead, and a member's
path ("logEvents.3.member.message") is spelled out only when a message needs it: a PutLogEvents
of 10,000 events is checked on every request.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import threading
from functools import lru_cache
from typing import Any, Callable

from botocore.model import Shape

from .errors import ServiceError

# Where a value sits: (parent, step) with step a member name, a list index, or _KEY/_VALUE of
# a map; _ROOT is the request itself. Rendered by `_path` only for a message.
Node = tuple[Any, str | int | object | None]
_ROOT: Node = (None, None)
_KEY, _VALUE = object(), object()

Checker = Callable[[Any, Node, "_Collector"], Any]


class _Collector:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, value: Any, node: Node, constraint: str) -> None:
        self.messages.append(
            f"Value {_show(value)} at '{_path(node)}' failed to satisfy constraint: {constraint}")


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


def _path(node: Node) -> str:
    """The wire path of a node: member names with a lower-case first letter, list items as
    `.N.member` (from 1), map keys and values as `.key` / `.value`."""
    parent, step = node
    if parent is None:
        return ""
    base = _path(parent)
    if type(step) is int:
        return f"{base}.{step + 1}.member"
    if step is _KEY:
        return f"{base}.key"
    if step is _VALUE:
        return f"{base}.value"
    assert isinstance(step, str)
    wire = step[:1].lower() + step[1:]
    return f"{base}.{wire}" if base else wire


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # a Java-only construct; the handler enforces what matters


def validate(shape: Shape | None, params: dict[str, Any], code: str) -> dict[str, Any]:
    """Return `params` converted; raise the service's validation error `code` on violations."""
    if shape is None:
        return {}
    found = _Collector()
    out = _checker(shape)(params, _ROOT, found)
    if found.messages:
        n = len(found.messages)
        head = f"{n} validation error{'s' if n > 1 else ''} detected: "
        raise ServiceError(code, head + "; ".join(found.messages))
    return out


def _type_error(node: Node, expected: str) -> ServiceError:
    where = _path(node) or "the request"
    return ServiceError("SerializationException",
                        f"Cannot deserialize {where}: expected {expected}")


# Checkers by shape, keyed by id with the shape kept (and compared) so an id is never reused.
# botocore hands out the same Shape objects for a model's lifetime, and the models are loaded
# once, so these hold one entry per shape berth serves. `_ready` holds only finished checkers
# of input shapes and is read without the lock; `_checkers` is the work of `_compile`.
_ready: dict[int, tuple[Shape, Checker]] = {}
_checkers: dict[int, tuple[Shape, Checker]] = {}
_compiling = threading.Lock()


def _checker(shape: Shape) -> Checker:
    found = _ready.get(id(shape))
    if found is not None and found[0] is shape:
        return found[1]
    with _compiling:
        check = _compile(shape)
        _ready[id(shape)] = (shape, check)
        return check


def _compile(shape: Shape) -> Checker:
    found = _checkers.get(id(shape))
    if found is not None and found[0] is shape:
        return found[1]
    # Registered before its parts are compiled, so a shape that contains itself terminates.
    parts: list[Checker] = []

    def deferred(value: Any, node: Node, found: _Collector) -> Any:
        return parts[0](value, node, found)

    _checkers[id(shape)] = (shape, deferred)
    check = _build(shape)
    parts.append(check)
    _checkers[id(shape)] = (shape, check)
    return check


def _build(shape: Shape) -> Checker:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        return _structure_checker(shape)
    if kind == "list":
        return _list_checker(_compile(shape.member), _length_checker(meta))
    if kind == "map":
        return _map_checker(_compile(shape.key), _compile(shape.value), _length_checker(meta))
    if kind == "string":
        return _string_checker(shape, _length_checker(meta))
    if kind in ("integer", "long"):
        return _integer_checker(_range_checker(meta))
    if kind in ("double", "float"):
        return _number_checker(_range_checker(meta))
    if kind == "boolean":
        return _boolean
    if kind == "blob":
        return _blob_checker(_length_checker(meta))
    if kind == "timestamp":
        return _timestamp
    return _anything


def _structure_checker(shape: Shape) -> Checker:
    required = tuple(shape.required_members)
    members = {name: _compile(member) for name, member in shape.members.items()}

    def check(value: Any, node: Node, found: _Collector) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _type_error(node, "an object")
        for name in required:
            if value.get(name) is None:
                found.add(None, (node, name), "Member must not be null")
        out: dict[str, Any] = {}
        for name, item in value.items():
            member = members.get(name)
            if member is None or item is None:
                continue  # unknown members are ignored, as the AWS JSON services do
            out[name] = member(item, (node, name), found)
        return out
    return check


def _list_checker(item: Checker, length: Callable[..., None] | None) -> Checker:
    def check(value: Any, node: Node, found: _Collector) -> list[Any]:
        if not isinstance(value, list):
            raise _type_error(node, "a list")
        if length is not None:
            length(value, node, found)
        return [item(v, (node, i), found) for i, v in enumerate(value)]
    return check


def _map_checker(key: Checker, item: Checker, length: Callable[..., None] | None) -> Checker:
    def check(value: Any, node: Node, found: _Collector) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise _type_error(node, "a map")
        if length is not None:
            length(value, node, found)
        key_node, value_node = (node, _KEY), (node, _VALUE)
        for k in value:
            key(k, key_node, found)
        return {k: item(v, value_node, found) for k, v in value.items()}
    return check


def _string_checker(shape: Shape, length: Callable[..., None] | None) -> Checker:
    enum = list(shape.enum or ())
    allowed = frozenset(enum)
    pattern = shape.metadata.get("pattern")
    rx = _regex(pattern) if pattern else None

    def check(value: Any, node: Node, found: _Collector) -> str:
        if not isinstance(value, str):
            raise _type_error(node, "a string")
        if length is not None:
            length(value, node, found)
        if allowed and value not in allowed:
            found.add(value, node, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        if rx is not None and not rx.fullmatch(value):
            found.add(value, node, f"Member must satisfy regular expression pattern: {pattern}")
        return value
    return check


def _integer_checker(bounds: Callable[..., None] | None) -> Checker:
    def check(value: Any, node: Node, found: _Collector) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _type_error(node, "an integer")
        if bounds is not None:
            bounds(value, node, found)
        return value
    return check


def _number_checker(bounds: Callable[..., None] | None) -> Checker:
    def check(value: Any, node: Node, found: _Collector) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(node, "a number")
        if bounds is not None:
            bounds(value, node, found)
        return value
    return check


def _boolean(value: Any, node: Node, found: _Collector) -> bool:
    if not isinstance(value, bool):
        raise _type_error(node, "a boolean")
    return value


def _blob_checker(length: Callable[..., None] | None) -> Checker:
    def check(value: Any, node: Node, found: _Collector) -> bytes:
        if isinstance(value, bytes):
            data = value
        elif isinstance(value, str):
            try:
                data = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise _type_error(node, "base64-encoded data") from None
        else:
            raise _type_error(node, "base64-encoded data")
        if length is not None:
            length(data, node, found)
        return data
    return check


def _anything(value: Any, node: Node, found: _Collector) -> Any:
    return value


def _timestamp(value: Any, node: Node, found: _Collector) -> float:
    if isinstance(value, bool):
        raise _type_error(node, "a timestamp")
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
            raise _type_error(node, "a timestamp") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return parsed.timestamp()
    raise _type_error(node, "a timestamp")


def _length_checker(meta: dict[str, Any]) -> Callable[..., None] | None:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is None and hi is None:
        return None

    def check(value: Any, node: Node, found: _Collector) -> None:
        n = len(value)
        if lo is not None and n < lo:
            found.add(value, node, f"Member must have length greater than or equal to {lo}")
        if hi is not None and n > hi:
            found.add(value, node, f"Member must have length less than or equal to {hi}")
    return check


def _range_checker(meta: dict[str, Any]) -> Callable[..., None] | None:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is None and hi is None:
        return None

    def check(value: float, node: Node, found: _Collector) -> None:
        if lo is not None and value < lo:
            found.add(value, node, f"Member must have value greater than or equal to {lo}")
        if hi is not None and value > hi:
            found.add(value, node, f"Member must have value less than or equal to {hi}")
    return check
