"""Mesos messages as Python frameworks handle them: JSON-shaped dicts (the Mesos v1 HTTP API's
field names: `task_id`, `agent_id`, `resources`, ...) that also answer attribute access.

pymesos hands frameworks addict `Dict`s, and frameworks build their TaskInfos the same way
(`task.task_id.value = ...`): `Message` behaves like that, so such code runs unchanged, and
plain dicts are accepted wherever a message is.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class Message(dict[str, Any]):
    """A dict with attribute access. Reading a missing member gives an empty Message that joins
    its parent only once something is set on it, so `task.command.value = "ls"` builds the
    nested members while `if offer.unavailability:` leaves the offer as it was."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, value in dict.items(self):
            if type(value) not in _LEAVES:
                dict.__setitem__(self, key, wrap(value))

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, wrap(value))
        parent = self.__dict__.pop("_parent", None)
        if parent is not None:          # first member set on a child read from its parent
            holder, name = parent
            holder[name] = self

    def __missing__(self, key: str) -> Message:
        child = Message()
        child.__dict__["_parent"] = (self, key)
        return child

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None


_LEAVES = frozenset({str, int, float, bool, type(None), bytes})


def wrap(value: Any) -> Any:
    """Mappings as Messages, lists and tuples element by element; anything else as it is."""
    kind = type(value)
    if kind in _LEAVES or kind is Message:     # the common cases first: offers are built hot
        return value
    if kind is list or kind is tuple:
        return [wrap(v) for v in value]
    if isinstance(value, Mapping):
        return Message(value)
    return value


def built(**members: Any) -> Message:
    """A Message of members that are Messages (or lists of them) or leaves already: no
    wrapping, for the driver's hot paths (a thousand offers a round)."""
    out = Message()
    dict.update(out, members)
    return out


def ident(value: str) -> Message:
    return built(value=value)


def id_value(ident: Any) -> str:
    """The string in an id message (`{"value": "x"}`), or the string given."""
    if isinstance(ident, Mapping):
        value = ident.get("value")
        if not isinstance(value, str) or not value:
            raise ValueError(f"an id needs a non-empty string value: {ident!r}")
        return value
    if isinstance(ident, str) and ident:
        return ident
    raise ValueError(f"not an id: {ident!r}")


def id_values(idents: Any) -> list[str]:
    """One id or a list of them (pymesos accepts both), as strings."""
    if isinstance(idents, (Mapping, str)):
        return [id_value(idents)]
    return [id_value(i) for i in idents]


def scalar(name: str, value: float) -> Message:
    return built(name=name, type="SCALAR", scalar=built(value=value))


def ranges(name: str, spans: Iterable[tuple[int, int]]) -> Message:
    return built(name=name, type="RANGES",
                 ranges=built(range=[built(begin=b, end=e) for b, e in spans]))


def text_attribute(name: str, value: str) -> Message:
    return built(name=name, type="TEXT", text=built(value=value))
