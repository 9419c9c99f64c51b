"""Garbage in: fuzzed requests and unauthenticated bodies, berth beside moto in the same run.

Fuzz: the cases of tests/fuzz_requests.py (malformed, forged, oversized and garbage requests
on every route of every service and berth's own mounts, before and after authentication, and
at the wire), each on its own connection from 4 client threads, to a real `berth up`, then
the first PEER_REQUESTS of the same cases to moto's server (slower, and its wait for bodies
never sent costs the client's whole timeout). Per kind of case: sent, answered, 5xx, no
answer where one was due (within 5 s), hung up (the client cut the request short on
purpose); then the tracebacks the server logged. berth's deliberate 501 NotImplemented for a
request scoped to a service it does not serve (api/unserved.py) is counted apart from the
5xx.

Bodies: 8 parallel 75 MB POSTs to /2015-03-31/functions/x/invocations with a made-up
Authorization, as issue 10 reported them; the server's peak RSS growth (VmHWM, reset just
before, minus VmRSS then). moto checks no signature, so it reads every body.

Slow headers: 1,000 connections that each send a request line, then a header line every
2 s (issue 10 saw every 10 s) and never end their headers; how many the server refused at
once (503), how many it ended, and how many are still open after 20 s. berth's header
timeout is 10 s by default.

Targets: berth answers no fuzzed request with a 5xx and logs no traceback; its RSS grows by
less than 100 MB under the 8 × 75 MB; no slow connection is open after 20 s.

    .venv/bin/python bench/fuzz.py [--requests 6000] [--seed 10]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from bench.api import Result, Target, make_console, start_moto  # noqa: E402

REQUESTS = 6000
PEER_REQUESTS = 1000
CLIENT_THREADS = 4
ANSWER_TIMEOUT = 5.0
TIME_BOUND = 600.0                  # seconds per server for the fuzz, at most
BODIES, BODY_MB = 8, 75
INVOKE_PATH = "/2015-03-31/functions/x/invocations"
TARGET_RSS_MB = 100
SLOW_CONNECTIONS, SLOW_EVERY, SLOW_FOR = 1000, 2.0, 20.0


def start_berth_up(workdir: Path) -> Target:
    from berth_process import ACCESS_KEY, SECRET_KEY, BerthProcess
    proc = BerthProcess(workdir / "berth-data", command="up").start()
    assert proc.proc is not None
    return Target("berth", "127.0.0.1", proc.port, ACCESS_KEY, SECRET_KEY, proc.stop,
                  proc.log_path, proc.proc.pid)


def fuzz(target: Target, requests: int, seed: int) -> dict[str, Any]:
    from fuzz_requests import Fuzzer, Outcome, send, tracebacks
    fuzzer = Fuzzer(target.port, target.access_key, target.secret_key, seed)
    cases = list(fuzzer.cases(requests))
    deadline = time.monotonic() + TIME_BOUND
    started = time.monotonic()

    def one(case: Any) -> tuple[Any, Outcome, bool]:
        if time.monotonic() > deadline:
            return case, Outcome(None, b""), False
        outcome = send(target.port, case, timeout=ANSWER_TIMEOUT)
        return case, outcome, True

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        results = list(pool.map(one, cases))
    elapsed = time.monotonic() - started
    log_text = target.log_path.read_text(errors="replace") if target.log_path else ""
    by_kind: dict[str, Counter[str]] = {}
    samples: list[bytes] = []
    for case, outcome, sent in results:
        count = by_kind.setdefault(case.kind, Counter())
        count["sent"] += sent
        count["answered"] += outcome.status is not None
        count["5xx"] += outcome.server_error
        count["501 unserved"] += outcome.status == 501 and not outcome.server_error
        count["no answer"] += sent and case.answered and outcome.status is None
        count["hung up"] += sent and not case.answered
        if outcome.server_error and len(samples) < 3:
            samples.append(outcome.head[:300])
    return {"by_kind": by_kind, "tracebacks": tracebacks(log_text), "seconds": elapsed,
            "samples": samples}


def body_flood(target: Target) -> dict[str, Any]:
    from pathlib import Path as P

    from wire import post_forged_body, vm_kb
    assert target.pid is not None
    P(f"/proc/{target.pid}/clear_refs").write_text("5")     # VmHWM := the current RSS
    before = vm_kb(target.pid, "VmRSS")
    deadline = time.monotonic() + 180
    answers: list[bytes] = []
    started = time.monotonic()

    def one() -> None:
        try:
            answers.append(post_forged_body(target.port, INVOKE_PATH, BODY_MB * 1024 * 1024,
                                            deadline))
        except (OSError, AssertionError) as exc:
            answers.append(f"error: {exc}".encode())

    threads = [threading.Thread(target=one) for _ in range(BODIES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic()))
    return {"growth_mb": (vm_kb(target.pid, "VmHWM") - before) / 1024,
            "before_mb": before / 1024, "answers": Counter(a.decode() for a in answers),
            "seconds": time.monotonic() - started}


def slow_headers(target: Target) -> dict[str, Any]:
    import selectors
    import socket

    socks: list[socket.socket] = []
    refused = ended = 0
    selector = selectors.DefaultSelector()
    began = time.monotonic()
    try:
        for _ in range(SLOW_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", target.port), timeout=10)
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            socks.append(sock)
        line = 0
        next_line = time.monotonic() + SLOW_EVERY
        while time.monotonic() - began < SLOW_FOR and selector.get_map():
            for key, _ in selector.select(timeout=max(0.0, next_line - time.monotonic())):
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if data.startswith(b"HTTP/1.1 503"):
                    refused += 1
                elif data:
                    continue
                else:
                    ended += 1
                selector.unregister(key.fileobj)
            if time.monotonic() >= next_line:
                line += 1
                next_line += SLOW_EVERY
                for key in list(selector.get_map().values()):
                    try:
                        key.fileobj.send(f"X-Slow-{line}: v\r\n".encode())  # type: ignore
                    except OSError:
                        pass        # seen as ended by the next select
        still_open = len(selector.get_map())
    finally:
        selector.close()
        for sock in socks:
            sock.close()
    return {"opened": len(socks), "refused": refused, "ended": ended, "open": still_open}


def run(requests: int = REQUESTS, seed: int = 10, **_: Any) -> Result:
    from rich.table import Table
    from rich.text import Text

    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-fuzz-"))
    fuzzed: dict[str, dict[str, Any]] = {}
    flooded: dict[str, dict[str, Any]] = {}
    slowed: dict[str, dict[str, Any]] = {}
    for start, count in ((start_berth_up, requests), (start_moto, min(requests, PEER_REQUESTS))):
        target = start(workdir)
        try:
            fuzzed[target.name] = fuzz(target, count, seed)
            flooded[target.name] = body_flood(target)
            slowed[target.name] = slow_headers(target)
        finally:
            target.stop()

    table = Table(title=f"Fuzz: {requests:,} requests to berth, the first "
                        f"{min(requests, PEER_REQUESTS):,} of them to moto (seed {seed}); "
                        f"{CLIENT_THREADS} client threads, one connection a request",
                  title_justify="left")
    for name, justify in (("server", "left"), ("kind", "left"), ("sent", "right"),
                          ("answered", "right"), ("5xx", "right"), ("501 unserved", "right"),
                          ("no answer", "right"),
                          ("hung up", "right"), ("tracebacks in log", "right"),
                          ("seconds", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name, result in fuzzed.items():
        total: Counter[str] = Counter()
        for kind, count in sorted(result["by_kind"].items()):
            total.update(count)
            table.add_row(name, kind, f"{count['sent']:,}", f"{count['answered']:,}",
                          str(count["5xx"]), str(count["501 unserved"]),
                          str(count["no answer"]), str(count["hung up"]),
                          "", "")
        table.add_row(Text(name, style="bold"), Text("all", style="bold"),
                      f"{total['sent']:,}", f"{total['answered']:,}",
                      Text(str(total["5xx"]), style="bold"), str(total["501 unserved"]),
                      str(total["no answer"]),
                      str(total["hung up"]), Text(str(result["tracebacks"]), style="bold"),
                      f"{result['seconds']:.0f}", end_section=True)
    bodies = Table(title=f"Unauthenticated bodies: {BODIES} parallel {BODY_MB} MB POSTs to "
                         f"{INVOKE_PATH}, made-up Authorization", title_justify="left")
    for name, justify in (("server", "left"), ("RSS before MB", "right"),
                          ("peak RSS growth MB", "right"), ("answers", "left"),
                          ("seconds", "right")):
        bodies.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name, result in flooded.items():
        bodies.add_row(name, f"{result['before_mb']:.0f}", f"{result['growth_mb']:.0f}",
                       ", ".join(f"{n}× {a}" for a, n in result["answers"].items()),
                       f"{result['seconds']:.1f}")
    slow = Table(title=f"Slow headers: {SLOW_CONNECTIONS:,} connections, a header line every "
                       f"{SLOW_EVERY:g} s, never ending their headers; after {SLOW_FOR:g} s",
                 title_justify="left")
    for name in ("server", "opened", "refused at once (503)", "ended by the server",
                 "still open"):
        slow.add_column(name, justify="left" if name == "server" else "right")
    for name, result in slowed.items():
        slow.add_row(name, f"{result['opened']:,}", f"{result['refused']:,}",
                     f"{result['ended']:,}", f"{result['open']:,}")
    berth_fuzz, berth_flood = fuzzed["berth"], flooded["berth"]
    five = sum(c["5xx"] for c in berth_fuzz["by_kind"].values())
    sent = sum(c["sent"] for c in berth_fuzz["by_kind"].values())
    met = (five == 0 and berth_fuzz["tracebacks"] == 0 and sent >= min(requests, 5000)
           and berth_flood["growth_mb"] < TARGET_RSS_MB and slowed["berth"]["open"] == 0)
    renderables: list[Any] = [table, bodies, slow]
    for sample in berth_fuzz["samples"]:
        renderables.append(Text(f"berth 5xx: {sample!r}", style="red"))
    renderables.append(Text(
        f"fuzz: {'targets met' if met else 'targets NOT met'} (berth: 0 5xx and 0 tracebacks "
        f"in {sent:,} requests; RSS growth {berth_flood['growth_mb']:.0f} MB < "
        f"{TARGET_RSS_MB} MB; {slowed['berth']['open']} slow connections open after "
        f"{SLOW_FOR:g} s)", style="bold green" if met else "bold red"))
    return Result(renderables, met, True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args(argv)
    result = run(requests=args.requests, seed=args.seed)
    console = make_console()
    for renderable in result.renderables:
        console.print(renderable)
    return 0 if result.targets_met else 1


if __name__ == "__main__":
    sys.exit(main())
