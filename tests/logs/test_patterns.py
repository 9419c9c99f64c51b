"""Unit tests for CloudWatch Logs filter patterns (berth.logs.patterns)."""

import json

import pytest

from berth.logs.patterns import InvalidPattern, compile_pattern


def m(pattern: str, message: str) -> bool:
    return compile_pattern(pattern)(message)


def j(pattern: str, doc: object) -> bool:
    return compile_pattern(pattern)(json.dumps(doc))


# ------------------------------------------------------------ empty patterns


@pytest.mark.parametrize("pattern", ["", "   ", "\t\n"])
def test_empty_pattern_matches_everything(pattern):
    assert m(pattern, "anything at all")
    assert m(pattern, "")
    assert m(pattern, '{"a": 1}')


def test_invalid_pattern_is_value_error():
    assert issubclass(InvalidPattern, ValueError)


# ------------------------------------------------------- unstructured terms


def test_single_term():
    assert m("ERROR", "[ERROR 400] BAD REQUEST")
    assert not m("ERROR", "[INFO 200] OK")


def test_term_is_case_sensitive():
    assert not m("ERROR", "an error occurred")
    assert m("error", "an error occurred")


def test_term_matches_as_substring():
    assert m("ERR", "ERROR happened")
    assert m("404", "status=404;")


def test_multiple_terms_are_anded():
    assert m("ERROR 400", "[ERROR 400] BAD REQUEST")
    assert not m("ERROR 401", "[ERROR 400] BAD REQUEST")
    assert m("ERROR Exception", "Exception then ERROR")


def test_quoted_phrase():
    assert m('"INTERNAL SERVER ERROR"', "500 INTERNAL SERVER ERROR here")
    assert not m('"INTERNAL SERVER ERROR"', "INTERNAL ERROR SERVER")


def test_quoted_phrase_with_escaped_quote():
    assert m(r'"say \"hi\""', 'they say "hi" loudly')
    assert not m(r'"say \"hi\""', "they say hi loudly")


def test_quoted_phrase_with_special_characters():
    assert m('"{status}"', "value {status} here")
    assert m('"a[0]"', "read a[0] failed")


def test_exclusion():
    assert m("ERROR -Exception", "ERROR something")
    assert not m("ERROR -Exception", "ERROR Exception thrown")
    assert not m("ERROR -Exception", "nothing")


def test_exclusion_only():
    assert m("-DEBUG", "INFO hello")
    assert not m("-DEBUG", "DEBUG hello")


def test_exclusion_of_quoted_phrase():
    assert m('ERROR -"not found"', "ERROR disk full")
    assert not m('ERROR -"not found"', "ERROR file not found")


def test_any_term():
    pattern = "?ERROR ?WARN"
    assert m(pattern, "ERROR x")
    assert m(pattern, "WARN x")
    assert not m(pattern, "INFO x")


def test_any_term_with_quotes():
    pattern = '?"bad request" ?timeout'
    assert m(pattern, "got bad request")
    assert m(pattern, "connection timeout")
    assert not m(pattern, "bad gateway")


def test_any_term_groups_as_rendered_by_cdk():
    # ?A B ?C D == (A and B) or (C and D)
    pattern = '?"ERROR" "MainThread" ?"WARN" "Deadlock"'
    assert m(pattern, "ERROR in MainThread")
    assert m(pattern, "WARN Deadlock detected")
    assert not m(pattern, "ERROR in worker")
    assert not m(pattern, "WARN MainThread")


def test_required_term_before_any_terms():
    pattern = "app ?ERROR ?WARN"
    assert m(pattern, "app ERROR")
    assert not m(pattern, "ERROR")
    assert not m(pattern, "app INFO")


def test_unstructured_regex():
    assert m("%AUTHORIZED%", "[SUCCESS 200] AUTHORIZED REQUEST")
    assert m("%AUTHORIZED%", "[ERROR 401] UNAUTHORIZED REQUEST")
    assert m(r"%\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}%", "from 10.0.0.1 ok")
    assert not m(r"%\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}%", "from localhost")


def test_unstructured_regex_anchors_and_alternation():
    assert m("%^ERROR%", "ERROR at start")
    assert not m("%^ERROR%", "late ERROR")
    assert m("%[Ee]rror|[Ff]ail%", "it did fail")
    assert m("%colou?r%", "color")


def test_regex_combined_with_terms():
    assert m("ERROR %code=5[0-9]{2}%", "ERROR code=503")
    assert not m("ERROR %code=5[0-9]{2}%", "ERROR code=404")
    assert not m("-%^DEBUG%", "DEBUG x")


