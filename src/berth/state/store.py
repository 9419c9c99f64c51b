"""The store: every durable write in berth goes through here.

SQLAlchemy Core over SQLite (WAL) by default or PostgreSQL. Every resource row carries a
`version`; `cas_update` commits a change only if the row still has the version the caller read,
which is how schedulers commit claims optimistically (DESIGN "Separation of scheduling from
state"). The store knows tables and rows, never AWS shapes.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from . import sqlite
from .prepared import PreparedRead, PreparedRecords, PreparedWrite

metadata = sa.MetaData()

# PostgreSQL advisory-lock key held while creating the schema ("berth" in ASCII); other
# advisory locks in berth must pick different keys.
_SCHEMA_LOCK_KEY = 0x6265727468

# See Store.change_token.
ChangeToken = tuple[int, int, int]

# Distinct statements `Store.rows` compiles and keeps; hot paths have a handful.
_MAX_PREPARED = 256


class VersionConflict(Exception):
    """A compare-and-swap found the row changed (or gone) since it was read."""

    def __init__(self, table: str, key: Mapping[str, Any], expected: int) -> None:
        super().__init__(f"{table} {dict(key)} is no longer at version {expected}")
        self.table, self.key, self.expected = table, dict(key), expected


def versioned(name: str, *columns: sa.schema.SchemaItem) -> sa.Table:
    """Declare a resource table: the columns given plus the row `version`."""
    return sa.Table(name, metadata, *columns,
                    sa.Column("version", sa.BigInteger, nullable=False, default=1))


def _json_dumps(value: Any) -> str:
    """JSON columns' text: orjson's (several times faster than json's), falling back to json
    for what orjson refuses and json takes (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # SQLite connections kept for `rows`, outside the pool (see there), and what `rows`
        # knows of each statement it was given: PreparedRead, or None for "use SQLAlchemy".
        self._readers: list[Any] = []
        self._prepared: dict[sa.Executable, PreparedRead | None] = {}
        self._prepared_records: dict[sa.Executable, PreparedRecords | None] = {}
        self._write_conn: Connection | None = None     # SQLite: see `write`
        self._writers = 0       # SQLite: writer connections opened so far
        self._commits = 0       # SQLite: transactions committed through `write`
        self._prepared_writes: dict[tuple[sa.Executable, tuple[str, ...]],
                                    PreparedWrite | None] = {}
        if self.is_sqlite:
            self.engine: Engine = sa.create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 10},
                pool_size=8, max_overflow=8, json_serializer=_json_dumps,
                json_deserializer=orjson.loads)
            event.listen(self.engine, "connect", sqlite.pragmas)
            # SQLite allows one writer: serialise writers here instead of spinning on
            # SQLITE_BUSY, and start write transactions IMMEDIATE so reads inside them
            # see the latest committed state.
            self._write_lock: threading.Lock | None = threading.Lock()
            self._checkpointer: sqlite.Checkpointer | None = sqlite.Checkpointer(
                self.engine, self._writer)
        else:
            self.engine = sa.create_engine(url, pool_size=16, max_overflow=16,
                                           pool_pre_ping=True, json_serializer=_json_dumps,
                                           json_deserializer=orjson.loads)
            self._write_lock = None
            self._checkpointer = None

    def create_all(self) -> None:
        """Create the missing tables; safe when several processes start at once."""
        # Processes starting together would race between "does it exist?" and CREATE.
        # Inside one write transaction the two are atomic: BEGIN IMMEDIATE serialises
        # SQLite writers across processes, and PostgreSQL replicas queue on an advisory lock.
        with self.write() as conn:
            if not self.is_sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": _SCHEMA_LOCK_KEY})
            metadata.create_all(conn)

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._write_conn is not None:
            self._write_conn.close()
            self._write_conn = None
        while self._readers:
            self._readers.pop().close()
        self.engine.dispose()

    @contextmanager
    def _writer(self) -> Iterator[None]:
        if self._write_lock is None:
            yield
        else:
            with self._write_lock:
                yield

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads: one consistent snapshot per statement."""
        with self.engine.connect() as conn:
            yield conn

    def rows(self, stmt: sa.Executable, params: Mapping[str, Any]) -> list[Any]:
        """Every row of one read statement, with the same snapshot rule as `read`.

        For hot read paths whose statements are built once (module constants with bind
        parameters): on SQLite such a statement is compiled once and run on the driver's
        cursor over a connection kept for reads, which costs a fraction of a pass through
        SQLAlchemy's execution and pool; the rows are then plain tuples (index or unpack
        them). Anything else (PostgreSQL, statements with type conversions) goes through
        `read` and gives SQLAlchemy rows, which index and unpack the same way.
        """
        prepared = self._prepare(stmt) if self.is_sqlite else None
        if prepared is None:
            with self.read() as conn:
                return list(conn.execute(stmt, params).all())
        return self._run(prepared, stmt, params)

    def records(self, stmt: sa.Executable, params: Mapping[str, Any]) -> list[Any]:
        """Like `rows`, for statements whose columns SQLAlchemy converts (JSON, booleans):
        on SQLite they too are compiled once and run on the driver, and each row is a record
        with the columns as attributes and SQLAlchemy's conversions applied; elsewhere, or
        for a statement that cannot be prepared, SQLAlchemy's rows (which are alike)."""
        prepared = None
        if self.is_sqlite:
            try:
                prepared = self._prepared_records[stmt]
            except KeyError:
                if len(self._prepared_records) < _MAX_PREPARED:
                    prepared = self._prepared_records[stmt] = PreparedRecords.of(
                        stmt, self.engine.dialect)
        if prepared is None:
            with self.read() as conn:
                return list(conn.execute(stmt, params).all())
        found = self._run(prepared.read, stmt, params)
        if found and isinstance(found[0], sa.Row):     # SQLAlchemy ran it after all
            return found
        return [prepared.record(r) for r in found]

    def _run(self, prepared: PreparedRead, stmt: sa.Executable,
             params: Mapping[str, Any]) -> list[Any]:
        """Run a prepared read on a kept reader connection (see `rows`)."""
        args = prepared.args(params)
        try:
            raw = self._readers.pop()
        except IndexError:
            raw = self._new_reader()
        try:
            found = raw.execute(prepared.sql, args).fetchall()
        except self.engine.dialect.loaded_dbapi.Error:
            # A failing connection is not reused. SQLAlchemy runs the statement again and
            # raises its own wrapped error if it fails there too, as `read` would.
            raw.close()
            with self.read() as conn:
                return list(conn.execute(stmt, params).all())
        if raw.in_transaction:  # only a data-changing statement opens one: never keep it
            raw.rollback()
        self._readers.append(raw)
        return found

    def _prepare(self, stmt: sa.Executable) -> PreparedRead | None:
        try:
            return self._prepared[stmt]
        except KeyError:
            pass
        if len(self._prepared) >= _MAX_PREPARED:
            return None  # statements built per call: SQLAlchemy's own cache serves them
        prepared = self._prepared[stmt] = PreparedRead.of(stmt, self.engine.dialect)
        return prepared

    def execute_many(self, conn: Connection, stmt: sa.Executable,
                     params: list[dict[str, Any]]) -> int:
        """Run one data-changing statement once per item of `params` (all with the same keys)
        inside `conn`'s transaction (from `write`); returns the number of rows it changed.

        For hot write paths whose statements are built once: on SQLite the statement is
        compiled once per set of keys and run as one executemany on the driver's cursor,
        skipping SQLAlchemy's execution machinery as `rows` does for reads. A driver error
        then comes unwrapped (sqlite3.Error, not sqlalchemy.exc.DBAPIError).
        """
        prepared = None
        if self.is_sqlite:
            key = (stmt, tuple(params[0]))
            try:
                prepared = self._prepared_writes[key]
            except KeyError:
                if len(self._prepared_writes) < _MAX_PREPARED:
                    prepared = self._prepared_writes[key] = PreparedWrite.of(
                        stmt, key[1], self.engine.dialect)
        if prepared is None:
            return int(conn.execute(stmt, params).rowcount)
        cur = conn.connection.driver_connection.cursor()
        try:
            cur.executemany(prepared.sql, [prepared.args(p) for p in params])
            return int(cur.rowcount)
        finally:
            cur.close()

    def _new_reader(self) -> Any:
        """A driver connection set up as the pool sets up its own (pragmas included), then
        detached from the pool: held between reads without holding a pool slot. Readers
        run in autocommit (a SELECT opens no transaction in sqlite3), so one kept between
        requests holds no snapshot and no lock."""
        fairy = self.engine.raw_connection()
        fairy.detach()
        return fairy.dbapi_connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        if not self.is_sqlite:
            with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        # SQLite has one writer at a time: this process's writes take turns on one connection
        # kept for them, and start IMMEDIATE so reads inside them see the latest state.
        with self._writer():
            conn = self._kept_writer()
            raw = conn.connection.driver_connection
            try:
                self._driver_sql(raw, "BEGIN IMMEDIATE")
                yield conn
                self._driver_sql(raw, "COMMIT")
                self._commits += 1
            except BaseException:
                self._end_failed(conn, raw)
                raise
            finally:
                # What the block ran through SQLAlchemy opened a transaction on its side only
                # (the driver's was the BEGIN above): close it; the driver has nothing to end.
                if not conn.closed and not conn.invalidated:
                    conn.rollback()
            assert self._checkpointer is not None
            self._checkpointer.committed()

    def _end_failed(self, conn: Connection, raw: Any) -> None:
        """Roll back a failed write transaction; a connection that cannot is let go."""
        try:
            # SQLite ends the transaction itself on some errors (SQLITE_FULL, SQLITE_IOERR,
            # ...); a ROLLBACK then fails and would hide the real error.
            if not conn.invalidated and raw.in_transaction:
                raw.execute("ROLLBACK")
        except Exception:
            pass
        if conn.invalidated or raw.in_transaction:
            self._write_conn = None
            conn.close()

    def writer_busy(self) -> bool:
        """Whether a write transaction of this process is under way (SQLite: writes take
        turns); one that starts now would wait for it."""
        return self._write_lock is not None and self._write_lock.locked()

    def _kept_writer(self) -> Connection:
        """The connection kept for writes (SQLite; hold the write lock)."""
        conn = self._write_conn
        if conn is None or conn.invalidated:
            conn = self._write_conn = self.engine.connect()
            self._writers += 1
        return conn

    def change_token(self) -> ChangeToken | None:
        """On SQLite, a value that moves whenever a write reaches the database: one of this
        process's (counted in `write`) or another connection's (SQLite's data_version as the
        kept writer connection sees it: its own commits do not move it). A cache found exact
        under one token is still exact while the token stays the same. None on PostgreSQL,
        which has no such cheap signal."""
        if not self.is_sqlite:
            return None
        with self._writer():
            return self._token(self._kept_writer())

    def commit_tokens(self, conn: Connection) -> tuple[ChangeToken | None, ChangeToken | None]:
        """Inside `write`: the change token as this transaction began, and the one the store
        will have once it commits (it holds SQLite's write lock: nothing else commits in
        between). (None, None) on PostgreSQL."""
        if not self.is_sqlite:
            return None, None
        before = self._token(conn)
        return before, (before[0], before[1], before[2] + 1)

    def _token(self, conn: Connection) -> ChangeToken:
        raw = conn.connection.driver_connection
        data_version = raw.execute("PRAGMA data_version").fetchone()[0]
        # The writer connection's ordinal too: data_version counts per connection.
        return (self._writers, int(data_version), self._commits)

    def _driver_sql(self, raw: Any, sql: str) -> None:
        """A statement straight on the driver, its failure raised as SQLAlchemy would."""
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            raw.execute(sql)
        except dbapi_error as exc:
            raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi_error) from exc

    @staticmethod
    def insert(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> None:
        conn.execute(table.insert().values(version=1, **values))

    @staticmethod
    def cas_update(conn: Connection, table: sa.Table, key: Mapping[str, Any],
                   expected_version: int, values: Mapping[str, Any]) -> int:
        """Apply `values` to the row at `key` only if it is still at `expected_version`.

        Returns the new version; raises VersionConflict if the row changed or vanished.
        """
        cond = sa.and_(*(table.c[k] == v for k, v in key.items()),
                       table.c.version == expected_version)
        new_version = expected_version + 1
        result = conn.execute(table.update().where(cond).values(version=new_version, **values))
        if result.rowcount != 1:
            raise VersionConflict(table.name, key, expected_version)
        return new_version

    @staticmethod
    def bump(conn: Connection, table: sa.Table, key: Mapping[str, Any],
             values: Mapping[str, Any]) -> int | None:
        """Unconditional update that still advances the version; None if no such row."""
        cond = sa.and_(*(table.c[k] == v for k, v in key.items()))
        row = conn.execute(table.update().where(cond)
                           .values(version=table.c.version + 1, **values)
                           .returning(table.c.version)).first()
        return None if row is None else int(row[0])
