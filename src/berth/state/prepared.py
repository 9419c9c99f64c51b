"""Statements compiled once for SQLite and run straight on the driver's cursor: what
`Store.rows` and `Store.execute_many` use on hot paths, where a pass through SQLAlchemy's
execution machinery costs more than the statement itself."""
from __future__ import annotations

import collections
import operator
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa


class PreparedRead:
    """A read statement compiled once for SQLite, run straight on the driver's cursor."""

    __slots__ = ("defaults", "order", "sql")

    def __init__(self, sql: str, order: tuple[str, ...], defaults: dict[str, Any]) -> None:
        self.sql, self.order, self.defaults = sql, order, defaults

    @classmethod
    def of(cls, stmt: sa.Executable, dialect: sa.Dialect) -> PreparedRead | None:
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


class PreparedRecords:
    """A read statement compiled once for SQLite whose rows come back as records: named
    tuples (attribute access, as SQLAlchemy's rows), with SQLAlchemy's own result processors
    applied (JSON text to values, integers to booleans), so they hold what SQLAlchemy would
    have handed back."""

    __slots__ = ("convert", "make", "read")

    def __init__(self, read: PreparedRead, names: tuple[str, ...],
                 processors: tuple[Any, ...]) -> None:
        self.read = read
        self.make = collections.namedtuple("Record", names, rename=True)._make  # type: ignore
        self.convert = [(i, proc) for i, proc in enumerate(processors) if proc is not None]

    @classmethod
    def of(cls, stmt: sa.Executable, dialect: sa.Dialect) -> PreparedRecords | None:
        """The statement prepared, or None if SQLAlchemy must run it (a bind parameter that
        converts, or one expanded at execution)."""
        compiled = stmt.compile(dialect=dialect)
        sql = str(compiled)
        if compiled._bind_processors or not compiled.positional or "POSTCOMPILE" in sql:
            return None
        columns = compiled._result_columns or ()
        read = PreparedRead(sql, tuple(compiled.positiontup or ()),
                            compiled.construct_params(_check=False))
        return cls(read, tuple(col[0] for col in columns),
                   tuple(col[3]._cached_result_processor(dialect, None) for col in columns))

    def record(self, row: Any) -> Any:
        if not self.convert:
            return self.make(row)
        values = list(row)
        for i, proc in self.convert:
            values[i] = proc(values[i])
        return self.make(values)


class PreparedWrite:
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
           dialect: sa.Dialect) -> PreparedWrite | None:
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
