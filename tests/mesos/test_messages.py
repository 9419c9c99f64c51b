"""Messages behave like the addict Dicts pymesos frameworks build tasks with."""
from __future__ import annotations

import json

import pytest

from berth.mesos.messages import Message, id_value, id_values


def test_nested_members_appear_when_set_and_reading_adds_nothing() -> None:
    task = Message()
    task.task_id.value = "t1"
    task.command.environment.variables = [{"name": "A", "value": "1"}]
    assert task == {"task_id": {"value": "t1"},
                    "command": {"environment": {"variables": [{"name": "A", "value": "1"}]}}}
    assert task.command.environment.variables[0].name == "A"      # lists of dicts wrap too
    assert not task.container.docker.image
    assert "container" not in task
    assert task["missing"] == {} and "missing" not in task
    assert json.loads(json.dumps(task)) == task


def test_plain_dicts_convert_and_attribute_errors_stay_honest() -> None:
    offer = Message({"id": {"value": "o1"}, "resources": [{"name": "cpus"}]})
    assert offer.id.value == "o1" and offer.resources[0].name == "cpus"
    del offer.id
    assert "id" not in offer
    with pytest.raises(AttributeError):
        del offer.id
    with pytest.raises(AttributeError):
        offer.__deepcopy_hook__     # dunder lookups are not members


def test_ids_as_messages_strings_or_lists() -> None:
    assert id_value({"value": "a"}) == "a" == id_value("a")
    assert id_values({"value": "a"}) == ["a"]
    assert id_values([{"value": "a"}, "b"]) == ["a", "b"]
    for bad in ({}, {"value": ""}, "", None, {"value": 3}):
        with pytest.raises(ValueError):
            id_value(bad)
