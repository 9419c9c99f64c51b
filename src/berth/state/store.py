"""The store: every durable write in berth goes through here.

SQLAlchemy Core over SQLite (WAL) by default or PostgreSQL. Every resource row carries a
`version`; `cas_update` commits a change only if the row still has the version the caller read,
which is how schedulers commit claims optimistically (DESIGN "Separation of scheduling from
state"). The store knows tables and rows, never AWS shapes.
"""
from __future__ import annotations

import json
import logging
import operator
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Iterator, Mapping

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

metadata = sa.MetaData()

# PostgreSQL advisory-lock key held while creating the schema ("berth" in ASCII); other
# advisory locks in berth must pick different keys.
_SCHEMA_LOCK_KEY = 0x6265727468

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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL + NORMAL: a committed transaction is in the WAL before COMMIT returns, so it
    # survives the process being killed (-9); only an OS crash could lose the last commits.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    # Checkpoints run in the store's checkpointer thread, not in the committing request.
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
    cur.close()


# The checkpointer copies the WAL back into the database after this many commits, or this
# long after the first commit it has not copied yet. Once the WAL holds this many frames
# (64 MiB of 4 KiB pages) it also finishes the copy under the write lock, so that the WAL
# starts over; the file is cut back to the size limit when it does.
_CHECKPOINT_COMMITS = 64
_CHECKPOINT_SECONDS = 0.25
_WAL_SIZE_LIMIT = 80 * 1024 * 1024
_RESTART_FRAMES = 16384
_LOCKED_FRAMES = 256


