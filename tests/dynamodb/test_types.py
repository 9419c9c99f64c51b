"""DynamoDB's type system, property-tested against the documented rules: Numbers (38
significant digits, the documented range, the value kept rather than the text), the sort order
of key values (numbers numerically, strings and binaries bytewise) through berth's sortable key
bytes, and item sizes."""
from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from berth.api.errors import ServiceError
from berth.dynamodb import attributes, keycodec, numbers

# Numbers DynamoDB stores: up to 38 significant digits, magnitude in [1E-130, 1E126).
digits = st.integers(min_value=1, max_value=10 ** 38 - 1)
exponents = st.integers(min_value=-168, max_value=125)


@st.composite
def stored_numbers(draw: st.DrawFn) -> Decimal:
    if draw(st.booleans()) and draw(st.booleans()):
        return Decimal(0)
    mantissa = draw(digits)
    exponent = draw(exponents)
    value = Decimal(mantissa).scaleb(exponent)
    adjusted = value.adjusted()     # value = d.ddd × 10^adjusted
    if adjusted > 125 or adjusted < -130:
        value = Decimal(mantissa).scaleb(-len(str(mantissa)) + 1)   # 1 <= |value| < 10
    return -value if draw(st.booleans()) else value


def _text_forms(value: Decimal) -> list[str]:
    """Ways a client may write one number."""
    forms = [str(value), f"{value:E}", f"{value:f}"]
    if value == value.to_integral_value() and abs(value) < 10 ** 30:
        forms.append(str(int(value)).replace("-", "-00") if value < 0 else "00" + str(int(value)))
    return forms


@given(stored_numbers())
def test_a_number_keeps_its_value_and_has_one_text(value: Decimal) -> None:
    canonical = {numbers.normalize(form) for form in _text_forms(value)}
    assert len(canonical) == 1
    text = canonical.pop()
    assert Decimal(text) == value
    assert "E" not in text and "e" not in text          # plain notation, as DynamoDB answers
    if "." in text:
        assert not text.endswith("0")                  # no trailing zeros
    assert text != "-0"


@given(st.integers(min_value=10 ** 38, max_value=10 ** 45))
def test_more_than_38_significant_digits_is_refused(big: int) -> None:
    text = str(big)
    if len(text.rstrip("0")) <= 38:
        assert numbers.normalize(text) == text          # trailing zeros are not significant
        return
    with pytest.raises(ServiceError, match="more than 38 significant digits"):
        numbers.normalize(text)


@pytest.mark.parametrize("text, message", [
    ("1E126", "Number overflow"), ("-1E126", "Number overflow"),
    ("1E-131", "Number underflow"), ("abc", "cannot be converted to a numeric value: abc"),
    ("NaN", "cannot be converted"), ("Infinity", "cannot be converted"), (" 1", "cannot be"),
    ("1_000", "cannot be converted"), ("", "cannot be converted"),
])
def test_numbers_out_of_range_or_malformed(text: str, message: str) -> None:
    with pytest.raises(ServiceError, match=message) as err:
        numbers.normalize(text)
    assert err.value.code == "ValidationException"


@pytest.mark.parametrize("text, canonical", [
    ("00042", "42"), ("-0", "0"), ("1.5E2", "150"), ("1.0", "1"), ("1E+3", "1000"),
    ("9.9999999999999999999999999999999999999E+125", "99999999999999999999999999999999999999"
     + "0" * 88), ("1E-130", "0." + "0" * 129 + "1"), (".5", "0.5"), ("5.", "5"),
    ("+7", "7"), ("-0.000", "0"),
])
def test_canonical_text_examples(text: str, canonical: str) -> None:
    assert numbers.normalize(text) == canonical


@given(stored_numbers(), stored_numbers())
def test_number_keys_sort_numerically(a: Decimal, b: Decimal) -> None:
    ea = keycodec.encode("N", numbers.normalize(str(a)))
    eb = keycodec.encode("N", numbers.normalize(str(b)))
    assert (ea < eb) == (a < b)
    assert (ea == eb) == (a == b)
    assert Decimal(keycodec.decode("N", ea)) == a


@given(st.text(min_size=1), st.text(min_size=1))
def test_string_keys_sort_by_utf8_bytes(a: str, b: str) -> None:
    ea, eb = keycodec.encode("S", a), keycodec.encode("S", b)
    assert (ea < eb) == (a.encode("utf-8", "surrogatepass") < b.encode("utf-8", "surrogatepass"))
    assert keycodec.decode("S", ea) == a


@given(st.binary(min_size=1), st.binary(min_size=1))
def test_binary_keys_sort_bytewise(a: bytes, b: bytes) -> None:
    wa, wb = base64.b64encode(a).decode(), base64.b64encode(b).decode()
    assert (keycodec.encode("B", wa) < keycodec.encode("B", wb)) == (a < b)
    assert keycodec.decode("B", keycodec.encode("B", wa)) == wa