def test_terms_with_punctuation_unquoted():
    assert m("status=500", "x status=500 y")
    # '-' prefix then the term "-verbose": events containing "-verbose" are excluded
    assert m("--verbose", "run verbose")
    assert not m("--verbose", "run -verbose")


def test_any_term_prefix_before_quote_and_regex():
    assert m('?"a b" ?%^z%', "zzz")
    assert m('?"a b" ?%^z%', "x a b")
    assert not m('?"a b" ?%^z%', "a z")


def test_terms_match_json_text():
    assert m("UpdateTrail", '{"eventType": "UpdateTrail"}')


# ------------------------------------------------------------ JSON patterns


def test_json_string_equality():
    assert j('{ $.eventType = "UpdateTrail" }', {"eventType": "UpdateTrail"})
    assert not j('{ $.eventType = "UpdateTrail" }', {"eventType": "CreateTrail"})


def test_json_unquoted_string():
    assert j("{ $.eventType = UpdateTrail }", {"eventType": "UpdateTrail"})


def test_json_nested_field():
    assert j('{ $.a.b = "str" }', {"a": {"b": "str"}})
    assert not j('{ $.a.b = "str" }', {"a": {"c": "str"}})
    assert not j('{ $.a.b = "str" }', {"a": "b"})


def test_json_not_equal():
    assert j('{ $.level != "INFO" }', {"level": "ERROR"})
    assert not j('{ $.level != "INFO" }', {"level": "INFO"})


def test_json_not_equal_requires_field():
    assert not j('{ $.level != "INFO" }', {"other": 1})


def test_json_wildcard_ip():
    assert j("{ $.sourceIPAddress != 123.123.* }", {"sourceIPAddress": "10.0.0.1"})
    assert not j("{ $.sourceIPAddress != 123.123.* }", {"sourceIPAddress": "123.123.4.5"})


def test_json_wildcard_quoted():
    assert j('{ $.user = "ab*" }', {"user": "abby"})
    assert j('{ $.user = "ab*" }', {"user": "ab"})
    assert not j('{ $.user = "ab*" }', {"user": "xab"})
    assert j('{ $.user = "*by" }', {"user": "abby"})
    assert j('{ $.user = "a*b*y" }', {"user": "abby"})


def test_json_star_means_any_string():
    assert j('{ $.user = "*" }', {"user": "x"})
    assert not j('{ $.user = "*" }', {"other": "x"})


def test_json_wildcard_does_not_treat_regex_chars_specially():
    assert j('{ $.p = "a.c*" }', {"p": "a.cde"})
    assert not j('{ $.p = "a.c*" }', {"p": "abcde"})


@pytest.mark.parametrize(
    "pattern,value,expected",
    [
        ("{ $.n = 5 }", 5, True),
        ("{ $.n = 5 }", 5.0, True),
        ("{ $.n = 5 }", 6, False),
        ("{ $.n != 5 }", 6, True),
        ("{ $.n != 5 }", 5, False),
        ("{ $.n > 75 }", 76, True),
        ("{ $.n > 75 }", 75, False),
        ("{ $.n >= 75 }", 75, True),
        ("{ $.n < 0 }", -1, True),
        ("{ $.n < 0 }", 0, False),
        ("{ $.n <= 500 }", 500, True),
        ("{ $.n <= 500 }", 500.5, False),
        ("{ $.n > 1e3 }", 1001, True),
        ("{ $.n = -2.5 }", -2.5, True),
    ],
)
def test_json_numeric_comparisons(pattern, value, expected):
    assert j(pattern, {"n": value}) is expected


def test_json_numeric_comparison_ignores_non_numbers():
    assert not j("{ $.n > 5 }", {"n": "10"})
    assert not j("{ $.n > 5 }", {"n": True})
    assert not j("{ $.n = 1 }", {"n": True})
    assert not j("{ $.n > 5 }", {})


def test_json_string_does_not_equal_number():
    assert not j('{ $.status = "200" }', {"status": 200})
    assert j('{ $.status = "200" }', {"status": "200"})


def test_json_is_null():
    assert j("{ $.err IS NULL }", {"err": None})
    assert not j("{ $.err IS NULL }", {"err": "x"})
    assert not j("{ $.err IS NULL }", {})


def test_json_is_true_false():
    assert j("{ $.ok IS TRUE }", {"ok": True})
    assert not j("{ $.ok IS TRUE }", {"ok": False})
    assert not j("{ $.ok IS TRUE }", {"ok": 1})
    assert j("{ $.ok IS FALSE }", {"ok": False})
    assert not j("{ $.ok IS FALSE }", {"ok": None})


def test_json_not_exists():
    assert j("{ $.missing NOT EXISTS }", {"other": 1})
    assert not j("{ $.missing NOT EXISTS }", {"missing": None})
    assert j("{ $.a.b NOT EXISTS }", {"a": 1})


