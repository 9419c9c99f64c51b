"""kill -9 between writes: every acknowledged item survives with its stream record, and no
stream record exists without its write (on SQLite, and on PostgreSQL)."""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from berth_process import BerthProcess
from dynamodb_support import make_table, read_stream
from postgres import private_database

ROUNDS = 3
WRITERS = 3


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with private_database(request.getfixturevalue("postgres_url"), "ddbkill") as url:
        yield url


def test_kill_9_loses_no_acknowledged_write(database: str | None, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = BerthProcess(data, database_url=database).start()
    ddb = server.client("dynamodb")
    table = make_table(ddb, ("pk", "S"), StreamSpecification={
        "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    acknowledged: dict[str, int] = {}      # item -> highest acknowledged version
    lock = threading.Lock()
    for _ in range(ROUNDS):
        stop = threading.Event()

        def write(w: int, client: Any) -> None:
            n = 0
            while not stop.is_set() and n < 10_000:
                n += 1
                key = f"w{w}-{n % 7}"
                with lock:
                    version = acknowledged.get(key, 0) + 1
                try:
                    client.put_item(TableName=table, Item={"pk": {"S": key},
                                                           "v": {"N": str(version)}},
                                    ConditionExpression="attribute_not_exists(v) OR v < :v",
                                    ExpressionAttributeValues={":v": {"N": str(version)}})
                except (BotoCoreError, ClientError):
                    return      # the server is gone (or going): this write is not acknowledged
                with lock:
                    acknowledged[key] = version
        threads = [threading.Thread(target=write, args=(w, server.client("dynamodb")))
                   for w in range(WRITERS)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.3, 0.8))
        server.kill9()
        stop.set()
        for t in threads:
            t.join(30)
        server = BerthProcess(data, database_url=database).start()     # same data, new port
    ddb = server.client("dynamodb")
    try:
        items = {}
        start = None
        for _ in range(100):
            page = ddb.scan(TableName=table, ConsistentRead=True,
                            **({"ExclusiveStartKey": start} if start else {}))
            items.update({i["pk"]["S"]: int(i["v"]["N"]) for i in page["Items"]})
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        assert acknowledged, "nothing was written before the kills"
        for key, version in acknowledged.items():
            # At least what was acknowledged; one more if a write committed as the server died.
            assert items.get(key, 0) in (version, version + 1), key
        records = read_stream(server.client("dynamodbstreams"), arn)
        streamed: dict[str, list[int]] = {}
        for record in records:
            body = record["dynamodb"]
            streamed.setdefault(body["Keys"]["pk"]["S"], []).append(
                int(body["NewImage"]["v"]["N"]))
        for key, version in items.items():
            # Every write of the item has its record, in order, and none is extra.
            assert streamed[key] == list(range(1, version + 1)), key
        assert set(streamed) == set(items)
    finally:
        server.stop()


