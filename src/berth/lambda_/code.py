"""Function code, stored content-addressed by SHA-256.

The store holds every zip (table `lambda_code`), so any server replica sharing the database can
serve and run any function; `<data_dir>/lambda/code/<hex sha256>.zip` is this host's cache of
it. `put` checks an upload as Lambda does (a real zip, within the size quotas, every member
one a file system can hold: package.py), unpacks it, and stores it once per content;
`unpacked` gives the worker that directory tree, unpacking it first on a host that has
not yet.
"""
from __future__ import annotations

import base64
import errno
import hashlib
import io
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ..api.errors import ServiceError
from ..state.store import Store
from . import limits, package
from .schema import lambda_code

log = logging.getLogger(__name__)

UNZIP_FAILED = ("Could not unzip uploaded file. Please check your file, then try to upload "
                "again.")
# What the host's file system refuses in a name or a link: the package's fault, not the host's.
_PACKAGE_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ELOOP, errno.EILSEQ, errno.EINVAL})


@dataclass(frozen=True)
class StoredCode:
    code_sha256: str    # base64, as Lambda reports it
    hex: str
    size: int


def sha_hex(code_sha256: str) -> str:
    """The file name of a CodeSha256 (base64 → hex)."""
    return base64.b64decode(code_sha256).hex()


def check_zip(data: bytes, operation: str) -> zipfile.ZipFile:
    """Refuse what Lambda refuses: an oversized upload, a broken zip, too much unzipped."""
    if len(data) > limits.ZIP_DIRECT_UPLOAD:
        raise ServiceError("RequestEntityTooLargeException",
                           f"Request must be smaller than {limits.ZIP_REQUEST_BYTES} bytes for "
                           f"the {operation} operation", status=413)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError, OSError):
        raise ServiceError("InvalidParameterValueException", UNZIP_FAILED) from None
    if sum(i.file_size for i in infos) >= limits.UNZIPPED:
        raise ServiceError("InvalidParameterValueException",
                           f"Unzipped size must be smaller than {limits.UNZIPPED} bytes")
    try:
        bad = archive.testzip()     # CRCs: a truncated or corrupt member fails here, not later
        package.members(archive)
    except package.PackageError as exc:
        log.info("refused a package for %s: %s", operation, exc)
        raise ServiceError("InvalidParameterValueException", f"{UNZIP_FAILED} ({exc})") from None
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, RuntimeError):
        bad = "?"
    if bad is not None:
        raise ServiceError("InvalidParameterValueException", UNZIP_FAILED)
    return archive


class CodeStore:
    def __init__(self, data_dir: Path, store: Store) -> None:
        self.store = store
        self.root = data_dir / "lambda"
        self.code_dir = self.root / "code"
        self.unpacked_dir = self.root / "unpacked"
        self.code_dir.mkdir(parents=True, exist_ok=True)
        self.unpacked_dir.mkdir(parents=True, exist_ok=True)

    def path(self, code_sha256: str) -> Path:
        return self.code_dir / f"{sha_hex(code_sha256)}.zip"

    def path_for_hex(self, hex_digest: str) -> Path:
        return self.code_dir / f"{hex_digest}.zip"

    @staticmethod
    def inspect(data: bytes, operation: str) -> StoredCode:
        """Check an upload and name it, without storing it (DryRun)."""
        check_zip(data, operation)
        return _named(data)

    def put(self, data: bytes, operation: str) -> StoredCode:
        """Check, unpack and store an upload: a package this host cannot unpack is refused
        here, never at Invoke."""
        archive = check_zip(data, operation)
        stored = _named(data)
        try:
            self._unpack(stored.hex, archive)
        except OSError as exc:
            if exc.errno not in _PACKAGE_ERRNOS:
                raise
            log.info("refused a package for %s: %s", operation, exc)
            raise ServiceError("InvalidParameterValueException",
                               f"{UNZIP_FAILED} ({exc.strerror})") from None
        self.ensure(stored, data)
        return stored

    def ensure(self, stored: StoredCode, data: bytes) -> None:
        """Store the zip unless it is already there (same name, same content)."""
        with self.store.read() as conn:
            known = conn.execute(sa.select(lambda_code.c.size).where(
                lambda_code.c.hex == stored.hex)).first()
        if known is None:
            try:
                with self.store.write() as conn:
                    conn.execute(lambda_code.insert().values(hex=stored.hex, size=stored.size,
                                                             data=data))
            except sa.exc.IntegrityError:
                pass  # another request stored the same content first
        self._cache(stored.hex, data)

    def known(self, hex_digest: str) -> bool:
        """Whether the store still holds this code (no version may refer to it otherwise)."""
        with self.store.read() as conn:
            return conn.execute(sa.select(lambda_code.c.hex).where(
                lambda_code.c.hex == hex_digest)).first() is not None

    def local(self, hex_digest: str) -> Path | None:
        """This host's copy of the zip, fetched from the store if needed; None if unknown."""
        target = self.path_for_hex(hex_digest)
        if target.is_file():
            return target
        with self.store.read() as conn:
            data = conn.execute(sa.select(lambda_code.c.data).where(
                lambda_code.c.hex == hex_digest)).scalar()
        if data is None:
            return None
        self._cache(hex_digest, bytes(data))
        return target

    def _cache(self, hex_digest: str, data: bytes) -> None:
        target = self.path_for_hex(hex_digest)
        if target.exists() and target.stat().st_size == len(data):
            return
        fd, tmp = tempfile.mkstemp(dir=self.code_dir, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, code_sha256: str) -> bytes:
        local = self.local(sha_hex(code_sha256))
        if local is None:
            raise FileNotFoundError(code_sha256)
        return local.read_bytes()

    def discard(self, code_sha256: str) -> None:
        """Remove the zip of code no version refers to any more (the caller checked that).

        The unpacked tree stays: an invocation that started before the change may still be
        running from it. The worker removes it with `discard_unpacked` once its last sandbox
        of that code is gone.
        """
        hex_digest = sha_hex(code_sha256)
        with self.store.write() as conn:
            conn.execute(lambda_code.delete().where(lambda_code.c.hex == hex_digest))
        self.path_for_hex(hex_digest).unlink(missing_ok=True)

    def discard_unpacked(self, code_sha256: str) -> None:
        shutil.rmtree(self.unpacked_dir / sha_hex(code_sha256), ignore_errors=True)

    def unpacked(self, code_sha256: str) -> Path:
        """The code as a directory tree, unpacked on first use (by `put` on this host)."""
        hex_digest = sha_hex(code_sha256)
        final = self.unpacked_dir / hex_digest
        if final.is_dir():
            return final
        local = self.local(hex_digest)
        if local is None:
            raise FileNotFoundError(f"no code {hex_digest}")
        with zipfile.ZipFile(local) as archive:
            return self._unpack(hex_digest, archive)

    def _unpack(self, hex_digest: str, archive: zipfile.ZipFile) -> Path:
        """Unpacked into a private temporary directory and renamed into place, so a reader
        sees either nothing or the whole tree."""
        final = self.unpacked_dir / hex_digest
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(dir=self.unpacked_dir, prefix=f".{hex_digest[:12]}-"))
        try:
            package.unpack(archive, tmp)
            os.chmod(tmp, 0o755)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():      # not a lost race with another unpacker
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final


def _named(data: bytes) -> StoredCode:
    digest = hashlib.sha256(data)
    return StoredCode(base64.b64encode(digest.digest()).decode(), digest.hexdigest(), len(data))
