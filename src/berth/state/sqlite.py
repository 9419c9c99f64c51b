"""What berth sets up on every SQLite connection, and the thread that checkpoints its WAL."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

# The checkpointer copies the WAL back into the database after this many commits, or this
# long after the first commit it has not copied yet. Once the WAL holds this many frames
# (64 MiB of 4 KiB pages) it also finishes the copy under the write lock, so that the WAL
# starts over; the file is cut back to the size limit when it does.
_CHECKPOINT_COMMITS = 64
_CHECKPOINT_SECONDS = 0.25
_WAL_SIZE_LIMIT = 80 * 1024 * 1024
_RESTART_FRAMES = 16384
_LOCKED_FRAMES = 256


def pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Set up a new connection (the engine's "connect" event)."""
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


class Checkpointer:
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
