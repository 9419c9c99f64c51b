"""Offer filters, as Mesos's allocator keeps them for a framework: resources declined (or left
unused by a launch) with `refuse_seconds` are not offered again from that agent until the time
is up, unless the agent now has more than was refused. reviveOffers clears every filter."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .resources import Resources

DEFAULT_REFUSE_SECONDS = 5.0            # Mesos's default Filters.refuse_seconds
MAX_REFUSE_SECONDS = 365 * 24 * 3600.0  # Mesos's cap


def refuse_seconds(filters: Mapping[str, Any] | None) -> float:
    """The filter's duration; Mesos takes a missing, negative or absurd value as the default."""
    value = (filters or {}).get("refuse_seconds", DEFAULT_REFUSE_SECONDS)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return DEFAULT_REFUSE_SECONDS
    if math.isnan(seconds) or seconds < 0 or seconds > MAX_REFUSE_SECONDS:
        return DEFAULT_REFUSE_SECONDS
    return seconds


class OfferFilters:
    def __init__(self) -> None:
        self._refused: dict[str, list[tuple[float, Resources]]] = {}

    def refuse(self, agent: str, resources: Resources, seconds: float, now: float) -> None:
        if seconds > 0:
            self._refused.setdefault(agent, []).append((now + seconds, resources))

    def allows(self, agent: str, resources: Resources, now: float) -> bool:
        """Whether `resources` of `agent` may be offered at `now`."""
        live = [(until, r) for until, r in self._refused.get(agent, ()) if until > now]
        if live:
            self._refused[agent] = live
        else:
            self._refused.pop(agent, None)
        return not any(r.contains(resources) for _, r in live)

    def next_expiry(self) -> float | None:
        """When the soonest filter ends (the driver offers again then)."""
        ends = [until for entries in self._refused.values() for until, _ in entries]
        return min(ends) if ends else None

    def clear(self) -> None:
        self._refused.clear()