def test_json_array_index():
    doc = {"arr": ["x", "y"], "users": [{"email": "a@b.c"}], "m": [[1, 2], [3, 4]]}
    assert j('{ $.arr[0] = "x" }', doc)
    assert j('{ $.arr[1] = "y" }', doc)
    assert not j('{ $.arr[2] = "y" }', doc)
    assert j('{ $.users[0].email = "a@b.c" }', doc)
    assert j("{ $.m[1][0] = 3 }", doc)
    assert j("{ $.arr[5] NOT EXISTS }", doc)


def test_json_top_level_array():
    assert j("{ $[1] = 2 }", [1, 2])


def test_json_and_or():
    doc = {"user": {"id": 1}, "users": [{"email": "John.Doe@example.com"}], "n": 3}
    assert j('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', doc)
    assert not j('{ $.user.id = 2 && $.n = 3 }', doc)
    assert j('{ $.user.id = 2 || $.n = 3 }', doc)
    assert not j('{ $.user.id = 2 || $.n = 4 }', doc)


def test_json_precedence_and_parentheses():
    doc = {"a": 1, "b": 2, "c": 3}
    # && binds tighter than ||
    assert j("{ $.a = 9 && $.b = 9 || $.c = 3 }", doc)
    assert not j("{ $.a = 9 && ($.b = 9 || $.c = 3) }", doc)
    assert j("{ (($.a = 1)) }", doc)
    assert j("{ ($.a = 1 || $.a = 2) && ($.b = 2 && $.c > 2) }", doc)


def test_json_regex_value():
    assert j("{ $.message = %address already in use% }", {"message": "bind: address already in use"})
    assert j("{ $.code = %^5[0-9]+$% }", {"code": "503"})
    assert not j("{ $.code = %^5[0-9]+$% }", {"code": "404"})
    assert j("{ $.code != %^5% }", {"code": "404"})


def test_json_message_not_json_never_matches():
    assert not m('{ $.a = "x" }', "a = x")
    assert not m("{ $.a NOT EXISTS }", "plain text")
    assert not m("{ $.a NOT EXISTS }", '"just a string"')
    assert not m("{ $.a NOT EXISTS }", "{broken json")


def test_json_whitespace_insensitive():
    assert j('{$.a="x"}', {"a": "x"})
    assert j('  {   $.a   =   "x"   }  ', {"a": "x"})


def test_json_selector_with_dash_and_underscore():
    assert j('{ $.user-agent = "curl*" && $.req_id = 7 }', {"user-agent": "curl/8", "req_id": 7})


def test_json_value_with_special_chars_quoted():
    assert j('{ $.msg = "a && b || (c)" }', {"msg": "a && b || (c)"})


# ------------------------------------------------- space-delimited patterns

ACCESS = '127.0.0.1 frank admin [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 404 1534'
SEVEN = "[ip, user, username, timestamp, request, status_code, bytes]"


def test_delimited_names_only_matches_field_count():
    assert m(SEVEN, ACCESS)
    assert not m(SEVEN, ACCESS + " extra")
    assert not m("[a, b]", "one")


def test_delimited_quoted_and_bracketed_fields_are_single_fields():
    assert m('[ip, user, username, timestamp, request = "GET /apache_pb.gif HTTP/1.0", status, bytes]', ACCESS)
    assert m("[ip, user, username, timestamp = 10/Oct/2000*, ...]", ACCESS)


def test_delimited_equality_and_wildcard():
    assert m("[ip, user, username, timestamp, request, status_code = 404, bytes]", ACCESS)
    assert m("[ip, user, username, timestamp, request, status_code = 4*, bytes]", ACCESS)
    assert not m("[ip, user, username, timestamp, request, status_code = 5*, bytes]", ACCESS)
    assert m('[ip, user, username, timestamp, request = "*gif*", status_code, bytes]', ACCESS)


def test_delimited_no_spaces_around_operator():
    assert m("[ip, user=frank, ...]", ACCESS)
    assert not m("[ip, user=bob, ...]", ACCESS)


def test_delimited_not_equal():
    assert m("[ip, user, username, timestamp, request, status_code != 200, bytes]", ACCESS)
    assert not m("[ip, user, username, timestamp, request, status_code != 404, bytes]", ACCESS)
    assert m("[ip, user != bob*, ...]", ACCESS)


def test_delimited_numeric_comparisons():
    assert m("[..., status >= 400, size > 1000]", ACCESS)
    assert not m("[..., status >= 500, size]", ACCESS)
    assert m("[..., status, size < 2000]", ACCESS)
    assert not m("[..., status, size <= 1533]", ACCESS)
    assert not m("[..., request > 5, status, size]", ACCESS)  # request is not numeric


