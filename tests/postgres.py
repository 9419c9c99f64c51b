"""A private, throw-away PostgreSQL server for tests.

`postgres_server()` runs initdb into a temporary directory, starts the server on a free
loopback port with its own unix-socket directory, yields a SQLAlchemy URL
(`postgresql+psycopg://...`) and stops the server again. Durability is traded for speed
(fsync off): the data directory is deleted afterwards anyway.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# Settings that make a test cluster fast and roomy; none of them matter for correctness
# of what the tests check (which is the store's semantics, not PostgreSQL's durability).
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries were found on this machine."""


def find_bindir() -> Path:
    """The bin directory of the newest PostgreSQL installed (Debian layout, then PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: _version_key(Path(p).parent.parent.name))
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin "
        "or on PATH; install them with `bash scripts/system-packages.sh` (run by `make test`)")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    # The port could in theory be taken between close() and the server's bind; on a test
    # machine that window is tiny, and a clash shows up as a clear start failure.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _run(argv: list[str], cwd: Path) -> None:
    proc = subprocess.run(_as_owner(argv), cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a private PostgreSQL server; yield its SQLAlchemy URL; stop and delete it."""
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="berth-pg-"))
    datadir, logfile = root / "data", root / "server.log"
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    started = False
    try:
        try:
            _start(bindir, datadir, logfile, root, port := _free_port())
        except RuntimeError as exc:
            log = logfile.read_text(errors="replace") if logfile.exists() else ""
            raise RuntimeError(f"{exc}\nserver log:\n{log}" if log else str(exc)) from exc
        started = True
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _stop(bindir, datadir, root)
        shutil.rmtree(root, ignore_errors=True)


def _start(bindir: Path, datadir: Path, logfile: Path, root: Path, port: int) -> None:
    # --no-sync and a C locale keep initdb to about a second.
    _run([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust",
          "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], cwd=root)
    settings = {**_SERVER_SETTINGS, "port": str(port),
                # A private socket directory: no clash with a system server's /run socket.
                "unix_socket_directories": f"'{root}'"}
    with open(datadir / "postgresql.conf", "a") as conf:
        conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
    _run([str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(logfile),
          "-w", "-t", "30", "start"], cwd=root)


def _stop(bindir: Path, datadir: Path, cwd: Path) -> None:
    """Stop exactly the server started above: pg_ctl first, its postmaster pid as a fallback."""
    pidfile = datadir / "postmaster.pid"
    pid = int(pidfile.read_text().split()[0]) if pidfile.exists() else None
    try:
        _run([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"],
             cwd=cwd)
    except RuntimeError:
        if pid is not None:
            try:
                # Killing the postmaster with SIGKILL leaves its children to notice and exit;
                # SIGQUIT is the documented "immediate shutdown" that takes them down too.
                os.kill(pid, signal.SIGQUIT)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and pidfile.exists():
                time.sleep(0.05)


@contextmanager
def private_database(url: str, prefix: str) -> Iterator[str]:
    """A new empty database on the server of `url`, dropped afterwards: for tests whose
    subject works on a whole database (schema creation, queues that take every due row)."""
    import sqlalchemy as sa
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()
