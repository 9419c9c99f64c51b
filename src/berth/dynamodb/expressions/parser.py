"""Parsers for DynamoDB's expressions: condition (ConditionExpression, FilterExpression,
KeyConditionExpression), update, and projection. Errors are AWS's ValidationExceptions, worded
as AWS words them ("Invalid UpdateExpression: Syntax error; token: ...").

Precedence, loosest first: OR, AND, NOT, then comparisons, BETWEEN, IN and functions;
parentheses group. Keywords are case-insensitive, function names are not.
"""
from __future__ import annotations

from typing import Callable

from ...api.errors import ServiceError
from ..attributes import SET_TYPES, TYPES, AttributeValue, compare, kind_of
from ..numbers import invalid
from .lexer import Token, tokenize
from .placeholders import Placeholders
from .reserved import RESERVED
from .syntax import (Action, And, Arithmetic, Between, Compare, Condition, Function,
                     IfNotExists, In, ListAppend, Not, Operand, Or, Path, Size, Update, Value)

MAX_EXPRESSION = 4096
MAX_IN_CHOICES = 100
COMPARATORS = ("=", "<>", "<", "<=", ">", ">=")
CONDITION_FUNCTIONS = {"attribute_exists": 1, "attribute_not_exists": 1,
                       "attribute_type": 2, "begins_with": 2, "contains": 2}
UPDATE_FUNCTIONS = {"if_not_exists": 2, "list_append": 2}
# Words of the grammar itself: where a path is expected they are a syntax error, not a name.
_GRAMMAR_WORDS = frozenset(("AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD",
                            "DELETE"))
# Type names in the messages about ADD and DELETE operands.
_TYPE_WORDS = {"S": "STRING", "N": "NUMBER", "B": "BINARY", "BOOL": "BOOLEAN", "NULL": "NULL",
               "L": "LIST", "M": "MAP", "SS": "STRING_SET", "NS": "NUMBER_SET",
               "BS": "BINARY_SET"}


def parse_condition(source: str, placeholders: Placeholders,
                    kind: str = "ConditionExpression") -> Condition:
    parser = _Parser(source, kind, placeholders)
    condition = parser.condition()
    parser.end()
    return condition


def parse_update(source: str, placeholders: Placeholders) -> Update:
    parser = _Parser(source, "UpdateExpression", placeholders)
    update = parser.update()
    parser.end()
    _check_overlaps([a.path for a in update.actions], parser)
    return update


def parse_projection(source: str, placeholders: Placeholders) -> tuple[Path, ...]:
    parser = _Parser(source, "ProjectionExpression", placeholders)
    paths = [parser.path()]
    while parser.take(","):
        paths.append(parser.path())
    parser.end()
    _check_overlaps(paths, parser)
    return tuple(paths)


