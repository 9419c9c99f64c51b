"""Reliability under kill -9: nothing acknowledged is lost, no sandbox outlives its server.

One `berth up` on its own data dir is driven by three load threads the whole time:
PutLogEvents (5 events a call, each with an id), RunTask of one task on simulated container
instances (registered through the API as tests/ecs/simagent.py does, each task started by
an id), and Invoke with InvocationType=Event of a function whose side effect (the event's id,
sent to a TCP recorder in this process) is recorded before it prints `ran <id>`. Every
round the server is killed with SIGKILL and started again on the same data dir and port;
before the kill, 16 other functions are invoked once so idle, frozen sandboxes exist too.
After the last round the load stops, the queue drains, and everything acknowledged is looked
for: log events and tasks through the API, events through the recorder, the log lines of
every event that ran through FilterLogEvents.

Per round and kind: acknowledged, lost, duplicated (an Event invocation that ran more than
once is allowed, at-least-once; counted all the same), and the sandbox processes of the
killed server (its zygotes and their sandboxes, pid and start time) alive 5 s after the
restart began. Targets: 0 lost of every kind, 0 processes left.

    .venv/bin/python bench/chaos.py [--rounds 4] [--round-seconds 6]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import socketserver
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "tests", ROOT / "tests" / "ecs"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.api import Result  # noqa: E402

CLUSTER, FAMILY, FUNCTION, GROUP = "chaos", "chaos-task", "chaos-event", "/chaos/load"
IDLE_FUNCTIONS = 16
LEFTOVER_AFTER = 5.0        # seconds after a restart began that leftovers are counted
DRAIN_TIMEOUT = 120.0
PACE = 0.02                 # seconds between one thread's calls: the 2 cores are shared
FAST = {"BERTH_LAMBDA_ASYNC_LEASE": "3", "BERTH_LAMBDA_ASYNC_RETRY_DELAY": "1",
        "BERTH_ECS_AGENT_TIMEOUT": "86400"}

EVENT_CODE = '''
import json, os, random, socket, time

def handler(event, context):
    time.sleep(random.random() * 0.1)
    with socket.create_connection(("127.0.0.1", int(os.environ["RECORDER"])), 5) as conn:
        conn.sendall(event["id"].encode() + b"\\n")
        conn.recv(1)
    print("ran " + event["id"])
'''
IDLE_CODE = "def handler(event, context):\n    return 1\n"


class Recorder:
    """Counts the runs of each event: a function sends its id, and waits for the answer."""

    def __init__(self) -> None:
        self._runs: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        recorder = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                ident = self.rfile.readline().decode().strip()
                if ident:       # else the sandbox was killed while it connected
                    with recorder._lock:
                        recorder._runs[ident] += 1
                    self.wfile.write(b"k")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def runs(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self._runs)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Kind:
    """One kind of acknowledged work: id -> the round it was acknowledged in."""
    name: str
    acked: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, ident: str, round_no: int) -> None:
        with self.lock:
            self.acked[ident] = round_no


class Chaos:
    def __init__(self, work: Path) -> None:
        from berth_process import BerthProcess
        self.work = work
        self.recorder = Recorder()
        self.berth = BerthProcess(work / "data", command="up")
        self.round = 0
        self.stop = threading.Event()
        self.kinds = {k: Kind(k) for k in ("PutLogEvents", "RunTask", "Invoke Event")}
        self.sent: dict[str, dict[str, int]] = {}      # kind -> id -> round it was sent in
        self.errors: collections.Counter[str] = collections.Counter()

    # -- the server --------------------------------------------------------------------------

    def start(self) -> float:
        """Start (again) on the same data dir and port; returns when it began."""
        from berth_process import BerthProcess
        began = time.monotonic()
        old = os.environ.copy()
        os.environ.update(FAST)
        try:
            again = BerthProcess(self.berth.data_dir, command="up")
            if self.berth.proc is not None:
                again.port, again.endpoint, again.args = (self.berth.port, self.berth.endpoint,
                                                          self.berth.args)
            self.berth = again.start(timeout=60)
        finally:
            os.environ.clear()
            os.environ.update(old)
        return began

    def client(self, service: str) -> Any:
        from botocore.config import Config
        import boto3
        from berth_process import ACCESS_KEY, SECRET_KEY
        return boto3.client(service, endpoint_url=self.berth.endpoint, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(retries={"max_attempts": 1}, connect_timeout=2,
                                          read_timeout=20))

    def setup(self) -> None:
        from lambda_packages import create_python, python_zip
        from simagent import SimAgent
        logs, ecs, lam = self.client("logs"), self.client("ecs"), self.client("lambda")
        logs.create_log_group(logGroupName=GROUP)
        ecs.create_cluster(clusterName=CLUSTER)
        for _ in range(4):
            SimAgent(ecs, CLUSTER, cpu=1 << 20, memory=1 << 24)
        ecs.register_task_definition(family=FAMILY, containerDefinitions=[
            {"name": "a", "image": "busybox", "cpu": 1, "memory": 6, "essential": True}])
        create_python(lam, FUNCTION, Code={"ZipFile": python_zip(EVENT_CODE)}, Timeout=30,
                      Environment={"Variables": {"RECORDER": str(self.recorder.port)}})
        for i in range(IDLE_FUNCTIONS):
            create_python(lam, f"chaos-idle-{i}", Code={"ZipFile": python_zip(IDLE_CODE)})

    def warm_idle(self) -> None:
        lam = self.client("lambda")
        for i in range(IDLE_FUNCTIONS):
            try:
                lam.invoke(FunctionName=f"chaos-idle-{i}", Payload=b"{}")
            except Exception as exc:    # noqa: BLE001 - the count says what failed
                self.errors[f"idle invoke: {type(exc).__name__}"] += 1

    # -- load --------------------------------------------------------------------------------

    def _loop(self, name: str, call: Callable[[Any, str], list[str]], client: Any) -> None:
        """Call until stopped; ids are acknowledged in the round they were answered in."""
        while not self.stop.is_set():
            ident = uuid.uuid4().hex[:24]
            self.sent.setdefault(name, {})[ident] = self.round
            try:
                for acked in call(client, ident):
                    self.kinds[name].ack(acked, self.round)
            except Exception as exc:    # noqa: BLE001 - refused while the server is down
                self.errors[f"{name}: {type(exc).__name__}"] += 1
                time.sleep(0.05)
            time.sleep(PACE)

    @staticmethod
    def _put_logs(logs: Any, ident: str) -> list[str]:
        stream = f"s-{threading.get_ident()}"
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": f"{ident}-{i}"} for i in range(5)]
        try:
            resp = logs.put_log_events(logGroupName=GROUP, logStreamName=stream,
                                       logEvents=events)
        except logs.exceptions.ResourceNotFoundException:
            logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
            return []
        if resp.get("rejectedLogEventsInfo"):
            raise RuntimeError(f"rejected: {resp['rejectedLogEventsInfo']}")
        return [e["message"] for e in events]

    @staticmethod
    def _run_task(ecs: Any, ident: str) -> list[str]:
        resp = ecs.run_task(cluster=CLUSTER, taskDefinition=FAMILY, startedBy=ident)
        return [ident] if len(resp["tasks"]) == 1 and not resp["failures"] else []

    @staticmethod
    def _invoke_event(lam: Any, ident: str) -> list[str]:
        resp = lam.invoke(FunctionName=FUNCTION, InvocationType="Event",
                          Payload=json.dumps({"id": ident}).encode())
        return [ident] if resp["StatusCode"] == 202 else []

    def load(self) -> list[threading.Thread]:
        jobs = [("PutLogEvents", "logs", self._put_logs), ("RunTask", "ecs", self._run_task),
                ("Invoke Event", "lambda", self._invoke_event)]
        # The port stays the same across restarts: each thread keeps its client.
        threads = [threading.Thread(target=self._loop, daemon=True,
                                    args=(name, call, self.client(service)))
                   for name, service, call in jobs]
        for t in threads:
            t.start()
        return threads

    # -- verification ------------------------------------------------------------------------

    def stored_log_events(self) -> collections.Counter[str]:
        logs = self.client("logs")
        found: collections.Counter[str] = collections.Counter()
        for stream in _pages(logs.describe_log_streams, "logStreams", logGroupName=GROUP):
            kw = {"logGroupName": GROUP, "logStreamName": stream["logStreamName"],
                  "startFromHead": True}
            last = None
            while True:
                page = logs.get_log_events(**kw)
                found.update(e["message"] for e in page["events"])
                if not page["events"] or page["nextForwardToken"] == last:
                    break
                last = kw["nextToken"] = page["nextForwardToken"]
        return found

    def placed_tasks(self) -> collections.Counter[str]:
        ecs = self.client("ecs")
        arns = list(_pages(ecs.list_tasks, "taskArns", cluster=CLUSTER))
        found: collections.Counter[str] = collections.Counter()
        for i in range(0, len(arns), 100):
            for task in ecs.describe_tasks(cluster=CLUSTER, tasks=arns[i:i + 100])["tasks"]:
                found[task.get("startedBy", "")] += 1
        return found

    def logged_runs(self) -> collections.Counter[str]:
        logs = self.client("logs")
        found: collections.Counter[str] = collections.Counter()
        for event in _pages(logs.filter_log_events, "events",
                            logGroupName=f"/aws/lambda/{FUNCTION}", filterPattern='"ran "'):
            if event["message"].startswith("ran "):
                found[event["message"].split()[1]] += 1
        return found


def _pages(call: Callable[..., dict[str, Any]], key: str, **kw: Any) -> Any:
    for _ in range(10_000):
        page = call(**kw)
        yield from page[key]
        if not page.get("nextToken"):
            return
        kw["nextToken"] = page["nextToken"]


def _count(kind: Kind, found: collections.Counter[str], rounds: int) -> list[dict[str, int]]:
    rows = [{"acknowledged": 0, "lost": 0, "duplicated": 0} for _ in range(rounds + 1)]
    for ident, round_no in kind.acked.items():
        row = rows[round_no]
        row["acknowledged"] += 1
        row["lost"] += found[ident] == 0
        row["duplicated"] += found[ident] > 1
    return rows


def chaos(rounds: int = 4, round_seconds: float = 6.0) -> dict[str, Any]:
    from sandbox_procs import alive, descendants
    work = Path(tempfile.mkdtemp(prefix="berth-bench-chaos-"))
    run = Chaos(work)
    leftovers, restarts = [], []
    try:
        run.start()
        run.setup()
        threads = run.load()
        for round_no in range(rounds):
            run.warm_idle()
            time.sleep(round_seconds)
            assert run.berth.proc is not None
            procs = descendants(run.berth.proc.pid)
            os.kill(run.berth.proc.pid, signal.SIGKILL)
            run.berth.proc.wait()
            run.round = round_no + 1
            began = run.start()
            restarts.append(time.monotonic() - began)
            time.sleep(max(0.0, began + LEFTOVER_AFTER - time.monotonic()))
            leftovers.append((len(alive(procs)), len(procs)))
        run.stop.set()
        for t in threads:
            t.join(30)
        # Drain: every acknowledged event has run and its line is stored, or the time is up.
        events = run.kinds["Invoke Event"]
        deadline = time.monotonic() + DRAIN_TIMEOUT
        logged: collections.Counter[str] = collections.Counter()
        while time.monotonic() < deadline:
            ran = run.recorder.runs()
            logged = run.logged_runs()
            if set(events.acked) <= set(ran) and set(ran) <= set(logged):
                break
            time.sleep(1)
        ran = run.recorder.runs()
        # Every event that ran, acknowledged or not (its 202 may have been lost), by the round
        # it was sent in.
        sent = run.sent.get("Invoke Event", {})
        ran_kind = Kind("log lines of events that ran", {i: sent.get(i, rounds) for i in ran})
        counts = {
            "PutLogEvents": _count(run.kinds["PutLogEvents"], run.stored_log_events(), rounds),
            "RunTask": _count(run.kinds["RunTask"], run.placed_tasks(), rounds),
            "Invoke Event": _count(events, ran, rounds),
            ran_kind.name: _count(ran_kind, logged, rounds),
        }
        return {"counts": counts, "leftovers": leftovers, "restarts": restarts,
                "errors": dict(run.errors), "rounds": rounds}
    finally:
        run.stop.set()
        if run.berth.proc is not None:
            run.berth.stop()
        run.recorder.close()
        shutil.rmtree(work, ignore_errors=True)


def run(rounds: int = 4, round_seconds: float = 6.0, **_: Any) -> Result:
    from rich.table import Table
    from rich.text import Text
    out = chaos(rounds, round_seconds)
    table = Table(title=f"kill -9 of `berth up` under mixed load: {rounds} rounds of "
                        f"{round_seconds:g} s", title_justify="left")
    for col in ("round", "kind", "acknowledged", "lost", "duplicated"):
        table.add_column(col, justify="left" if col in ("round", "kind") else "right")
    lost_total = 0
    for round_no in range(rounds + 1):
        label = f"{round_no + 1}" if round_no < rounds else "after the last restart"
        for kind, rows in out["counts"].items():
            row = rows[round_no]
            lost_total += row["lost"]
            table.add_row(label, kind, f"{row['acknowledged']:,}", str(row["lost"]),
                          str(row["duplicated"]))
            label = ""
        table.rows[-1].end_section = True
    procs = Table(title="sandbox processes of the killed server alive 5 s after its restart "
                        "began", title_justify="left")
    for col in ("round", "alive after 5 s", "of (zygotes and sandboxes at the kill)",
                "restart (s)"):
        procs.add_column(col, justify="right")
    left_total = 0
    for i, ((left, of), took) in enumerate(zip(out["leftovers"], out["restarts"]), 1):
        left_total += left
        procs.add_row(str(i), str(left), str(of), f"{took:.1f}")
    totals = {kind: sum(r["acknowledged"] for r in rows)
              for kind, rows in out["counts"].items()}
    met = lost_total == 0 and left_total == 0
    notes = [table, procs, Text("refused while the server was down (not acknowledged): "
                                + (", ".join(f"{k} {v}" for k, v in sorted(out["errors"]
                                                                           .items())) or "none"),
                                style="dim"),
             Text(f"targets: 0 lost ({lost_total}), 0 processes left ({left_total}): "
                  + ("met" if met else "NOT met") + "; acknowledged in all: "
                  + ", ".join(f"{k} {v:,}" for k, v in totals.items()),
                  style="bold green" if met else "bold red")]
    return Result(notes, met, all(totals.values()))


def main(argv: list[str] | None = None) -> int:
    from bench.api import make_console
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--round-seconds", type=float, default=6.0)
    args = parser.parse_args(argv)
    result = run(args.rounds, args.round_seconds)
    console = make_console()
    for r in result.renderables:
        console.print(r)
    return 0 if result.valid else 1


if __name__ == "__main__":
    sys.exit(main())
