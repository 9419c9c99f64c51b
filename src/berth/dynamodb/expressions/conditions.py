"""Evaluating conditions (ConditionExpression, FilterExpression) against an item.

As DynamoDB does: a comparison with a missing operand, or between different types, is false
(and `<>` then true); `<`, `<=`, `>`, `>=` and BETWEEN order only numbers, strings and
binaries; functions on a missing attribute are false.
"""
from __future__ import annotations

from ..attributes import AttributeValue, Item, blob, compare, equal, kind_of
from .paths import resolve
from .syntax import And, Between, Compare, Condition, Function, In, Not, Operand, Or, Path, Size

_ORDERED = {"<": (-1,), "<=": (-1, 0), ">": (1,), ">=": (1, 0)}


def evaluate(condition: Condition, item: Item) -> bool:
    kind = type(condition)
    if kind is Compare:
        assert isinstance(condition, Compare)
        left, right = operand(condition.left, item), operand(condition.right, item)
        if condition.op == "=":
            return equal(left, right)
        if condition.op == "<>":
            return not equal(left, right)
        return compare(left, right) in _ORDERED[condition.op]
    if kind is And:
        assert isinstance(condition, And)
        return evaluate(condition.left, item) and evaluate(condition.right, item)
    if kind is Or:
        assert isinstance(condition, Or)
        return evaluate(condition.left, item) or evaluate(condition.right, item)
    if kind is Not:
        assert isinstance(condition, Not)
        return not evaluate(condition.condition, item)
    if kind is Between:
        assert isinstance(condition, Between)
        value = operand(condition.operand, item)
        return (compare(value, operand(condition.low, item)) in (0, 1)
                and compare(value, operand(condition.high, item)) in (-1, 0))
    if kind is In:
        assert isinstance(condition, In)
        value = operand(condition.operand, item)
        return any(equal(value, operand(choice, item)) for choice in condition.choices)
    assert isinstance(condition, Function)
    return _function(condition, item)


def operand(op: Operand, item: Item) -> AttributeValue | None:
    if isinstance(op, Path):
        return resolve(item, op)
    if isinstance(op, Size):
        return size(resolve(item, op.path))
    return op.value  # type: ignore[union-attr]


def size(value: AttributeValue | None) -> AttributeValue | None:
    """size(): characters of a string, bytes of a binary, members of a set, list or map."""
    if value is None:
        return None
    kind, raw = next(iter(value.items()))
    if kind == "B":
        return {"N": str(len(blob(raw)))}
    if kind in ("S", "SS", "NS", "BS", "L", "M"):
        return {"N": str(len(raw))}
    return None


def _function(call: Function, item: Item) -> bool:
    name = call.name
    first = operand(call.args[0], item)
    if name == "attribute_exists":
        return first is not None
    if name == "attribute_not_exists":
        return first is None
    if first is None:
        return False
    second = operand(call.args[1], item)
    if second is None:
        return False
    if name == "attribute_type":
        return kind_of(first) == second["S"]
    a_kind, b_kind = kind_of(first), kind_of(second)
    if name == "begins_with":
        if a_kind == b_kind == "S":
            return bool(first["S"].startswith(second["S"]))
        if a_kind == b_kind == "B":
            return blob(first["B"]).startswith(blob(second["B"]))
        return False
    # contains
    if a_kind == "S":
        return b_kind == "S" and second["S"] in first["S"]
    if a_kind == "B":
        return b_kind == "B" and blob(second["B"]) in blob(first["B"])
    if a_kind in ("SS", "NS", "BS"):
        return a_kind == b_kind + "S" and second[b_kind] in first[a_kind]
    if a_kind == "L":
        return any(equal(element, second) for element in first["L"])
    return False
