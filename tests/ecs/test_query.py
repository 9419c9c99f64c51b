"""The cluster query language: every subject and operator, compound expressions, errors."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from berth.ecs.placement import InstanceView
from berth.ecs.query import InstanceFacts, QueryError, compile_expression

T2 = InstanceFacts(attributes={"ecs.instance-type": "t2.small", "ecs.availability-zone": "us-east-1a",
                               "stack": "prod", "cores": "8", "flag": None},
                   running_tasks_count=1, task_groups={"service:production": 2, "database": 0},
                   ec2_instance_id="i-abcd1234", agent_connected=True, agent_version="1.14.5",
                   registered_at=datetime(2018, 6, 18, 22, 28, 28, tzinfo=timezone.utc).timestamp())
G2 = InstanceFacts(attributes={"ecs.instance-type": "g2.2xlarge",
                               "ecs.availability-zone": "us-east-1d", "cores": "four"},
                   running_tasks_count=0, task_groups={"database": 1},
                   agent_connected=False, agent_version="1.9.0")
BARE = InstanceFacts()


def matches(expression: str) -> list[str]:
    pred = compile_expression(expression)
    return [name for name, t in (("t2", T2), ("g2", G2), ("bare", BARE)) if pred(t)]


@pytest.mark.parametrize("expression, expected", [
    # the developer guide's examples
    ("attribute:ecs.instance-type == t2.small", ["t2"]),
    ("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", ["t2"]),
    ("attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", []),
    ("attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1a",
     ["g2"]),
    ("task:group == service:production", ["t2"]),
    ("not(task:group == database)", ["t2", "bare"]),
    ("runningTasksCount == 1", ["t2"]),
    ("agentVersion < 1.14.5", ["g2"]),
    ("registeredAt < 2018-06-19", ["t2"]),
    ("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", ["t2"]),
])
def test_developer_guide_examples(expression: str, expected: list[str]) -> None:
    assert matches(expression) == expected


@pytest.mark.parametrize("expression, expected", [
    ("attribute:stack == prod", ["t2"]),
    ("attribute:stack equals prod", ["t2"]),
    ("attribute:stack EQUALS prod", ["t2"]),
    # a negated comparison needs the attribute: "instances with stack, unless it is prod"
    ("attribute:stack != prod", []),
    ("attribute:ecs.instance-type not_equals t2.small", ["g2"]),
    ("attribute:stack exists", ["t2"]),
    ("attribute:flag exists", ["t2"]),          # an attribute without a value still exists
    ("attribute:stack !exists", ["g2", "bare"]),
    ("attribute:stack not_exists", ["g2", "bare"]),
    ("attribute:ecs.availability-zone in (us-east-1d, us-east-1c)", ["g2"]),
    ("attribute:ecs.availability-zone !in [us-east-1a]", ["g2"]),
    ("attribute:ecs.availability-zone not_in [us-east-1a]", ["g2"]),
    ("attribute:ecs.instance-type =~ t2\\..*", ["t2"]),
    ("attribute:ecs.instance-type matches [gt]2.*", ["t2", "g2"]),
    ("attribute:ecs.instance-type =~ t2", []),        # the whole value must match, as in Java
    ("attribute:ecs.instance-type !~ t2.*", ["g2"]),
    ("attribute:ecs.instance-type not_matches t2.*", ["g2"]),
    ("attribute:ecs.instance-type =~ 't2.(small|micro)'", ["t2"]),
    ("attribute:cores > 4", ["t2"]),                  # numbers compare as numbers...
    ("attribute:cores >= 8", ["t2"]),
    ("attribute:cores < 10", ["t2"]),                 # ..."four" is no number, and no match
    ("attribute:cores == 8.0", []),                   # == is string equality
    ('attribute:stack == "prod"', ["t2"]),
])
def test_attribute_operators(expression: str, expected: list[str]) -> None:
    assert matches(expression) == expected


@pytest.mark.parametrize("expression, expected", [
    ("runningTasksCount > 0", ["t2"]),
    ("runningTasksCount greater_than 0", ["t2"]),
    ("runningTasksCount >= 0", ["t2", "g2", "bare"]),
    ("runningTasksCount less_than_equal 0", ["g2", "bare"]),
    ("runningTasksCount != 1", ["g2", "bare"]),
    ("runningTasksCount==1", ["t2"]),
    ("agentConnected == true", ["t2", "bare"]),
    ("agentConnected == FALSE", ["g2"]),
    ("agentConnected in [false]", ["g2"]),
    ("agentVersion >= 1.10.0", ["t2"]),               # versions compare part by part
    ("agentVersion == 1.9.0", ["g2"]),
    ("agentVersion exists", ["t2", "g2"]),
    ("registeredAt > 2018-06-18T22:28:27Z", ["t2"]),
    ("registeredAt == 2018-06-18T22:28:28+00:00", ["t2"]),
    ("registeredAt >= 2018-06-18T22:28:28", ["t2"]),
    ("ec2InstanceId =~ i-.*", ["t2"]),
    ("ec2InstanceId == i-abcd1234", ["t2"]),
    ("ec2InstanceId !exists", ["g2", "bare"]),
])
def test_other_subjects(expression: str, expected: list[str]) -> None:
    assert matches(expression) == expected


@pytest.mark.parametrize("expression, expected", [
    ("task:group == database", ["g2"]),               # a count of 0 is no task of the group
    ("task:group != database", ["t2", "bare"]),       # anti-affinity: no task of the group
    ("task:group in [database, service:production]", ["t2", "g2"]),
    ("task:group !in [database]", ["t2", "bare"]),
    ("task:group =~ service:.*", ["t2"]),
    ("task:group exists", ["t2", "g2"]),
    ("task:group !exists", ["bare"]),
])
def test_task_group(expression: str, expected: list[str]) -> None:
    assert matches(expression) == expected


@pytest.mark.parametrize("expression, expected", [
    ("attribute:stack == prod or runningTasksCount == 0", ["t2", "g2", "bare"]),
    ("attribute:stack == prod || agentConnected == false", ["t2", "g2"]),
    ("attribute:stack == prod && runningTasksCount == 1", ["t2"]),
    ("attribute:stack == prod AND runningTasksCount == 0", []),
    # and binds tighter than or
    ("runningTasksCount == 0 or attribute:stack == prod and runningTasksCount == 5", ["g2", "bare"]),
    ("(runningTasksCount == 0 or attribute:stack == prod) and agentConnected == true",
     ["t2", "bare"]),
    ("!(attribute:stack exists)", ["g2", "bare"]),
    ("! attribute:stack exists", ["g2", "bare"]),
    ("not not attribute:stack exists", ["t2"]),
    ("not (not (attribute:stack exists))", ["t2"]),
    ("NOT(task:group == database) and (agentConnected == true)", ["t2", "bare"]),
    ("((attribute:ecs.instance-type =~ g2.*))", ["g2"]),
    ("(attribute:ecs.instance-type =~ g2.*) or(runningTasksCount == 1)", ["t2", "g2"]),
    ("  attribute:stack   ==   prod  ", ["t2"]),
])
def test_compound_expressions(expression: str, expected: list[str]) -> None:
    assert matches(expression) == expected


@pytest.mark.parametrize("expression, fragment", [
    ("", "empty"),
    ("   ", "empty"),
    ("foo == 1", "unknown subject 'foo'"),
    ("attribute: == x", "needs a name"),
    ("attribute:x ~~ y", "unknown operator"),
    ("attribute:x", "expected an operator"),
    ("attribute:x ==", "expected an argument"),
    ("attribute:x == a b", "unexpected 'b'"),
    ("(attribute:x == a", "expected ')'"),
    ("attribute:x == a)", "unexpected ')'"),
    ("attribute:x in a, b", "argument list"),
    ("attribute:x in [a, b", "expected ','"),
    ("attribute:x =~ [", "invalid pattern"),
    ("attribute:x == 'open", "unterminated"),
    ("runningTasksCount == many", "not a number"),
    ("registeredAt < yesterday", "not a date"),
    ("agentVersion > latest", "not a version"),
    ("ec2InstanceId > i-1", "not valid for subject 'ec2InstanceId'"),
    ("runningTasksCount =~ 1", "not valid for subject"),
    ("attribute:x == a and", "expected a subject"),
    ("not", "expected a subject"),
])
def test_errors(expression: str, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        compile_expression(expression)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_error_names_the_position() -> None:
    with pytest.raises(QueryError, match=r"unknown subject 'bogus' \(at position 24\)"):
        compile_expression("attribute:a exists and bogus == 1")


def test_an_instance_view_is_a_target() -> None:
    view = InstanceView(arn="arn:aws:ecs:us-east-1:000000000000:container-instance/c/x",
                        instance_id="x", version=1, remaining_cpu=1, remaining_memory=1,
                        attributes={"ecs.os-type": "linux"}, running_tasks_count=2,
                        task_groups={"family:web": 2})
    pred = compile_expression(
        "attribute:ecs.os-type == linux and task:group == family:web and runningTasksCount > 1"
        " and agentConnected == true")
    assert pred(view)


def test_compiled_expressions_are_reused() -> None:
    text = "attribute:ecs.os-type == linux"
    assert compile_expression(text) is compile_expression(text)


@pytest.mark.parametrize("bad", [None, 5])
def test_non_string_expression(bad: Any) -> None:
    with pytest.raises(QueryError):
        compile_expression(bad)
