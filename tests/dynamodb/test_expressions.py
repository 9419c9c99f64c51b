"""The expression language against the documented semantics (`oracle`): generated items and
generated expressions, written as text with placeholders as a client would, parsed and
evaluated by berth, and compared with an independent reading of the documentation."""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
from berth.api.errors import ServiceError
from berth.dynamodb.expressions import (Placeholders, apply, evaluate, parse_condition,
                                        parse_projection, parse_update, project)
from generators import Renderer, conditions, items, paths, updates

SETTINGS = settings(max_examples=600, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.data())
def test_conditions_parse_back_and_evaluate_as_documented(data: st.DataObject) -> None:
    item = data.draw(items)
    tree = data.draw(conditions(item))
    renderer = Renderer(data.draw)
    text, expected = renderer.condition(tree)
    placeholders = Placeholders(renderer.names or None, renderer.values or None)
    parsed = parse_condition(text, placeholders)
    assert parsed == expected, text
    placeholders.check_all_used()
    assert evaluate(parsed, item) == oracle.holds(expected, oracle.native_item(item)), text


@SETTINGS
@given(st.data())
def test_updates_apply_as_documented(data: st.DataObject) -> None:
    item = data.draw(items)
    update = data.draw(updates())
    renderer = Renderer(data.draw)
    text, expected = renderer.update(update)
    placeholders = Placeholders(renderer.names or None, renderer.values or None)
    try:
        want: Any = oracle.apply_update(expected, oracle.native_item(item))
    except oracle.Invalid:
        want = oracle.Invalid
    try:
        # A constant of the wrong type is refused while parsing; anything else applying.
        parsed = parse_update(text, placeholders)
        assert parsed == expected, text
        got: Any = oracle.native_item(apply(parsed, item))
    except ServiceError as exc:
        assert exc.code == "ValidationException"
        got = oracle.Invalid
    assert got == want, text
    assert oracle.native_item(item) == oracle.native_item(item)    # the input is untouched


@SETTINGS
@given(st.data())
def test_projections_as_documented(data: st.DataObject) -> None:
    item = data.draw(items)
    chosen = data.draw(st.lists(paths(), min_size=1, max_size=4))
    renderer = Renderer(data.draw)
    text = ", ".join(renderer.path(p) for p in chosen)
    placeholders = Placeholders(renderer.names or None, None)
    try:
        parsed = parse_projection(text, placeholders)
    except ServiceError as exc:     # overlapping paths are refused; check that they overlap
        assert "Two document paths" in exc.message
        assert any(_related(a.steps, b.steps) for i, a in enumerate(chosen)
                   for b in chosen[i + 1:])
        return
    assert list(parsed) == chosen
    assert oracle.native_item(project(item, parsed)) == oracle.project(
        oracle.native_item(item), chosen)


