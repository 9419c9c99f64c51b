"""ConsumedCapacity, as DynamoDB counts it, for requests that ask (ReturnConsumedCapacity).

A write costs one unit per KB of the larger of the item before and after (at least one), a
read one unit per 4 KB (half of it when eventually consistent), both twice in a transaction.
Nothing is throttled: berth only reports.
"""
from __future__ import annotations

import math
from typing import Any

WRITE_UNIT = 1024
READ_UNIT = 4096


def write_units(*sizes: int) -> float:
    return float(max(1, math.ceil(max(sizes, default=0) / WRITE_UNIT)))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return float(units if consistent else units / 2)


def wanted(req: dict[str, Any]) -> bool:
    return req.get("ReturnConsumedCapacity", "NONE") in ("TOTAL", "INDEXES")


def report(req: dict[str, Any], table: str, units: float, *, write: bool) -> dict[str, Any]:
    """The ConsumedCapacity member of an answer (empty when the request did not ask)."""
    if not wanted(req):
        return {}
    shown: dict[str, Any] = {"TableName": table, "CapacityUnits": units,
                             "WriteCapacityUnits" if write else "ReadCapacityUnits": units}
    if req["ReturnConsumedCapacity"] == "INDEXES":
        shown["Table"] = {"CapacityUnits": units,
                          "WriteCapacityUnits" if write else "ReadCapacityUnits": units}
    return {"ConsumedCapacity": shown}


def report_many(req: dict[str, Any], units: dict[str, float], *, write: bool
                ) -> dict[str, Any]:
    """ConsumedCapacity of a batch or transaction: one entry per table."""
    if not wanted(req):
        return {}
    return {"ConsumedCapacity": [report(req, table, n, write=write)["ConsumedCapacity"]
                                 for table, n in units.items()]}
