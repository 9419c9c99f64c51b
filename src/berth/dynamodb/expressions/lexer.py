"""Tokens of DynamoDB's expression language, with their place in the source for messages."""
from __future__ import annotations

import re
from dataclasses import dataclass

# word: attribute names, keywords, function names; #name and :value placeholders.
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<name>\#[A-Za-z0-9_]+)
  | (?P<value>:[A-Za-z0-9_]+)
  | (?P<int>[0-9]+)
  | (?P<op><>|<=|>=|[<>=(),.\[\]+\-])
""", re.VERBOSE)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str       # word, name, value, int, op, bad, eof
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokenize(source: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:   # one character the language has no use for
            tokens.append(Token("bad", source[pos], pos, pos + 1))
            pos += 1
            continue
        kind = m.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append(Token(kind, m.group(), m.start(), m.end()))
        pos = m.end()
    tokens.append(Token("eof", "<EOF>", len(source), len(source)))
    return tokens
