"""What a function package may hold, and how it is unpacked.

`members` reads a zip's members as they will appear under the task root and refuses what no
file system can show there: a name part over NAME_MAX bytes, a path that /var/task cannot
address within PATH_MAX, a link target that long, a member beneath a file or a symlink, one
name used for two kinds of thing. Symlinks are kept as written, wherever they point: a
sandbox resolves them in its own view of the file system (an absolute target is the
sandbox's path, `../..` stops at its root), as Lambda does with `node_modules/.bin`.

`unpack` writes the tree through directory file descriptors, never following a link: a
member cannot reach outside the tree through a symlink in the package, and the host never
resolves a link's target at all. Links are made last, after every file is written.
"""
from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import limits

NAME_MAX = 255              # bytes in one name, as Linux file systems allow
PATH_MAX = 4096             # bytes in a path with its terminating NUL
TASK_ROOT = "/var/task/"    # where a sandbox sees the tree: every member must be addressable
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


class PackageError(ValueError):
    """A member the package cannot be unpacked with; the message says which and why."""


@dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    kind: str                   # "dir", "file" or "link"
    target: bytes = b""         # a link's target, as written


def _parts(name: str) -> tuple[str, ...]:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise PackageError(f"{name!r} would be outside the task root")
    return tuple(p for p in path.parts if p not in ("", "."))


def _kind(info: zipfile.ZipInfo) -> str:
    if info.is_dir():
        return "dir"
    return "link" if stat.S_ISLNK(info.external_attr >> 16) else "file"


def members(archive: zipfile.ZipFile) -> list[Member]:
    """The members to unpack (later duplicates replace earlier ones, as unzip does), or a
    PackageError for the first that cannot be unpacked."""
    kinds: dict[tuple[str, ...], str] = {}
    found: list[Member] = []
    for info in archive.infolist():
        parts = _parts(info.filename)
        if not parts:
            continue
        encoded = [p.encode("utf-8", "surrogateescape") for p in parts]
        if any(len(p) > NAME_MAX for p in encoded):
            raise PackageError(f"a name in {info.filename!r} is longer than {NAME_MAX} bytes")
        if len(TASK_ROOT.encode()) + len(b"/".join(encoded)) >= PATH_MAX:
            raise PackageError(f"{info.filename[:80]!r}... is longer than a path may be")
        kind = _kind(info)
        for depth in range(1, len(parts)):
            above = kinds.setdefault(parts[:depth], "dir")
            if above != "dir":
                raise PackageError(f"{info.filename!r} is beneath a {above}")
        if kinds.setdefault(parts, kind) != kind:
            raise PackageError(f"{info.filename!r} is both a {kinds[parts]} and a {kind}")
        target = b""
        if kind == "link":
            if info.file_size >= PATH_MAX:
                raise PackageError(f"the target of link {info.filename!r} is too long")
            target = archive.read(info)
            if not target or b"\0" in target or len(target) >= PATH_MAX:
                raise PackageError(f"link {info.filename!r} has no usable target")
        found.append(Member(info, parts, kind, target))
    return found


class _Tree:
    """Directories of the tree, opened without following links; the last one kept open."""

    def __init__(self, root: Path) -> None:
        self.root = os.open(root, _DIR_FLAGS)
        self._last: tuple[tuple[str, ...], int] = ((), self.root)

    def dir(self, parts: tuple[str, ...]) -> int:
        """An fd of directory `parts`, made (mode 755) where missing."""
        if self._last[0] == parts:
            return self._last[1]
        fd = os.dup(self.root)
        try:
            for part in parts:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
                os.fchmod(fd, 0o755)
        except BaseException:
            os.close(fd)
            raise
        self._forget_last()
        self._last = (parts, fd)
        return fd

    def _forget_last(self) -> None:
        if self._last[1] != self.root:
            os.close(self._last[1])
        self._last = ((), self.root)

    def close(self) -> None:
        self._forget_last()
        os.close(self.root)


def unpack(archive: zipfile.ZipFile, root: Path) -> None:
    """Write the package's tree into the empty directory `root`. File modes come from the
    zip (a file without one is 644, every directory 755); a file always stays readable by
    its owner. Raises PackageError for a package `members` refuses, OSError for the host's
    failures."""
    found = members(archive)
    budget = limits.UNZIPPED
    tree = _Tree(root)
    try:
        for member in found:
            if member.kind == "dir":
                tree.dir(member.parts)
            elif member.kind == "file":
                budget = _write(archive, member, tree.dir(member.parts[:-1]), budget)
        for member in found:
            if member.kind == "link":
                parent = tree.dir(member.parts[:-1])
                try:
                    os.unlink(member.parts[-1], dir_fd=parent)    # a duplicate: the last wins
                except FileNotFoundError:
                    pass
                os.symlink(member.target, member.parts[-1], dir_fd=parent)
    finally:
        tree.close()


def _write(archive: zipfile.ZipFile, member: Member, parent: int, budget: int) -> int:
    mode = (member.info.external_attr >> 16) & 0o777
    fd = os.open(member.parts[-1], _FILE_FLAGS, 0o600, dir_fd=parent)
    with archive.open(member.info) as src, os.fdopen(fd, "wb") as dst:
        # Count real bytes: a zip's declared sizes can lie.
        while chunk := src.read(1 << 20):
            budget -= len(chunk)
            if budget < 0:
                raise PackageError("unzipped code exceeds the size quota")
            dst.write(chunk)
        os.fchmod(dst.fileno(), mode | 0o400 if mode else 0o644)
    return budget
