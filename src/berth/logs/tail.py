"""`berth logs tail`: print a log group's events, and with --follow keep printing new ones.

A plain AWS client of berth: FilterLogEvents through boto3 against the endpoint and keys in
`client_env`, so it sees exactly what any SDK would.
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from typing import Any, TextIO

import boto3
import click
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

POLL_INTERVAL_S = 0.5


def tail(client_env: dict[str, str], group: str, follow: bool = False,
         since_seconds: int = 600, out: TextIO | None = None) -> None:
    """Print `timestamp stream message` lines of `group` from `since_seconds` ago on."""
    out = out or sys.stdout
    client = boto3.client(
        "logs", endpoint_url=client_env["AWS_ENDPOINT_URL"],
        region_name=client_env.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_access_key_id=client_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=client_env["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 2}))
    start = int((time.time() - since_seconds) * 1000)
    # eventIds already printed, with their timestamps. Each poll restarts at the newest
    # timestamp printed (events of that millisecond may still be arriving), so only ids at or
    # after it need remembering.
    seen: dict[str, int] = {}
    try:
        while True:
            try:
                start = _poll(client, group, start, seen, out)
            except EndpointConnectionError:
                if not follow:
                    raise click.ClickException(
                        f"cannot reach berth at {client_env['AWS_ENDPOINT_URL']}") from None
            if not follow:
                return
            time.sleep(POLL_INTERVAL_S)
    except KeyboardInterrupt:
        return


def _poll(client: Any, group: str, start: int, seen: dict[str, int], out: TextIO) -> int:
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start}
    newest = start
    while True:
        try:
            page = client.filter_log_events(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                raise click.ClickException(f"log group {group} does not exist") from None
            raise click.ClickException(str(exc)) from None
        for event in page.get("events", ()):
            if event["eventId"] in seen:
                continue
            seen[event["eventId"]] = event["timestamp"]
            newest = max(newest, event["timestamp"])
            out.write(f"{_format_time(event['timestamp'])} {event['logStreamName']} "
                      f"{event['message'].rstrip(chr(10))}\n")
        out.flush()
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    for event_id in [k for k, ts in seen.items() if ts < newest]:
        del seen[event_id]
    return newest


def _format_time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(
        timespec="milliseconds")
