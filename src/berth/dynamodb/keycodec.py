"""Key values as bytes whose bytewise order is DynamoDB's order, so the database's own indexes
sort items by range key (and index keys) and Query never sorts in Python.

A key attribute has one type per table (S, N or B), so a column holds values of one type and
needs no type tag: S is its UTF-8 (DynamoDB orders strings by UTF-8 bytes), B its bytes, and N
an order-preserving decimal form (below). SQLite compares BLOBs and PostgreSQL compares bytea
with memcmp, the order these forms are made for.
"""
from __future__ import annotations

import base64
import hashlib
from decimal import Decimal

from . import numbers

# Number = 0.d1d2d3... × 10^e with d1 != 0 (e from -129 to 126). Encoded as a sign byte, then
# e + 129 in one byte, then the digits two by two (0-99 a byte, a last odd digit padded with a
# 0): for positive numbers a longer mantissa with the same prefix is larger, as bytes compare.
# Negative numbers invert the exponent byte and the digit bytes (254 - pair, never 255) and end
# with 255, so that of two negatives with the same prefix the longer is the smaller.
_NEGATIVE, _ZERO, _POSITIVE = 0x40, 0x80, 0xC0
_EXPONENT_BIAS = 129
_NEGATIVE_END = 0xFF


def encode(kind: str, wire: str) -> bytes:
    """The sortable bytes of a key value in wire form (S text, N canonical text, B base64)."""
    if kind == "S":
        return wire.encode()
    if kind == "B":
        return base64.b64decode(wire)
    return encode_number(numbers.value(wire))


def decode(kind: str, data: bytes) -> str:
    """The wire form of a key value from its sortable bytes."""
    if kind == "S":
        return data.decode()
    if kind == "B":
        return base64.b64encode(data).decode()
    return numbers.text(decode_number(data))


def encode_number(value: Decimal) -> bytes:
    if not value:
        return bytes((_ZERO,))
    sign, digits, exponent = value.normalize(numbers.EXACT).as_tuple()
    assert isinstance(exponent, int)
    e = len(digits) + exponent
    padded = digits + (0,) if len(digits) % 2 else digits
    pairs = [padded[i] * 10 + padded[i + 1] for i in range(0, len(padded), 2)]
    if not sign:
        return bytes((_POSITIVE, e + _EXPONENT_BIAS, *pairs))
    return bytes((_NEGATIVE, 255 - (e + _EXPONENT_BIAS), *(254 - p for p in pairs),
                  _NEGATIVE_END))


def decode_number(data: bytes) -> Decimal:
    head = data[0]
    if head == _ZERO:
        return Decimal(0)
    if head == _POSITIVE:
        e, pairs = data[1] - _EXPONENT_BIAS, list(data[2:])
    else:
        e, pairs = 255 - data[1] - _EXPONENT_BIAS, [254 - b for b in data[2:-1]]
    digits = "".join(f"{p:02d}" for p in pairs).rstrip("0")
    return Decimal(f"{'-' if head == _NEGATIVE else ''}0.{digits}E{e}").normalize(numbers.EXACT)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix` (None: no
    such string, the prefix being all 0xFF)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes((trimmed[-1] + 1,))


def partition_hash(partition_key: bytes) -> int:
    """Where a partition key falls on the scan ring: 32 bits of its MD5, as DynamoDB spreads
    partition keys by hash. Scans walk the ring in order, and parallel scan segments are
    slices of it."""
    return int.from_bytes(hashlib.md5(partition_key).digest()[:4], "big")


RING = 1 << 32
