"""An independent reading of DynamoDB's documented expression semantics, for property tests.

Values are turned into plain Python values first (Decimal for numbers, bytes for binaries,
frozensets for sets, tuples for lists, dicts for maps), and the documented rules are applied to
those, sharing nothing with berth's evaluator but the syntax tree.

Documented rules (Developer Guide, "Condition expressions" and "Update expressions"):
- a = b holds when a and b are of one type and equal; sets equal as sets. a <> b is its
  negation (so it holds when an attribute is missing).
- <, <=, >, >=, BETWEEN order numbers numerically, strings and binaries by their (UTF-8) bytes;
  with a missing operand or different types they are false.
- a IN (b, c, ...) holds when a equals one of them.
- attribute_exists / attribute_not_exists; attribute_type(path, :t); begins_with(path, s) on
  strings and binaries; contains(path, x): a substring of a string, an element of a set, an
  element of a list; size(path): characters of a string, bytes of a binary, members of a set,
  list or map.
- Updates read every operand from the item before the update; SET a = x + y and - on numbers;
  list_append concatenates lists; if_not_exists(p, v) is p's value if present, else v; SET
  of a list index past the end appends; REMOVE of list elements names the original indexes;
  ADD adds a number (missing: 0) or joins a set (missing: the empty set); DELETE takes
  elements out of a set, and an emptied set is removed.
"""
from __future__ import annotations

import base64
from decimal import Context, Decimal
from typing import Any

from berth.dynamodb.expressions.syntax import (And, Arithmetic, Between, Compare, Function,
                                               IfNotExists, In, ListAppend, Not, Or, Path, Size,
                                               Value)

MISSING = object()
# Exact for sums of storable numbers (Python's default context keeps only 28 digits).
EXACT = Context(prec=400)


class Invalid(Exception):
    """The documented rules say the update cannot apply (DynamoDB: a ValidationException)."""


def native(value: dict[str, Any]) -> Any:
    (kind, raw), = value.items()
    if kind == "S":
        return ("S", raw)
    if kind == "N":
        return ("N", Decimal(raw))
    if kind == "B":
        return ("B", base64.b64decode(raw))
    if kind == "BOOL":
        return ("BOOL", raw)
    if kind == "NULL":
        return ("NULL", True)
    if kind == "SS":
        return ("SS", frozenset(raw))
    if kind == "NS":
        return ("NS", frozenset(Decimal(n) for n in raw))
    if kind == "BS":
        return ("BS", frozenset(base64.b64decode(b) for b in raw))
    if kind == "L":
        return ("L", tuple(native(v) for v in raw))
    return ("M", {k: native(v) for k, v in raw.items()})


def native_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: native(v) for k, v in item.items()}


def lookup(item: dict[str, Any], path: Path) -> Any:
    current: Any = ("M", item)
    for step in path.steps:
        kind, raw = current
        if isinstance(step, int):
            if kind != "L" or step >= len(raw):
                return MISSING
            current = raw[step]
        else:
            if kind != "M" or step not in raw:
                return MISSING
            current = raw[step]
    return current


def operand(op: Any, item: dict[str, Any]) -> Any:
    if isinstance(op, Path):
        return lookup(item, op)
    if isinstance(op, Value):
        return native(op.value)
    assert isinstance(op, Size)
    found = lookup(item, op.path)
    if found is MISSING or found[0] in ("N", "BOOL", "NULL"):
        return MISSING
    return ("N", Decimal(len(found[1])))


def _ordered(a: Any, b: Any) -> tuple[Any, Any] | None:
    if a is MISSING or b is MISSING or a[0] != b[0] or a[0] not in ("N", "S", "B"):
        return None
    if a[0] == "S":
        return a[1].encode(), b[1].encode()
    return a[1], b[1]


def holds(condition: Any, item: dict[str, Any]) -> bool:
    if isinstance(condition, And):
        return holds(condition.left, item) and holds(condition.right, item)
    if isinstance(condition, Or):
        return holds(condition.left, item) or holds(condition.right, item)
    if isinstance(condition, Not):
        return not holds(condition.condition, item)
    if isinstance(condition, Compare):
        a, b = operand(condition.left, item), operand(condition.right, item)
        if condition.op == "=":
            return a is not MISSING and a == b
        if condition.op == "<>":
            return not (a is not MISSING and a == b)
        pair = _ordered(a, b)
        if pair is None:
            return False
        x, y = pair
        return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[condition.op]
    if isinstance(condition, Between):
        a = operand(condition.operand, item)
        low = _ordered(a, operand(condition.low, item))
        high = _ordered(a, operand(condition.high, item))
        return low is not None and high is not None and low[1] <= low[0] and high[0] <= high[1]
    if isinstance(condition, In):
        a = operand(condition.operand, item)
        return a is not MISSING and any(a == operand(c, item) for c in condition.choices)
    assert isinstance(condition, Function)
    first = operand(condition.args[0], item)
    if condition.name == "attribute_exists":
        return first is not MISSING
    if condition.name == "attribute_not_exists":
        return first is MISSING
    if first is MISSING:
        return False
    second = operand(condition.args[1], item)
    if condition.name == "attribute_type":
        return first[0] == second[1]
    if condition.name == "begins_with":
        return first[0] == second[0] and first[0] in ("S", "B") and first[1][:len(second[1])] \
            == second[1]
    # contains
    if first[0] == "S":
        return second[0] == "S" and second[1] in first[1]
    if first[0] in ("SS", "NS", "BS"):
        return second[0] == first[0][0] and second[1] in first[1]
    if first[0] == "L":
        return second in first[1]
    return False


