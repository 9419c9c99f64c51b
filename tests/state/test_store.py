"""Tests for the store: compare-and-swap, transactions, concurrency and durability.

Every semantic test runs on SQLite and on a private PostgreSQL server; tables are declared
in their own MetaData under unique names so they never collide with berth's schema or with
each other in the shared PostgreSQL database.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa

from postgres import private_database

from berth.state.store import Store, VersionConflict, versioned

THREADS, THREAD_INCREMENTS = 8, 25          # 200 successful increments in all
PROCESSES, PROCESS_INCREMENTS = 3, 40
TIME_CAP = 15.0                             # seconds; a stuck run fails instead of hanging
KEY = {"id": "c"}


def counters(name: str) -> sa.Table:
    """A versioned table of named integer counters, in a private MetaData."""
    return sa.Table(name, sa.MetaData(),
                    sa.Column("id", sa.String(64), primary_key=True),
                    sa.Column("n", sa.Integer, nullable=False),
                    sa.Column("version", sa.BigInteger, nullable=False, default=1))


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'berth.db'}"
    # Looked up lazily so a SQLite-only selection (-k sqlite) starts no server.
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = Store(url)
    yield s
    s.dispose()


@pytest.fixture
def table(store: Store) -> Iterator[sa.Table]:
    t = counters(f"counters_{uuid.uuid4().hex[:12]}")
    t.metadata.create_all(store.engine)
    yield t
    t.metadata.drop_all(store.engine)


def get(store: Store, table: sa.Table, key: str = "c") -> tuple[int, int] | None:
    """(n, version) of a counter, or None if it does not exist."""
    with store.read() as conn:
        row = conn.execute(sa.select(table.c.n, table.c.version)
                           .where(table.c.id == key)).first()
    return None if row is None else (int(row.n), int(row.version))


def test_insert_then_read(store: Store, table: sa.Table) -> None:
    with store.write() as conn:
        Store.insert(conn, table, {"id": "a", "n": 5})
        Store.insert(conn, table, {"id": "b", "n": 7})
    assert get(store, table, "a") == (5, 1)
    assert get(store, table, "b") == (7, 1)
    assert get(store, table, "missing") is None


def test_cas_update_applies_and_bumps_version(store: Store, table: sa.Table) -> None:
    with store.write() as conn:
        Store.insert(conn, table, {**KEY, "n": 0})
    with store.write() as conn:
        assert Store.cas_update(conn, table, KEY, 1, {"n": 10}) == 2
    with store.write() as conn:
        assert Store.cas_update(conn, table, KEY, 2, {"n": 11}) == 3
    assert get(store, table) == (11, 3)


def test_cas_update_with_stale_version_conflicts_and_changes_nothing(
        store: Store, table: sa.Table) -> None:
    with store.write() as conn:
        Store.insert(conn, table, {**KEY, "n": 0})
    with store.write() as conn:
        Store.cas_update(conn, table, KEY, 1, {"n": 1})
    with pytest.raises(VersionConflict) as info:
        with store.write() as conn:
            # Written first in the same transaction: the conflict must undo it too.
            Store.insert(conn, table, {"id": "other", "n": 99})
            Store.cas_update(conn, table, KEY, 1, {"n": 42})
    assert (info.value.table, info.value.key, info.value.expected) == (table.name, KEY, 1)
    assert get(store, table) == (1, 2)
    assert get(store, table, "other") is None


def test_cas_update_on_deleted_row_conflicts(store: Store, table: sa.Table) -> None:
    with store.write() as conn:
        Store.insert(conn, table, {**KEY, "n": 0})
    with store.write() as conn:
        conn.execute(table.delete().where(table.c.id == KEY["id"]))
    with pytest.raises(VersionConflict):
        with store.write() as conn:
            Store.cas_update(conn, table, KEY, 1, {"n": 1})
    assert get(store, table) is None


def test_write_rolls_back_when_the_block_raises(store: Store, table: sa.Table) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with store.write() as conn:
            Store.insert(conn, table, {"id": "a", "n": 1})
            raise RuntimeError("boom")
    assert get(store, table, "a") is None
    # The store stays usable: the rolled-back transaction left no lock behind.
    with store.write() as conn:
        Store.insert(conn, table, {"id": "a", "n": 2})
    assert get(store, table, "a") == (2, 1)


def test_failed_statement_rolls_back_the_transaction(store: Store, table: sa.Table) -> None:
    with store.write() as conn:
        Store.insert(conn, table, {"id": "a", "n": 1})
    with pytest.raises(sa.exc.IntegrityError):
        with store.write() as conn:
            Store.insert(conn, table, {"id": "b", "n": 1})
            Store.insert(conn, table, {"id": "a", "n": 1})   # duplicate key
    assert get(store, table, "b") is None
    with store.write() as conn:
        Store.insert(conn, table, {"id": "b", "n": 3})
    assert get(store, table, "b") == (3, 1)


def test_bump_advances_version_unconditionally(store: Store, table: sa.Table) -> None:
    with store.write() as conn:
        Store.insert(conn, table, {**KEY, "n": 0})
    with store.write() as conn:
        assert Store.bump(conn, table, KEY, {"n": 5}) == 2
        assert Store.bump(conn, table, KEY, {}) == 3
        assert Store.bump(conn, table, {"id": "missing"}, {"n": 1}) is None
    assert get(store, table) == (5, 3)
    # A reader holding the old version now loses its compare-and-swap.
    with pytest.raises(VersionConflict):
        with store.write() as conn:
            Store.cas_update(conn, table, KEY, 2, {"n": 6})


def test_sqlite_error_that_ends_the_transaction_is_not_masked(tmp_path: Any) -> None:
    store = Store(f"sqlite:///{tmp_path / 'full.db'}")
    table = counters("full")
    table.metadata.create_all(store.engine)
    # Capping the file at its current size makes inserts fail with SQLITE_FULL, after which
    # SQLite has already rolled back: write() must surface that error, not a failed ROLLBACK.
    with pytest.raises(sa.exc.OperationalError, match="full"):
        with store.write() as conn:
            conn.exec_driver_sql("PRAGMA max_page_count=1")
            for i in range(100_000):
                Store.insert(conn, table, {"id": f"{i:064d}", "n": i})
    store.dispose()     # the pooled connection keeps its cap
    reopened = Store(f"sqlite:///{tmp_path / 'full.db'}")
    with reopened.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0
    reopened.dispose()


def increment(store: Store, table: sa.Table, successes: int, deadline: float) -> list[int]:
    """Optimistic read → CAS increments until `successes` commit; the values written."""
    written: list[int] = []
    while len(written) < successes and time.monotonic() < deadline:
        found = get(store, table)
        assert found is not None
        n, version = found
        try:
            with store.write() as conn:
                Store.cas_update(conn, table, KEY, version, {"n": n + 1})
        except VersionConflict:
            continue
        written.append(n + 1)
    return written


def assert_no_lost_update(store: Store, table: sa.Table, written: list[int],
                          expected: int) -> None:
    # Each commit wrote n+1 over the n it read, so if no update was lost every value
    # 1..total was written exactly once and the counter ends at total.
    assert len(written) == expected, f"only {len(written)}/{expected} commits within the time cap"
    assert sorted(written) == list(range(1, expected + 1))
    assert get(store, table) == (expected, expected + 1)


def test_threads_compete_without_lost_updates(store: Store, table: sa.Table) -> None:
    with store.write() as conn:
        Store.insert(conn, table, {**KEY, "n": 0})
    deadline = time.monotonic() + TIME_CAP
    results: list[list[int]] = [[] for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def work(i: int) -> None:
        start.wait()
        results[i] = increment(store, table, THREAD_INCREMENTS, deadline)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIME_CAP + 5)
    written = [v for r in results for v in r]
    assert_no_lost_update(store, table, written, THREADS * THREAD_INCREMENTS)


def _in_child(prepare: Callable[..., Callable[[], Any]], args: tuple[Any, ...],
              start: Any, out: Any) -> None:
    """Entry point of spawned processes: prepare, wait for the others, run, report."""
    try:
        run = prepare(*args)
        start.wait()        # everything slow (imports, connecting) is done: start together
        out.put((True, run()))
    except Exception as exc:    # reported to the parent, which fails the test
        out.put((False, repr(exc)))


def run_processes(prepare: Callable[..., Callable[[], Any]], args: tuple[Any, ...],
                  count: int) -> list[Any]:
    """In `count` spawned processes, run what prepare(*args) returns, all released together."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(count), ctx.Queue()
    procs = [ctx.Process(target=_in_child, args=(prepare, args, start, out))
             for _ in range(count)]
    for p in procs:
        p.start()
    try:
        # Drain the queue before join: a child blocks on exit until its result is read.
        reports = [out.get(timeout=TIME_CAP + 30) for _ in procs]
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    assert [r for ok, r in reports if not ok] == []
    return [r for _, r in reports]


