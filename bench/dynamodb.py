"""DynamoDB throughput and latency: PutItem, GetItem and Query (100 items), berth against moto's
server, same calls, same clients, same run. "srv CPU µs/req" is each server's CPU time per
completed request in the window (bench/api.py's measure; the figure a loaded machine disturbs
least).

The clients are bench/api.py's (SigV4-signed per request, one keep-alive connection per client
process, closed loop); PutItem writes a new item every request. Both servers get the same table
(partition key S, sort key N, on-demand) and data: one item of ten attributes for GetItem, one
partition of 100 such items for Query. Configs run `--runs` times, interleaved berth/moto.

Target: berth ≥ 5× moto's req/s on every row.

    .venv/bin/python bench/dynamodb.py [--duration 2] [--warmup 0.5] [--runs 2]
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.api import (REGION, ClientPool, Result, Run, Target, _loadavg,  # noqa: E402
                       command_line, measure_job, median_run, start_berth, start_moto)

TABLE = "bench"
CLIENT_COUNTS = (1, 4)
TARGET_RATIO = 5.0
ATTRIBUTES = {f"attr{i}": {"S": f"value number {i} of the bench item"} for i in range(8)}


def _item(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": sk}, "n": {"N": "12345.678"}, **ATTRIBUTES}


# operation -> (request body, (response key, expected length or None))
OPERATIONS: dict[str, tuple[dict[str, Any], tuple[str | None, int | None]]] = {
    "PutItem": ({"TableName": TABLE, "Item": _item("put-@N@", "1")}, (None, 0)),
    "GetItem": ({"TableName": TABLE, "Key": {"pk": {"S": "get"}, "sk": {"N": "1"}}},
                ("Item", None)),
    "Query": ({"TableName": TABLE, "KeyConditionExpression": "pk = :p",
               "ExpressionAttributeValues": {":p": {"S": "query"}}}, ("Items", 100)),
}


def setup(target: Target) -> None:
    import boto3
    from botocore.config import Config
    ddb = boto3.client("dynamodb", endpoint_url=target.endpoint, region_name=REGION,
                       aws_access_key_id=target.access_key,
                       aws_secret_access_key=target.secret_key,
                       config=Config(retries={"max_attempts": 1}))
    ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "N"}])
    ddb.get_waiter("table_exists").wait(TableName=TABLE, WaiterConfig={"Delay": 1})
    ddb.put_item(TableName=TABLE, Item=_item("get", "1"))
    for start in range(0, 100, 25):
        ddb.batch_write_item(RequestItems={TABLE: [
            {"PutRequest": {"Item": _item("query", str(i))}} for i in range(start, start + 25)]})


def _job(target: Target, op: str, warmup: float, duration: float) -> dict[str, Any]:
    body, expect = OPERATIONS[op]
    return {"host": target.host, "port": target.port, "access_key": target.access_key,
            "secret_key": target.secret_key, "service": "dynamodb",
            "headers": {"X-Amz-Target": f"DynamoDB_20120810.{op}",
                        "Content-Type": "application/x-amz-json-1.0"},
            "body": json.dumps(body).encode(), "expect": expect, "warmup": warmup,
            "duration": duration, "start": 0.0}


def run(duration: float = 2.0, warmup: float = 0.5, runs: int = 2, **_: Any) -> Result:
    from importlib.metadata import version

    from rich.table import Table
    from rich.text import Text

    started, load_before = time.monotonic(), _loadavg()
    pool = ClientPool(max(CLIENT_COUNTS))
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-ddb-"))
    targets: list[Target] = []
    results: dict[tuple[str, str, int], list[Run]] = {}
    try:
        targets = [start_berth(workdir), start_moto(workdir)]
        for target in targets:
            setup(target)
        for rep in range(runs):
            for op in OPERATIONS:
                for clients in CLIENT_COUNTS:
                    for target in (targets if rep % 2 == 0 else targets[::-1]):
                        results.setdefault((target.name, op, clients), []).append(measure_job(
                            pool, target, _job(target, op, warmup, duration), clients))
    except BaseException:
        print(f"bench dynamodb: servers' data and logs kept in {workdir}", file=sys.stderr)
        raise
    finally:
        pool.close()
        for target in targets:
            target.stop()
    shutil.rmtree(workdir, ignore_errors=True)

    table = Table(title=f"DynamoDB: berth vs moto {version('moto')} (median of {runs} runs × "
                        f"{duration:g} s, {warmup:g} s warm-up)", title_justify="left")
    for name in ("operation", "clients", "berth req/s", "moto req/s", "ratio",
                 "berth p50/p99 ms", "moto p50/p99 ms", "srv CPU µs/req berth/moto", "errors",
                 "target"):
        table.add_column(name, justify="left" if name in ("operation", "target") else "right")
    met, valid, notes = True, True, []
    for op in OPERATIONS:
        for clients in CLIENT_COUNTS:
            b, m = (median_run(results[(name, op, clients)]) for name in ("berth", "moto"))
            assert b is not None and m is not None
            ratio = b.reqs / m.reqs if m.reqs else float("inf")
            hit = ratio >= TARGET_RATIO
            met &= hit
            errors = b.errors + m.errors
            if errors:
                valid = False
                notes.append(f"INVALID: {op} ×{clients}: {b.error_sample or m.error_sample}")
            table.add_row(op, str(clients), f"{b.reqs:,.0f}", f"{m.reqs:,.0f}",
                          Text(f"{ratio:.1f}×", style="bold"),
                          f"{b.p50_ms:.2f} / {b.p99_ms:.2f}", f"{m.p50_ms:.2f} / {m.p99_ms:.2f}",
                          f"{b.server_cpu_us:,.0f} / {m.server_cpu_us:,.0f}", str(errors), Text(f"≥{TARGET_RATIO:g}× {'✓' if hit else '✗'}",
                                            style="green" if hit else "red"))
    renderables: list[Any] = [table, Text(
        f"load avg {load_before} before / {_loadavg()} after; clients and servers share the "
        f"machine's CPUs; whole bench {time.monotonic() - started:.0f} s.", style="dim")]
    renderables += [Text(n, style="red") for n in notes]
    renderables.append(Text(f"dynamodb: {'targets met' if met and valid else 'targets NOT met'}"
                            f" (berth ≥ {TARGET_RATIO:g}× moto req/s on every row)",
                            style="bold green" if met and valid else "bold red"))
    return Result(renderables, met, valid)


def main(argv: list[str] | None = None) -> int:
    return command_line(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
