"""The store: every durable write in berth goes through here.

SQLAlchemy Core over SQLite (WAL) by default or PostgreSQL. Every resource row carries a
`version`; `cas_update` commits a change only if the row still has the version the caller read,
which is how schedulers commit claims optimistically (DESIGN "Separation of scheduling from
state"). The store knows tables and rows, never AWS shapes.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL + NORMAL: a committed transaction is in the WAL before COMMIT returns, so it
    # survives the process being killed (-9); only an OS crash could lose the last commits.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


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


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # SQLite connections kept for `rows`, outside the pool (see there), and what `rows`
        # knows of each statement it was given: _Prepared, or None for "use SQLAlchemy".
        self._readers: list[Any] = []
        self._prepared: dict[sa.Executable, _Prepared | None] = {}
        if self.is_sqlite:
            self.engine: Engine = sa.create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 10},
                pool_size=8, max_overflow=8)
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # SQLite allows one writer: serialise writers here instead of spinning on
            # SQLITE_BUSY, and start write transactions IMMEDIATE so reads inside them
            # see the latest committed state.
            self._write_lock: threading.Lock | None = threading.Lock()
        else:
            self.engine = sa.create_engine(url, pool_size=16, max_overflow=16,
                                           pool_pre_ping=True)
            self._write_lock = None

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
        with self._writer(), self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    # SQLite ends the transaction itself on some errors (SQLITE_FULL,
                    # SQLITE_IOERR, ...); a ROLLBACK then fails and would hide the real error.
                    if (not conn.invalidated
                            and conn.connection.dbapi_connection.in_transaction):
                        conn.exec_driver_sql("ROLLBACK")
                    raise
                else:
                    conn.exec_driver_sql("COMMIT")
            else:
                with conn.begin():
                    yield conn

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
