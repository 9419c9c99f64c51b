"""Tests for `Store.rows`, the hot-path read: the rows `read` would give, the same freshness
(no snapshot kept between calls), never waiting on a writer, and SQLAlchemy's conversions
and errors where the statement needs them. On SQLite and PostgreSQL."""
from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from berth.state.store import Store


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'berth.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    s = Store(url)
    yield s
    s.dispose()


@pytest.fixture
def items(store: Store) -> Iterator[sa.Table]:
    t = sa.Table(f"items_{uuid.uuid4().hex[:12]}", sa.MetaData(),
                 sa.Column("region", sa.String(32), primary_key=True),
                 sa.Column("name", sa.String(64), primary_key=True),
                 sa.Column("size", sa.BigInteger, nullable=False),
                 sa.Column("doc", sa.JSON))
    t.metadata.create_all(store.engine)
    with store.write() as conn:
        conn.execute(t.insert(), [{"region": r, "name": f"n{i:02d}", "size": i, "doc": {"i": i}}
                                  for r in ("a", "b") for i in range(30)])
    yield t
    t.metadata.drop_all(store.engine)


def page(t: sa.Table) -> sa.Select[Any]:
    return (sa.select(t.c.name, t.c.size)
            .where(t.c.region == sa.bindparam("region"), t.c.name > sa.bindparam("after"))
            .order_by(t.c.name).limit(sa.bindparam("limit")))


def test_rows_are_what_read_gives(store: Store, items: sa.Table) -> None:
    q = page(items)
    params = {"region": "b", "after": "n04", "limit": 3}
    with store.read() as conn:
        expected = [tuple(r) for r in conn.execute(q, params)]
    for _ in range(3):  # first call prepares the statement, later ones reuse it
        got = store.rows(q, params)
        assert [tuple(r) for r in got] == expected == [("n05", 5), ("n06", 6), ("n07", 7)]
        if store.is_sqlite:  # served by the driver directly, not through SQLAlchemy's rows
            assert all(type(r) is tuple for r in got)
    assert [tuple(r) for r in store.rows(q, {**params, "region": "c"})] == []


def test_rows_see_every_commit_before_them(store: Store, items: sa.Table) -> None:
    q = sa.select(items.c.size).where(items.c.region == sa.bindparam("region"),
                                      items.c.name == sa.bindparam("name"))
    key = {"region": "a", "name": "n01"}
    for value in (100, 101, 102):
        with store.write() as conn:
            conn.execute(items.update().where(items.c.region == "a", items.c.name == "n01")
                         .values(size=value))
        assert store.rows(q, key)[0][0] == value


def test_rows_do_not_wait_for_an_open_write(store: Store, items: sa.Table) -> None:
    q = sa.select(items.c.size).where(items.c.region == sa.bindparam("region"),
                                      items.c.name == sa.bindparam("name"))
    key = {"region": "a", "name": "n02"}
    assert store.rows(q, key)[0][0] == 2
    writing, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store.write() as conn:
            conn.execute(items.update().where(items.c.region == "a", items.c.name == "n02")
                         .values(size=200))
            writing.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        assert store.rows(q, key)[0][0] == 2  # the last commit, not the open write
    finally:
        release.set()
        thread.join(10)
    assert store.rows(q, key)[0][0] == 200


def test_statements_with_conversions_or_expanding_lists_still_work(
        store: Store, items: sa.Table) -> None:
    docs = sa.select(items.c.doc).where(items.c.region == sa.bindparam("region"),
                                        items.c.name == sa.bindparam("name"))
    assert store.rows(docs, {"region": "a", "name": "n03"})[0][0] == {"i": 3}  # JSON decoded
    names = (sa.select(items.c.name)
             .where(items.c.region == "a", items.c.name.in_(sa.bindparam("names", expanding=True)))
             .order_by(items.c.name))
    assert [r[0] for r in store.rows(names, {"names": ["n07", "n01"]})] == ["n01", "n07"]


def test_a_failing_statement_raises_what_read_raises(store: Store, items: sa.Table) -> None:
    gone = sa.Table(f"gone_{uuid.uuid4().hex[:12]}", sa.MetaData(),
                    sa.Column("x", sa.Integer))
    q = sa.select(gone.c.x).where(gone.c.x == sa.bindparam("x"))
    with pytest.raises(sa.exc.DBAPIError):
        store.rows(q, {"x": 1})
    # The store still serves reads afterwards.
    assert store.rows(page(items), {"region": "a", "after": "", "limit": 1})[0][0] == "n00"


def test_records_convert_as_sqlalchemy_does_and_read_by_attribute(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    table = sa.Table("records_t", sa.MetaData(), sa.Column("k", sa.String, primary_key=True),
                     sa.Column("doc", sa.JSON), sa.Column("flag", sa.Boolean))
    table.create(store.engine)
    with store.write() as conn:
        conn.execute(table.insert(), [{"k": "a", "doc": {"x": [1, 2]}, "flag": True},
                                      {"k": "b", "doc": None, "flag": False}])
    stmt = sa.select(table).where(table.c.k >= sa.bindparam("k")).order_by(table.c.k)
    got = store.records(stmt, {"k": "a"})
    with store.read() as conn:
        expected = conn.execute(stmt, {"k": "a"}).all()
    assert [tuple(r) for r in got] == [tuple(r) for r in expected] == [
        ("a", {"x": [1, 2]}, True), ("b", None, False)]
    assert got[0].doc == {"x": [1, 2]} and got[1].flag is False
    assert stmt in store._prepared_records and store._prepared_records[stmt] is not None
    store.dispose()
