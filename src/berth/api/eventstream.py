"""The AWS event stream encoding (application/vnd.amazon.eventstream), for operations whose
output is a stream of events (StartLiveTail).

A message is: total length and headers length (4 bytes each, big-endian), the CRC32 of those
8 bytes, the headers (name length, name, type 7 = string, value length, value), the payload,
and the CRC32 of all that came before. Pure: no I/O.
"""
from __future__ import annotations

import struct
import zlib
from typing import Any

from .protocol import dumps

_STRING = 7


def message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    encoded = b"".join(
        struct.pack(">B", len(name.encode())) + name.encode()
        + struct.pack(">BH", _STRING, len(value.encode())) + value.encode()
        for name, value in headers)
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return body + struct.pack(">I", zlib.crc32(body))


def initial_response(members: dict[str, Any]) -> bytes:
    """What a JSON protocol's stream begins with: the output's other members."""
    return event("initial-response", members)


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    """One event of the stream: the member of the stream's union named `event_type`."""
    return message([(":event-type", event_type), (":content-type", "application/json"),
                    (":message-type", "event")], dumps(payload))


def exception(exception_type: str, text: str) -> bytes:
    """An error the stream ends with (one of the stream union's error members)."""
    return message([(":exception-type", exception_type),
                    (":content-type", "application/json"), (":message-type", "exception")],
                   dumps({"message": text}))
