"""Logs across process boundaries: kill -9 durability, `berth logs tail`, PostgreSQL."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from berth_process import BERTH, BerthProcess

LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00) (\S+) (.*)")


def now_ms() -> int:
    return int(time.time() * 1000)


def setup_group(logs: Any, group: str, *streams: str) -> None:
    logs.create_log_group(logGroupName=group)
    for stream in streams:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)


def put(logs: Any, group: str, stream: str, *messages: str, ts: int | None = None) -> None:
    t = ts or now_ms()
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": t, "message": m} for m in messages])


def read_all(logs: Any, group: str, stream: str) -> list[str]:
    out: list[str] = []
    page = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True,
                               limit=500)
    while page["events"]:
        out += [e["message"] for e in page["events"]]
        page = logs.get_log_events(logGroupName=group, logStreamName=stream,
                                   startFromHead=True, limit=500,
                                   nextToken=page["nextForwardToken"])
    return out


# ---------------------------------------------------------------------- durability


def test_acknowledged_events_survive_kill_9(fresh_berth: BerthProcess) -> None:
    logs = fresh_berth.client("logs")
    setup_group(logs, "/durable", "s")
    expected: list[str] = []
    for batch in range(20):
        messages = [f"batch {batch} event {i}" for i in range(50)]
        put(logs, "/durable", "s", *messages)
        expected += messages
    fresh_berth.kill9()
    fresh_berth.start()
    logs = fresh_berth.client("logs")
    assert read_all(logs, "/durable", "s") == expected
    [stream] = logs.describe_log_streams(logGroupName="/durable")["logStreams"]
    assert stream["storedBytes"] == sum(len(m) for m in expected)
    put(logs, "/durable", "s", "after restart")
    assert read_all(logs, "/durable", "s")[-1] == "after restart"


# ---------------------------------------------------------------------------- tail


def tail_args(berth: BerthProcess, group: str, *extra: str) -> list[str]:
    return [*BERTH, "logs", "tail", group, "--data-dir", str(berth.data_dir), *extra]


def clean_env() -> dict[str, str]:
    """No AWS_* or BERTH_* variables: tail must find endpoint and keys in the data dir."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BERTH_"))}


def test_tail_prints_recent_events_and_exits(berth: BerthProcess) -> None:
    logs = berth.client("logs")
    setup_group(logs, "/tail/once", "a", "b")
    put(logs, "/tail/once", "a", "too old for --since", ts=now_ms() - 2 * 3_600_000)
    t = now_ms() - 5000
    put(logs, "/tail/once", "a", "first", ts=t)
    put(logs, "/tail/once", "b", "second line\n", ts=t + 1)
    done = subprocess.run(tail_args(berth, "/tail/once"), env=clean_env(), text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [LINE.fullmatch(line) for line in done.stdout.splitlines()]
    assert all(lines), done.stdout
    assert [(m[2], m[3]) for m in lines if m] == [("a", "first"), ("b", "second line")]
    stamp = lines[0][1] if lines[0] else ""
    assert stamp == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t / 1000)) + \
        f".{t % 1000:03d}+00:00"
    longer = subprocess.run(tail_args(berth, "/tail/once", "--since", "10800"),
                            env=clean_env(), text=True, capture_output=True, timeout=60)
    assert "too old for --since" in longer.stdout.splitlines()[0]


def test_tail_of_a_missing_group_fails_cleanly(berth: BerthProcess) -> None:
    done = subprocess.run(tail_args(berth, "/tail/absent"), env=clean_env(), text=True,
                          capture_output=True, timeout=60)
    assert done.returncode != 0
    assert "does not exist" in done.stderr
    assert "Traceback" not in done.stderr