class _Checkpointer:
    """Moves SQLite's WAL checkpoints off the commit path: SQLite would otherwise run one
    inside whichever COMMIT crosses 1,000 WAL pages, syncing the database file while that
    request waits. Here a daemon thread copies the WAL back on its own connection (the sqlite3
    driver releases the GIL while it works): PASSIVE checkpoints alongside the writers. Only a
    fully copied WAL lets the next writer start it over from the beginning, and under a steady
    stream of commits those never get there: the WAL, and with it the cost of every commit and
    read, would grow without end. So once it holds _RESTART_FRAMES frames, one more checkpoint
    runs holding the store's write lock, copying the few pages written meanwhile. A crash loses
    nothing: committed transactions are in the WAL, and whoever opens the database next copies
    them back."""

    def __init__(self, engine: Engine, writer: Callable[[], AbstractContextManager[None]]
                 ) -> None:
        self._engine = engine
        self._writer = writer
        self._wake = threading.Event()
        self._stopping = False
        self._commits = 0           # commits since the last checkpoint started
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer",
                                        daemon=True)
        self._thread.start()

    def committed(self) -> None:
        self._commits += 1
        if self._commits >= _CHECKPOINT_COMMITS:
            self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(10)

    def _run(self) -> None:
        raw: Any = None
        while not self._stopping:
            if not self._commits:
                self._wake.wait()
                self._wake.clear()
                continue
            self._wake.wait(_CHECKPOINT_SECONDS)
            self._wake.clear()
            self._commits = 0
            try:
                if raw is None:
                    fairy = self._engine.raw_connection()
                    fairy.detach()
                    raw = fairy.dbapi_connection
                _, frames, copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames >= _RESTART_FRAMES:
                    # Catch up alongside the writers first: the locked pass should find little
                    # left to copy, since every writer waits for it.
                    for _ in range(3):
                        if frames - copied <= _LOCKED_FRAMES:
                            break
                        _, frames, copied = raw.execute(
                            "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    with self._writer():
                        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except Exception:       # e.g. the database went away: the next one tries again
                log.warning("SQLite checkpoint failed", exc_info=True)
                if raw is not None:
                    raw.close()
                    raw = None
        if raw is not None:
            raw.close()


class _Prepared:
    """A read statement compiled once for SQLite, run straight on the driver's cursor."""

    __slots__ = ("defaults", "order", "sql")

    def __init__(self, sql: str, order: tuple[str, ...], defaults: dict[str, Any]) -> None:
        self.sql, self.order, self.defaults = sql, order, defaults

    @classmethod
    def of(cls, stmt: sa.Executable, dialect: sa.Dialect) -> _Prepared | None:
        """The statement prepared, or None if SQLAlchemy must run it: only what the driver
        takes and hands back unchanged may skip it (no type conversion on the way in or
        out, no parameters expanded at execution such as IN lists)."""
        compiled = stmt.compile(dialect=dialect)
        sql = str(compiled)
        converts = bool(compiled._bind_processors) or any(
            col[3]._cached_result_processor(dialect, None) is not None
            for col in compiled._result_columns or ())
        if converts or not compiled.positional or "POSTCOMPILE" in sql:
            return None
        # Values the statement carries itself (literals, the OFFSET of a LIMIT) as defaults.
        return cls(sql, tuple(compiled.positiontup or ()),
                   compiled.construct_params(_check=False))

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        merged = {**self.defaults, **params}
        return [merged[name] for name in self.order]


class _PreparedWrite:
    """A data-changing statement compiled once for SQLite, for one set of parameter names, run
    straight on the driver's cursor. SQLAlchemy's own bind processors (JSON to text, ...) are
    applied here, so the values stored are the ones SQLAlchemy would have stored."""

    __slots__ = ("convert", "pick", "sql")

    def __init__(self, sql: str, order: tuple[str, ...],
                 processors: tuple[Any, ...]) -> None:
        self.sql = sql
        self.pick = operator.itemgetter(*order)
        self.convert = [(i, proc) for i, proc in enumerate(processors) if proc is not None]

    @classmethod
    def of(cls, stmt: sa.Executable, keys: tuple[str, ...],
           dialect: sa.Dialect) -> _PreparedWrite | None:
        """The statement prepared, or None if SQLAlchemy must run it: one that needs a value
        the caller does not give (a column default) or expands parameters at execution."""
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        sql = str(compiled)
        order = tuple(compiled.positiontup or ())
        if (not compiled.positional or "POSTCOMPILE" in sql or len(order) < 2
                or not set(order) <= set(keys)):
            return None
        processors = compiled._bind_processors
        return cls(sql, order, tuple(processors.get(name) for name in order))

    def args(self, row: Mapping[str, Any]) -> list[Any]:
        values = list(self.pick(row))
        for i, proc in self.convert:
            values[i] = proc(values[i])
        return values


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # SQLite connections kept for `rows`, outside the pool (see there), and what `rows`
        # knows of each statement it was given: _Prepared, or None for "use SQLAlchemy".
        self._readers: list[Any] = []
        self._prepared: dict[sa.Executable, _Prepared | None] = {}
        self._write_conn: Connection | None = None     # SQLite: see `write`
        self._prepared_writes: dict[tuple[sa.Executable, tuple[str, ...]],
                                    _PreparedWrite | None] = {}
        if self.is_sqlite:
            self.engine: Engine = sa.create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 10},
                pool_size=8, max_overflow=8, json_serializer=_json_dumps,
                json_deserializer=orjson.loads)
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # SQLite allows one writer: serialise writers here instead of spinning on
            # SQLITE_BUSY, and start write transactions IMMEDIATE so reads inside them
            # see the latest committed state.
            self._write_lock: threading.Lock | None = threading.Lock()
            self._checkpointer: _Checkpointer | None = _Checkpointer(self.engine, self._writer)
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

    def _prepare(self, stmt: sa.Executable) -> _Prepared | None:
        try:
            return self._prepared[stmt]
        except KeyError:
            pass
        if len(self._prepared) >= _MAX_PREPARED:
            return None  # statements built per call: SQLAlchemy's own cache serves them
        prepared = self._prepared[stmt] = _Prepared.of(stmt, self.engine.dialect)
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
                    prepared = self._prepared_writes[key] = _PreparedWrite.of(
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
            conn = self._write_conn
            if conn is None or conn.invalidated:
                conn = self._write_conn = self.engine.connect()
            raw = conn.connection.driver_connection
            try:
                self._driver_sql(raw, "BEGIN IMMEDIATE")
                yield conn
                self._driver_sql(raw, "COMMIT")
            except BaseException:
                self._write_conn = None
                try:
                    # SQLite ends the transaction itself on some errors (SQLITE_FULL,
                    # SQLITE_IOERR, ...); a ROLLBACK then fails and would hide the real error.
                    if not conn.invalidated and raw.in_transaction:
                        raw.execute("ROLLBACK")
                finally:
                    conn.close()
                raise
            # What the block ran through SQLAlchemy opened a transaction on its side only (the
            # driver's was the BEGIN above): close it; the driver has nothing left to end.
            conn.rollback()
            assert self._checkpointer is not None
            self._checkpointer.committed()

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