def _related(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    for x, y in zip(a, b):
        if isinstance(x, int) != isinstance(y, int):
            return True
        if x != y:
            return False
    return True


# ------------------------------------------------------------------------------------------
# Errors, worded as AWS words them.


def _err(parse: Any, text: str, names: dict[str, str] | None = None,
         values: dict[str, Any] | None = None) -> str:
    with pytest.raises(ServiceError) as err:
        parse(text, Placeholders(names, values))
    assert err.value.code == "ValidationException"
    return err.value.message


V = {":v": {"N": "1"}, ":w": {"N": "2"}, ":s": {"S": "x"}, ":v1": {"N": "1"},
     ":v2": {"N": "2"}}


@pytest.mark.parametrize("text, message", [
    ("SET a = :v1 :v2", 'Invalid UpdateExpression: Syntax error; token: ":v2", near: ":v1 :v2"'),
    ("SET a = :v, REMOVE b", 'Invalid UpdateExpression: Syntax error; token: "REMOVE", '
                             'near: ", REMOVE b"'),
    ("SET data = :v", "Invalid UpdateExpression: Attribute name is a reserved keyword; "
                      "reserved keyword: data"),
    ("SET a = :v SET b = :w", 'Invalid UpdateExpression: The "SET" section can only be used '
                              "once in an update expression;"),
    ("SET a.b = :v, a = :w", "Invalid UpdateExpression: Two document paths overlap with each "
                             "other; must remove or rewrite one of these paths; path one: "
                             "[a, b], path two: [a]"),
    ("REMOVE a[1], a.b", "Invalid UpdateExpression: Two document paths conflict with each "
                         "other; must remove or rewrite one of these paths; path one: "
                         "[a, [1]], path two: [a, b]"),
    ("ADD a :s", "Invalid UpdateExpression: Incorrect operand type for operator or function; "
                 "operator: ADD, operand type: STRING"),
    ("DELETE a :v", "Invalid UpdateExpression: Incorrect operand type for operator or "
                    "function; operator: DELETE, operand type: NUMBER"),
    ("SET a = size(b)", "Invalid UpdateExpression: The function is not allowed in an update "
                        "expression; function: size"),
    ("SET a = :x", "Invalid UpdateExpression: An expression attribute value used in expression "
                   "is not defined; attribute value: :x"),
    ("SET #x = :v", "Invalid UpdateExpression: An expression attribute name used in the "
                    "document path is not defined; attribute name: #x"),
    ("SET a = :v + :w + :v", 'Syntax error; token: "+"'),
    ("SET a = foo(b)", "Invalid UpdateExpression: Invalid function name; function: foo"),
])
def test_update_expression_errors(text: str, message: str) -> None:
    assert message in _err(parse_update, text, None, V)


@pytest.mark.parametrize("text, message", [
    ("a = ", 'Invalid ConditionExpression: Syntax error; token: "<EOF>"'),
    ("foo(a)", "Invalid ConditionExpression: Invalid function name; function: foo"),
    ("attribute_exists(:v)", "Operator or function requires a document path; operator or "
                             "function: attribute_exists"),
    ("a BETWEEN :w AND :v", "The BETWEEN operator requires upper bound to be greater than or "
                            "equal to lower bound; lower bound operand: AttributeValue: {N:2}, "
                            "upper bound operand: AttributeValue: {N:1}"),
    ("a BETWEEN :s AND :v", "The BETWEEN operator requires same data type for lower and upper "
                            "bounds"),
    ("if_not_exists(a, :v)", "The function is not allowed in a condition expression; "
                             "function: if_not_exists"),
    ("a ! b", 'Syntax error; token: "!", near: "a ! b"'),
    ("begins_with(a, :v)", "Incorrect operand type for operator or function; operator or "
                           "function: begins_with, operand type: N"),
    ("begins_with(a)", "Incorrect number of operands for operator or function; operator or "
                       "function: begins_with, number of operands: 1"),
    ("attribute_type(a, :s)", "Invalid attribute type name found; type: x"),
    ("size(a) = :v AND size = :w", "reserved keyword: size"),
])
def test_condition_expression_errors(text: str, message: str) -> None:
    assert message in _err(parse_condition, text, None, V)


def test_placeholders_unused_or_empty() -> None:
    ph = Placeholders({"#a": "a", "#b": "b"}, {":v": {"N": "1"}, ":w": {"N": "2"}})
    parse_condition("#a = :v", ph)
    with pytest.raises(ServiceError, match=r"unused in expressions: keys: \{#b\}"):
        ph.check_all_used()
    ph = Placeholders(None, {":v": {"N": "1"}, ":w": {"N": "2"}})
    parse_condition("a = :v", ph)
    with pytest.raises(ServiceError, match=r"ExpressionAttributeValues unused in expressions: "
                                           r"keys: \{:w\}"):
        ph.check_all_used()
    with pytest.raises(ServiceError, match="ExpressionAttributeValues must not be empty"):
        Placeholders(None, {})
    with pytest.raises(ServiceError, match="ExpressionAttributeValues contains invalid value: "
                                           "One or more parameter values were invalid: An "
                                           "string set  may not be empty for key :v"):
        Placeholders(None, {":v": {"SS": []}})


def test_update_reads_the_item_before_the_update() -> None:
    ph = Placeholders(None, None)
    item = {"a": {"N": "1"}, "b": {"N": "2"}}
    assert apply(parse_update("SET a = b, b = a", ph), item) == {"a": {"N": "2"},
                                                                 "b": {"N": "1"}}
    ph = Placeholders(None, {":l": {"L": [{"S": "x"}, {"S": "y"}]}})
    item = {"l": {"L": [{"N": str(i)} for i in range(5)]}}
    out = apply(parse_update("REMOVE l[1], l[3]", Placeholders(None, None)), item)
    assert out["l"]["L"] == [{"N": "0"}, {"N": "2"}, {"N": "4"}]
    out = apply(parse_update("SET l[9] = :v, l[7] = :w",
                             Placeholders(None, {":v": {"S": "9"}, ":w": {"S": "7"}})), item)
    assert out["l"]["L"][5:] == [{"S": "7"}, {"S": "9"}]


def test_update_of_a_missing_nested_parent_is_refused() -> None:
    ph = Placeholders(None, {":v": {"N": "1"}})
    with pytest.raises(ServiceError, match="The document path provided in the update "
                                           "expression is invalid for update"):
        apply(parse_update("SET m.x = :v", ph), {})
    with pytest.raises(ServiceError, match="refers to an attribute that does not exist"):
        apply(parse_update("SET a = b + :v", Placeholders(None, {":v": {"N": "1"}})), {})
