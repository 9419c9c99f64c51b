"""The Logs Insights engine over hand-made records: what each command does, the values and
functions, stats and their names, and the default order (newest first)."""
from __future__ import annotations

import json
from typing import Any

from berth.logs.insights.engine import run
from berth.logs.insights.parser import parse
from berth.logs.insights.records import Record, event_record, message_fields

T0 = 1_700_000_000_000      # 2023-11-14 22:13:20 UTC


def records(*messages: str | dict[str, Any], lambda_group: bool = False) -> list[Record]:
    """One record per message, a minute apart, newest first (as the store feeds them)."""
    out = []
    for i, m in enumerate(messages):
        text = json.dumps(m) if isinstance(m, dict) else m
        out.append(event_record("000000000000:/g", f"s{i % 2}", T0 + i * 60_000,
                                T0 + i * 60_000 + 5, text, ("/g", i), lambda_group))
    return out[::-1]


def rows(query: str, recs: list[Record], limit: int = 10_000) -> list[dict[str, str]]:
    return [dict(r) for r, _ in run(parse(query), recs, limit).rows]


LOG = records({"level": "INFO", "ms": 10, "user": {"id": 1}, "path": "/a"},
              {"level": "ERROR", "ms": 250, "user": {"id": 2}, "path": "/b"},
              {"level": "INFO", "ms": 30, "user": {"id": 1}, "path": "/a", "tags": ["x", "y"]},
              "plain text GET /c 404",
              {"level": "ERROR", "ms": "70", "user": {"id": 3}, "path": "/c"})


def test_default_fields_and_order_are_newest_first() -> None:
    out = rows("filter ispresent(level)", LOG)
    assert [r["@timestamp"] for r in out] == [
        "2023-11-14 22:17:20.000", "2023-11-14 22:15:20.000", "2023-11-14 22:14:20.000",
        "2023-11-14 22:13:20.000"]
    assert set(out[0]) == {"@timestamp", "@message", "@logStream", "@log"}
    assert out[0]["@log"] == "000000000000:/g"


def test_fields_project_json_members_and_computed_columns() -> None:
    out = rows("fields path, user.id, ms * 2 as double, tags.1", LOG)
    assert out[0] == {"path": "/c", "user.id": "3", "double": "140"}
    assert out[2] == {"path": "/a", "user.id": "1", "double": "60", "tags.1": "y"}
    assert out[1] == {}     # the plain-text event has none of them


def test_filter_comparisons_are_loosely_typed() -> None:
    assert [r["path"] for r in rows("filter ms > 50 | fields path", LOG)] == ["/c", "/b"]
    assert len(rows("filter ms = '70'", LOG)) == 1
    assert len(rows("filter level != 'INFO'", LOG)) == 2        # a missing field is no match
    assert len(rows("filter level in ['ERROR', 'WARN']", LOG)) == 2
    assert len(rows("filter level not in ['ERROR']", LOG)) == 3
    assert len(rows("filter @message like 'GET'", LOG)) == 1
    assert len(rows("filter @message like /error/", LOG)) == 0
    assert len(rows("filter @message like /(?i)error/", LOG)) == 2
    assert len(rows("filter @message =~ /\\d{3}$/", LOG)) == 1
    assert len(rows("filter not ispresent(level)", LOG)) == 1
    assert len(rows("filter (level = 'ERROR' or ms < 20) and path != '/b'", LOG)) == 2


def test_stats_group_and_name_their_columns() -> None:
    out = rows("stats count(*) as n, avg(ms), max(ms), min(ms), sum(ms) by level", LOG)
    assert out == [
        {"level": "ERROR", "n": "2", "avg(ms)": "160", "max(ms)": "250", "min(ms)": "70",
         "sum(ms)": "320"},
        {"level": "INFO", "n": "2", "avg(ms)": "20", "max(ms)": "30", "min(ms)": "10",
         "sum(ms)": "40"},
        {"n": "1"}]         # the events without a level are a group of their own
    assert rows("stats count(*) by bin(2m)", LOG) == [
        {"bin(2m)": "2023-11-14 22:12:00.000", "count(*)": "1"},
        {"bin(2m)": "2023-11-14 22:14:00.000", "count(*)": "2"},
        {"bin(2m)": "2023-11-14 22:16:00.000", "count(*)": "2"}]


def test_more_aggregates() -> None:
    (out,) = rows("stats count(level) as with_level, count_distinct(path) as paths, "
                  "pct(ms, 50) as median, stddev(ms) as sd, earliest(path) as first, "
                  "latest(path) as last, sortsFirst(path) as lo, sortsLast(path) as hi, "
                  "sum(ms) / count(ms) as mean", LOG)
    assert out["with_level"] == "4" and out["paths"] == "3" and out["median"] == "30"
    assert out["first"] == "/a" and out["last"] == "/c" and out["lo"] == "/a"
    assert out["hi"] == "/c" and out["mean"] == "90"
    assert abs(float(out["sd"]) - 109.5445) < 0.001   # sample deviation of 10, 250, 30, 70
    assert rows("filter level = 'none' | stats count(*)", LOG) == [{"count(*)": "0"}]


