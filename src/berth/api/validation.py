"""Input validation from the operation's input shape, worded as AWS words it.

`validate` checks required members, types, enums, lengths, ranges and patterns, and converts
wire forms to Python ones (base64 blobs to bytes, timestamps to epoch seconds). Constraint
violations are collected and reported together ("2 validation errors detected: ..."); a value of
the wrong JSON type is a `SerializationException`, as the AWS JSON services answer.

Values are quoted as AWS's Java services print them (`[a, b]`, `{k=v}`, `Shape(m=v, ...)`);
sensitive members and blobs are not quoted at all ("Value at 'x' failed ..."). A service may
amend its model where AWS's service does otherwise (`Amendments`).

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

# Shape metadata that replaces the model's, by shape name, where AWS's own service behaves
# otherwise than its published model says: a pattern it does not enforce, or its own wording
# for a length violation (`lengthMessage`, which then answers alone). None removes a key.
Amendments = dict[str, dict[str, Any]]
_UNAMENDED: Amendments = {}


class _Collector:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.constraints: list[str] = []     # the broken constraints alone, in order
        self.sole: str | None = None    # AWS's own message for a violation: answers alone

    def add(self, value: Any, node: Node, constraint: str, shape: Shape | None = None
            ) -> None:
        shown = "" if _hidden(value, shape) else f" {_show(value, shape)}"
        self.messages.append(
            f"Value{shown} at '{_path(node)}' failed to satisfy constraint: {constraint}")
        self.constraints.append(constraint)


# AWS quotes the whole offending value; a 10,000-item list must not become a 500 KB message.
MAX_SHOWN = 8192


def _hidden(value: Any, shape: Shape | None) -> bool:
    """Whether AWS leaves the value out of its message: sensitive members and blobs."""
    if value is None or shape is None:
        return False
    if shape.type_name == "map":
        return any(s.metadata.get("sensitive") for s in (shape, shape.key, shape.value))
    return bool(shape.metadata.get("sensitive")) or shape.type_name == "blob"


def _show(value: Any, shape: Shape | None = None) -> str:
    if value is None:
        return "null"
    text = _java(value, shape)
    return f"'{text[:MAX_SHOWN]}...'" if len(text) > MAX_SHOWN else f"'{text}'"


def _java(value: Any, shape: Shape | None) -> str:
    """A value as the Java services' toString renders it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, bytes):
        return "java.nio.HeapByteBuffer"
    kind = shape.type_name if shape is not None else None
    if isinstance(value, list):
        item = shape.member if kind == "list" else None
        return "[" + ", ".join(_java(v, item) for v in value[:MAX_SHOWN]) + "]"
    if isinstance(value, dict):
        if kind == "structure":
            assert shape is not None
            return f"{shape.name}(" + ", ".join(
                f"{n}={_java(value.get(n), m)}" for n, m in shape.members.items()) + ")"
        key = shape.key if kind == "map" else None
        item = shape.value if kind == "map" else None
        return "{" + ", ".join(f"{_java(k, key)}={_java(v, item)}"
                               for k, v in list(value.items())[:MAX_SHOWN]) + "}"
    if kind in ("double", "float") and isinstance(value, (int, float)):
        return str(float(value))
    return str(value)


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


def validate(shape: Shape | None, params: dict[str, Any], code: str,
             amendments: Amendments | None = None) -> dict[str, Any]:
    """Return `params` converted; raise the service's validation error `code` on violations."""
    if shape is None:
        return {}
    found = _Collector()
    out = _checker(shape, amendments or _UNAMENDED)(params, _ROOT, found)
    if found.sole is not None:
        raise ServiceError(code, found.sole)
    if found.messages:
        n = len(found.messages)
        head = f"{n} validation error{'s' if n > 1 else ''} detected: "
        raise ServiceError(code, head + "; ".join(found.messages))
    return out


def _type_error(node: Node, expected: str) -> ServiceError:
    where = _path(node) or "the request"
    return ServiceError("SerializationException",
                        f"Cannot deserialize {where}: expected {expected}")


# Checkers by shape and amendments, keyed by ids with both kept (and compared) so an id is
# never reused. botocore hands out the same Shape objects for a model's lifetime, and the
# models are loaded once, so these hold one entry per shape berth serves. `_ready` holds only
# finished checkers of input shapes and is read without the lock; `_checkers` is the work of
# `_compile`, which runs under the lock with `_amending` set to the amendments it applies.
# `_checkers` knows a shape by its model (the shape resolver, kept) and name: botocore makes a
# new Shape object at every step into a recursive shape (DynamoDB's AttributeValue holds maps
# and lists of AttributeValues), so only the name ends the recursion.
_Key = tuple[int, int]
_ready: dict[_Key, tuple[Shape, Amendments, Checker]] = {}
_checkers: dict[tuple[int, str, int], tuple[object, Amendments, Checker]] = {}
_compiling = threading.Lock()
_amending: Amendments = _UNAMENDED


