"""The functions of Logs Insights: scalar functions (`strlen`, `bin`, `coalesce`, ...) and
the aggregates of `stats` (`count`, `avg`, `pct`, ...). `bin` and `earliest`/`latest` read
the record's @timestamp, which the engine passes in."""
from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any, Callable

from .values import Stamp, number, sort_key, text

MANY = 99


@dataclass(frozen=True)
class Scalar:
    arity: tuple[int, int]
    call: Callable[..., Any]


def _num(fn: Callable[[float], Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        n = number(value)
        if n is None:
            return None
        try:
            return fn(n)
        except (ValueError, OverflowError):
            return None
    return apply


def _str(fn: Callable[..., Any]) -> Callable[..., Any]:
    def apply(value: Any, *rest: Any) -> Any:
        t = text(value)
        return None if t is None else fn(t, *rest)
    return apply


def _substr(value: str, start: Any, length: Any = None) -> str | None:
    i = number(start)
    if i is None:
        return None
    i = int(i)
    if length is None:
        return value[i:]
    n = number(length)
    return None if n is None else value[i:i + int(n)]


def _replace(value: str, old: Any, new: Any) -> str:
    return value.replace(text(old) or "", text(new) or "")


def _trim(chars: Callable[[str, str | None], str]) -> Callable[..., Any]:
    return _str(lambda value, what=None: chars(value, text(what) if what is not None else None))


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    def apply(*values: Any) -> Any:
        present = [v for v in values if number(v) is not None]
        return pick(present, key=number) if present else None
    return apply


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None and v != ""), None)


def _round_time(up: bool) -> Callable[[Any, Any], Any]:
    def apply(value: Any, period: Any) -> Any:
        t, p = number(value), number(period)
        if t is None or not p:
            return None
        floor = int(t) // int(p) * int(p)
        return Stamp(floor + int(p) if up and floor != t else floor)
    return apply


def _ip(check: Callable[[Any], bool]) -> Callable[[Any], Any]:
    def apply(value: Any) -> bool:
        try:
            return check(ipaddress.ip_address(text(value) or ""))
        except ValueError:
            return False
    return apply


def _in_subnet(version: int | None) -> Callable[[Any, Any], bool]:
    def apply(value: Any, subnet: Any) -> bool:
        try:
            address = ipaddress.ip_address(text(value) or "")
            network = ipaddress.ip_network(text(subnet) or "", strict=False)
        except ValueError:
            return False
        if version is not None and address.version != version:
            return False
        return address.version == network.version and address in network
    return apply


SCALARS: dict[str, Scalar] = {
    # numbers
    "abs": Scalar((1, 1), _num(abs)),
    "ceil": Scalar((1, 1), _num(math.ceil)),
    "floor": Scalar((1, 1), _num(math.floor)),
    "log": Scalar((1, 1), _num(math.log)),
    "sqrt": Scalar((1, 1), _num(math.sqrt)),
    "greatest": Scalar((1, MANY), _extreme(max)),
    "least": Scalar((1, MANY), _extreme(min)),
    # strings
    "strlen": Scalar((1, 1), _str(len)),
    "toupper": Scalar((1, 1), _str(str.upper)),
    "tolower": Scalar((1, 1), _str(str.lower)),
    "trim": Scalar((1, 2), _trim(str.strip)),
    "ltrim": Scalar((1, 2), _trim(str.lstrip)),
    "rtrim": Scalar((1, 2), _trim(str.rstrip)),
    "concat": Scalar((1, MANY), lambda *v: "".join(text(x) or "" for x in v)),
    "substr": Scalar((2, 3), _str(_substr)),
    "replace": Scalar((3, 3), _str(_replace)),
    "strcontains": Scalar((2, 2), lambda v, part: int((text(part) or "") in (text(v) or ""))
                          if v is not None else None),
    "isempty": Scalar((1, 1), lambda v: v is None or text(v) == ""),
    "isblank": Scalar((1, 1), lambda v: v is None or (text(v) or "").strip() == ""),
    "ispresent": Scalar((1, 1), lambda v: v is not None),
    "coalesce": Scalar((1, MANY), _coalesce),
    # time: bin() is given @timestamp by the engine as its first argument
    "bin": Scalar((1, 1), lambda ts, period: _round_time(False)(ts, period)),
    "datefloor": Scalar((2, 2), _round_time(False)),
    "dateceil": Scalar((2, 2), _round_time(True)),
    "frommillis": Scalar((1, 1), lambda v: Stamp(int(n)) if (n := number(v)) is not None
                         else None),
    "tomillis": Scalar((1, 1), lambda v: int(n) if (n := number(v)) is not None else None),
    # IP addresses
    "isvalidip": Scalar((1, 1), _ip(lambda a: True)),
    "isvalidipv4": Scalar((1, 1), _ip(lambda a: a.version == 4)),
    "isvalidipv6": Scalar((1, 1), _ip(lambda a: a.version == 6)),
    "isipinsubnet": Scalar((2, 2), _in_subnet(None)),
    "isipv4insubnet": Scalar((2, 2), _in_subnet(4)),
    "isipv6insubnet": Scalar((2, 2), _in_subnet(6)),
}


