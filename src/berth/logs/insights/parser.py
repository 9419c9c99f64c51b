"""Parsing a Logs Insights query: `command | command | ...` into a `syntax.Query`.

Commands: fields, display, filter, stats ... by ..., sort, limit, parse (glob or regex) and
dedup (unmask is accepted and changes nothing: berth masks no data). Expressions: literals,
fields (`@message`, `a.b`, `` `odd name` ``), function calls, arithmetic, comparisons,
`like`, `=~`, `in [...]`, `and`/`or`/`not`. Keywords are case-insensitive; field names are
not. A query that cannot be parsed raises `QuerySyntaxError` with where it went wrong.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import syntax as s
from .functions import AGGREGATES, SCALARS

COMMANDS = ("fields", "display", "filter", "stats", "sort", "limit", "parse", "dedup",
            "unmask")
MAX_LIMIT = 10_000


class QuerySyntaxError(ValueError):
    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__(message)
        self.message, self.start, self.end = message, start, end


@dataclass(frozen=True)
class Token:
    kind: str       # name, field, string, number, duration, regex, op, end
    text: str
    start: int
    end: int
    value: object = None


_SPACE = re.compile(r"(?:\s+|#[^\n]*)*")
_NUMBER = re.compile(r"(\d+(?:\.\d+)?|\.\d+)([a-zA-Z]+)?")
_NAME = re.compile(r"@?[A-Za-z_][A-Za-z0-9_@.]*(?<!\.)|@[A-Za-z0-9_.]+")
_OPS = ("=~", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", "^", "!", "|", ",",
        "(", ")", "[", "]")
# Durations of bin(), datefloor() and friends, in milliseconds.
UNITS = {"ms": 1, "s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000,
         "hr": 3_600_000, "d": 86_400_000, "w": 604_800_000, "mo": 2_592_000_000,
         "q": 7_776_000_000, "y": 31_536_000_000}


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def peek(self, regex_ok: bool = False) -> Token:
        saved = self.pos
        try:
            return self.next(regex_ok)
        finally:
            self.pos = saved

    def next(self, regex_ok: bool = False) -> Token:
        text = self.text
        self.pos = _SPACE.match(text, self.pos).end()  # type: ignore[union-attr]
        start = self.pos
        if start >= len(text):
            return Token("end", "", start, start)
        ch = text[start]
        if ch in "'\"":
            return self._string(ch, start)
        if ch == "`":
            end = text.find("`", start + 1)
            if end < 0:
                raise QuerySyntaxError("Unterminated quoted field name", start, len(text))
            self.pos = end + 1
            return Token("field", text[start:self.pos], start, self.pos, text[start + 1:end])
        if ch == "/" and regex_ok:
            return self._regex(start)
        m = _NUMBER.match(text, start)
        if m and (ch.isdigit() or ch == "."):
            self.pos = m.end()
            number, unit = m.group(1), m.group(2)
            if unit:
                if unit.lower() not in UNITS:
                    raise QuerySyntaxError(f"Unknown time unit '{unit}'", start, self.pos)
                return Token("duration", m.group(0), start, self.pos,
                             float(number) * UNITS[unit.lower()])
            value = float(number) if "." in number else int(number)
            return Token("number", number, start, self.pos, value)
        m = _NAME.match(text, start)
        if m:
            self.pos = m.end()
            return Token("name", m.group(0), start, self.pos, m.group(0))
        for op in _OPS:
            if text.startswith(op, start):
                self.pos = start + len(op)
                return Token("op", op, start, self.pos)
        raise QuerySyntaxError(f"Unexpected character '{ch}'", start, start + 1)

    def _string(self, quote: str, start: int) -> Token:
        out, i, text = [], start + 1, self.text
        while i < len(text):
            c = text[i]
            if c == "\\" and i + 1 < len(text):
                out.append({"n": "\n", "t": "\t"}.get(text[i + 1], text[i + 1]))
                i += 2
                continue
            if c == quote:
                self.pos = i + 1
                return Token("string", text[start:self.pos], start, self.pos, "".join(out))
            out.append(c)
            i += 1
        raise QuerySyntaxError("Unterminated string", start, len(text))

    def _regex(self, start: int) -> Token:
        i, text = start + 1, self.text
        while i < len(text) and text[i] != "/":
            i += 2 if text[i] == "\\" else 1
        if i >= len(text):
            raise QuerySyntaxError("Unterminated regular expression", start, len(text))
        body = text[start + 1:i]
        flags = re.match(r"[a-z]*", text[i + 1:]).group(0)  # type: ignore[union-attr]
        self.pos = i + 1 + len(flags)
        pattern = re.sub(r"\(\?<([A-Za-z][A-Za-z0-9_]*)>", r"(?P<\1>", body)
        if "i" in flags:
            pattern = "(?i)" + pattern
        try:
            re.compile(pattern)
        except re.error as exc:
            raise QuerySyntaxError(f"Invalid regular expression: {exc}", start, self.pos) \
                from None
        return Token("regex", text[start:self.pos], start, self.pos, pattern)


def parse(text: str) -> s.Query:
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.scan = _Scanner(text)

    # -- helpers -----------------------------------------------------------------------------

    def error(self, message: str, tok: Token) -> QuerySyntaxError:
        where = f"'{tok.text}'" if tok.kind != "end" else "the end of the query"
        return QuerySyntaxError(f"{message}, found {where} at position {tok.start + 1}",
                                tok.start, max(tok.end, tok.start + 1))

    def keyword(self, tok: Token, *words: str) -> bool:
        return tok.kind == "name" and tok.text.lower() in words

    def accept_op(self, op: str) -> bool:
        tok = self.scan.peek()
        if tok.kind == "op" and tok.text == op:
            self.scan.next()
            return True
        return False

    def expect_op(self, op: str) -> Token:
        tok = self.scan.next()
        if tok.kind != "op" or tok.text != op:
            raise self.error(f"Expected '{op}'", tok)
        return tok

    def source(self, start: int) -> str:
        return self.text[start:self.scan.pos].strip()

    # -- commands ----------------------------------------------------------------------------

    def query(self) -> s.Query:
        commands: list[s.Command] = []
        while True:
            tok = self.scan.next()
            if tok.kind == "end":
                if not commands:
                    raise self.error("Expected a command", tok)
                break
            if not self.keyword(tok, *COMMANDS):
                raise self.error(f"Expected one of {', '.join(COMMANDS)}", tok)
            if commands and isinstance(commands[-1], (s.Dedup, s.Limit)) and \
                    any(isinstance(c, s.Dedup) for c in commands) and \
                    tok.text.lower() != "limit":
                raise self.error("The only command that can follow dedup is limit", tok)
            command = self.command(tok.text.lower())
            if command is not None:
                commands.append(command)
            tok = self.scan.next()
            if tok.kind == "end":
                break
            if tok.kind != "op" or tok.text != "|":
                raise self.error("Expected '|' between commands", tok)
        return s.Query(tuple(commands))

    def command(self, word: str) -> s.Command | None:
        if word == "fields":
            return s.Fields(self.columns())
        if word == "display":
            return s.Display(self.columns())
        if word == "filter":
            return s.Filter(self.expr())
        if word == "stats":
            return self.stats()
        if word == "sort":
            return self.sort()
        if word == "limit":
            tok = self.scan.next()
            if tok.kind != "number" or not isinstance(tok.value, int) or tok.value < 1:
                raise self.error("limit takes a positive whole number", tok)
            if tok.value > MAX_LIMIT:
                raise self.error(f"limit can be at most {MAX_LIMIT}", tok)
            return s.Limit(tok.value)
        if word == "parse":
            return self.parse_command()
        if word == "dedup":
            names = [self.field_name()]
            while self.accept_op(","):
                names.append(self.field_name())
            return s.Dedup(tuple(names))
        return None     # unmask

    def columns(self, aggregates: bool = False) -> tuple[s.Column, ...]:
        out = [self.column(aggregates)]
        while self.accept_op(","):
            out.append(self.column(aggregates))
        return tuple(out)

    def column(self, aggregates: bool = False) -> s.Column:
        expr = self.expr(aggregates)
        name = expr.name if isinstance(expr, s.Field) else expr.text
        if self.keyword(self.scan.peek(), "as"):
            self.scan.next()
            name = self.field_name()
        return s.Column(expr, name)

    def field_name(self) -> str:
        tok = self.scan.next()
        if tok.kind == "field" or (tok.kind == "name" and not self.keyword(tok, *_RESERVED)):
            return str(tok.value)
        raise self.error("Expected a field name", tok)

    def stats(self) -> s.Stats:
        aggregates = self.columns(aggregates=True)
        for column in aggregates:
            if not _has_aggregate(column.expr):
                raise QuerySyntaxError(f"stats needs an aggregate function, such as count(), "
                                       f"in '{column.expr.text}'", 0, len(self.text))
        groups: tuple[s.Column, ...] = ()
        if self.keyword(self.scan.peek(), "by"):
            self.scan.next()
            groups = self.columns()
        return s.Stats(aggregates, groups)

    def sort(self) -> s.Sort:
        keys = []
        while True:
            expr = self.expr()
            descending = False
            tok = self.scan.peek()
            if self.keyword(tok, "asc", "desc"):
                self.scan.next()
                descending = tok.text.lower() == "desc"
            keys.append(s.SortKey(expr, descending))
            if not self.accept_op(","):
                return s.Sort(tuple(keys))

    def parse_command(self) -> s.Parse:
        tok = self.scan.peek(regex_ok=True)
        source: s.Expr = s.Field("@message", "@message")
        if tok.kind not in ("string", "regex"):
            source = self.primary()
            tok = self.scan.peek(regex_ok=True)
        tok = self.scan.next(regex_ok=True)
        if tok.kind == "regex":
            regex = str(tok.value)
            try:
                names = tuple(re.compile(regex).groupindex)
            except re.error as exc:     # checked when scanned; kept for the type checker
                raise self.error(str(exc), tok) from None
            if not names:
                raise self.error("A parse regular expression needs named groups, like "
                                 "(?<name>...)", tok)
            return s.Parse(source, regex, names)
        if tok.kind != "string":
            raise self.error("Expected a glob string or a regular expression", tok)
        glob = str(tok.value)
        stars = glob.count("*")
        if not stars:
            raise self.error("A parse pattern needs at least one '*'", tok)
        as_tok = self.scan.next()
        if not self.keyword(as_tok, "as"):
            raise self.error("Expected 'as' after the parse pattern", as_tok)
        names = [self.field_name()]
        while self.accept_op(","):
            names.append(self.field_name())
        if len(names) != stars:
            raise QuerySyntaxError(f"The parse pattern has {stars} '*' but {len(names)} "
                                   f"fields follow 'as'", tok.start, self.scan.pos)
        parts = [re.escape(p) for p in glob.split("*")]
        groups = ["(.*?)"] * (stars - 1) + ["(.*)"]
        regex = parts[0] + "".join(g + p for g, p in zip(groups, parts[1:]))
        return s.Parse(source, regex, tuple(names))

    # -- expressions: or < and < not < comparison < additive < multiplicative < power --------

    def expr(self, aggregates: bool = False) -> s.Expr:
        self.aggregates = aggregates
        return self.disjunction()

    def disjunction(self) -> s.Expr:
        start = self.scan.pos
        left = self.conjunction()
        while self.keyword(self.scan.peek(), "or") or self._peek_op("||"):
            self.scan.next()
            left = s.Binary("or", left, self.conjunction(), self.source(start))
        return left

    def _peek_op(self, op: str) -> bool:
        tok = self.scan.peek()
        return tok.kind == "op" and tok.text == op

    def conjunction(self) -> s.Expr:
        start = self.scan.pos
        left = self.negation()
        while self.keyword(self.scan.peek(), "and"):
            self.scan.next()
            left = s.Binary("and", left, self.negation(), self.source(start))
        return left

    def negation(self) -> s.Expr:
        start = self.scan.pos
        tok = self.scan.peek()
        if self.keyword(tok, "not") or (tok.kind == "op" and tok.text == "!"):
            self.scan.next()
            return s.Unary("not", self.negation(), self.source(start))
        return self.comparison()

    def comparison(self) -> s.Expr:
        start = self.scan.pos
        left = self.additive()
        tok = self.scan.peek()
        negated = False
        if self.keyword(tok, "not"):
            after = self._after_not()
            if after is None:
                return left
            self.scan.next()
            tok, negated = after, True
        if tok.kind == "op" and tok.text in ("=", "!=", "<", "<=", ">", ">=", "=~"):
            self.scan.next()
            right = self.operand_or_regex() if tok.text in ("=~", "=", "!=") else \
                self.additive()
            return s.Binary(tok.text, left, right, self.source(start))
        if self.keyword(tok, "like"):
            self.scan.next()
            return s.Binary("like", left, self.operand_or_regex(), self.source(start), negated)
        if self.keyword(tok, "in"):
            self.scan.next()
            return s.Binary("in", left, self.list_literal(), self.source(start), negated)
        if negated:
            raise self.error("Expected 'like' or 'in' after 'not'", self.scan.peek())
        return left

    def _after_not(self) -> Token | None:
        """The token after a `not` that negates a following like/in, else None."""
        saved = self.scan.pos
        self.scan.next()
        tok = self.scan.peek()
        self.scan.pos = saved
        return tok if self.keyword(tok, "like", "in") else None

    def operand_or_regex(self) -> s.Expr:
        tok = self.scan.peek(regex_ok=True)
        if tok.kind == "regex":
            self.scan.next(regex_ok=True)
            return s.Regex(str(tok.value), tok.text)
        return self.additive()

    def list_literal(self) -> s.ListOf:
        start = self.scan.pos
        self.expect_op("[")
        items = []
        if not self.accept_op("]"):
            items.append(self.additive())
            while self.accept_op(","):
                items.append(self.additive())
            self.expect_op("]")
        return s.ListOf(tuple(items), self.source(start))

    def additive(self) -> s.Expr:
        start = self.scan.pos
        left = self.multiplicative()
        while True:
            tok = self.scan.peek()
            if tok.kind == "op" and tok.text in ("+", "-"):
                self.scan.next()
                left = s.Binary(tok.text, left, self.multiplicative(), self.source(start))
            else:
                return left

    def multiplicative(self) -> s.Expr:
        start = self.scan.pos
        left = self.power()
        while True:
            tok = self.scan.peek()
            if tok.kind == "op" and tok.text in ("*", "/", "%"):
                self.scan.next()
                left = s.Binary(tok.text, left, self.power(), self.source(start))
            else:
                return left

    def power(self) -> s.Expr:
        start = self.scan.pos
        base = self.unary_minus()
        if self.accept_op("^"):
            return s.Binary("^", base, self.power(), self.source(start))
        return base

    def unary_minus(self) -> s.Expr:
        start = self.scan.pos
        if self.accept_op("-"):
            return s.Unary("-", self.unary_minus(), self.source(start))
        return self.primary()

    def primary(self) -> s.Expr:
        tok = self.scan.next()
        if tok.kind == "number":
            return s.Literal(tok.value, tok.text)
        if tok.kind == "duration":
            return s.Literal(tok.value, tok.text)
        if tok.kind == "string":
            return s.Literal(tok.value, tok.text)
        if tok.kind == "field":
            return s.Field(str(tok.value), tok.text)
        if tok.kind == "op" and tok.text == "(":
            inner = self.disjunction()
            self.expect_op(")")
            return inner
        if tok.kind == "name":
            word = tok.text.lower()
            if word in ("true", "false"):
                return s.Literal(word == "true", tok.text)
            if word == "null":
                return s.Literal(None, tok.text)
            if self._peek_op("("):
                return self.call(tok)
            if word in _RESERVED:
                raise self.error("Expected a value", tok)
            return s.Field(tok.text, tok.text)
        raise self.error("Expected a value", tok)

    def call(self, name_tok: Token) -> s.Call:
        name = name_tok.text.lower()
        is_aggregate = name in AGGREGATES
        if name not in SCALARS and not is_aggregate:
            raise self.error("Unknown function", name_tok)
        if is_aggregate and not self.aggregates:
            raise self.error("Aggregate functions can only be used in stats", name_tok)
        self.expect_op("(")
        args: list[s.Expr] = []
        if name in ("count", "count_distinct") and self._peek_op("*"):
            self.scan.next()
            args.append(s.Literal("*", "*"))
            self.expect_op(")")
        elif not self.accept_op(")"):
            outer = self.aggregates
            self.aggregates = False     # no aggregate inside another call
            args.append(self.disjunction())
            while self.accept_op(","):
                args.append(self.disjunction())
            self.aggregates = outer
            self.expect_op(")")
        arity = (AGGREGATES.get(name) or SCALARS[name]).arity
        if not arity[0] <= len(args) <= arity[1]:
            raise QuerySyntaxError(f"{name}() takes {_arity_text(arity)} arguments, "
                                   f"{len(args)} given", name_tok.start, self.scan.pos)
        return s.Call(name, tuple(args), self.text[name_tok.start:self.scan.pos])


_RESERVED = ("and", "or", "not", "like", "in", "as", "by", "asc", "desc")


def _arity_text(arity: tuple[int, int]) -> str:
    lo, hi = arity
    if lo == hi:
        return str(lo)
    return f"at least {lo}" if hi >= 99 else f"{lo} to {hi}"


def _has_aggregate(expr: s.Expr) -> bool:
    if isinstance(expr, s.Call):
        return expr.name in AGGREGATES or any(_has_aggregate(a) for a in expr.args)
    if isinstance(expr, s.Binary):
        return _has_aggregate(expr.left) or _has_aggregate(expr.right)
    if isinstance(expr, s.Unary):
        return _has_aggregate(expr.operand)
    return False