def _incrementer(url: str, table_name: str) -> Callable[[], list[int]]:
    store, table = Store(url), counters(table_name)
    get(store, table)                   # connect before the start line

    def run() -> list[int]:
        try:
            return increment(store, table, PROCESS_INCREMENTS, time.monotonic() + TIME_CAP)
        finally:
            store.dispose()
    return run


def test_processes_compete_without_lost_updates(url: str, store: Store,
                                                table: sa.Table) -> None:
    with store.write() as conn:
        Store.insert(conn, table, {**KEY, "n": 0})
    results = run_processes(_incrementer, (url, table.name), PROCESSES)
    written = [v for r in results for v in r]
    assert_no_lost_update(store, table, written, PROCESSES * PROCESS_INCREMENTS)


@pytest.fixture
def fresh_url(url: str) -> Iterator[str]:
    """`url`, but an empty database: for tests that create berth's global schema."""
    if url.startswith("sqlite"):
        yield url
        return
    with private_database(url, "fresh") as private:
        yield private


def _schema_creator(url: str, names: list[str]) -> Callable[[], None]:
    """Declares `names` in berth's global metadata (of this child only)."""
    for name in names:
        versioned(name, sa.Column("id", sa.String(64), primary_key=True))
    store = Store(url)
    with store.read() as conn:          # connect before the start line
        conn.exec_driver_sql("SELECT 1")

    def run() -> None:
        try:
            store.create_all()
        finally:
            store.dispose()
    return run


