"""Applying an UpdateExpression to an item.

Every operand is read from the item as it was before the update (`SET a = b, b = a` swaps),
then the actions are applied: SETs in path order (appends to one list land in index order),
REMOVEs from the highest list index down (indexes name the elements of the original list),
then ADDs and DELETEs.
"""
from __future__ import annotations

from typing import Any

import orjson

from .. import numbers
from ..attributes import SET_TYPES, AttributeValue, Item, kind_of
from ..numbers import invalid
from .paths import resolve
from .syntax import (Action, Arithmetic, IfNotExists, ListAppend, Operand, Path, Step, Update,
                     Value)


def _wrong_type() -> Exception:
    return invalid("An operand in the update expression has an incorrect data type")


def _bad_path() -> Exception:
    return invalid("The document path provided in the update expression is invalid for update")


def apply(update: Update, item: Item) -> Item:
    """The item after the update (`item` itself is left as it was)."""
    new: Item = orjson.loads(orjson.dumps(item))
    sets, removes, adds, deletes = [], [], [], []
    for action in update.actions:
        if action.kind == "SET":
            assert action.value is not None
            sets.append((action.path, value_of(action.value, item)))
        elif action.kind == "REMOVE":
            removes.append(action.path)
        elif action.kind == "ADD":
            adds.append((action.path, _added(action, resolve(item, action.path))))
        else:
            deletes.append((action.path, _deleted(action, resolve(item, action.path))))
    for path, value in sorted(sets, key=lambda pair: _order(pair[0])):
        _assign(new, path.steps, value)
    for path in sorted(removes, key=_order, reverse=True):
        _remove(new, path.steps)
    for path, value in adds:
        _assign(new, path.steps, value)
    for path, value in deletes:
        if value is None:
            _remove(new, path.steps)
        else:
            _assign(new, path.steps, value)
    return new


def _order(path: Path) -> tuple[tuple[int, Any], ...]:
    return tuple((1, s) if isinstance(s, int) else (0, s) for s in path.steps)


def value_of(op: Operand, item: Item) -> AttributeValue:
    """A SET operand's value, read from the item before the update."""
    if isinstance(op, Value):
        return op.value
    if isinstance(op, Path):
        found = resolve(item, op)
        if found is None:
            raise invalid("The provided expression refers to an attribute that does not exist "
                          "in the item")
        return found
    if isinstance(op, IfNotExists):
        found = resolve(item, op.path)
        return found if found is not None else value_of(op.default, item)
    if isinstance(op, ListAppend):
        first, second = value_of(op.first, item), value_of(op.second, item)
        if kind_of(first) != "L" or kind_of(second) != "L":
            raise _wrong_type()
        return {"L": first["L"] + second["L"]}
    assert isinstance(op, Arithmetic)
    left, right = value_of(op.left, item), value_of(op.right, item)
    if kind_of(left) != "N" or kind_of(right) != "N":
        raise _wrong_type()
    if op.op == "+":
        return {"N": numbers.add(left["N"], right["N"])}
    return {"N": numbers.subtract(left["N"], right["N"])}


def _added(action: Action, current: AttributeValue | None) -> AttributeValue:
    assert isinstance(action.value, Value)
    value = action.value.value
    if current is None:
        return value
    kind = kind_of(value)
    if kind_of(current) != kind:
        raise _wrong_type()
    if kind == "N":
        return {"N": numbers.add(current["N"], value["N"])}
    present = set(current[kind])
    return {kind: current[kind] + [m for m in value[kind] if m not in present]}


def _deleted(action: Action, current: AttributeValue | None) -> AttributeValue | None:
    """The set left after a DELETE; None when nothing is left (the attribute goes)."""
    assert isinstance(action.value, Value)
    value = action.value.value
    kind = kind_of(value)
    if current is None:
        return None
    if kind_of(current) != kind or kind not in SET_TYPES:
        raise _wrong_type()
    gone = set(value[kind])
    left = [m for m in current[kind] if m not in gone]
    return {kind: left} if left else None


def _container(item: Item, steps: tuple[Step, ...]) -> AttributeValue:
    """The map or list holding the last step of a path (it must exist)."""
    value: Any = {"M": item}
    for step in steps[:-1]:
        if isinstance(step, int):
            elements = value.get("L")
            if elements is None or step >= len(elements):
                raise _bad_path()
            value = elements[step]
        else:
            members = value.get("M")
            if members is None or step not in members:
                raise _bad_path()
            value = members[step]
    return value  # type: ignore[no-any-return]


def _holder(item: Item, steps: tuple[Step, ...]) -> Any:
    """The list or the members' dict that holds the last step of a path."""
    held = _container(item, steps).get("L" if isinstance(steps[-1], int) else "M")
    if held is None:
        raise _bad_path()
    return held


def _assign(item: Item, steps: tuple[Step, ...], value: AttributeValue) -> None:
    held, last = _holder(item, steps), steps[-1]
    if isinstance(last, int) and last >= len(held):
        held.append(value)      # past the end of a list: appended
    else:
        held[last] = value


def _remove(item: Item, steps: tuple[Step, ...]) -> None:
    held, last = _holder(item, steps), steps[-1]
    if isinstance(last, int):
        if last < len(held):
            del held[last]
    else:
        held.pop(last, None)