def _checker(shape: Shape, amendments: Amendments) -> Checker:
    key = (id(shape), id(amendments))
    found = _ready.get(key)
    if found is not None and found[0] is shape and found[1] is amendments:
        return found[2]
    global _amending
    with _compiling:
        _amending = amendments
        check = _compile(shape)
        _ready[key] = (shape, amendments, check)
        return check


def _meta(shape: Shape) -> dict[str, Any]:
    """The shape's metadata with the amendments being compiled applied."""
    changes = _amending.get(shape.name)
    if not changes:
        return shape.metadata
    meta = {**shape.metadata, **changes}
    return {k: v for k, v in meta.items() if v is not None}


def _compile(shape: Shape) -> Checker:
    resolver = shape._shape_resolver
    key = (id(resolver), shape.name, id(_amending))
    found = _checkers.get(key)
    if found is not None and found[0] is resolver and found[1] is _amending:
        return found[2]
    # Registered before its parts are compiled, so a shape that contains itself terminates.
    parts: list[Checker] = []

    def deferred(value: Any, node: Node, found: _Collector) -> Any:
        return parts[0](value, node, found)

    _checkers[key] = (resolver, _amending, deferred)
    check = _build(shape)
    parts.append(check)
    _checkers[key] = (resolver, _amending, check)
    return check


def _build(shape: Shape) -> Checker:
    kind = shape.type_name
    if kind == "structure":
        return _structure_checker(shape)
    if kind == "list":
        return _list_checker(_compile(shape.member), _length_checker(shape))
    if kind == "map":
        return _map_checker(shape, _compile(shape.key), _compile(shape.value),
                            _length_checker(shape))
    if kind == "string":
        return _string_checker(shape, _length_checker(shape))
    if kind in ("integer", "long"):
        return _integer_checker(_range_checker(shape))
    if kind in ("double", "float"):
        return _number_checker(_range_checker(shape))
    if kind == "boolean":
        return _boolean
    if kind == "blob":
        return _blob_checker(_length_checker(shape))
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


def _map_checker(shape: Shape, key: Checker, item: Checker,
                 length: Callable[..., None] | None) -> Checker:
    """AWS reports broken constraints of a map's keys (and of its scalar values) once, at the
    map: "Value '{k=v}' at 'tags' failed to satisfy constraint: Map keys must satisfy
    constraint: [...]" (without the value when the map holds sensitive data)."""
    scalar_values = shape.value.type_name not in ("structure", "list", "map")

    def check(value: Any, node: Node, found: _Collector) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise _type_error(node, "a map")
        if length is not None:
            length(value, node, found)
        key_node, value_node = (node, _KEY), (node, _VALUE)
        keys, values = _Collector(), (_Collector() if scalar_values else found)
        for k in value:
            key(k, key_node, keys)
        out = {k: item(v, value_node, values) for k, v in value.items()}
        for part, what in ((keys, "keys"), (values, "values")):
            if part is found or not part.constraints:
                continue
            found.sole = found.sole or part.sole
            broken = ", ".join(dict.fromkeys(part.constraints))
            found.add(value, node, f"Map {what} must satisfy constraint: [{broken}]", shape)
        return out
    return check


def _string_checker(shape: Shape, length: Callable[..., None] | None) -> Checker:
    enum = list(shape.enum or ())
    allowed = frozenset(enum)
    pattern = _meta(shape).get("pattern")
    rx = _regex(pattern) if pattern else None

    def check(value: Any, node: Node, found: _Collector) -> str:
        if not isinstance(value, str):
            raise _type_error(node, "a string")
        if length is not None:
            length(value, node, found)
        if allowed and value not in allowed:
            found.add(value, node, f"Member must satisfy enum value set: [{', '.join(enum)}]",
                      shape)
        if rx is not None and not rx.fullmatch(value):
            found.add(value, node, f"Member must satisfy regular expression pattern: {pattern}",
                      shape)
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


def _length_checker(shape: Shape) -> Callable[..., None] | None:
    meta = _meta(shape)
    lo, hi = meta.get("min"), meta.get("max")
    if lo is None and hi is None:
        return None
    own = meta.get("lengthMessage")

    def check(value: Any, node: Node, found: _Collector) -> None:
        n = len(value)
        if lo is not None and n < lo:
            found.add(value, node, f"Member must have length greater than or equal to {lo}",
                      shape)
        elif hi is not None and n > hi:
            if own is not None:
                found.sole = own
            found.add(value, node, f"Member must have length less than or equal to {hi}",
                      shape)
    return check


def _range_checker(shape: Shape) -> Callable[..., None] | None:
    meta = _meta(shape)
    lo, hi = meta.get("min"), meta.get("max")
    if lo is None and hi is None:
        return None

    def check(value: float, node: Node, found: _Collector) -> None:
        if lo is not None and value < lo:
            found.add(value, node, f"Member must have value greater than or equal to {lo}",
                      shape)
        if hi is not None and value > hi:
            found.add(value, node, f"Member must have value less than or equal to {hi}",
                      shape)
    return check