@given(st.binary(max_size=8), st.binary(max_size=8))
def test_prefix_end_bounds_every_string_with_the_prefix(prefix: bytes, tail: bytes) -> None:
    end = keycodec.prefix_end(prefix)
    if end is None:
        assert set(prefix) <= {0xFF}
    else:
        assert prefix + tail < end
        assert end > prefix


# ------------------------------------------------------------------------------------------
# Sizes (Developer Guide, "Item sizes and formats").


@st.composite
def values(draw: st.DrawFn, depth: int = 0) -> dict:
    kinds = ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"] + (["L", "M"] if depth < 3 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "S":
        return {"S": draw(st.text(max_size=20))}
    if kind == "N":
        return {"N": numbers.normalize(str(draw(stored_numbers())))}
    if kind == "B":
        return {"B": base64.b64encode(draw(st.binary(max_size=20))).decode()}
    if kind == "BOOL":
        return {"BOOL": draw(st.booleans())}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "SS":
        return {"SS": sorted(draw(st.sets(st.text(max_size=5), min_size=1, max_size=4)))}
    if kind == "NS":
        found = draw(st.sets(stored_numbers(), min_size=1, max_size=4))
        return {"NS": sorted({numbers.normalize(str(n)) for n in found})}
    if kind == "BS":
        found = draw(st.sets(st.binary(max_size=5), min_size=1, max_size=4))
        return {"BS": [base64.b64encode(b).decode() for b in sorted(found)]}
    if kind == "L":
        return {"L": draw(st.lists(values(depth + 1), max_size=3))}
    return {"M": draw(st.dictionaries(st.text(max_size=4), values(depth + 1), max_size=3))}


def _documented_size(value: dict) -> int:
    (kind, raw), = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        significant = raw.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(significant) + 1) // 2 + 1
    if kind == "B":
        return len(base64.b64decode(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(_documented_size(v) + 1 for v in raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _documented_size(v) + 1 for k, v in raw.items())
    element = kind[0]
    return sum(_documented_size({element: e}) for e in raw)


@given(st.dictionaries(st.text(min_size=1, max_size=6), values(), max_size=5))
def test_item_size_follows_the_documented_formula(item: dict) -> None:
    expected = sum(len(k.encode()) + _documented_size(v) for k, v in item.items())
    assert attributes.item_size(item) == expected


def test_stream_record_sizes_of_the_developer_guide_example() -> None:
    # The guide's stream example: Keys {Id: 101} and NewImage {Message: "New item!", Id: 101}
    # make a 26-byte INSERT record.
    keys = {"Id": {"N": "101"}}
    new = {"Message": {"S": "New item!"}, "Id": {"N": "101"}}
    assert attributes.item_size(keys) + attributes.item_size(new) == 26


# ------------------------------------------------------------------------------------------
# Checking values on the way in.


@pytest.mark.parametrize("value, message", [
    ({}, "Supplied AttributeValue is empty"),
    ({"S": "a", "N": "1"}, "more than one datatypes"),
    ({"SS": []}, "An string set  may not be empty"),
    ({"NS": []}, "An number set  may not be empty"),
    ({"BS": []}, "An binary set  may not be empty"),
    ({"SS": ["a", "a"]}, r"Input collection \[a, a\] contains duplicates"),
    ({"NS": ["1", "1.0"]}, "contains duplicates"),
    ({"NULL": False}, "Null attribute value types must have the value of true"),
    ({"N": "x"}, "cannot be converted"),
])
def test_values_refused_on_the_way_in(value: dict, message: str) -> None:
    with pytest.raises(ServiceError, match=message):
        attributes.ingest(value)


def test_values_made_canonical_on_the_way_in() -> None:
    raw = {"n": {"N": "01.50"}, "b": {"B": b"\x00\xff"}, "ns": {"NS": ["1E1", "2.0"]},
           "l": {"L": [{"N": "-0"}, {"BS": [b"x"]}]}, "m": {"M": {"e": {"S": ""}}}}
    assert attributes.ingest_item(raw) == {
        "n": {"N": "1.5"}, "b": {"B": "AP8="}, "ns": {"NS": ["10", "2"]},
        "l": {"L": [{"N": "0"}, {"BS": ["eA=="]}]}, "m": {"M": {"e": {"S": ""}}}}


def test_nesting_beyond_32_levels_is_refused() -> None:
    value: dict = {"S": "leaf"}
    for _ in range(33):
        value = {"L": [value]}
    with pytest.raises(ServiceError, match="Nesting Levels have exceeded supported limits"):
        attributes.ingest(value)


@settings(max_examples=200)
@given(values(), values())
def test_equality_ignores_set_order_and_number_text(a: dict, b: dict) -> None:
    assert attributes.equal(a, a)
    reordered = {k: (list(reversed(v)) if k in ("SS", "NS", "BS") else v) for k, v in a.items()}
    assert attributes.equal(a, reordered)
    if attributes.kind_of(a) != attributes.kind_of(b):
        assert not attributes.equal(a, b)
