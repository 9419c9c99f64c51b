"""What test functions report: they print `PREFIX {json}` lines, read back here from the
function's log group (sandboxes have a private /tmp, so logs are how they tell)."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError


def logged(logs: Any, function: str, prefix: str) -> list[tuple[int, Any]]:
    """(timestamp, parsed JSON) of every `prefix {...}` line the function logged, in time
    order; none while its log group does not exist yet."""
    out: list[tuple[int, Any]] = []
    kw: dict[str, Any] = {"logGroupName": f"/aws/lambda/{function}"}
    for _ in range(50):
        try:
            page = logs.filter_log_events(**kw)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return []
            raise
        out += [(e["timestamp"], json.loads(e["message"][len(prefix) + 1:]))
                for e in page["events"] if e["message"].startswith(prefix + " ")]
        if not page.get("nextToken"):
            break
        kw["nextToken"] = page["nextToken"]
    return sorted(out, key=lambda item: item[0])


def wait_for(fetch: Callable[[], list[Any]], done: Callable[[list[Any]], bool],
             timeout: float = 15) -> list[Any]:
    """What `fetch` answers once `done` says so, or when `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    got = fetch()
    while not done(got) and time.monotonic() < deadline:
        time.sleep(0.2)
        got = fetch()
    return got
