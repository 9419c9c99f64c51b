"""The one clock of the ECS control plane: epoch seconds as floats (the wire form of ECS
timestamps; boto3 reads them back as datetimes)."""
from __future__ import annotations

import time


def now() -> float:
    return round(time.time(), 3)
