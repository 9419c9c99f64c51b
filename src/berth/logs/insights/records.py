"""A log event as Logs Insights sees it: a record of fields.

Every event has the system fields (@timestamp, @message, @logStream, @log, @ingestionTime);
a JSON message also has its members as fields (nested ones joined with dots, list items by
index: `user.id`, `tags.0`), and a Lambda platform line (START, END, REPORT) has @type,
@requestId, @duration, @billedDuration, @memorySize, @maxMemoryUsed and @initDuration.
Fields found in the message are extracted only when a query first asks for one.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterator

from .values import Stamp

SYSTEM_FIELDS = ("@timestamp", "@message", "@logStream", "@log", "@ingestionTime")
MAX_DEPTH = 10

_REPORT = re.compile(r"(Duration|Billed Duration|Memory Size|Max Memory Used|Init Duration):"
                     r" ([0-9.]+) (ms|MB)")
_REPORT_FIELDS = {"Duration": "@duration", "Billed Duration": "@billedDuration",
                  "Memory Size": "@memorySize", "Max Memory Used": "@maxMemoryUsed",
                  "Init Duration": "@initDuration"}
_PLATFORM = re.compile(r"(START|END|REPORT) RequestId: ([0-9a-fA-F-]+)")


class Record(dict):  # type: ignore[type-arg]
    """Field name -> value. `event` identifies the stored event it came from (for @ptr and
    GetLogRecord); None for the rows `stats` makes."""

    __slots__ = ("event", "_extracted", "_lambda")

    def __init__(self, fields: dict[str, Any], event: Any = None,
                 lambda_group: bool = False) -> None:
        super().__init__(fields)
        self.event = event
        self._extracted = event is None
        self._lambda = lambda_group

    def field(self, name: str) -> Any:
        """The field's value, or None if the event has no such field."""
        value = self.get(name)
        if value is None and not self._extracted:
            self.extract()
            value = self.get(name)
        return value

    def extract(self) -> None:
        """Add the fields found in the message (JSON members, Lambda platform fields)."""
        if self._extracted:
            return
        self._extracted = True
        message = self.get("@message") or ""
        found = dict(message_fields(message, self._lambda))
        for key, value in found.items():
            self.setdefault(key, value)


def event_record(group_label: str, stream: str, timestamp: int, ingested: int, message: str,
                 event: Any, lambda_group: bool) -> Record:
    return Record({"@timestamp": Stamp(timestamp), "@message": message, "@logStream": stream,
                   "@log": group_label, "@ingestionTime": Stamp(ingested)},
                  event, lambda_group)


def message_fields(message: str, lambda_group: bool = False) -> Iterator[tuple[str, Any]]:
    """The fields Insights discovers in a message."""
    stripped = message.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(message)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            yield from _flatten(doc, "", 0)
            return
    if lambda_group:
        m = _PLATFORM.match(message)
        if m:
            yield "@type", m.group(1)
            yield "@requestId", m.group(2)
            for name, amount, unit in _REPORT.findall(message):
                value = float(amount)
                # Insights gives memory in bytes (1 MB = 10^6 bytes), durations in ms.
                yield _REPORT_FIELDS[name], value * 1_000_000 if unit == "MB" else value


def _flatten(value: Any, prefix: str, depth: int) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and depth < MAX_DEPTH:
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key), depth + 1)
    elif isinstance(value, list) and depth < MAX_DEPTH:
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}.{i}" if prefix else str(i), depth + 1)
    elif isinstance(value, (dict, list)):
        yield prefix, json.dumps(value, separators=(",", ":"))
    else:
        yield prefix, value
