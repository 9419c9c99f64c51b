"""Shared fixtures for end-to-end tests: real berth processes, real clients."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from berth_process import BerthProcess


@pytest.fixture(scope="module")
def berth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthProcess]:
    """A `berth server` shared by one test module."""
    proc = BerthProcess(tmp_path_factory.mktemp("berth") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture
def fresh_berth(tmp_path: Path) -> Iterator[BerthProcess]:
    """A `berth server` of the test's own, for tests that stop or kill it."""
    proc = BerthProcess(tmp_path / "data").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def berth_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthProcess]:
    """A `berth up` (server plus local function worker) shared by one test module."""
    proc = BerthProcess(tmp_path_factory.mktemp("berth-up") / "data", command="up").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def logs(berth: BerthProcess) -> Any:
    """A CloudWatch Logs client for the module's server."""
    return berth.client("logs")


@pytest.fixture(scope="module")
def ecs(berth: BerthProcess) -> Any:
    """An ECS client for the module's server (modules that set up more define their own)."""
    return berth.client("ecs")
