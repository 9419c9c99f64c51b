"""Shared fixtures for end-to-end tests: real berth processes, real clients."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config

from berth_process import ACCESS_KEY, SECRET_KEY, BerthProcess
from ecs.simagent import SimAgent
from postgres import private_database


@pytest.fixture(scope="module")
def berth(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthProcess]:
    """A `berth server` shared by one test module, with the BERTH_* settings of the module's
    `BERTH_ENV` if it has one."""
    proc = BerthProcess(tmp_path_factory.mktemp("berth") / "data",
                        env=getattr(request.module, "BERTH_ENV", {})).start()
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
    """A `berth up` (server plus local function worker) shared by one test module; the
    containers its agent ran are removed afterwards."""
    from agent_process import remove_task_containers
    proc = BerthProcess(tmp_path_factory.mktemp("berth-up") / "data", command="up").start()
    yield proc
    proc.stop()
    if (proc.data_dir / "agent" / "state.json").exists():
        remove_task_containers(proc.data_dir)


@pytest.fixture(scope="module")
def logs(berth: BerthProcess) -> Any:
    """A CloudWatch Logs client for the module's server."""
    return berth.client("logs")


@pytest.fixture(scope="module")
def ecs(berth: BerthProcess) -> Any:
    """An ECS client for the module's server (modules that set up more define their own)."""
    return berth.client("ecs")


@pytest.fixture
def agents() -> Iterator[list[SimAgent]]:
    """Simulated agents a test starts (append them); stopped after the test."""
    made: list[SimAgent] = []
    yield made
    for a in made:
        a.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium with a fresh profile, for the console's tests."""
    from console.chromium import Chromium
    with Chromium(tmp_path / "profile") as chromium:
        yield chromium


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def ddb_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[BerthProcess]:
    """A `berth server` shared by one module, on SQLite and then on PostgreSQL."""
    data = tmp_path_factory.mktemp("ddb") / "data"
    if request.param == "sqlite":
        proc = BerthProcess(data).start()
        yield proc
        proc.stop()
        return
    with private_database(request.getfixturevalue("postgres_url"), "ddb") as url:
        proc = BerthProcess(data, database_url=url).start()
        yield proc
        proc.stop()


@pytest.fixture(scope="module")
def ddb(ddb_server: BerthProcess) -> Any:
    return ddb_server.client("dynamodb")


@pytest.fixture(scope="module")
def ddb_resource(ddb_server: BerthProcess) -> Any:
    return boto3.resource("dynamodb", endpoint_url=ddb_server.endpoint, region_name="us-east-1",
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                          config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def ddb_streams(ddb_server: BerthProcess) -> Any:
    return ddb_server.client("dynamodbstreams")