class Follower:
    """`berth logs tail --follow` in the background, its stdout lines in a queue."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(args, env=clean_env(), text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    # Bounds are generous: on a busy machine the CLI's start alone (Python, boto3) can take
    # many seconds; a wait ends as soon as its lines arrive.
    def take(self, n: int, timeout: float = 90) -> list[tuple[str, str]]:
        out = []
        deadline = time.monotonic() + timeout
        for _ in range(n):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                stderr = self.proc.stderr.read() if self.proc.poll() is not None and \
                    self.proc.stderr else ""
                raise AssertionError(f"got only {out} from tail; stderr: {stderr}") from None
            m = LINE.fullmatch(line)
            assert m, line
            out.append((m[2], m[3]))
        return out


@pytest.fixture
def follower(berth: BerthProcess) -> Iterator[Any]:
    started: list[Follower] = []

    def start(group: str) -> Follower:
        started.append(Follower(tail_args(berth, group, "--follow")))
        return started[-1]

    yield start
    for f in started:
        if f.proc.poll() is None:
            f.proc.kill()
            f.proc.wait()


def test_tail_follow_prints_new_events_once_and_stops_on_ctrl_c(berth: BerthProcess,
                                                                 follower: Any) -> None:
    logs = berth.client("logs")
    setup_group(logs, "/tail/follow", "api", "db")
    t = now_ms()
    put(logs, "/tail/follow", "api", "before start", ts=t - 1000)
    f = follower("/tail/follow")
    assert f.take(1) == [("api", "before start")]
    put(logs, "/tail/follow", "api", "one", "two", ts=t)
    assert f.take(2) == [("api", "one"), ("api", "two")]
    # Same millisecond as events already printed, other stream: printed, the old ones not again.
    put(logs, "/tail/follow", "db", "three", ts=t)
    assert f.take(1) == [("db", "three")]
    put(logs, "/tail/follow", "db", "four", ts=t + 10)
    put(logs, "/tail/follow", "api", "five", ts=t + 20)
    assert f.take(2) == [("db", "four"), ("api", "five")]
    # Duplicates would have shown up before a later marker does.
    put(logs, "/tail/follow", "api", "marker", ts=t + 30)
    assert f.take(1) == [("api", "marker")]
    assert f.lines.empty()
    f.proc.send_signal(signal.SIGINT)
    assert f.proc.wait(timeout=90) == 0
    assert f.proc.stderr is not None and "Traceback" not in f.proc.stderr.read()


# ----------------------------------------------------------------------- PostgreSQL


def test_logs_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    proc = BerthProcess(tmp_path / "data", database_url=postgres_url).start()
    try:
        logs = proc.client("logs")
        group = f"/pg/{tmp_path.name}"
        setup_group(logs, group, "a", "b")
        t = now_ms()
        put(logs, group, "a", "a1", "a2", ts=t - 2000)
        put(logs, group, "b", "b1", ts=t - 1000)
        put(logs, group, "b", "old", ts=t - 2 * 86_400_000)
        assert read_all(logs, group, "a") == ["a1", "a2"]
        assert [e["message"] for e in logs.filter_log_events(
            logGroupName=group, filterPattern="?a2 ?b1")["events"]] == ["a2", "b1"]
        logs.put_retention_policy(logGroupName=group, retentionInDays=1)
        logs.delete_retention_policy(logGroupName=group)
        assert read_all(logs, group, "b") == ["b1"]
        logs.delete_log_group(logGroupName=group)
        logs.create_log_group(logGroupName=group)
        assert logs.filter_log_events(logGroupName=group)["events"] == []
        assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []
        racing_creates_and_tags(proc, group)
    finally:
        proc.stop()


def racing_creates_and_tags(proc: BerthProcess, group: str) -> None:
    """Concurrent requests on PostgreSQL: one create wins, every tag lands, nothing 500s."""
    from concurrent.futures import ThreadPoolExecutor

    import botocore.exceptions
    clients = [proc.client("logs") for _ in range(8)]

    def create(i: int) -> str:
        try:
            clients[i].create_log_stream(logGroupName=group, logStreamName="race")
            return "created"
        except botocore.exceptions.ClientError as exc:
            return str(exc.response["Error"]["Code"])

    def tag(i: int) -> None:
        clients[i].tag_log_group(logGroupName=group, tags={f"k{i}": str(i)})

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(create, range(8)))
        list(pool.map(tag, range(8)))
    assert outcomes == ["ResourceAlreadyExistsException"] * 7 + ["created"]
    tags = clients[0].list_tags_log_group(logGroupName=group)["tags"]
    assert tags == {f"k{i}": str(i) for i in range(8)}