def test_delimited_numeric_comparison_on_non_number_is_false():
    assert not m("[a, b > 1]", "x abc")
    assert m("[a, b != 1]", "x abc")


def test_delimited_ellipsis():
    assert m("[ip, ...]", ACCESS)
    assert m("[..., bytes]", ACCESS)
    assert m("[ip, ..., status_code = 404, bytes]", ACCESS)
    assert m("[ip, user, ..., bytes]", "1.1.1.1 bob 5")  # ellipsis may match zero fields
    assert m("[...]", "")
    assert not m("[a, ..., b, c]", "x y")


def test_delimited_multiple_ellipses():
    assert m("[..., level = ERROR, ...]", "2024 host ERROR disk full")
    assert not m("[..., level = ERROR, ...]", "2024 host WARN disk full")


def test_delimited_and_or_in_field():
    p = "[ip, user, username, timestamp, request, status_code = 4* || status_code = 5*, bytes]"
    assert m(p, ACCESS)
    assert m(p, ACCESS.replace(" 404 ", " 503 "))
    assert not m(p, ACCESS.replace(" 404 ", " 200 "))
    p2 = "[..., status_code >= 400 && status_code < 500, bytes]"
    assert m(p2, ACCESS)
    assert not m(p2, ACCESS.replace(" 404 ", " 500 "))


def test_delimited_condition_referencing_other_field():
    p = "[..., status_code, bytes > 1000 && status_code = 404]"
    assert m(p, ACCESS)
    assert not m(p, ACCESS.replace(" 404 ", " 200 "))


def test_delimited_parentheses():
    p = "[w1, (w2 = a || w2 = b)]"
    assert m(p, "x a")
    assert m(p, "x b")
    assert not m(p, "x c")


def test_delimited_first_word():
    assert m("[w1=ERROR, w2]", "ERROR hello")
    assert not m("[w1=ERROR, w2]", "INFO hello")


def test_delimited_regex():
    assert m("[ip, ..., status = %^4[0-9]+$%, bytes]", ACCESS)
    assert not m("[ip, ..., status = %^5%, bytes]", ACCESS)


def test_delimited_dash_field_name_and_numeric_equality():
    assert m("[req-id, status = 200]", "abc 200.0")
    assert not m("[req-id, status = 200]", "abc OK")


def test_delimited_ellipsis_only_pattern_matches_anything():
    assert m("[...]", "a b c")


def test_delimited_extra_whitespace_in_message():
    assert m("[a, b, c]", "  x   y\tz  ")


def test_delimited_unterminated_quote_in_message_takes_rest():
    assert m("[a, b]", 'x "y z')


# ------------------------------------------------------------ invalid syntax


@pytest.mark.parametrize(
    "pattern",
    [
        "{ $.x = 1",
        "$.x = 1 }",
        "{ $.x = 1 } trailing",
        "{ }",
        "{ $.x = }",
        "{ $.x }",
        "{ $.x == 1 }",
        "{ $.x > abc }",
        '{ $.x < "5" }',
        "{ ($.x = 1 }",
        "{ $.x = 1) }",
        "{ $.x = 1 && }",
        "{ $.x = 1 & $.y = 2 }",
        "{ $.x = 1 | $.y = 2 }",
        "{ x = 1 }",
        "{ $ = 1 }",
        "{ $.x IS MAYBE }",
        "{ $.x IS }",
        "{ $.x EXISTS }",
        '{ $.x = "abc }',
        "{ $.x = %abc }",
        "{ $.x = %[% }",
        "{ $.x = 1 $.y = 2 }",
        "[a, b",
        "a, b]",
        "[a, , b]",
        "[a, b = ]",
        "[a, b = 1 || c = 2]",
        "[a, b > x]",
        "[a, [b]]",
        '[a, b = "x]',
        '"unterminated',
        'ERROR "unterminated',
        "%unterminated",
        "%[%",
        "ERROR }",
        "foo(bar)",
        "?",
        "ERROR -",
        "[..., ... = 5]",
        "[a b]",
        "{ $.a = 1 } { $.b = 2 }",
    ],
)
def test_invalid_patterns(pattern):
    with pytest.raises(InvalidPattern):
        compile_pattern(pattern)


def test_invalid_pattern_has_message():
    with pytest.raises(InvalidPattern, match=r"\S"):
        compile_pattern("{ $.x = }")


def test_an_empty_space_delimited_pattern_matches_everything() -> None:
    # AWS takes "[]" (recorded: PutSubscriptionFilter answers it back as the filter's pattern).
    match = compile_pattern("[]")
    assert match("anything at all") and match("")
