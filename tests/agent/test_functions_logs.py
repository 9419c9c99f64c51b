"""Shipping function output into berth's own CloudWatch Logs store, in-process."""
from __future__ import annotations

import asyncio
from pathlib import Path

from berth.agent.functions.logs_shipper import LocalLogsSink, LogShipper
from berth.api.app import RequestContext
from berth.config import Settings
from berth.logs.service import LogsService
from berth.state.store import Store

KEY = ("us-east-1", "/aws/lambda/f", "2024/01/01/[$LATEST]" + "a" * 32)


def test_shipper_creates_group_and_stream_and_recreates_them(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.create_all()
    logs = LogsService(store, Settings(data_dir=tmp_path))
    ctx = RequestContext("t", "us-east-1", "000000000000", "logs", "GetLogEvents", "", "")

    def messages() -> list[str]:
        out = logs.get_log_events(ctx, {"logGroupName": KEY[1], "logStreamName": KEY[2],
                                        "startFromHead": True})
        return [e["message"] for e in out["events"]]

    async def scenario() -> None:
        shipper = LogShipper(LocalLogsSink(logs, "000000000000"), interval=0.05)
        await shipper.start()
        shipper.append(KEY, "first")
        shipper.append(KEY, "second", timestamp_ms=1)   # a clock stepping back keeps order
        await asyncio.sleep(0.3)
        assert messages() == ["first", "second"]
        logs.delete_log_group(ctx, {"logGroupName": KEY[1]})
        shipper.append(KEY, "third")
        await shipper.stop()

    asyncio.run(scenario())
    assert messages() == ["third"]
    store.dispose()
