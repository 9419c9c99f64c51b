"""What item operations share in reading a request: its placeholders, its expressions, the
legacy parameters DynamoDB refuses to mix with them, ReturnValues."""
from __future__ import annotations

from typing import Any

from .attributes import MAX_ITEM_SIZE, Item, item_size
from .errors import invalid
from .expressions import Path, Placeholders, parse_condition, parse_projection
from .catalog import Table
from .expressions.syntax import Condition, Update

_LEGACY = ("AttributesToGet", "Expected", "AttributeUpdates", "KeyConditions", "QueryFilter",
           "ScanFilter", "ConditionalOperator")
_EXPRESSIONS = ("ProjectionExpression", "ConditionExpression", "UpdateExpression",
                "KeyConditionExpression", "FilterExpression")


def placeholders(req: dict[str, Any]) -> Placeholders:
    """The request's placeholders, after DynamoDB's checks on mixing and presence."""
    legacy = [k for k in _LEGACY if k in req]
    expressions = [k for k in _EXPRESSIONS if k in req]
    if legacy and expressions:
        raise invalid("Can not use both expression and non-expression parameters in the same "
                      f"request: Non-expression parameters: {{{', '.join(legacy)}}} "
                      f"Expression parameters: {{{', '.join(expressions)}}}")
    for unsupported in ("Expected", "AttributeUpdates", "KeyConditions", "QueryFilter",
                        "ScanFilter", "ConditionalOperator"):
        if unsupported in req:
            raise invalid(f"The legacy parameter {unsupported} is not supported by berth; "
                          "use the expression parameters instead")
    names = req.get("ExpressionAttributeNames")
    values = req.get("ExpressionAttributeValues")
    if not expressions:
        if names is not None:
            raise invalid("ExpressionAttributeNames can only be specified when using "
                          "expressions")
        if values is not None:
            raise invalid("ExpressionAttributeValues can only be specified when using "
                          "expressions")
    return Placeholders(names, values)


def condition(req: dict[str, Any], ph: Placeholders, member: str = "ConditionExpression"
              ) -> Condition | None:
    source = req.get(member)
    return parse_condition(source, ph, member) if source is not None else None


def projection(req: dict[str, Any], ph: Placeholders) -> tuple[Path, ...] | None:
    """ProjectionExpression's paths, or AttributesToGet's names as paths."""
    if "ProjectionExpression" in req:
        return parse_projection(req["ProjectionExpression"], ph)
    names = req.get("AttributesToGet")
    if names is not None:
        if len(set(names)) != len(names):
            raise invalid("One or more parameter values were invalid: Duplicate value in "
                          "attribute name: " + next(n for n in names if names.count(n) > 1))
        return tuple(Path((n,)) for n in names)
    return None


def return_values(req: dict[str, Any], allowed: tuple[str, ...]) -> str:
    value = req.get("ReturnValues", "NONE")
    if value not in allowed:
        raise invalid(f"ReturnValues can only be {' or '.join(allowed)}")
    return str(value)


def return_on_failure(req: dict[str, Any]) -> bool:
    return req.get("ReturnValuesOnConditionCheckFailure", "NONE") == "ALL_OLD"


def check_size(item: Item, updating: bool = False) -> int:
    """The item's size, after AWS's error if it is over 400 KB."""
    size = item_size(item)
    if size > MAX_ITEM_SIZE:
        raise invalid("Item size to update has exceeded the maximum allowed size" if updating
                      else "Item size has exceeded the maximum allowed size")
    return size


def check_keys_untouched(update: Update | None, table: Table) -> None:
    """AWS's error for an update of a key attribute."""
    for action in update.actions if update is not None else ():
        if action.path.steps[0] in table.key_names:
            raise invalid("One or more parameter values were invalid: Cannot update attribute "
                          f"{action.path.steps[0]}. This attribute is part of the key")
