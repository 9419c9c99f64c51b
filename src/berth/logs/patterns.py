"""CloudWatch Logs filter patterns (metric/subscription filters, FilterLogEvents).

``compile_pattern(text)`` turns a pattern into a predicate over one event
message.  Three syntaxes are recognised, as AWS documents them:

* unstructured terms: ``ERROR``, ``"exact phrase"``, ``-excluded``,
  ``?any ?of ?these`` and ``%regex%`` -- case-sensitive substring matches;
* JSON: ``{ $.a.b[0] = "x*" && ($.n > 5 || $.k IS NULL) }``;
* space-delimited: ``[ip, user, ..., status=4* || status=5*, size>1000]``.

``compile_extractor(text)`` does the same and also hands back the values a
space-delimited pattern extracts (``{"$status": "404", ...}``), as TestMetricFilter
reports them.  Syntax errors raise :class:`InvalidPattern`.  Pure module: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

Matcher = Callable[[str], bool]
# A message's extracted values if it matches, else None.
Extractor = Callable[[str], "dict[str, str] | None"]
_Getter = Callable[[Any], Any]
_Node = Callable[[_Getter], bool]


class InvalidPattern(ValueError):
    """The filter pattern is syntactically invalid."""


_MISSING = object()
_NUM_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_NAME_RE = re.compile(r"[A-Za-z0-9_\-]+")
_TOKEN_RE = re.compile(
    r"""\s*(?:
      (?P<op>&&|\|\||!=|<=|>=|[=<>(),{}\[\]])
    | (?P<sel>\$(?:\.[^\s.\[\]()=!<>&|{},"%]+|\[\d+\])*)
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<re>%[^%]+%)
    | (?P<word>[^\s,(){}\[\]"=!<>&|%]+)
    )""",
    re.X,
)
_TERM_RE = re.compile(r'\s*(?P<prefix>[?-]?)(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<re>%[^%]+%)|(?P<word>[^\s"%][^\s"]*))')
_FIELD_RE = re.compile(r'"([^"]*)"?|\[([^\]]*)\]?|(\S+)')
_Token = tuple[str, str]  # (kind, text); kinds: op, sel, str, re, word


def compile_pattern(text: str) -> Matcher:
    """Compile a CloudWatch Logs filter pattern into a message matcher."""
    s = (text or "").strip()
    if not s:
        return lambda _message: True
    if s[0] == "{":
        return _compile_json(s)
    if s[0] == "[":
        extract = _compile_delimited(s)
        return lambda message: extract(message) is not None
    return _compile_terms(s)


def compile_extractor(text: str) -> Extractor:
    """Compile a filter pattern into a function giving a matching message's extracted values
    (`$name` of each named field of a space-delimited pattern; none for other syntaxes) and
    None for a message that does not match."""
    s = (text or "").strip()
    if s[:1] == "[":
        return _compile_delimited(s)
    match = compile_pattern(s)
    return lambda message: {} if match(message) else None


# ---------------------------------------------------------------- helpers


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1], flags=re.S)


def _regex(raw: str) -> Callable[[str], bool]:
    """``%regex%`` -> predicate searching a string with Python ``re``."""
    try:
        rx = re.compile(raw[1:-1])
    except re.error as exc:
        raise InvalidPattern(f"Invalid regular expression {raw}: {exc}") from None
    return lambda s: rx.search(s) is not None


def _substring(term: str) -> Callable[[str], bool]:
    return lambda s: term in s


def _wildcard(value: str) -> Callable[[str], bool]:
    if "*" not in value:
        return lambda s: s == value
    rx = re.compile(".*".join(re.escape(p) for p in value.split("*")), re.S)
    return lambda s: rx.fullmatch(s) is not None


def _to_num(text: str) -> float | None:
    return float(text) if _NUM_RE.fullmatch(text) else None


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _scan_error(s: str, pos: int) -> InvalidPattern:
    ch = s[pos:].lstrip()[0]
    what = {'"': "Unterminated quoted string", "%": "Unterminated regular expression (missing %)"}
    return InvalidPattern(what.get(ch, f"Unexpected character {ch!r}"))


def _tokenize(s: str) -> list[_Token]:
    toks: list[_Token] = []
    pos = 0
    while s[pos:].strip():
        m = _TOKEN_RE.match(s, pos)
        if not m or m.end() == pos:
            raise _scan_error(s, pos)
        kind = m.lastgroup or ""
        toks.append((kind, m.group(kind)))
        pos = m.end()
    return toks


# ------------------------------------------------------ unstructured terms


def _compile_terms(s: str) -> Matcher:
    common: list[tuple[bool, Callable[[str], bool]]] = []
    groups: list[list[tuple[bool, Callable[[str], bool]]]] = []
    pos = 0
    while s[pos:].strip():
        m = _TERM_RE.match(s, pos)
        if not m:
            raise _scan_error(s, pos)
        pos = m.end()
        if m["re"]:
            pred = _regex(m["re"])
        else:
            term = _unquote(m["str"]) if m["str"] else m["word"]
            if term in ("?", "-") and not m["prefix"]:
                raise InvalidPattern(f"Dangling {term!r} must be followed by a term")
            if m["word"] and re.search(r"[{}\[\]()]", term):
                raise InvalidPattern(f"Term {term!r} contains special characters and must be quoted")
            pred = _substring(term)
        if m["prefix"] == "?":
            groups.append([(False, pred)])
        else:
            (groups[-1] if groups else common).append((m["prefix"] == "-", pred))

    def check(msg: str, conds: list[tuple[bool, Callable[[str], bool]]]) -> bool:
        return all(p(msg) != neg for neg, p in conds)

    return lambda msg: check(msg, common) and (not groups or any(check(msg, g) for g in groups))


# ------------------------------------------------- comparison expressions


class _Parser:
    """Recursive-descent parser for ``&&``/``||``/parenthesised comparisons."""

    def __init__(self, toks: list[_Token], json_mode: bool, names: set[str] | None = None):
        self.toks, self.pos, self.json_mode, self.names = toks, 0, json_mode, names or set()

    def peek(self) -> _Token | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise InvalidPattern("Unexpected end of filter pattern")
        self.pos += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.peek()
        if tok != ("op", text):
            raise InvalidPattern(f"Expected {text!r} but found {tok[1] if tok else 'end of pattern'!r}")
        self.pos += 1

    def parse_all(self) -> _Node:
        node = self.expr()
        if self.peek() is not None:
            raise InvalidPattern(f"Unexpected {self.peek()[1]!r} in filter pattern")  # type: ignore[index]
        return node

    def expr(self) -> _Node:
        parts = [self.conj()]
        while self.peek() == ("op", "||"):
            self.take()
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else (lambda get: any(p(get) for p in parts))

    def conj(self) -> _Node:
        parts = [self.unary()]
        while self.peek() == ("op", "&&"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda get: all(p(get) for p in parts))

    def unary(self) -> _Node:
        if self.peek() == ("op", "("):
            self.take()
            node = self.expr()
            self.expect(")")
            return node
        return self.comparison()

    def operand(self) -> Any:
        kind, text = self.take()
        if self.json_mode:
            if kind != "sel" or text == "$":
                raise InvalidPattern(f"Expected a property selector like $.field, found {text!r}")
            steps = re.findall(r"\.([^.\[]+)|\[(\d+)\]", text[1:])
            return tuple(int(idx) if idx else key for key, idx in steps)
        if kind != "word" or text not in self.names:
            raise InvalidPattern(f"Unknown field {text!r} in space-delimited filter pattern")
        return text

    def comparison(self) -> _Node:
        key = self.operand()
        if self.peek() is None:
            raise InvalidPattern("Expected a comparison operator at end of pattern")
        kind, text = self.take()
        if kind == "word" and self.json_mode:
            return self.postfix(key, text)
        if kind != "op" or text not in ("=", "!=", "<", "<=", ">", ">="):
            raise InvalidPattern(f"Expected a comparison operator, found {text!r}")
        pred = self.value_pred(text)

        def node(get: _Getter) -> bool:
            value = get(key)
            return value is not _MISSING and pred(value)

        return node

    def postfix(self, key: Any, word: str) -> _Node:
        nxt = self.take()[1].upper()
        checks: dict[tuple[str, str], Callable[[Any], bool]] = {
            ("IS", "NULL"): lambda v: v is None,
            ("IS", "TRUE"): lambda v: v is True,
            ("IS", "FALSE"): lambda v: v is False,
            ("NOT", "EXISTS"): lambda v: v is _MISSING,
        }
        check = checks.get((word.upper(), nxt))
        if check is None:
            raise InvalidPattern(f"Unknown operator {word} {nxt}")
        return lambda get: check(get(key))

    def value_pred(self, op: str) -> Callable[[Any], bool]:
        tok = self.peek()
        if tok is None or tok[0] not in ("str", "re", "word"):
            raise InvalidPattern(f"Expected a value after {op!r}")
        kind, text = self.take()
        num = _to_num(text) if kind == "word" else None
        if op in ("<", "<=", ">", ">="):
            if num is None:
                raise InvalidPattern(f"Operator {op!r} requires a numeric value, found {text!r}")
            bound: float = num
            cmp: Callable[[float, float], bool] = {
                "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
                ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
            }[op]
            if self.json_mode:
                return lambda v: _is_num(v) and cmp(v, bound)
            return lambda v: (f := _to_num(v)) is not None and cmp(f, bound)
        if kind == "re":
            str_eq = _regex(text)
        else:
            str_eq = _wildcard(_unquote(text) if kind == "str" else text)
        if num is not None and self.json_mode:
            eq: Callable[[Any], bool] = lambda v: _is_num(v) and v == num
        elif num is not None:
            eq = lambda v: _to_num(v) == num
        elif self.json_mode:
            eq = lambda v: isinstance(v, str) and str_eq(v)
        else:
            eq = str_eq
        return eq if op == "=" else (lambda v: not eq(v))


# ----------------------------------------------------------- JSON patterns


def _compile_json(s: str) -> Matcher:
    toks = _tokenize(s)
    if toks[-1] != ("op", "}"):
        raise InvalidPattern("Unbalanced braces: JSON filter pattern must end with '}'")
    if len(toks) == 2:
        raise InvalidPattern("Empty JSON filter pattern")
    node = _Parser(toks[1:-1], json_mode=True).parse_all()

    def match(message: str) -> bool:
        try:
            doc = json.loads(message)
        except ValueError:
            return False
        if not isinstance(doc, (dict, list)):
            return False

        def get(path: tuple[Any, ...]) -> Any:
            cur = doc
            for step in path:
                if isinstance(step, int) and isinstance(cur, list) and step < len(cur):
                    cur = cur[step]
                elif isinstance(step, str) and isinstance(cur, dict) and step in cur:
                    cur = cur[step]
                else:
                    return _MISSING
            return cur

        return node(get)

    return match


# ------------------------------------------------ space-delimited patterns


def _split_fields(message: str) -> list[str]:
    """Split on whitespace; "quoted" and [bracketed] runs are one field each."""
    return [next(g for g in m.groups() if g is not None) for m in _FIELD_RE.finditer(message)]


def _compile_delimited(s: str) -> Extractor:
    toks = _tokenize(s)
    if toks[-1] != ("op", "]"):
        raise InvalidPattern("Unbalanced brackets: space-delimited filter pattern must end with ']'")
    if len(toks) == 2:
        return lambda message: {}   # `[]`: AWS takes it, and it matches every event
    entries: list[list[_Token]] = [[]]
    for tok in toks[1:-1]:
        if tok in (("op", "["), ("op", "]"), ("op", "{"), ("op", "}")):
            raise InvalidPattern(f"Unexpected {tok[1]!r} in space-delimited filter pattern")
        if tok == ("op", ","):
            entries.append([])
        else:
            entries[-1].append(tok)
    if any(not e for e in entries):
        raise InvalidPattern("Empty field in space-delimited filter pattern")
    names: list[str | None] = []
    for entry in entries:
        name = next((t for k, t in entry if k == "word"), None)
        if entry == [("word", "...")]:
            names.append(None)
        elif name is None or not _NAME_RE.fullmatch(name):
            raise InvalidPattern(f"Invalid field name {name or entry[0][1]!r}")
        else:
            names.append(name)
    known = {n for n in names if n}
    conds: list[_Node | None] = [
        _Parser(e, json_mode=False, names=known).parse_all() if n and len(e) > 1 else None
        for e, n in zip(entries, names)
    ]

    def align(i: int, j: int, fields: list[str], bound: list[str]) -> list[str] | None:
        """The fields bound to the names, for the first alignment that satisfies them."""
        if i == len(names):
            return bound if j == len(fields) and satisfied(bound) else None
        if names[i] is None:
            for k in range(j, len(fields) + 1):
                found = align(i + 1, k, fields, bound + [""])
                if found is not None:
                    return found
            return None
        if j >= len(fields):
            return None
        return align(i + 1, j + 1, fields, bound + [fields[j]])

    def satisfied(bound: list[str]) -> bool:
        env = {n: v for n, v in zip(names, bound) if n}
        for name, value, cond in zip(names, bound, conds):
            if cond is not None and not cond(lambda k: value if k == name else env[k]):
                return False
        return True

    def extract(message: str) -> dict[str, str] | None:
        bound = align(0, 0, _split_fields(message), [])
        if bound is None:
            return None
        return {f"${n}": v for n, v in zip(names, bound) if n}

    return extract
