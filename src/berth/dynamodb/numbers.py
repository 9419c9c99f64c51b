"""DynamoDB's Number type: parsing, AWS's limits, the canonical text form and arithmetic.

A Number has up to 38 significant digits and a magnitude between 1E-130 and
9.9999999999999999999999999999999999999E+125 (or is zero). DynamoDB keeps the value, not the
text: "1.0", "01" and "1E0" are all returned as "1"; big and small numbers come back in plain
notation ("1E+3" as "1000"). Arithmetic is exact and its result must fit the same limits.
"""
from __future__ import annotations

import re
from decimal import Context, Decimal

from ..api.errors import ServiceError

MAX_DIGITS = 38
# Exact for every operation on in-range numbers: sums need at most 38 + 256 digits.
EXACT = Context(prec=400, Emin=-999999, Emax=999999)
# The number grammar of DynamoDB (Java's BigDecimal): no spaces, no NaN/Infinity, no "_".
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_LARGEST_EXPONENT = 126     # |x| < 10^126
_SMALLEST_EXPONENT = -130   # |x| >= 10^-130


def invalid(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def parse(text: str) -> Decimal:
    """The value of a Number's text, normalized (no trailing zeros); AWS's error if it is not
    a number or does not fit."""
    if not isinstance(text, str) or not _NUMBER.fullmatch(text):
        raise invalid(f"The parameter cannot be converted to a numeric value: {text}")
    return check(Decimal(text))


def check(value: Decimal) -> Decimal:
    """`value` normalized, if DynamoDB can store it."""
    if not value:
        return Decimal(0)
    value = value.normalize(EXACT)
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    magnitude = len(digits) + exponent     # value = 0.d1d2... × 10^magnitude
    if magnitude > _LARGEST_EXPONENT:
        raise invalid("Number overflow. Attempting to store a number with magnitude larger "
                      "than supported range")
    if magnitude <= _SMALLEST_EXPONENT:
        raise invalid("Number underflow. Attempting to store a number with magnitude smaller "
                      "than supported range")
    if len(digits) > MAX_DIGITS:
        raise invalid("Attempting to store more than 38 significant digits in a Number")
    return value


def text(value: Decimal) -> str:
    """The canonical text of a (normalized) value: plain notation, no trailing zeros."""
    if not value:
        return "0"
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    body = "".join(map(str, digits))
    if exponent >= 0:
        body += "0" * exponent
    elif -exponent >= len(body):
        body = "0." + "0" * (-exponent - len(body)) + body
    else:
        body = body[:exponent] + "." + body[exponent:]
    return "-" + body if sign else body


def normalize(raw: str) -> str:
    """The canonical text of a Number given as text (what DynamoDB stores and returns)."""
    # The common case, a plain integer without a leading zero, is already canonical.
    if raw.isdigit() and len(raw) <= MAX_DIGITS and raw[0] != "0":
        return raw
    return text(parse(raw))


def value(canonical: str) -> Decimal:
    """The Decimal of a stored (canonical) Number."""
    return Decimal(canonical)


def add(a: str, b: str) -> str:
    return text(check(EXACT.add(Decimal(a), Decimal(b))))


def subtract(a: str, b: str) -> str:
    return text(check(EXACT.subtract(Decimal(a), Decimal(b))))


def significant_digits(canonical: str) -> int:
    """How many significant digits a canonical Number has (for item sizes)."""
    digits = canonical.lstrip("-").replace(".", "").strip("0")
    return len(digits) or 1