class _Parser:
    def __init__(self, source: str, kind: str, placeholders: Placeholders) -> None:
        self.source, self.kind, self.placeholders = source, kind, placeholders
        if not source.strip():
            raise invalid(f"Invalid {kind}: The expression can not be empty;")
        if len(source.encode()) > MAX_EXPRESSION:
            raise self.error("Expression size has exceeded the maximum allowed size; "
                             f"expression size: {len(source.encode())}")
        self.tokens = tokenize(source)
        self.pos = 0

    # -- tokens ---------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "eof":
            self.pos += 1
        return token

    def take(self, text: str) -> bool:
        if self.peek().text == text and self.peek().kind == "op":
            self.pos += 1
            return True
        return False

    def take_keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "word" and token.upper == word:
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            raise self.syntax_error(self.peek())

    def end(self) -> None:
        if self.peek().kind != "eof":
            raise self.syntax_error(self.peek())

    def error(self, detail: str) -> ServiceError:
        return invalid(f"Invalid {self.kind}: {detail}")

    def syntax_error(self, token: Token) -> ServiceError:
        i = self.tokens.index(token)
        before = self.tokens[i - 1] if i > 0 else token
        after = self.tokens[i + 1] if i + 1 < len(self.tokens) else token
        near = self.source[before.start:after.end]
        return self.error(f'Syntax error; token: "{token.text}", near: "{near}"')

    # -- placeholders ---------------------------------------------------------------------

    def name(self, token: Token) -> str:
        try:
            name = self.placeholders.names[token.text]
        except KeyError:
            raise self.error("An expression attribute name used in the document path is not "
                             f"defined; attribute name: {token.text}") from None
        self.placeholders.used_names.add(token.text)
        return name

    def value(self, token: Token) -> Value:
        try:
            value = self.placeholders.values[token.text]
        except KeyError:
            raise self.error("An expression attribute value used in expression is not "
                             f"defined; attribute value: {token.text}") from None
        self.placeholders.used_values.add(token.text)
        return Value(value, token.text)

    # -- paths ----------------------------------------------------------------------------

    def path(self) -> Path:
        steps: list[str | int] = [self.element()]
        while True:
            if self.take("."):
                steps.append(self.element())
            elif self.take("["):
                index = self.next()
                if index.kind != "int":
                    raise self.syntax_error(index)
                self.expect("]")
                steps.append(int(index.text))
            else:
                return Path(tuple(steps))

    def element(self) -> str:
        token = self.next()
        if token.kind == "word":
            if token.upper in _GRAMMAR_WORDS:
                raise self.syntax_error(token)
            if token.upper in RESERVED:
                raise self.error("Attribute name is a reserved keyword; reserved keyword: "
                                 f"{token.text}")
            return token.text
        if token.kind == "name":
            return self.name(token)
        raise self.syntax_error(token)

    # -- conditions -----------------------------------------------------------------------

    def condition(self) -> Condition:
        left = self.conjunction()
        while self.take_keyword("OR"):
            left = Or(left, self.conjunction())
        return left

    def conjunction(self) -> Condition:
        left = self.negation()
        while self.take_keyword("AND"):
            left = And(left, self.negation())
        return left

    def negation(self) -> Condition:
        if self.take_keyword("NOT"):
            return Not(self.negation())
        return self.primary()

    def primary(self) -> Condition:
        if self.take("("):
            inner = self.condition()
            self.expect(")")
            return inner
        token = self.peek()
        if token.kind == "word" and self.peek(1).text == "(" and token.text != "size":
            return self.condition_function()
        return self.comparison()

    def condition_function(self) -> Function:
        token = self.next()
        name = token.text
        if name not in CONDITION_FUNCTIONS:
            raise self._function_misplaced(name)
        args = self.arguments(name, CONDITION_FUNCTIONS[name], self.operand)
        if name in ("attribute_exists", "attribute_not_exists"):
            self._needs_path(name, args[0])
        elif name == "attribute_type":
            self._needs_path(name, args[0])
            self._check_type_name(args[1])
        elif name == "begins_with":
            for arg in args:
                self._scalar_operand(name, arg, ("S", "B"))
        return Function(name, args)

    def _function_misplaced(self, name: str) -> ServiceError:
        if name in UPDATE_FUNCTIONS:
            return self.error("The function is not allowed in a condition expression; "
                              f"function: {name}")
        return self.error(f"Invalid function name; function: {name}")

    def comparison(self) -> Condition:
        left = self.operand()
        token = self.peek()
        if token.kind == "op" and token.text in COMPARATORS:
            self.next()
            return Compare(token.text, left, self.operand())
        if self.take_keyword("BETWEEN"):
            low = self.operand()
            if not self.take_keyword("AND"):
                raise self.syntax_error(self.peek())
            high = self.operand()
            self._check_bounds(low, high)
            return Between(left, low, high)
        if self.take_keyword("IN"):
            self.expect("(")
            choices = [self.operand()]
            while self.take(","):
                choices.append(self.operand())
            self.expect(")")
            if len(choices) > MAX_IN_CHOICES:
                raise self.error("The expression contains too many operands; operator: IN, "
                                 f"number of operands: {len(choices)}, maximum: "
                                 f"{MAX_IN_CHOICES}")
            return In(left, tuple(choices))
        raise self.syntax_error(token)

    def _operand(self, call: Callable[[str], Operand]) -> Operand:
        """A value, a path, or a function call (`call` parses it, given its name)."""
        token = self.peek()
        if token.kind == "value":
            self.next()
            return self.value(token)
        if token.kind == "word" and self.peek(1).text == "(":
            self.next()
            return call(token.text)
        if token.kind in ("word", "name"):
            return self.path()
        raise self.syntax_error(token)

    def operand(self) -> Operand:
        """An operand of a condition: a path, a value, or size(path)."""
        return self._operand(self._condition_call)

    def _condition_call(self, name: str) -> Operand:
        if name != "size":
            if name in CONDITION_FUNCTIONS:
                raise self.error("The function is not allowed to be used this way in an "
                                 f"expression; function: {name}")
            raise self._function_misplaced(name)
        arg, = self.arguments("size", 1, self.operand)
        return Size(self._needs_path("size", arg))

    def arguments(self, name: str, count: int, operand: Callable[[], Operand]
                  ) -> tuple[Operand, ...]:
        self.expect("(")
        args = [operand()]
        while self.take(","):
            args.append(operand())
        self.expect(")")
        if len(args) != count:
            raise self.error("Incorrect number of operands for operator or function; "
                             f"operator or function: {name}, number of operands: {len(args)}")
        return tuple(args)

    def _needs_path(self, name: str, arg: Operand) -> Path:
        if not isinstance(arg, Path):
            raise self.error("Operator or function requires a document path; operator or "
                             f"function: {name}")
        return arg

    def _check_type_name(self, arg: Operand) -> None:
        if not isinstance(arg, Value) or kind_of(arg.value) != "S":
            shown = kind_of(arg.value) if isinstance(arg, Value) else "PATH"
            raise self.error("Incorrect operand type for operator or function; operator or "
                             f"function: attribute_type, operand type: {shown}")
        if arg.value["S"] not in TYPES:
            raise self.error(f"Invalid attribute type name found; type: {arg.value['S']}, "
                             "valid types: { B,NULL,SS,BOOL,L,BS,N,NS,S,M }")

    def _scalar_operand(self, name: str, arg: Operand, kinds: tuple[str, ...]) -> None:
        if isinstance(arg, Value) and kind_of(arg.value) not in kinds:
            raise self.error("Incorrect operand type for operator or function; operator or "
                             f"function: {name}, operand type: {kind_of(arg.value)}")

    def _check_bounds(self, low: Operand, high: Operand) -> None:
        if not (isinstance(low, Value) and isinstance(high, Value)):
            return
        shown = f"lower bound operand: AttributeValue: {_show(low.value)}, upper bound " \
                f"operand: AttributeValue: {_show(high.value)}"
        if kind_of(low.value) != kind_of(high.value):
            raise self.error("The BETWEEN operator requires same data type for lower and "
                             f"upper bounds; {shown}")
        order = compare(low.value, high.value)
        if order is not None and order > 0:
            raise self.error("The BETWEEN operator requires upper bound to be greater than "
                             f"or equal to lower bound; {shown}")

    # -- updates --------------------------------------------------------------------------

    def update(self) -> Update:
        actions: list[Action] = []
        seen: set[str] = set()
        while self.peek().kind != "eof":
            token = self.next()
            clause = token.upper if token.kind == "word" else ""
            if clause not in ("SET", "REMOVE", "ADD", "DELETE"):
                raise self.syntax_error(token)
            if clause in seen:
                raise self.error(f'The "{clause}" section can only be used once in an update '
                                 "expression;")
            seen.add(clause)
            actions.append(self.action(clause))
            while self.take(","):
                actions.append(self.action(clause))
        return Update(tuple(actions))

    def action(self, clause: str) -> Action:
        path = self.path()
        if clause == "REMOVE":
            return Action(clause, path)
        if clause == "SET":
            self.expect("=")
            return Action(clause, path, self.set_value())
        token = self.next()
        if token.kind != "value":
            raise self.syntax_error(token)
        value = self.value(token)
        kind = kind_of(value.value)
        if kind not in SET_TYPES and (clause == "DELETE" or kind != "N"):
            raise self.error("Incorrect operand type for operator or function; operator: "
                             f"{clause}, operand type: {_TYPE_WORDS[kind]}")
        return Action(clause, path, value)

    def set_value(self) -> Operand:
        left = self.update_operand()
        token = self.peek()
        if token.kind == "op" and token.text in ("+", "-"):
            self.next()
            right = self.update_operand()
            for side in (left, right):
                self._scalar_operand(token.text, side, ("N",))
            return Arithmetic(token.text, left, right)
        return left

    def update_operand(self) -> Operand:
        """An operand of a SET value: a path, a value, if_not_exists or list_append."""
        return self._operand(self._update_call)

    def _update_call(self, name: str) -> Operand:
        if name not in UPDATE_FUNCTIONS:
            if name in CONDITION_FUNCTIONS or name == "size":
                raise self.error("The function is not allowed in an update expression; "
                                 f"function: {name}")
            raise self.error(f"Invalid function name; function: {name}")
        first, second = self.arguments(name, 2, self.update_operand)
        if name == "if_not_exists":
            return IfNotExists(self._needs_path(name, first), second)
        for arg in (first, second):
            self._scalar_operand(name, arg, ("L",))
        return ListAppend(first, second)


def _check_overlaps(paths: list[Path], parser: _Parser) -> None:
    for i, one in enumerate(paths):
        for two in paths[i + 1:]:
            for a, b in zip(one.steps, two.steps):
                if isinstance(a, int) != isinstance(b, int):
                    raise parser.error("Two document paths conflict with each other; must "
                                       "remove or rewrite one of these paths; path one: "
                                       f"{one.shown()}, path two: {two.shown()}")
                if a != b:
                    break
            else:
                raise parser.error("Two document paths overlap with each other; must remove "
                                   "or rewrite one of these paths; path one: "
                                   f"{one.shown()}, path two: {two.shown()}")


def _show(value: AttributeValue) -> str:
    kind = kind_of(value)
    return f"{{{kind}:{value[kind]}}}"