class Accumulator:
    """One group's running aggregate: `add` each record's argument values, then `result`."""

    def add(self, args: list[Any], timestamp: int) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError


class _Count(Accumulator):
    def __init__(self, star: bool) -> None:
        self.star, self.n = star, 0

    def add(self, args: list[Any], timestamp: int) -> None:
        if self.star or (args and args[0] is not None):
            self.n += 1

    def result(self) -> Any:
        return self.n


class _Distinct(Accumulator):
    def __init__(self) -> None:
        self.seen: set[Any] = set()

    def add(self, args: list[Any], timestamp: int) -> None:
        if args[0] is not None:
            self.seen.add(text(args[0]))

    def result(self) -> Any:
        return len(self.seen)


class _Numbers(Accumulator):
    """sum, avg, min, max, stddev and pct: over the values that are numbers."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.values: list[float] = []
        self.total: float = 0
        self.n = 0
        self.low: Any = None
        self.high: Any = None
        self.percent: float | int | None = None

    def add(self, args: list[Any], timestamp: int) -> None:
        n = number(args[0])
        if n is None:
            return
        self.n += 1
        self.total += n
        if self.low is None or n < number(self.low):  # type: ignore[operator]
            self.low = args[0] if isinstance(args[0], Stamp) else n
        if self.high is None or n > number(self.high):  # type: ignore[operator]
            self.high = args[0] if isinstance(args[0], Stamp) else n
        if self.kind in ("stddev", "pct"):
            self.values.append(n)
            if self.kind == "pct" and self.percent is None:
                self.percent = number(args[1])

    def result(self) -> Any:
        if not self.n:
            return None
        if self.kind == "sum":
            return self.total
        if self.kind == "avg":
            return self.total / self.n
        if self.kind == "min":
            return self.low
        if self.kind == "max":
            return self.high
        if self.kind == "stddev":
            if self.n < 2:
                return 0.0
            mean = self.total / self.n
            return math.sqrt(sum((v - mean) ** 2 for v in self.values) / (self.n - 1))
        ordered = sorted(self.values)       # pct: nearest rank
        p = min(max(float(self.percent or 0), 0.0), 100.0)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class _ByTime(Accumulator):
    """earliest/latest: the value at the smallest/largest @timestamp."""

    def __init__(self, latest: bool) -> None:
        self.latest = latest
        self.at: int | None = None
        self.value: Any = None

    def add(self, args: list[Any], timestamp: int) -> None:
        if args[0] is None:
            return
        if self.at is None or (timestamp > self.at if self.latest else timestamp < self.at):
            self.at, self.value = timestamp, args[0]

    def result(self) -> Any:
        return self.value


class _BySort(Accumulator):
    """sortsFirst/sortsLast: the value that sorts first/last."""

    def __init__(self, last: bool) -> None:
        self.last = last
        self.value: Any = None

    def add(self, args: list[Any], timestamp: int) -> None:
        v = args[0]
        if v is None:
            return
        if self.value is None or ((sort_key(v) > sort_key(self.value)) if self.last
                                  else (sort_key(v) < sort_key(self.value))):
            self.value = v

    def result(self) -> Any:
        return self.value


@dataclass(frozen=True)
class Aggregate:
    arity: tuple[int, int]
    new: Callable[[bool], Accumulator]      # given whether it was called as count(*)


AGGREGATES: dict[str, Aggregate] = {
    "count": Aggregate((0, 1), lambda star: _Count(star)),
    "count_distinct": Aggregate((1, 1), lambda star: _Distinct()),
    "sum": Aggregate((1, 1), lambda star: _Numbers("sum")),
    "avg": Aggregate((1, 1), lambda star: _Numbers("avg")),
    "min": Aggregate((1, 1), lambda star: _Numbers("min")),
    "max": Aggregate((1, 1), lambda star: _Numbers("max")),
    "stddev": Aggregate((1, 1), lambda star: _Numbers("stddev")),
    "pct": Aggregate((2, 2), lambda star: _Numbers("pct")),
    "earliest": Aggregate((1, 1), lambda star: _ByTime(False)),
    "latest": Aggregate((1, 1), lambda star: _ByTime(True)),
    "sortsfirst": Aggregate((1, 1), lambda star: _BySort(False)),
    "sortslast": Aggregate((1, 1), lambda star: _BySort(True)),
}
