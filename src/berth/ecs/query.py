"""The ECS cluster query language: compiles an expression once into a predicate over a container
instance, for memberOf placement constraints and the ListContainerInstances `filter`.

Grammar (the ECS developer guide's "Cluster query language"):
    expr   := term (("or" | "||") term)*
    term   := factor (("and" | "&&") factor)*
    factor := ("not" | "!") factor | "(" expr ")" | subject operator [argument]
Arguments are bare words or quoted strings; `in`/`not_in` take `[a, b]` (or `(a, b)`).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, NoReturn, Protocol


class QueryError(ValueError):
    """An expression that does not parse; the message is what the API reports."""


class QueryTarget(Protocol):
    """What an expression can look at. `placement.InstanceView` satisfies it, and so does
    `InstanceFacts`, which the operations build from an instance row for ListContainerInstances."""

    @property
    def attributes(self) -> Mapping[str, str | None]: ...
    @property
    def running_tasks_count(self) -> int: ...
    @property
    def task_groups(self) -> Mapping[str, int]: ...   # group -> non-stopped tasks of it here
    @property
    def ec2_instance_id(self) -> str: ...
    @property
    def agent_connected(self) -> bool: ...
    @property
    def agent_version(self) -> str: ...
    @property
    def registered_at(self) -> float | None: ...       # epoch seconds


@dataclass(frozen=True)
class InstanceFacts:
    attributes: Mapping[str, str | None] = field(default_factory=dict)
    running_tasks_count: int = 0
    task_groups: Mapping[str, int] = field(default_factory=dict)
    ec2_instance_id: str = ""
    agent_connected: bool = True
    agent_version: str = ""
    registered_at: float | None = None


Predicate = Callable[[QueryTarget], bool]

# Operator spellings -> canonical symbol.
_OPERATORS = {
    "==": "==", "equals": "==", "!=": "!=", "not_equals": "!=",
    ">": ">", "greater_than": ">", ">=": ">=", "greater_than_equal": ">=",
    "<": "<", "less_than": "<", "<=": "<=", "less_than_equal": "<=",
    "exists": "exists", "!exists": "!exists", "not_exists": "!exists",
    "in": "in", "!in": "!in", "not_in": "!in",
    "=~": "=~", "matches": "=~", "!~": "!~", "not_matches": "!~",
}
_NEGATED = {"!=": "==", "!exists": "exists", "!in": "in", "!~": "=~"}
_EQUALITY = frozenset({"==", "!=", "in", "!in", "=~", "!~", "exists", "!exists"})
_ORDERED = frozenset({"==", "!=", ">", ">=", "<", "<=", "exists", "!exists"})
_ALL = _EQUALITY | _ORDERED
# Valid operators per subject, as the developer guide lists them (plus exists, which is harmless).
_SUBJECTS = {
    "agentConnected": _EQUALITY, "ec2InstanceId": _EQUALITY,
    "agentVersion": _ORDERED, "registeredAt": _ORDERED, "runningTasksCount": _ORDERED,
    "task:group": _ALL,
}
_WORD_END = frozenset(" \t\r\n()[],'\"=!<>")


def compile_expression(text: str) -> Predicate:
    """Parse `text` into a predicate; raises QueryError with a message fit for the API."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("The query expression is empty.")
    return _compile(text)


@lru_cache(maxsize=1024)
def _compile(text: str) -> Predicate:
    parser = _Parser(text)
    pred = parser.expression()
    parser.skip_space()
    if parser.pos < len(text):
        parser.fail(f"unexpected '{text[parser.pos:]}'")
    return pred


