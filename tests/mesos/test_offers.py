"""Offers from instances, the resources they hold, the filters declines set, and the book of
outstanding offers: pure parts, no server."""
from __future__ import annotations

from typing import Any

import pytest

from berth.mesos.filters import DEFAULT_REFUSE_SECONDS, OfferFilters, refuse_seconds
from berth.mesos.offer_book import InvalidOffers, OfferBook
from berth.mesos.offers import instance
from berth.mesos.resources import InvalidResources, Resources, from_mesos, spans


def described(arn: str = "arn:aws:ecs:us-east-1:0:container-instance/c/1", cpu: int = 2048,
              memory: int = 4000, taken: tuple[str, ...] = ("22", "31005"),
              status: str = "ACTIVE", connected: bool = True) -> dict[str, Any]:
    return {"containerInstanceArn": arn, "ec2InstanceId": "i-abc", "status": status,
            "agentConnected": connected,
            "attributes": [{"name": "ecs.os-type", "value": "linux"}, {"name": "flag"}],
            "remainingResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
                {"name": "PORTS", "type": "STRINGSET", "stringSetValue": list(taken)},
                {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []}]}


def test_an_instance_offers_its_remaining_resources_and_free_ports() -> None:
    inst = instance(described(), (31000, 31010))
    assert inst.remaining == Resources(2048, 4000, frozenset(range(31000, 31011)) - {31005})
    assert inst.offerable and inst.hostname == "i-abc"
    assert inst.attributes == (("ecs.os-type", "linux"), ("flag", ""))
    book = OfferBook("fw")
    _, (offer,) = book.refresh({inst.arn: inst}, now=0)
    by_name = {r.name: r for r in offer.resources}
    assert by_name["cpus"].scalar.value == 2.0 and by_name["mem"].scalar.value == 4000
    assert [(s.begin, s.end) for s in by_name["ports"].ranges.range] == [(31000, 31004),
                                                                         (31006, 31010)]
    assert offer.agent_id.value == inst.arn and offer.id.value == "fw-O1"
    for unusable in (described(status="DRAINING"), described(connected=False),
                     described(cpu=0, memory=0, taken=tuple(map(str, range(31000, 31011))))):
        assert not instance(unusable, (31000, 31010)).offerable


def test_mesos_resources_in_ecs_units() -> None:
    got = from_mesos([{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 31.5}},
                      {"name": "disk", "type": "SCALAR", "scalar": {"value": 100}},
                      {"name": "ports", "type": "RANGES",
                       "ranges": {"range": [{"begin": 5, "end": 7}, {"begin": 9, "end": 9}]}}])
    assert got == Resources(102, 32, frozenset({5, 6, 7, 9}))
    assert spans({9, 5, 6, 7, 11}) == [(5, 7), (9, 9), (11, 11)]
    for bad in ([{"name": "gpus", "scalar": {"value": 1}}],
                [{"name": "mem", "scalar": {"value": -1}}],
                [{"name": "cpus", "type": "RANGES"}],
                [{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 0,
                                                                          "end": 3}]}}]):
        with pytest.raises(InvalidResources):
            from_mesos(bad)


def test_filters_hold_while_refused_resources_cover_the_offer() -> None:
    f = OfferFilters()
    refused = Resources(1024, 1000, frozenset({1, 2}))
    f.refuse("a", refused, seconds=5, now=100)
    assert not f.allows("a", refused, now=104.9)
    assert not f.allows("a", Resources(512, 1000, frozenset({1})), now=101)
    assert f.allows("a", Resources(1024, 1001, frozenset({1, 2})), now=101)    # more is free
    assert f.allows("b", refused, now=101)
    assert f.allows("a", refused, now=105)
    assert f.next_expiry() is None
    f.refuse("a", refused, seconds=0, now=0)        # refuse_seconds 0: no filter
    assert f.next_expiry() is None
    assert refuse_seconds(None) == DEFAULT_REFUSE_SECONDS == refuse_seconds({})
    assert refuse_seconds({"refuse_seconds": 2.5}) == 2.5
    for odd in (-1, float("nan"), 1e12, "x"):
        assert refuse_seconds({"refuse_seconds": odd}) == DEFAULT_REFUSE_SECONDS


def test_the_book_rescinds_changed_instances_and_takes_offers_of_one_agent() -> None:
    book = OfferBook("fw")
    a = instance(described("A"))
    b = instance(described("B"))
    rescinded, made = book.refresh({"A": a, "B": b}, now=0)
    assert rescinded == [] and [o.agent_id.value for o in made] == ["A", "B"]
    assert book.refresh({"A": a, "B": b}, now=1) == ([], [])     # one offer per agent
    shrunk = instance(described("A", memory=100))
    rescinded, made = book.refresh({"A": shrunk, "B": b}, now=2)
    assert rescinded == ["fw-O1"] and [o.id.value for o in made] == ["fw-O3"]
    rescinded, made = book.refresh({"A": shrunk}, now=3)           # B left the cluster
    assert rescinded == ["fw-O2"] and made == []

    with pytest.raises(InvalidOffers, match="Offer fw-O1 is no longer valid"):
        book.take(["fw-O1"])
    read_at = book.epoch
    assert book.take(["fw-O3"]) == ("A", shrunk.remaining)
    assert book.outstanding() == []
    # While a launch on an agent's offers is under way, and until the instances are read
    # after it, the agent gets no offer: one read before it would offer what it claims.
    assert book.refresh({"A": shrunk}, now=4, read_at=read_at) == ([], [])
    book.launched("A")
    assert book.refresh({"A": shrunk}, now=4, read_at=read_at) == ([], [])
    _, made = book.refresh({"A": shrunk, "B": b}, now=4, read_at=book.epoch)
    with pytest.raises(InvalidOffers, match="more than one agent"):
        book.take([o.id.value for o in made])
    _, (offer,) = book.refresh({"A": shrunk}, now=5, read_at=book.epoch)
    book.decline([offer.id.value], seconds=10, now=5)
    assert book.refresh({"A": shrunk}, now=9) == ([], [])
    book.suppressed = True
    assert book.refresh({"A": shrunk}, now=20) == ([], [])
    book.revive()
    assert len(book.refresh({"A": shrunk}, now=9)[1]) == 1
