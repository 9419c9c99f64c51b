"""A few hundred fuzzed requests against a real `berth up` (bench/fuzz.py sends thousands):
none may answer a 5xx, and the server may log no traceback."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from berth_process import ACCESS_KEY, SECRET_KEY, BerthProcess
from fuzz_requests import Fuzzer, send, tracebacks

REQUESTS = 400


def test_fuzzed_requests_get_no_5xx_and_log_no_traceback(berth_up: BerthProcess) -> None:
    cases = list(Fuzzer(berth_up.port, ACCESS_KEY, SECRET_KEY, seed=7).cases(REQUESTS))
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda case: send(berth_up.port, case, timeout=30), cases))
    failures = [(case.data[:200], out.head[:300]) for case, out in zip(cases, outcomes)
                if out.server_error]
    assert failures == []
    # The cases reached the server: all but a few of those due an answer got one.
    due = [out for case, out in zip(cases, outcomes) if case.answered]
    assert sum(out.status is not None for out in due) >= 0.9 * len(due)
    assert {case.kind for case in cases} == {"pre-auth", "signed", "mount", "wire"}
    log = berth_up.log_path.read_text(errors="replace")
    assert tracebacks(log) == 0, log[-5000:]
