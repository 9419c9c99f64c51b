"""DescribeLogGroups' nextToken: pages follow each other, and a token berth never handed
out is refused with the Logs error rather than failing inside the store."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from berth.api.errors import ServiceError


def test_pages_follow_each_other_and_forged_tokens_are_refused(logs: Any) -> None:
    for i in range(5):
        logs.create_log_group(logGroupName=f"/t/{i}")
    first = logs.describe_log_groups(logGroupNamePrefix="/t/", limit=3)
    rest = logs.describe_log_groups(logGroupNamePrefix="/t/", limit=3,
                                    nextToken=first["nextToken"])
    assert [g["logGroupName"] for g in first["logGroups"] + rest["logGroups"]] == [
        f"/t/{i}" for i in range(5)]
    assert "nextToken" not in rest
    for forged in ([1, 2], {"name": "/t/1"}, 7):
        token = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        with pytest.raises(ServiceError) as info:
            logs.describe_log_groups(nextToken=token)
        assert (info.value.code, info.value.message) == (
            "InvalidParameterException", "The specified nextToken is invalid.")