class _Parser:
    """Recursive descent straight over the text: a `matches` argument is read raw, so regex
    character classes like `t[23].*` need no quoting."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, detail: str, at: int | None = None) -> NoReturn:
        where = self.pos if at is None else at
        raise QueryError(f"Invalid query expression '{self.text}': {detail} "
                         f"(at position {where + 1}).")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self, literal: str) -> bool:
        self.skip_space()
        return self.text.startswith(literal, self.pos)

    def keyword(self, *words: str) -> str | None:
        """Consume one of `words` if it comes next as a whole word (or symbol)."""
        self.skip_space()
        for word in words:
            end = self.pos + len(word)
            if self.text[self.pos:end].lower() == word:   # and/or/not in any case, like SQL
                if word[-1].isalpha() and end < len(self.text) and self.text[end] not in _WORD_END:
                    continue
                self.pos = end
                return word
        return None

    def word(self, what: str) -> str:
        self.skip_space()
        if self.pos < len(self.text) and self.text[self.pos] in "'\"":
            return self.quoted()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _WORD_END:
            self.pos += 1
        if start == self.pos:
            self.fail(f"expected {what}")
        return self.text[start:self.pos]

    def quoted(self) -> str:
        quote = self.text[self.pos]
        end = self.text.find(quote, self.pos + 1)
        if end < 0:
            self.fail("unterminated quoted string")
        value = self.text[self.pos + 1:end]
        self.pos = end + 1
        return value

    def raw(self) -> str:
        """A regex argument: up to white space or a closing parenthesis."""
        self.skip_space()
        if self.pos < len(self.text) and self.text[self.pos] in "'\"":
            return self.quoted()
        start = self.pos
        while self.pos < len(self.text) and not self.text[self.pos].isspace() \
                and self.text[self.pos] != ")":
            self.pos += 1
        if start == self.pos:
            self.fail("expected a pattern")
        return self.text[start:self.pos]

    # -- grammar ---------------------------------------------------------------------------------
    def expression(self) -> Predicate:
        parts = [self.term()]
        while self.keyword("||", "or"):
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        return lambda t: any(p(t) for p in parts)

    def term(self) -> Predicate:
        parts = [self.factor()]
        while self.keyword("&&", "and"):
            parts.append(self.factor())
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            a, b = parts
            return lambda t: a(t) and b(t)
        return lambda t: all(p(t) for p in parts)

    def factor(self) -> Predicate:
        if self.keyword("not") or (self.peek("!") and not self.peek("!=")
                                   and not self.peek("!~") and self.keyword("!")):
            inner = self.factor()
            return lambda t: not inner(t)
        if self.peek("("):
            self.pos += 1
            inner = self.expression()
            if not self.peek(")"):
                self.fail("expected ')'")
            self.pos += 1
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        self.skip_space()
        start = self.pos
        subject = self.word("a subject")
        op = self.operator(subject, start)
        if op in ("exists", "!exists"):
            return _build(subject, op, None, self)
        if op in ("in", "!in"):
            return _build(subject, op, self.argument_list(), self)
        arg = self.raw() if op in ("=~", "!~") else self.word("an argument")
        return _build(subject, op, arg, self)

    def operator(self, subject: str, start: int) -> str:
        if subject.startswith("attribute:"):
            if len(subject) == len("attribute:"):
                self.fail("an attribute subject needs a name", start)
            valid = _ALL
        elif subject in _SUBJECTS:
            valid = _SUBJECTS[subject]
        else:
            self.fail(f"unknown subject '{subject}'", start)
        self.skip_space()
        at = self.pos
        spelled = self.keyword("==", "!=", ">=", "<=", "=~", "!~", ">", "<", "!exists", "!in")
        if spelled is None:
            spelled = self.word("an operator")
        op = _OPERATORS.get(spelled.lower())
        if op is None:
            self.fail(f"unknown operator '{spelled}'", at)
        if op not in valid:
            self.fail(f"operator '{spelled}' is not valid for subject '{subject}'", at)
        return op

    def argument_list(self) -> tuple[str, ...]:
        self.skip_space()
        opening = self.text[self.pos:self.pos + 1]
        if opening not in ("[", "("):
            self.fail("expected an argument list like [a, b]")
        closing = "]" if opening == "[" else ")"
        self.pos += 1
        values: list[str] = []
        while True:
            values.append(self.word("a list value"))
            if self.peek(","):
                self.pos += 1
                continue
            if self.peek(closing):
                self.pos += 1
                return tuple(values)
            self.fail(f"expected ',' or '{closing}'")


# -- predicate construction ----------------------------------------------------------------------
def _build(subject: str, op: str, arg: Any, parser: _Parser) -> Predicate:
    fast = _fast(subject, op, arg, parser)
    if fast is not None:
        return fast
    positive = _NEGATED.get(op, op)
    test = _value_test(subject, positive, arg, parser)
    if subject == "task:group":
        # Many groups can run on one instance: a positive test holds when any group satisfies it,
        # and its negation when none does (so `task:group != db` keeps instances free of db).
        def groups(t: Any) -> bool:
            return any(test(g) for g, n in t.task_groups.items() if n > 0)
        return groups if positive == op else lambda t: not groups(t)
    get = _getter(subject)
    if positive == op:
        return lambda t: test(get(t))
    if op == "!exists":
        return lambda t: get(t) is _Missing
    # A negated comparison still needs the subject: `attribute:stack != prod` lists instances
    # that have a `stack` attribute with another value (the developer guide's example).
    def negated(t: Any) -> bool:
        v = get(t)
        return v is not _Missing and v is not None and not test(v)
    return negated


def _fast(subject: str, op: str, arg: Any, parser: _Parser) -> Predicate | None:
    """One closure for the common shapes (memberOf runs once per candidate instance), with the
    same meaning as the general path below."""
    if subject == "task:group" and op in ("==", "!="):
        want = op == "=="
        return lambda t: (t.task_groups.get(arg, 0) > 0) is want
    if not subject.startswith("attribute:"):
        return None
    name = subject[len("attribute:"):]
    if op == "exists":
        return lambda t: name in t.attributes
    if op == "!exists":
        return lambda t: name not in t.attributes
    if op == "==":
        return lambda t: t.attributes.get(name) == arg
    if op == "!=":
        return lambda t: (v := t.attributes.get(name)) is not None and v != arg
    if op == "in":
        allowed = frozenset(arg)
        return lambda t: t.attributes.get(name) in allowed
    if op == "!in":
        allowed = frozenset(arg)
        return lambda t: (v := t.attributes.get(name)) is not None and v not in allowed
    if op in ("=~", "!~"):
        try:
            match = re.compile(arg).fullmatch
        except re.error as e:
            parser.fail(f"invalid pattern '{arg}': {e}")
        if op == "=~":
            return lambda t: (v := t.attributes.get(name)) is not None and match(v) is not None
        return lambda t: (v := t.attributes.get(name)) is not None and match(v) is None
    return None


def _getter(subject: str) -> Callable[[Any], Any]:
    if subject.startswith("attribute:"):
        name = subject[len("attribute:"):]
        missing = _Missing
        return lambda t: t.attributes.get(name, missing)
    if subject == "agentConnected":
        return lambda t: "true" if t.agent_connected else "false"
    if subject == "ec2InstanceId":
        return lambda t: t.ec2_instance_id or _Missing
    if subject == "agentVersion":
        return lambda t: t.agent_version or _Missing
    if subject == "registeredAt":
        return lambda t: _Missing if t.registered_at is None else t.registered_at
    if subject == "runningTasksCount":
        return lambda t: t.running_tasks_count
    raise AssertionError(subject)


class _Missing:
    """The value of a subject an instance lacks: no comparison holds for it, only `!exists`."""


def _value_test(subject: str, op: str, arg: Any, parser: _Parser) -> Callable[[Any], bool]:
    if op == "exists":
        return lambda v: v is not _Missing
    if op == "in":
        allowed = frozenset(arg)
        if subject == "agentConnected":
            allowed = frozenset(a.lower() for a in allowed)
        return lambda v: v in allowed
    if op == "=~":
        try:
            rx = re.compile(arg)
        except re.error as e:
            parser.fail(f"invalid pattern '{arg}': {e}")
        # Java's Pattern.matches semantics: the whole value must match.
        return lambda v: v is not _Missing and v is not None and rx.fullmatch(v) is not None
    if subject == "agentConnected":
        arg = arg.lower()
    convert = _converter(subject, op, arg, parser)
    ref = convert(arg)
    cmp = _COMPARE[op]

    def test(v: Any) -> bool:
        if v is _Missing or v is None:
            return False
        try:
            return cmp(convert(v), ref)
        except (TypeError, ValueError):
            return False
    return test


def _converter(subject: str, op: str, arg: str,
               parser: _Parser) -> Callable[[Any], Any]:
    if subject == "runningTasksCount":
        try:
            int(arg)
        except ValueError:
            parser.fail(f"'{arg}' is not a number")
        return int
    if subject == "registeredAt":
        try:
            _parse_date(arg)
        except ValueError:
            parser.fail(f"'{arg}' is not a date (e.g. 2018-06-18T22:28:28Z or 2018-06-18)")
        return lambda v: v if isinstance(v, float | int) else _parse_date(v)
    if subject == "agentVersion":
        if _version(arg) is None:
            parser.fail(f"'{arg}' is not a version like 1.14.5")
        return _version_or_raise
    if subject.startswith("attribute:") and op != "==" and _number(arg) is not None:
        # Ordering compares numbers as numbers; a non-numeric value simply does not match.
        return _number_or_text
    return str


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _number_or_text(v: Any) -> Any:
    n = _number(v) if isinstance(v, str) else None
    if n is None:
        raise ValueError(v)
    return n


def _version(text: str) -> tuple[int, ...] | None:
    m = re.fullmatch(r"v?(\d+(?:\.\d+)*)", text.strip())
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def _version_or_raise(v: Any) -> tuple[int, ...]:
    parsed = _version(str(v))
    if parsed is None:
        raise ValueError(v)
    return parsed


def _parse_date(text: str) -> float:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()
