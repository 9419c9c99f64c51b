"""Placement strategies and constraints as ECS accepts them: checked and compiled once.

`place` (placement.py) works from the compiled form: strategy levels in order, and the
memberOf predicates and distinctInstance flag of the constraints.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .query import Predicate, QueryError, compile_expression


class PlacementError(ValueError):
    """An invalid strategy, constraint or expression; the API answers InvalidParameterException."""


# The texts ECS puts in RunTask `failures[].reason` (and service events).
MAX_STRATEGIES = 5      # RunTask/CreateService: "maximum of 5 strategy rules"
MAX_CONSTRAINTS = 10    # "maximum of 10 constraints per task"


@dataclass(frozen=True)
class Level:
    kind: str          # "cpu" | "memory" | "instance" | "attribute" | "random"
    name: str = ""     # the attribute's name for kind "attribute"


@dataclass(frozen=True)
class Rules:
    member_of: tuple[Predicate, ...]
    distinct: bool


def validate(strategies: Sequence[Mapping[str, str]] = (),
             constraints: Sequence[Mapping[str, str]] = ()) -> None:
    """Raise PlacementError if the strategies or constraints are invalid (for CreateService)."""
    levels(strategy_spec(strategies))
    rules(constraint_spec(constraints))


def strategy_spec(strategies: Sequence[Mapping[str, str]]) -> tuple[tuple[str, str], ...]:
    try:
        return tuple((s.get("type") or "", s.get("field") or "") for s in strategies)
    except AttributeError:
        raise PlacementError("Each placement strategy must be an object with a type.") from None


def constraint_spec(constraints: Sequence[Mapping[str, str]]) -> tuple[tuple[str, str], ...]:
    try:
        return tuple((c.get("type") or "", c.get("expression") or "") for c in constraints)
    except AttributeError:
        raise PlacementError("Each placement constraint must be an object with a type.") from None


@lru_cache(maxsize=512)
def levels(spec: tuple[tuple[str, str], ...]) -> tuple[Level, ...]:
    if len(spec) > MAX_STRATEGIES:
        raise PlacementError(f"You can specify a maximum of {MAX_STRATEGIES} placement "
                             "strategies.")
    found: list[Level] = []
    for kind, fld in spec:
        if kind == "random":
            found.append(Level("random"))
            break   # random leaves no ties for later strategies to break
        if kind == "binpack":
            if fld.lower() not in ("cpu", "memory"):
                raise PlacementError(f"Invalid binpack field '{fld}': the binpack placement "
                                     "strategy takes the field cpu or memory.")
            found.append(Level(fld.lower()))
        elif kind == "spread":
            if fld.lower() in ("instanceid", "host"):
                found.append(Level("instance"))
            elif fld.startswith("attribute:") and len(fld) > len("attribute:"):
                found.append(Level("attribute", fld[len("attribute:"):]))
            else:
                raise PlacementError(f"Invalid spread field '{fld}': the spread placement "
                                     "strategy takes instanceId, host or attribute:NAME.")
        else:
            raise PlacementError(f"Invalid placement strategy type '{kind}': "
                                 "expected random, spread or binpack.")
    return tuple(found)


@lru_cache(maxsize=512)
def rules(spec: tuple[tuple[str, str], ...]) -> Rules:
    if len(spec) > MAX_CONSTRAINTS:
        raise PlacementError(f"You can specify a maximum of {MAX_CONSTRAINTS} placement "
                             "constraints.")
    member_of: list[Predicate] = []
    distinct = False
    for kind, expression in spec:
        if kind == "distinctInstance":
            if expression:
                raise PlacementError("You cannot specify an expression if the constraint type "
                                     "is distinctInstance.")
            distinct = True
        elif kind == "memberOf":
            if not expression:
                raise PlacementError("An expression is required for the memberOf placement "
                                     "constraint.")
            try:
                member_of.append(compile_expression(expression))
            except QueryError as e:
                raise PlacementError(str(e)) from None
        else:
            raise PlacementError(f"Invalid placement constraint type '{kind}': "
                                 "expected distinctInstance or memberOf.")
    return Rules(tuple(member_of), distinct)
