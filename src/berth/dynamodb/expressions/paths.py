"""Document paths against items: reading one, and projecting an item onto some."""
from __future__ import annotations

from ..attributes import AttributeValue, Item, kind_of
from .syntax import Path, Step


def resolve(item: Item, path: Path) -> AttributeValue | None:
    """The value at `path`, or None if the item has nothing there (a missing attribute, an
    index past the end, or a step into a value of another type)."""
    steps = path.steps
    value = item.get(steps[0])  # type: ignore[call-overload]
    for step in steps[1:]:
        if value is None:
            return None
        if isinstance(step, int):
            items = value.get("L")
            value = items[step] if items is not None and step < len(items) else None
        else:
            members = value.get("M")
            value = members.get(step) if members is not None else None
    return value


def project(item: Item, paths: tuple[Path, ...] | list[Path]) -> Item:
    """The item with only what `paths` name (ProjectionExpression; UPDATED_OLD/NEW): nested
    maps keep the named members, lists the named elements in their order."""
    groups: dict[Step, list[tuple[Step, ...]]] = {}
    for path in paths:
        groups.setdefault(path.steps[0], []).append(path.steps[1:])
    out: Item = {}
    for name, rests in groups.items():
        value = item.get(name)  # type: ignore[call-overload]
        if value is not None:
            picked = _pick(value, rests)
            if picked is not None:
                out[name] = picked  # type: ignore[index]
    return out


def _pick(value: AttributeValue, rests: list[tuple[Step, ...]]) -> AttributeValue | None:
    if any(not rest for rest in rests):
        return value
    kind = kind_of(value)
    groups: dict[Step, list[tuple[Step, ...]]] = {}
    want_index = kind == "L"
    if kind not in ("L", "M"):
        return None
    for rest in rests:
        if isinstance(rest[0], int) == want_index:
            groups.setdefault(rest[0], []).append(rest[1:])
    if kind == "M":
        members = value["M"]
        out = {}
        for key, sub in groups.items():
            if key in members:
                picked = _pick(members[key], sub)
                if picked is not None:
                    out[key] = picked
        return {"M": out} if out else None
    elements = value["L"]
    picked_list = []
    for index in sorted(groups):     # type: ignore[type-var]
        assert isinstance(index, int)
        if index < len(elements):
            picked = _pick(elements[index], groups[index])
            if picked is not None:
                picked_list.append(picked)
    return {"L": picked_list} if picked_list else None
