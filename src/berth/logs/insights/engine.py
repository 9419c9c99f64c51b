"""Running a parsed Logs Insights query over a stream of records.

Commands are stages of one pipeline over the records, in the order written: `fields`,
`parse` and `filter` stream; `sort` and `stats` take all their input first; `limit` stops
the pipeline (and so the scan feeding it) as soon as it has enough. Records come in newest
first, so a query without `sort` answers the newest events, as AWS's does.

`run(query, records, limit)` returns the result rows, each a list of (field, text value) for
the fields present with the event it shows (None for a stats group), and how many records
matched (passed the filters before any `stats`, `sort`, `limit` or `dedup`).
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from . import syntax as s
from .functions import AGGREGATES, SCALARS, Accumulator
from .records import Record
from .values import equal, number, order, sort_key, text, truthy

Compiled = Callable[[Record], Any]
DEFAULT_FIELDS = ("@timestamp", "@message", "@logStream", "@log")
_STAR = s.Literal("*", "*")      # count(*)


@dataclass
class Result:
    rows: list[tuple[list[tuple[str, str]], Any]]   # (fields, the record's event or None)
    matched: int


# -- expressions --------------------------------------------------------------------------------

def compile_expr(expr: s.Expr) -> Compiled:
    if isinstance(expr, s.Literal):
        value = expr.value
        return lambda rec: value
    if isinstance(expr, s.Field):
        name = expr.name
        return lambda rec: rec.field(name)
    if isinstance(expr, s.Regex):
        pattern = expr.pattern
        return lambda rec: pattern
    if isinstance(expr, s.ListOf):
        items = [compile_expr(i) for i in expr.items]
        return lambda rec: [f(rec) for f in items]
    if isinstance(expr, s.Unary):
        operand = compile_expr(expr.operand)
        if expr.op == "not":
            return lambda rec: not truthy(operand(rec))
        return lambda rec: _arith("-", 0, operand(rec))
    if isinstance(expr, s.Call):
        return _compile_call(expr)
    assert isinstance(expr, s.Binary)
    return _compile_binary(expr)


def _compile_call(expr: s.Call) -> Compiled:
    if expr.name in AGGREGATES:     # inside stats, its value is kept under its text
        key = expr.text
        return lambda rec: rec.get(key)
    fn = SCALARS[expr.name].call
    args = [compile_expr(a) for a in expr.args]
    if expr.name == "bin":
        (period,) = args
        return lambda rec: fn(rec.field("@timestamp"), period(rec))
    return lambda rec: fn(*(a(rec) for a in args))


def _compile_binary(expr: s.Binary) -> Compiled:
    op = expr.op
    left, right = compile_expr(expr.left), compile_expr(expr.right)
    if op == "and":
        return lambda rec: truthy(left(rec)) and truthy(right(rec))
    if op == "or":
        return lambda rec: truthy(left(rec)) or truthy(right(rec))
    if op in ("like", "=~") or (op in ("=", "!=") and isinstance(expr.right, s.Regex)):
        test = _matcher(expr.right, right)
        negate = expr.negated or op == "!="
        return lambda rec: test(rec, text(left(rec))) != negate
    if op == "in":
        negate = expr.negated
        return lambda rec: any(equal(left(rec), v) for v in right(rec)) != negate
    if op == "=":
        return lambda rec: equal(left(rec), right(rec))
    if op == "!=":
        return lambda rec: (a := left(rec)) is not None and (b := right(rec)) is not None \
            and not equal(a, b)
    if op in ("<", "<=", ">", ">="):
        accept = {"<": (-1,), "<=": (-1, 0), ">": (1,), ">=": (1, 0)}[op]
        return lambda rec: order(left(rec), right(rec)) in accept
    return lambda rec: _arith(op, left(rec), right(rec))


def _matcher(node: s.Expr, value: Compiled) -> Callable[[Record, str | None], bool]:
    """`like` and `=~`: a regex searches; a string must occur (case-sensitive)."""
    if isinstance(node, s.Regex):
        rx = re.compile(node.pattern)
        return lambda rec, subject: subject is not None and rx.search(subject) is not None

    def contains(rec: Record, subject: str | None) -> bool:
        needle = text(value(rec))
        return subject is not None and needle is not None and needle in subject
    return contains


def _arith(op: str, a: Any, b: Any) -> Any:
    x, y = number(a), number(b)
    if x is None or y is None:
        return None
    try:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            return x / y
        if op == "%":
            return math.fmod(x, y)
        return x ** y
    except (ZeroDivisionError, OverflowError, ValueError):
        return None


# -- commands -------------------------------------------------------------------------------

@dataclass
class _Shape:
    """What the output shows: the fields named so far, or the ones `display` names."""
    columns: list[str] = field(default_factory=list)
    display: list[str] | None = None


def run(query: s.Query, records: Iterable[Record], limit: int = 10_000) -> Result:
    stream: Iterator[Record] = iter(records)
    shape = _Shape()
    matched = [0]
    counted = False
    for command in query.commands:
        if not counted and isinstance(command, (s.Stats, s.Sort, s.Limit, s.Dedup)):
            stream, counted = _count(stream, matched), True
        stream = _stage(command, stream, shape)
    if not counted:
        stream = _count(stream, matched)
    rows = list(itertools.islice(stream, limit))
    return Result([(_row(r, shape), r.event) for r in rows], matched[0])


def _count(stream: Iterator[Record], counter: list[int]) -> Iterator[Record]:
    for rec in stream:
        counter[0] += 1
        yield rec


def _stage(command: s.Command, stream: Iterator[Record], shape: _Shape) -> Iterator[Record]:
    if isinstance(command, s.Fields):
        columns = [(c.name, compile_expr(c.expr)) for c in command.columns]
        for name, _ in columns:
            if name not in shape.columns:
                shape.columns.append(name)
        return _assign(stream, columns)
    if isinstance(command, s.Display):
        columns = [(c.name, compile_expr(c.expr)) for c in command.columns]
        shape.display = [name for name, _ in columns]
        return _assign(stream, columns)
    if isinstance(command, s.Filter):
        test = compile_expr(command.condition)
        return (rec for rec in stream if truthy(test(rec)))
    if isinstance(command, s.Parse):
        return _parse(stream, command)
    if isinstance(command, s.Limit):
        return itertools.islice(stream, command.count)
    if isinstance(command, s.Dedup):
        return _dedup(stream, command.names)
    if isinstance(command, s.Sort):
        return _sort(stream, command)
    assert isinstance(command, s.Stats)
    shape.columns = [c.name for c in command.groups] + [c.name for c in command.aggregates]
    shape.display = None
    return _stats(stream, command)


def _assign(stream: Iterator[Record], columns: list[tuple[str, Compiled]]
            ) -> Iterator[Record]:
    for rec in stream:
        for name, fn in columns:
            value = fn(rec)
            if value is not None:
                rec[name] = value
        yield rec


def _parse(stream: Iterator[Record], command: s.Parse) -> Iterator[Record]:
    source = compile_expr(command.source)
    rx = re.compile(command.regex, re.S)
    names = command.names
    for rec in stream:
        subject = text(source(rec))
        m = rx.search(subject) if subject is not None else None
        if m is not None:
            values = m.groupdict() if rx.groupindex else dict(zip(names, m.groups()))
            for name in names:
                if values.get(name) is not None:
                    rec[name] = values[name]
        yield rec


def _dedup(stream: Iterator[Record], names: tuple[str, ...]) -> Iterator[Record]:
    """The first record of each combination of values; a record missing any of the fields
    is no duplicate and is kept."""
    seen: set[tuple[Any, ...]] = set()
    for rec in stream:
        key = tuple(text(rec.field(n)) for n in names)
        if None in key:
            yield rec
        elif key not in seen:
            seen.add(key)
            yield rec


def _sort(stream: Iterator[Record], command: s.Sort) -> Iterator[Record]:
    keys = [(compile_expr(k.expr), k.descending) for k in command.keys]
    rows = list(stream)
    # Stable sorts from the last key to the first; missing values sort last either way.
    for fn, descending in reversed(keys):
        present = [r for r in rows if fn(r) is not None]
        missing = [r for r in rows if fn(r) is None]
        present.sort(key=lambda r: sort_key(fn(r)), reverse=descending)
        rows = present + missing
    return iter(rows)


def _stats(stream: Iterator[Record], command: s.Stats) -> Iterator[Record]:
    calls = _aggregate_calls(command)
    args = [[compile_expr(a) for a in c.args if a != _STAR] for c in calls]

    def accumulators() -> list[Accumulator]:
        return [AGGREGATES[c.name].new(_STAR in c.args) for c in calls]

    groups = [(c.name, compile_expr(c.expr)) for c in command.groups]
    table: dict[tuple[Any, ...], tuple[list[Any], list[Accumulator]]] = {}
    for rec in stream:
        values = [fn(rec) for _, fn in groups]
        key = tuple(text(v) for v in values)
        entry = table.get(key)
        if entry is None:
            entry = table[key] = (values, accumulators())
        ts = int(rec.field("@timestamp") or 0)
        for acc, fns in zip(entry[1], args):
            acc.add([f(rec) for f in fns], ts)
    if not table and not groups:    # stats over nothing: one row of empty aggregates
        table[()] = ([], accumulators())
    outputs = [(c.name, compile_expr(c.expr)) for c in command.aggregates]
    rows = []
    for values, accs in table.values():
        # The aggregates' results, under their text, for the columns that combine them.
        rec = Record({c.text: acc.result() for c, acc in zip(calls, accs)})
        out = Record({name: v for (name, _), v in zip(groups, values) if v is not None})
        for name, fn in outputs:
            value = fn(rec)
            if value is not None:
                out[name] = value
        rows.append((tuple(sort_key(v) for v in values), out))
    rows.sort(key=lambda pair: pair[0])
    return iter([rec for _, rec in rows])


def _aggregate_calls(command: s.Stats) -> list[s.Call]:
    found: dict[str, s.Call] = {}

    def walk(expr: s.Expr) -> None:
        if isinstance(expr, s.Call) and expr.name in AGGREGATES:
            found.setdefault(expr.text, expr)
        elif isinstance(expr, s.Call):
            for a in expr.args:
                walk(a)
        elif isinstance(expr, s.Binary):
            walk(expr.left)
            walk(expr.right)
        elif isinstance(expr, s.Unary):
            walk(expr.operand)
    for column in command.aggregates:
        walk(column.expr)
    return list(found.values())


def _row(rec: Record, shape: _Shape) -> list[tuple[str, str]]:
    names = shape.display or shape.columns or list(DEFAULT_FIELDS)
    out = []
    for name in names:
        value = rec.field(name)
        if value is not None:
            out.append((name, text(value) or ""))
    return out

