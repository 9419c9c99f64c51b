"""Hypothesis strategies for DynamoDB items and expressions, and the renderer that writes an
expression tree as text with placeholders (as a client would)."""
from __future__ import annotations

import base64
import re
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from berth.dynamodb import numbers
from berth.dynamodb.expressions.reserved import RESERVED
from berth.dynamodb.expressions.syntax import (Action, And, Arithmetic, Between, Compare,
                                               Function, IfNotExists, In, ListAppend, Not, Or,
                                               Path, Size, Update, Value)

# Top-level names: plain ones, a reserved word and names that need a placeholder.
NAMES = ["a", "b", "c", "Data", "size", "x.y", "n"]
MEMBERS = ["a", "k", "Data", "z z"]
TYPES = ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"]
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@st.composite
def numbers_(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return str(draw(st.integers(-1000, 1000)))
    mantissa = draw(st.integers(-(10 ** 12), 10 ** 12))
    return numbers.normalize(str(Decimal(mantissa).scaleb(draw(st.integers(-20, 20)))))


@st.composite
def values(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    kinds = TYPES if depth < 2 else TYPES[:8]
    kind = draw(st.sampled_from(kinds))
    short = st.text(alphabet="abcé😀", max_size=4)
    if kind == "S":
        return {"S": draw(short)}
    if kind == "N":
        return {"N": draw(numbers_())}
    if kind == "B":
        return {"B": base64.b64encode(draw(st.binary(max_size=4))).decode()}
    if kind == "BOOL":
        return {"BOOL": draw(st.booleans())}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "SS":
        return {"SS": sorted(draw(st.sets(short, min_size=1, max_size=3)))}
    if kind == "NS":
        return {"NS": sorted(set(draw(st.lists(numbers_(), min_size=1, max_size=3))))}
    if kind == "BS":
        found = draw(st.sets(st.binary(max_size=3), min_size=1, max_size=3))
        return {"BS": [base64.b64encode(b).decode() for b in sorted(found)]}
    if kind == "L":
        return {"L": draw(st.lists(values(depth + 1), max_size=3))}
    return {"M": draw(st.dictionaries(st.sampled_from(MEMBERS), values(depth + 1), max_size=3))}


items = st.dictionaries(st.sampled_from(NAMES), values(), max_size=5)


@st.composite
def paths(draw: st.DrawFn) -> Path:
    steps: list[str | int] = [draw(st.sampled_from(NAMES))]
    for _ in range(draw(st.integers(0, 2))):
        steps.append(draw(st.one_of(st.sampled_from(MEMBERS), st.integers(0, 3))))
    return Path(tuple(steps))


def _value(v: dict[str, Any]) -> Value:
    return Value(v, "")


@st.composite
def operands(draw: st.DrawFn, item: dict[str, Any]) -> Any:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(paths())
    if choice == 1:
        return Size(draw(paths()))
    if choice == 2 and item:    # a value found in the item, so comparisons can hold
        return _value(item[draw(st.sampled_from(sorted(item)))])
    return _value(draw(values()))


@st.composite
def conditions(draw: st.DrawFn, item: dict[str, Any], depth: int = 0) -> Any:
    kind = draw(st.integers(0, 9 if depth < 3 else 5))
    if kind == 0:
        return Compare(draw(st.sampled_from(["=", "<>", "<", "<=", ">", ">="])),
                       draw(paths()), draw(operands(item)))
    if kind == 1:
        kind_, bound = draw(st.sampled_from([("N", numbers_()),
                                             ("S", st.text("ab", max_size=3))]))
        a, b = sorted([draw(bound), draw(bound)],
                      key=Decimal if kind_ == "N" else lambda s: s.encode())
        return Between(draw(st.one_of(paths(), st.builds(Size, paths()))),
                       _value({kind_: a}), _value({kind_: b}))
    if kind == 2:
        return In(draw(paths()), tuple(draw(st.lists(operands(item), min_size=1, max_size=3))))
    if kind == 3:
        name = draw(st.sampled_from(["attribute_exists", "attribute_not_exists"]))
        return Function(name, (draw(paths()),))
    if kind == 4:
        return Function("attribute_type", (draw(paths()),
                                           _value({"S": draw(st.sampled_from(TYPES))})))
    if kind == 5:
        prefix = draw(st.one_of(st.builds(lambda s: {"S": s}, st.text("abé", max_size=2)),
                                st.builds(lambda b: {"B": base64.b64encode(b).decode()},
                                          st.binary(max_size=2))))
        name = draw(st.sampled_from(["begins_with", "contains"]))
        if name == "contains":
            prefix = draw(st.one_of(st.just(prefix), values()))
            if "B" in prefix:   # undocumented for binaries: not generated
                prefix = {"S": "a"}
        return Function(name, (draw(paths()), _value(prefix)))
    inner = conditions(item, depth + 1)
    if kind == 6:
        return Not(draw(inner))
    if kind in (7, 8):
        return And(draw(inner), draw(inner))
    return Or(draw(inner), draw(inner))


class Renderer:
    """Writes trees as expression text, filling ExpressionAttributeNames/Values, and gives
    back the tree with the placeholders it chose (what parsing the text must yield)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.names: dict[str, str] = {}
        self.values: dict[str, dict[str, Any]] = {}

    def _space(self) -> str:
        return self.draw(st.sampled_from(["", " ", "  "]))

    def _word(self, word: str) -> str:
        return self.draw(st.sampled_from([word, word.lower(), word.capitalize()]))

    def name(self, name: str) -> str:
        if _PLAIN.fullmatch(name) and name.upper() not in RESERVED and self.draw(st.booleans()):
            return name
        key = next((k for k, v in self.names.items() if v == name), None)
        if key is None:
            key = f"#n{len(self.names)}"
            self.names[key] = name
        return key

    def path(self, path: Path) -> str:
        text = self.name(path.steps[0])
        for step in path.steps[1:]:
            text += f"[{step}]" if isinstance(step, int) else "." + self.name(step)
        return text

    def value(self, value: Value) -> tuple[str, Value]:
        key = f":v{len(self.values)}"
        self.values[key] = value.value
        return key, Value(value.value, key)

    def operand(self, op: Any) -> tuple[str, Any]:
        if isinstance(op, Path):
            return self.path(op), op
        if isinstance(op, Size):
            return f"size({self._space()}{self.path(op.path)})", op
        if isinstance(op, Value):
            return self.value(op)
        if isinstance(op, IfNotExists):
            default, d = self.operand(op.default)
            return f"if_not_exists({self.path(op.path)},{self._space()}{default})", \
                IfNotExists(op.path, d)
        if isinstance(op, ListAppend):
            (a, x), (b, y) = self.operand(op.first), self.operand(op.second)
            return f"list_append({a}, {b})", ListAppend(x, y)
        assert isinstance(op, Arithmetic)
        (a, x), (b, y) = self.operand(op.left), self.operand(op.right)
        return f"{a}{self._space()}{op.op}{self._space()}{b}", Arithmetic(op.op, x, y)

    def condition(self, node: Any, needed: int = 1) -> tuple[str, Any]:
        level, text, out = self._condition(node)
        if level < needed or self.draw(st.integers(0, 9)) == 0:
            text = f"({self._space()}{text}{self._space()})"
        return text, out

    def _condition(self, node: Any) -> tuple[int, str, Any]:
        if isinstance(node, Or):
            (a, x), (b, y) = self.condition(node.left, 1), self.condition(node.right, 2)
            return 1, f"{a} {self._word('OR')} {b}", Or(x, y)
        if isinstance(node, And):
            (a, x), (b, y) = self.condition(node.left, 2), self.condition(node.right, 3)
            return 2, f"{a} {self._word('AND')} {b}", And(x, y)
        if isinstance(node, Not):
            a, x = self.condition(node.condition, 3)
            return 3, f"{self._word('NOT')} {a}", Not(x)
        if isinstance(node, Compare):
            (a, x), (b, y) = self.operand(node.left), self.operand(node.right)
            return 4, f"{a}{self._space()}{node.op}{self._space()}{b}", Compare(node.op, x, y)
        if isinstance(node, Between):
            (a, x), (b, y), (c, z) = (self.operand(node.operand), self.operand(node.low),
                                      self.operand(node.high))
            return 4, f"{a} {self._word('BETWEEN')} {b} {self._word('AND')} {c}", \
                Between(x, y, z)
        if isinstance(node, In):
            a, x = self.operand(node.operand)
            parts = [self.operand(c) for c in node.choices]
            return 4, f"{a} {self._word('IN')} ({', '.join(p[0] for p in parts)})", \
                In(x, tuple(p[1] for p in parts))
        assert isinstance(node, Function)
        parts = [self.operand(arg) for arg in node.args]
        return 4, f"{node.name}({', '.join(p[0] for p in parts)})", \
            Function(node.name, tuple(p[1] for p in parts))

    def update(self, update: Update) -> tuple[str, Update]:
        clauses: dict[str, list[tuple[str, Action]]] = {}
        for action in update.actions:
            path = self.path(action.path)
            if action.kind == "REMOVE":
                clauses.setdefault("REMOVE", []).append((path, action))
            elif action.kind == "SET":
                text, value = self.operand(action.value)
                clauses.setdefault("SET", []).append(
                    (f"{path}{self._space()}={self._space()}{text}",
                     Action("SET", action.path, value)))
            else:
                text, value = self.value(action.value)
                clauses.setdefault(action.kind, []).append(
                    (f"{path} {text}", Action(action.kind, action.path, value)))
        order = list(clauses)
        order = self.draw(st.permutations(order))
        texts, actions = [], []
        for kind in order:
            texts.append(f"{self._word(kind)} " + ", ".join(t for t, _ in clauses[kind]))
            actions += [a for _, a in clauses[kind]]
        return " ".join(texts), Update(tuple(actions))


@st.composite
def set_operands(draw: st.DrawFn, depth: int = 0) -> Any:
    kind = draw(st.integers(0, 5 if depth < 1 else 1))
    top = Path((draw(st.sampled_from(NAMES)),))
    if kind == 0:
        return _value(draw(st.one_of(values(), st.builds(lambda n: {"N": n}, numbers_()))))
    if kind == 1:
        return top
    if kind == 2:
        return Arithmetic(draw(st.sampled_from("+-")), draw(set_operands(depth + 1)),
                          draw(set_operands(depth + 1)))
    if kind == 3:
        return ListAppend(draw(set_operands(depth + 1)), draw(set_operands(depth + 1)))
    return IfNotExists(top, draw(set_operands(depth + 1)))


@st.composite
def updates(draw: st.DrawFn) -> Update:
    """Actions on distinct top-level attributes, or on elements of one list attribute (all
    SETs or all REMOVEs there): paths never overlap."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    actions = []
    for name in names:
        kind = draw(st.sampled_from(["SET", "SET", "REMOVE", "ADD", "DELETE", "LIST"]))
        top = Path((name,))
        if kind == "SET":
            actions.append(Action("SET", top, draw(set_operands())))
        elif kind == "REMOVE":
            actions.append(Action("REMOVE", top))
        elif kind == "ADD":
            value = draw(st.one_of(st.builds(lambda n: {"N": n}, numbers_()), values()))
            if not any(k in value for k in ("N", "SS", "NS", "BS")):
                value = {"N": "1"}
            actions.append(Action("ADD", top, _value(value)))
        elif kind == "DELETE":
            value = draw(values())
            if not any(k in value for k in ("SS", "NS", "BS")):
                value = {"SS": ["a"]}
            actions.append(Action("DELETE", top, _value(value)))
        else:
            which = draw(st.sampled_from(["SET", "REMOVE"]))
            for index in draw(st.sets(st.integers(0, 4), min_size=1, max_size=3)):
                path = Path((name, index))
                actions.append(Action(which, path, _value(draw(values())) if which == "SET"
                                      else None))
    return Update(tuple(actions))
