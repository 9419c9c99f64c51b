"""DynamoDB's attribute values: checked and made canonical on the way in, sized, compared.

Values travel in their wire form everywhere in berth (`{"S": "x"}`, `{"N": "1.5"}`,
`{"B": "<base64>"}`, ...), so a stored item is already its response. What comes in is made
canonical first: numbers in DynamoDB's text form (see `numbers`), binaries as standard base64
(the API layer hands them over decoded), so equal values have equal wire forms, except sets,
whose order is free.
"""
from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from . import numbers
from .numbers import invalid

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

TYPES = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
SCALAR_KEY_TYPES = ("S", "N", "B")
SET_TYPES = {"SS": "S", "NS": "N", "BS": "B"}
MAX_DEPTH = 32
MAX_ITEM_SIZE = 400 * 1024

_SET_NAMES = {"SS": "string", "NS": "number", "BS": "binary"}


def ingest_item(item: dict[str, Any]) -> Item:
    """A request's item (or key) checked and canonical."""
    return {name: ingest(value) for name, value in item.items()}


def ingest(value: Any, depth: int = 1) -> AttributeValue:
    """One attribute value from a request, checked and canonical."""
    if len(value) != 1:
        if not value:
            raise invalid("Supplied AttributeValue is empty, must contain exactly one of the "
                          "supported datatypes")
        raise invalid("Supplied AttributeValue has more than one datatypes set, must contain "
                      "exactly one of the supported datatypes")
    (kind, raw), = value.items()
    if kind == "S" or kind == "BOOL":
        return value
    if kind == "N":
        return {"N": numbers.normalize(raw)}
    if kind == "B":
        return {"B": _b64(raw)}
    if kind == "NULL":
        if raw is not True:
            raise invalid("One or more parameter values were invalid: Null attribute value "
                          "types must have the value of true")
        return value
    if depth > MAX_DEPTH and kind in ("M", "L"):
        raise invalid("Nesting Levels have exceeded supported limits")
    if kind == "M":
        return {"M": {k: ingest(v, depth + 1) for k, v in raw.items()}}
    if kind == "L":
        return {"L": [ingest(v, depth + 1) for v in raw]}
    return {kind: _ingest_set(kind, raw)}


def _ingest_set(kind: str, raw: list[Any]) -> list[str]:
    if not raw:
        raise invalid(f"One or more parameter values were invalid: An {_SET_NAMES[kind]} set  "
                      "may not be empty")
    if kind == "SS":
        members = list(raw)
    elif kind == "NS":
        members = [numbers.normalize(n) for n in raw]
    else:
        members = [_b64(b) for b in raw]
    if len(set(members)) != len(members):
        shown = ", ".join(m if isinstance(m, str) else _b64(m) for m in raw)
        raise invalid("One or more parameter values were invalid: Input collection "
                      f"[{shown}] contains duplicates.")
    return members


def _b64(raw: bytes | str) -> str:
    if isinstance(raw, str):    # already wire form (from a stored item)
        return raw
    return base64.b64encode(raw).decode()


def blob(wire: str) -> bytes:
    return base64.b64decode(wire)


def kind_of(value: AttributeValue) -> str:
    return next(iter(value))


# ------------------------------------------------------------------------------------------
# Sizes, as DynamoDB counts them for its limits and for stream records' SizeBytes.


def item_size(item: Item) -> int:
    total = 0
    for name, value in item.items():    # a plain loop: this runs on every write
        total += (len(name) if name.isascii() else len(name.encode())) + value_size(value)
    return total


def value_size(value: AttributeValue) -> int:
    (kind, raw), = value.items()
    if kind == "S":
        return len(raw) if raw.isascii() else len(raw.encode())
    if kind == "N":
        return _number_size(raw)
    if kind == "B":
        return _blob_size(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in raw)
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    if kind == "NS":
        return sum(_number_size(n) for n in raw)
    return sum(_blob_size(b) for b in raw)


def _number_size(canonical: str) -> int:
    return (numbers.significant_digits(canonical) + 1) // 2 + 1


def _blob_size(wire: str) -> int:
    return len(wire) * 3 // 4 - wire[-2:].count("=")


# ------------------------------------------------------------------------------------------
# Equality and order, as conditions and key comparisons use them.


def equal(a: AttributeValue | None, b: AttributeValue | None) -> bool:
    """DynamoDB equality: same type and same value (sets regardless of order)."""
    if a is None or b is None:
        return False
    (ka, va), = a.items()
    (kb, vb), = b.items()
    if ka != kb:
        return False
    if ka in SET_TYPES:
        return len(va) == len(vb) and set(va) == set(vb)
    if ka == "L":
        return len(va) == len(vb) and all(equal(x, y) for x, y in zip(va, vb))
    if ka == "M":
        return va.keys() == vb.keys() and all(equal(v, vb[k]) for k, v in va.items())
    return bool(va == vb)   # canonical forms: equal values, equal text


def compare(a: AttributeValue | None, b: AttributeValue | None) -> int | None:
    """-1, 0 or 1 for two values of one ordered type (N numerically, S and B bytewise);
    None when they cannot be compared (a missing value, other types, different types)."""
    if a is None or b is None:
        return None
    (ka, va), = a.items()
    (kb, vb), = b.items()
    if ka != kb:
        return None
    if ka == "N":
        x: Any = Decimal(va)
        y: Any = Decimal(vb)
    elif ka == "S":
        x, y = va, vb   # code point order is UTF-8 byte order
    elif ka == "B":
        x, y = blob(va), blob(vb)
    else:
        return None
    return (x > y) - (x < y)
