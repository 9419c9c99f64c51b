"""What Logs Insights values are and how they compare, compute and print.

Values are what JSON gives (str, int, float, bool, None for a missing field) plus `Stamp`,
a time in epoch milliseconds that prints as a date (`@timestamp`, `bin(5m)`). Insights is
loosely typed, as AWS's is: a string that reads as a number is compared and summed as one.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Any


class Stamp(int):
    """Epoch milliseconds that print as `2024-06-03 12:34:56.789` (UTC)."""


_UTC = dt.timezone.utc


def format_stamp(ms: int) -> str:
    t = dt.datetime.fromtimestamp(ms / 1000, _UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def number(value: Any) -> float | int | None:
    """The value as a number, or None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            parsed = float(text)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def text(value: Any) -> str | None:
    """The value as a string, as results show it; None stays None."""
    if value is None:
        return None
    if isinstance(value, Stamp):
        return format_stamp(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    return str(value)


def truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return value != ""


def equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    x, y = number(a), number(b)
    if x is not None and y is not None and not (isinstance(a, str) and isinstance(b, str)):
        return x == y
    return text(a) == text(b)


def order(a: Any, b: Any) -> int | None:
    """-1, 0 or 1 comparing a with b (numbers numerically, else as text); None if either is
    missing."""
    if a is None or b is None:
        return None
    x, y = number(a), number(b)
    if x is not None and y is not None:
        return (x > y) - (x < y)
    p, q = text(a), text(b)
    assert p is not None and q is not None
    return (p > q) - (p < q)


def sort_key(value: Any) -> tuple[int, Any]:
    """A key that orders values as `sort` does: numbers, then text; missing values last."""
    if value is None:
        return (2, 0)
    n = number(value)
    if n is not None:
        return (0, n)
    return (1, text(value))
