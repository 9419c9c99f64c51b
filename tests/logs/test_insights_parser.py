"""The Logs Insights parser: commands, expressions, the names of unnamed columns, and the
errors (with positions) a malformed query gets."""
from __future__ import annotations

import pytest

from berth.logs.insights import syntax as s
from berth.logs.insights.parser import QuerySyntaxError, parse


def test_commands_in_order_with_keywords_in_any_case() -> None:
    query = parse("FIELDS @timestamp, @message | Filter level = 'ERROR' | sort @timestamp desc "
                  "| LIMIT 20")
    assert [type(c) for c in query.commands] == [s.Fields, s.Filter, s.Sort, s.Limit]
    fields, _, sort, limit = query.commands
    assert [c.name for c in fields.columns] == ["@timestamp", "@message"]
    assert sort.keys[0].descending and limit.count == 20


def test_unnamed_columns_are_named_by_their_text_and_as_renames() -> None:
    (stats,) = parse("stats count(*), avg(latency) as mean by bin(5m), status").commands
    assert [c.name for c in stats.aggregates] == ["count(*)", "mean"]
    assert [c.name for c in stats.groups] == ["bin(5m)", "status"]
    (fields,) = parse("fields strlen(@message)").commands
    assert fields.columns[0].name == "strlen(@message)"


def test_expressions_bind_as_usual() -> None:
    (f,) = parse("filter a = 1 or b = 2 and not c > 3 * 2 + 1").commands
    cond = f.condition
    assert isinstance(cond, s.Binary) and cond.op == "or"
    right = cond.right
    assert isinstance(right, s.Binary) and right.op == "and"
    assert isinstance(right.right, s.Unary) and right.right.op == "not"
    (f,) = parse("filter x not like /a(?<n>b)/i and y not in [1, 'two']").commands
    assert isinstance(f.condition, s.Binary)
    like, within = f.condition.left, f.condition.right
    assert isinstance(like, s.Binary) and like.op == "like" and like.negated
    assert isinstance(like.right, s.Regex) and like.right.pattern == "(?i)a(?P<n>b)"
    assert isinstance(within, s.Binary) and within.op == "in" and within.negated


def test_fields_can_be_quoted_and_dotted() -> None:
    (fields,) = parse("fields `odd name`, user.id, @requestId").commands
    assert [c.expr.name for c in fields.columns] == ["odd name", "user.id", "@requestId"]


def test_parse_globs_and_regexes() -> None:
    (glob,) = parse('parse @message "user=*, action=*" as user, action').commands
    assert glob.names == ("user", "action")
    assert glob.regex == r"user=(.*?),\ action=(.*)"
    (rx,) = parse(r"parse /(?<ip>\d+\.\d+\.\d+\.\d+) (?<verb>\w+)/").commands
    assert rx.names == ("ip", "verb") and rx.source == s.Field("@message", "@message")


def test_durations_and_comments() -> None:
    query = parse("# the slow ones\nstats count(*) by bin(1h) # per hour\n| limit 5")
    (stats, limit) = query.commands
    assert stats.groups[0].expr.args[0].value == 3_600_000 and limit.count == 5


@pytest.mark.parametrize("text,position,fragment", [
    ("", 1, "Expected a command"),
    ("fields", 7, "Expected a value"),
    ("filter x = ", 12, "Expected a value"),
    ("fieldz a", 1, "Expected one of fields"),
    ("fields a b", 10, "Expected '|' between commands"),
    ("limit 0", 7, "limit takes a positive whole number"),
    ("limit 10001", 7, "limit can be at most 10000"),
    ("fields count(*)", 8, "Aggregate functions can only be used in stats"),
    ("fields nosuch(a)", 8, "Unknown function"),
    ("stats a by b", None, "stats needs an aggregate function"),
    ('parse @message "no star" as a', 16, "needs at least one '*'"),
    ('parse @message "a*b*" as a', None, "has 2 '*' but 1 fields"),
    ("filter x = 'open", 12, "Unterminated string"),
    ("stats count(*) by bin(5parsecs)", 23, "Unknown time unit"),
    ("fields a | dedup a | sort a", 22, "The only command that can follow dedup is limit"),
])
def test_malformed_queries_say_where(text: str, position: int | None, fragment: str) -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse(text)
    assert fragment in err.value.message
    if position is not None:
        assert err.value.start == position - 1
    assert 0 <= err.value.start < err.value.end
