"""The nodes of DynamoDB's expression language, as the parser builds them.

Placeholders are already substituted: a `Path` holds attribute names and list indexes, a
`Value` the attribute value from ExpressionAttributeValues. Evaluation (`conditions`,
`updates`, `paths`) walks these nodes against an item.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..attributes import AttributeValue

Step = Union[str, int]   # a map key / attribute name, or a list index


@dataclass(frozen=True, slots=True)
class Path:
    steps: tuple[Step, ...]

    def shown(self) -> str:
        """As AWS shows a path in messages: [a, b, [1]]."""
        return "[" + ", ".join(f"[{s}]" if isinstance(s, int) else s for s in self.steps) + "]"


@dataclass(frozen=True, slots=True)
class Value:
    value: AttributeValue
    placeholder: str


@dataclass(frozen=True, slots=True)
class Size:
    path: Path


@dataclass(frozen=True, slots=True)
class IfNotExists:
    path: Path
    default: "Operand"


@dataclass(frozen=True, slots=True)
class ListAppend:
    first: "Operand"
    second: "Operand"


@dataclass(frozen=True, slots=True)
class Arithmetic:
    op: str             # "+" or "-"
    left: "Operand"
    right: "Operand"


Operand = Union[Path, Value, Size, IfNotExists, ListAppend, Arithmetic]


@dataclass(frozen=True, slots=True)
class Compare:
    op: str             # = <> < <= > >=
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Between:
    operand: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True, slots=True)
class In:
    operand: Operand
    choices: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Function:
    name: str           # attribute_exists, attribute_not_exists, attribute_type,
    args: tuple[Operand, ...]   # begins_with, contains


@dataclass(frozen=True, slots=True)
class And:
    left: "Condition"
    right: "Condition"


@dataclass(frozen=True, slots=True)
class Or:
    left: "Condition"
    right: "Condition"


@dataclass(frozen=True, slots=True)
class Not:
    condition: "Condition"


Condition = Union[Compare, Between, In, Function, And, Or, Not]


@dataclass(frozen=True, slots=True)
class Action:
    kind: str           # SET, REMOVE, ADD, DELETE
    path: Path
    value: Operand | None = None


@dataclass(frozen=True, slots=True)
class Update:
    actions: tuple[Action, ...]