def test_create_all_from_processes_starting_together(fresh_url: str) -> None:
    names = [f"schema_{i}" for i in range(20)]
    run_processes(_schema_creator, (fresh_url, names), PROCESSES + 1)
    engine = sa.create_engine(fresh_url)
    assert set(names) <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


# The child commits one row per transaction and acknowledges it on stdout only after
# write() returned, i.e. after COMMIT: an acknowledged row must survive kill -9.
_DURABILITY_CHILD = """
import sys
import sqlalchemy as sa
from berth.state.store import Store
url, name = sys.argv[1:3]
store = Store(url)
table = sa.Table(name, sa.MetaData(), autoload_with=store.engine)
i = 0
while True:
    with store.write() as conn:
        Store.insert(conn, table, {"id": str(i), "n": i})
    print(i, flush=True)
    i += 1
"""


def test_sqlite_acknowledged_commits_survive_kill9(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    store = Store(url)
    table = counters("durable")
    table.metadata.create_all(store.engine)
    store.dispose()

    child = subprocess.Popen([sys.executable, "-c", _DURABILITY_CHILD, url, table.name],
                             stdout=subprocess.PIPE, text=True)
    acked: list[str] = []
    try:
        assert child.stdout is not None
        while len(acked) < 50:
            line = child.stdout.readline()
            assert line, f"child exited early with {child.wait()}"
            acked.append(line.strip())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    reopened = Store(url)
    try:
        with reopened.read() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            present = set(conn.execute(sa.select(table.c.id)).scalars())
        assert set(acked) <= present
        with reopened.write() as conn:      # the recovered database takes writes again
            Store.insert(conn, table, {"id": "after", "n": 0})
    finally:
        reopened.dispose()


def test_sqlite_change_token_moves_with_every_commit_and_only_then(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'berth.db'}"
    this, other = Store(url), Store(url)
    t = counters("tokens")
    t.metadata.create_all(this.engine)
    try:
        with this.write() as conn:
            Store.insert(conn, t, {"id": "c", "n": 0})
        quiet = this.change_token()
        assert this.change_token() == quiet                 # reads move nothing
        with this.read() as conn:
            conn.execute(sa.select(t)).all()
        assert this.change_token() == quiet
        with pytest.raises(RuntimeError):                   # a rolled-back block: nothing
            with this.write() as conn:
                Store.bump(conn, t, KEY, {"n": 1})
                raise RuntimeError("no")
        assert this.change_token() == quiet
        with this.write() as conn:                          # its own commit, foreseen
            before, after = this.commit_tokens(conn)
            Store.bump(conn, t, KEY, {"n": 2})
        assert before == quiet and this.change_token() == after != quiet
        with other.write() as conn:                         # another connection's commit
            Store.bump(conn, t, KEY, {"n": 3})
        assert this.change_token() not in (quiet, after)
    finally:
        t.metadata.drop_all(this.engine)
        this.dispose()
        other.dispose()


def test_postgresql_has_no_change_token(postgres_url: str) -> None:
    store = Store(postgres_url)
    try:
        assert store.change_token() is None
    finally:
        store.dispose()
