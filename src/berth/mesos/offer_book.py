"""The offers a framework holds: at most one outstanding offer per agent, the filters its
declines set, and whether it suppressed offers. Pure bookkeeping: the driver reads the
instances and calls the scheduler; this decides what is offered and what is rescinded."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from .filters import OfferFilters
from .messages import Message
from .offers import Instance, offer
from .resources import Resources


@dataclass(frozen=True)
class Held:
    id: str
    instance: Instance          # as it was when offered

    @property
    def agent(self) -> str:
        return self.instance.arn

    @property
    def resources(self) -> Resources:
        return self.instance.remaining


class InvalidOffers(Exception):
    """Offers that cannot be accepted together (Mesos: TASK_LOST, REASON_INVALID_OFFERS)."""


class OfferBook:
    def __init__(self, framework_id: str) -> None:
        self.framework_id = framework_id
        self.filters = OfferFilters()
        self.suppressed = False
        self._held: dict[str, Held] = {}
        self._by_agent: dict[str, str] = {}
        self._ids = itertools.count(1)
        # An agent whose offers were taken is not offered again until its launches are done
        # and the instances have been read since: a read from before would offer what the
        # launches have just claimed.
        self.epoch = 0
        self._launching: dict[str, int] = {}
        self._launched_at: dict[str, int] = {}

    def refresh(self, instances: dict[str, Instance], now: float, read_at: int | None = None
                ) -> tuple[list[str], list[Message]]:
        """(offers rescinded, offers made) for the instances as read when the epoch was
        `read_at`. An offer is rescinded when its instance changed at all (resources, state,
        agent): a fresh one follows at once if the instance is still offerable."""
        rescinded = [h.id for h in list(self._held.values())
                     if instances.get(h.agent) != h.instance]
        for offer_id in rescinded:
            self._drop(offer_id)
        made = [] if self.suppressed else [
            self._make(inst) for inst in instances.values()
            if inst.offerable and inst.arn not in self._by_agent
            and not self._stale(inst.arn, read_at)
            and self.filters.allows(inst.arn, inst.remaining, now)]
        return rescinded, made

    def _stale(self, agent: str, read_at: int | None) -> bool:
        return agent in self._launching or (
            read_at is not None and self._launched_at.get(agent, -1) > read_at)

    def _make(self, inst: Instance) -> Message:
        offer_id = f"{self.framework_id}-O{next(self._ids)}"
        self._held[offer_id] = Held(offer_id, inst)
        self._by_agent[inst.arn] = offer_id
        return offer(inst, offer_id, self.framework_id, inst.remaining)

    def _drop(self, offer_id: str) -> Held | None:
        held = self._held.pop(offer_id, None)
        if held is not None and self._by_agent.get(held.agent) == offer_id:
            del self._by_agent[held.agent]
        return held

    def take(self, offer_ids: list[str]) -> tuple[str, Resources]:
        """Use offers (all of one agent) at once: (agent, their resources together). The
        offers are gone either way; InvalidOffers says why they could not be used."""
        held = [self._drop(i) for i in offer_ids]
        if not offer_ids:
            raise InvalidOffers("Task launched without offers")
        for offer_id, h in zip(offer_ids, held):
            if h is None:
                raise InvalidOffers(f"Task launched with invalid offers: Offer {offer_id} "
                                    "is no longer valid")
        agents = {h.agent for h in held if h is not None}
        if len(agents) != 1:
            raise InvalidOffers("Task launched with offers of more than one agent")
        total = Resources()
        for h in held:
            assert h is not None
            total = total + h.resources
        agent = agents.pop()
        self._launching[agent] = self._launching.get(agent, 0) + 1
        return agent, total

    def launched(self, agent: str) -> None:
        """The launches on offers `take` gave are done (placed or refused)."""
        left = self._launching.get(agent, 0) - 1
        if left > 0:
            self._launching[agent] = left
        else:
            self._launching.pop(agent, None)
        self.epoch += 1
        self._launched_at[agent] = self.epoch

    def decline(self, offer_ids: list[str], seconds: float, now: float) -> None:
        for offer_id in offer_ids:
            held = self._drop(offer_id)
            if held is not None:
                self.filters.refuse(held.agent, held.resources, seconds, now)

    def revive(self) -> None:
        self.filters.clear()
        self.suppressed = False

    def clear(self) -> None:
        """Void every outstanding offer (the control plane was lost)."""
        self._held.clear()
        self._by_agent.clear()

    def outstanding(self) -> list[str]:
        return list(self._held)