# ------------------------------------------------------------------------------------------
# Updates.


def set_value(op: Any, item: dict[str, Any]) -> Any:
    if isinstance(op, Value):
        return native(op.value)
    if isinstance(op, Path):
        found = lookup(item, op)
        if found is MISSING:
            raise Invalid("refers to a missing attribute")
        return found
    if isinstance(op, IfNotExists):
        found = lookup(item, op.path)
        return set_value(op.default, item) if found is MISSING else found
    if isinstance(op, ListAppend):
        a, b = set_value(op.first, item), set_value(op.second, item)
        if a[0] != "L" or b[0] != "L":
            raise Invalid("list_append of a non-list")
        return ("L", a[1] + b[1])
    assert isinstance(op, Arithmetic)
    a, b = set_value(op.left, item), set_value(op.right, item)
    if a[0] != "N" or b[0] != "N":
        raise Invalid("arithmetic on a non-number")
    return ("N", _storable(EXACT.add(a[1], b[1]) if op.op == "+" else
                           EXACT.subtract(a[1], b[1])))


def _storable(value: Decimal) -> Decimal:
    """A Number result must fit: 38 significant digits, magnitude below 1E126 and, unless
    zero, at least 1E-130."""
    if value:
        digits = value.normalize(EXACT).as_tuple().digits
        if len(digits) > 38 or abs(value) >= Decimal("1E126") or abs(value) < Decimal("1E-130"):
            raise Invalid("number out of range")
    return value


def apply_update(update: Any, item: dict[str, Any]) -> dict[str, Any]:
    """The item after an update of top-level attributes and their list elements."""
    before = item
    after = dict(item)
    sets, removes, adds, deletes = [], [], [], []
    for action in update.actions:
        if action.kind == "SET":
            sets.append((action.path, set_value(action.value, before)))
        elif action.kind == "REMOVE":
            removes.append(action.path)
        elif action.kind == "ADD":
            adds.append((action.path, native(action.value.value)))
        else:
            deletes.append((action.path, native(action.value.value)))
    # List index SETs: replace in place, or append (in index order) past the end.
    for path, value in sorted(sets, key=lambda pv: [(isinstance(s, int), s)
                                                    for s in pv[0].steps]):
        name = path.steps[0]
        if len(path.steps) == 1:
            after[name] = value
            continue
        current = after.get(name)
        if current is None or current[0] != "L":
            raise Invalid("list index into a non-list")
        elements = list(current[1])
        index = path.steps[1]
        if index < len(elements):
            elements[index] = value
        else:
            elements.append(value)
        after[name] = ("L", tuple(elements))
    by_list: dict[str, list[int]] = {}
    for path in removes:
        if len(path.steps) == 1:
            after.pop(path.steps[0], None)
        else:
            by_list.setdefault(path.steps[0], []).append(path.steps[1])
    for name, indexes in by_list.items():
        current = after.get(name)
        if current is None or current[0] != "L":
            raise Invalid("list index into a non-list")
        after[name] = ("L", tuple(e for i, e in enumerate(current[1]) if i not in indexes))
    for path, value in adds:
        name = path.steps[0]
        current = before.get(name)
        if current is None:
            after[name] = value
        elif current[0] != value[0]:
            raise Invalid("ADD of another type")
        elif value[0] == "N":
            after[name] = ("N", _storable(EXACT.add(current[1], value[1])))
        else:
            after[name] = (value[0], current[1] | value[1])
    for path, value in deletes:
        name = path.steps[0]
        current = before.get(name)
        if current is None:
            continue
        if current[0] != value[0]:
            raise Invalid("DELETE of another type")
        left = current[1] - value[1]
        if left:
            after[name] = (value[0], left)
        else:
            after.pop(name, None)
    return after


def project(item: dict[str, Any], paths: list[Path]) -> dict[str, Any]:
    """ProjectionExpression over top-level names, map members and list elements."""
    out: dict[str, Any] = {}
    for path in paths:
        found = lookup(item, path)
        if found is MISSING:
            continue
        _place(out, path.steps, found, item)
    return {k: _finish(v) for k, v in out.items()}


def _place(out: dict[Any, Any], steps: tuple[Any, ...], value: Any, source: Any) -> None:
    head, rest = steps[0], steps[1:]
    if not rest:
        out[head] = value
        return
    kind = "L" if isinstance(rest[0], int) else "M"
    child = out.setdefault(head, (kind + "*", {}))
    _place(child[1], rest, value, source)


def _finish(value: Any) -> Any:
    if value[0] == "M*":
        return ("M", {k: _finish(v) for k, v in value[1].items()})
    if value[0] == "L*":
        return ("L", tuple(_finish(value[1][i]) for i in sorted(value[1])))
    return value