def test_a_second_stats_works_on_the_first_ones_rows() -> None:
    out = rows("stats count(*) as n by level | stats sum(n) as total", LOG)
    assert out == [{"total": "5"}]


def test_sort_limit_and_dedup() -> None:
    out = rows("fields path, ms | sort ms desc | limit 3", LOG)
    assert [r["ms"] for r in out] == ["250", "70", "30"]
    out = rows("fields path | sort path asc, @timestamp desc", LOG)
    assert [r.get("path") for r in out] == ["/a", "/a", "/b", "/c", None]
    # The first of each value in the order given (newest first); missing values all stay.
    out = rows("fields path, ms | dedup path", LOG)
    assert [(r.get("path"), r.get("ms")) for r in out] == [
        ("/c", "70"), (None, None), ("/a", "30"), ("/b", "250")]


def test_limit_stops_the_scan() -> None:
    seen = []

    def feed() -> Any:
        for rec in LOG:
            seen.append(rec)
            yield rec
    result = run(parse("fields @message | limit 2"), feed())
    assert len(result.rows) == 2 and result.matched == 2 and len(seen) == 2


def test_parse_extracts_fields() -> None:
    out = rows("parse @message 'GET * *' as path, status | filter ispresent(status) "
               "| display path, status", LOG)
    assert out == [{"path": "/c", "status": "404"}]
    out = rows(r"parse @message /GET (?<where>\S+) (?<code>\d+)/ | filter code >= 400 "
               "| fields where", LOG)
    assert out == [{"where": "/c"}]


def test_string_and_number_functions() -> None:
    (out,) = rows("filter path = '/b' | fields strlen(path) as n, toupper(level) as up, "
                  "concat(level, ':', path) as both, substr(level, 1, 3) as mid, "
                  "replace(path, '/', '-') as r, abs(0 - ms) as a, floor(ms / 100) as f, "
                  "ceil(ms / 100) as c, coalesce(nothing, level) as co, "
                  "strcontains(level, 'RR') as has, greatest(ms, 999) as g, "
                  "trim('  x ') as t, isempty(nothing) as e", LOG)
    assert out == {"n": "2", "up": "ERROR", "both": "ERROR:/b", "mid": "RRO", "r": "-b",
                   "a": "250", "f": "2", "c": "3", "co": "ERROR", "has": "1", "g": "999",
                   "t": "x", "e": "true"}


def test_time_and_ip_functions() -> None:
    recs = records({"ip": "10.1.2.3"}, {"ip": "192.168.0.9"}, {"ip": "not-an-ip"})
    assert len(rows("filter isIpInSubnet(ip, '10.0.0.0/8')", recs)) == 1
    assert len(rows("filter isValidIp(ip)", recs)) == 2
    (out,) = rows("filter ip = '10.1.2.3' | fields datefloor(@timestamp, 1h) as hour, "
                  "toMillis(@timestamp) as ms, fromMillis(0) as epoch", recs)
    assert out == {"hour": "2023-11-14 22:00:00.000", "ms": str(T0),
                   "epoch": "1970-01-01 00:00:00.000"}


def test_lambda_platform_lines_have_their_fields() -> None:
    report = ("REPORT RequestId: 3f1c2d4e-1111-2222-3333-444455556666\tDuration: 12.34 ms\t"
              "Billed Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\t"
              "Init Duration: 101.5 ms")
    fields = dict(message_fields(report, lambda_group=True))
    assert fields == {"@type": "REPORT", "@requestId": "3f1c2d4e-1111-2222-3333-444455556666",
                      "@duration": 12.34, "@billedDuration": 13.0,
                      "@memorySize": 128_000_000.0, "@maxMemoryUsed": 40_000_000.0,
                      "@initDuration": 101.5}
    recs = records("START RequestId: ab-1 Version: $LATEST", report, lambda_group=True)
    assert rows("filter @type = 'REPORT' | stats max(@duration) as d", recs) == [
        {"d": "12.34"}]
    assert dict(message_fields(report)) == {}   # only in Lambda's groups


def test_matched_counts_records_that_pass_the_filters() -> None:
    result = run(parse("filter level = 'INFO' | stats count(*)"), LOG)
    assert result.matched == 2
    result = run(parse("filter ms > 0 | sort ms | limit 1"), LOG)
    assert result.matched == 4 and len(result.rows) == 1
