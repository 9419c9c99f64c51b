"""What only the docker driver does: the Engine's time format, its bridge network, pulls."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from images import TEST_IMAGE

from berth.agent.drivers.base import ContainerSpec, DriverError, ImageNotFound
from berth.agent.drivers.docker import BERTH_NETWORK, DockerDriver, parse_time, parse_time_ns


def test_parse_engine_times() -> None:
    assert parse_time_ns("2024-01-02T03:04:05.123456789Z") == 1704164645123456789
    assert parse_time_ns("2024-01-02T03:04:05Z") == 1704164645 * 10**9
    assert parse_time_ns("2024-01-02T04:04:05.5+01:00") == 1704164645500000000
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("") is None


def test_bridge_network_is_made_when_the_engine_has_none(docker_images: str) -> None:
    driver = DockerDriver(docker_images)
    try:
        cid = driver.create(ContainerSpec(name="bad name/with:chars", image=TEST_IMAGE,
                                          command=["true"], network="bridge", memory_mib=32))
        info = driver.api.inspect_container(cid)
        assert list(info["NetworkSettings"]["Networks"]) == [BERTH_NETWORK]
        assert driver.state(cid).name == "bad name/with:chars"
        # No swap beyond the limit, so exceeding it is an OOM kill as on the other drivers.
        assert info["HostConfig"]["MemorySwap"] == info["HostConfig"]["Memory"] == 32 << 20
        driver.remove(cid)
    finally:
        driver.close()


def test_missing_image_is_pulled_and_the_failure_reported(docker_images: str) -> None:
    driver = DockerDriver(docker_images, pull=True)
    began = time.monotonic()
    try:
        with pytest.raises(ImageNotFound, match="berth-test/no-such-image") as err:
            driver.create(ContainerSpec(name="t", image="berth-test/no-such-image:1",
                                        command=["true"]))
    finally:
        driver.close()
    assert time.monotonic() - began < 60
    assert err.value.stopped_reason.startswith("CannotPullContainerError: ")


def test_unreachable_engine_is_a_driver_error(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="cannot reach"):
        DockerDriver(f"unix://{tmp_path}/none.sock")
