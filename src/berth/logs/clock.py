"""The one clock of the Logs service, in epoch milliseconds."""
from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
