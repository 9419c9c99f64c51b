"""Task definitions as data: normalization and what one task claims."""
from __future__ import annotations

import pytest

from berth.api.errors import ServiceError
from berth.ecs.taskdef_spec import needs, normalize, parse_cpu, parse_memory


def test_units() -> None:
    assert parse_cpu("1 vCPU") == 1024 and parse_cpu("0.5 vcpu") == 512
    assert parse_cpu("256") == 256
    assert parse_memory("2 GB") == 2048 and parse_memory("512") == 512
    with pytest.raises(ServiceError):
        parse_memory("lots")


def test_needs_count_reservations_overrides_and_ports() -> None:
    body = normalize({"family": "f", "containerDefinitions": [
        {"name": "a", "image": "x", "cpu": 100, "memory": 512, "memoryReservation": 128,
         "portMappings": [{"containerPort": 80, "hostPort": 8080},
                          {"containerPort": 53, "hostPort": 53, "protocol": "udp"},
                          {"containerPort": 81}]},
        {"name": "b", "image": "y", "memory": 64}]})
    n = needs(body, None)
    assert (n.cpu, n.memory, n.ports, n.udp_ports) == (100, 192, (8080,), (53,))
    n = needs(body, {"containerOverrides": [{"name": "b", "memory": 100, "cpu": 10}]})
    assert (n.cpu, n.memory) == (110, 228)
    n = needs(body, {"cpu": "1 vCPU", "memory": "1 GB"})
    assert (n.cpu, n.memory) == (1024, 1024)


def test_host_network_uses_container_ports() -> None:
    body = normalize({"family": "f", "networkMode": "host", "containerDefinitions": [
        {"name": "a", "image": "x", "memory": 8, "portMappings": [{"containerPort": 9000}]}]})
    assert body["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 9000
    assert needs(body, None).ports == (9000,)
