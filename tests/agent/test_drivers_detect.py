"""Choosing the driver: docker when an engine answers, else runc as root, else processes."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from berth.agent.drivers.base import DriverError
from berth.agent.drivers.detect import detect_driver


def test_reachable_engine_means_docker(docker_images: str, tmp_path: Path) -> None:
    driver = detect_driver(tmp_path, docker_host=docker_images)
    assert driver.name == "docker"
    driver.close()


def test_unreachable_engine_falls_back(tmp_path: Path) -> None:
    driver = detect_driver(tmp_path, docker_host=f"unix://{tmp_path}/absent.sock")
    runc_works = os.geteuid() == 0 and shutil.which("runc") is not None
    assert driver.name == ("runc" if runc_works else "process")


def test_preferred_driver_and_unknown_names(tmp_path: Path) -> None:
    assert detect_driver(tmp_path, preferred="process").name == "process"
    with pytest.raises(DriverError, match="unknown driver"):
        detect_driver(tmp_path, preferred="lxc")
