"""The parsed form of a Logs Insights query: expressions and commands.

Every expression keeps the source text it was written as: a `fields` or `stats` column that
has no alias is named by that text, as AWS names it (`count(*)`, `bin(5m)`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class Literal:
    value: Any          # str, int, float, bool or None
    text: str


@dataclass(frozen=True)
class Regex:
    pattern: str        # Python syntax (Java's named groups translated)
    text: str


@dataclass(frozen=True)
class Field:
    name: str
    text: str


@dataclass(frozen=True)
class Call:
    name: str           # lower case
    args: tuple["Expr", ...]
    text: str


@dataclass(frozen=True)
class Unary:
    op: str             # "not", "-"
    operand: "Expr"
    text: str


@dataclass(frozen=True)
class Binary:
    op: str             # and or = != < <= > >= + - * / % ^ like =~ in
    left: "Expr"
    right: "Expr"
    text: str
    negated: bool = False   # `not like`, `not in`


@dataclass(frozen=True)
class ListOf:
    items: tuple["Expr", ...]
    text: str


Expr = Union[Literal, Regex, Field, Call, Unary, Binary, ListOf]


@dataclass(frozen=True)
class Column:
    """An expression with the name its value is kept under."""
    expr: Expr
    name: str


@dataclass(frozen=True)
class Fields:
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Display:
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Filter:
    condition: Expr


@dataclass(frozen=True)
class Stats:
    aggregates: tuple[Column, ...]
    groups: tuple[Column, ...] = ()


@dataclass(frozen=True)
class SortKey:
    expr: Expr
    descending: bool


@dataclass(frozen=True)
class Sort:
    keys: tuple[SortKey, ...]


@dataclass(frozen=True)
class Limit:
    count: int


@dataclass(frozen=True)
class Parse:
    source: Expr
    regex: str                      # Python syntax, searched in the source's text
    names: tuple[str, ...]          # the capture groups' fields, in order


@dataclass(frozen=True)
class Dedup:
    names: tuple[str, ...]


Command = Union[Fields, Display, Filter, Stats, Sort, Limit, Parse, Dedup]


@dataclass(frozen=True)
class Query:
    commands: tuple[Command, ...] = field(default_factory=tuple)
