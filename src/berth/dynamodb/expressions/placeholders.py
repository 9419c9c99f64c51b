"""ExpressionAttributeNames and ExpressionAttributeValues of one request: checked once, looked
up by every expression of the request, and checked at the end for entries no expression used
(which DynamoDB refuses)."""
from __future__ import annotations

import re
from typing import Any

from ...api.errors import ServiceError
from .. import attributes
from ..attributes import AttributeValue
from ..numbers import invalid

_NAME_KEY = re.compile(r"#[A-Za-z0-9_]+")
_VALUE_KEY = re.compile(r":[A-Za-z0-9_]+")


class Placeholders:
    def __init__(self, names: dict[str, str] | None, values: dict[str, Any] | None) -> None:
        if names is not None and not names:
            raise invalid("ExpressionAttributeNames must not be empty")
        if values is not None and not values:
            raise invalid("ExpressionAttributeValues must not be empty")
        for key in names or ():
            if not _NAME_KEY.fullmatch(key):
                raise invalid("ExpressionAttributeNames contains invalid key: Syntax error; "
                              f'key: "{key}"')
        self.names = names or {}
        self.values: dict[str, AttributeValue] = {}
        for key, raw in (values or {}).items():
            if not _VALUE_KEY.fullmatch(key):
                raise invalid("ExpressionAttributeValues contains invalid key: Syntax error; "
                              f'key: "{key}"')
            try:
                self.values[key] = attributes.ingest(raw)
            except ServiceError as exc:
                raise invalid(f"ExpressionAttributeValues contains invalid value: "
                              f"{exc.message} for key {key}") from None
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()

    @property
    def given(self) -> bool:
        return bool(self.names or self.values)

    def check_all_used(self) -> None:
        unused = [k for k in self.names if k not in self.used_names]
        if unused:
            raise invalid("Value provided in ExpressionAttributeNames unused in expressions: "
                          f"keys: {{{', '.join(unused)}}}")
        unused = [k for k in self.values if k not in self.used_values]
        if unused:
            raise invalid("Value provided in ExpressionAttributeValues unused in expressions: "
                          f"keys: {{{', '.join(unused)}}}")


