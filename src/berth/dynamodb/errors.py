"""DynamoDB's exceptions, worded as DynamoDB words them."""
from __future__ import annotations

from typing import Any

from ..api.errors import ServiceError
from .numbers import invalid

__all__ = ["invalid", "table_not_found", "resource_not_found", "in_use", "condition_failed",
           "key_mismatch"]


def resource_not_found() -> ServiceError:
    """What item operations answer for a table that does not exist."""
    return ServiceError("ResourceNotFoundException", "Requested resource not found")


def table_not_found(name: str) -> ServiceError:
    """What table operations (Describe/Update/DeleteTable, ...) answer."""
    return ServiceError("ResourceNotFoundException",
                        f"Requested resource not found: Table: {name} not found")


def in_use(message: str) -> ServiceError:
    return ServiceError("ResourceInUseException", message)


def condition_failed(item: dict[str, Any] | None = None) -> ServiceError:
    """ConditionalCheckFailedException, with the item as it was when the caller asked for it
    (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""
    fields = {"Item": item} if item is not None else {}
    return ServiceError("ConditionalCheckFailedException", "The conditional request failed",
                        **fields)


def key_mismatch() -> ServiceError:
    return invalid("The provided key element does not match the schema")
