"""Fixtures for in-process tests of the Logs service: a real store, a controllable clock."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from berth.config import Settings
from berth.logs import clock
from berth.logs.service import LogsService
from berth.state.store import Store
from logs_harness import Clock, Logs


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(clock.now_ms())
    monkeypatch.setattr(clock, "now_ms", fake)
    return fake


@pytest.fixture
def logs(tmp_path: Path, fake_clock: Clock) -> Iterator[Logs]:
    store = Store(f"sqlite:///{tmp_path / 'berth.db'}")
    service = LogsService(store, Settings(data_dir=tmp_path))
    store.create_all()
    yield Logs(service)
    store.dispose()
