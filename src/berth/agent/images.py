"""The local image store: images imported from OCI image layouts and `docker save` archives,
unpacked into root file systems that the runc driver runs containers on.

Layout under `<data>/images/`: `sha256/<config digest>/{rootfs/,image.json}` (content-addressed
by the image config, as Docker's image ids are), `repositories.json` (name:tag → id).
Layers are applied in order with their whiteouts; nothing in an archive can write outside the
image's root file system (paths are resolved as a chroot would).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import stat
import tarfile
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .drivers.base import ImageNotFound
from .oci import resolve_in_root

log = logging.getLogger(__name__)

HOST_IMAGE = "host"     # not stored: the host's own file system, read-only
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"}
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


class ImageError(Exception):
    """The archive is not an image berth can import (and says why)."""


@dataclass
class Image:
    id: str                                 # "sha256:<hex>" of the image config
    rootfs: Path
    names: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)    # "KEY=value", the image's Env
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    working_dir: str = ""
    user: str = ""
    size: int = 0                           # bytes unpacked
    imported_at: float = 0.0

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]


def runnable(names: list[str], host: str | None = None, most: int = 8) -> str:
    """What a host can run, for an error message: a few image names (and `host`)."""
    shown = names[:most] + ([f"{len(names) - most} more"] if len(names) > most else [])
    if host:
        shown.append(f"{host} (the host's file system, read-only)")
    return ", ".join(shown) if shown else "no images"


def normalize_name(name: str) -> str:
    """`busybox` → `busybox:latest`; Docker Hub's implicit prefixes dropped."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/",
                   "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if "@" not in name and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


class ImageStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "images"
        (self.root / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)

    # -- reading ---------------------------------------------------------------------

    def get(self, ref: str) -> Image:
        """The image a name, `sha256:` id or id prefix (12+ hex digits) refers to."""
        repos = self._repositories()
        image_id = repos.get(normalize_name(ref)) if ref else None
        if image_id is None:
            hexpart = ref.removeprefix("sha256:")
            if len(hexpart) >= 12 and all(c in "0123456789abcdef" for c in hexpart):
                matches = [d.name for d in (self.root / "sha256").iterdir()
                           if d.name.startswith(hexpart)]
                if len(matches) == 1:
                    image_id = "sha256:" + matches[0]
        if image_id is None:
            raise ImageNotFound(f"image {ref!r} is not in this host's image store and berth "
                                f"pulls from no registry; this host can run "
                                f"{runnable(self.names(), HOST_IMAGE)}; add images with "
                                "`berth image import FILE`")
        image = self._load(image_id)
        if image is None:
            raise ImageNotFound(f"image {ref!r} ({image_id}) is missing from the image store")
        return image

    def names(self) -> list[str]:
        """Every image name in the store, sorted."""
        return sorted(self._repositories())

    def list(self) -> list[Image]:
        images = [self._load("sha256:" + d.name) for d in (self.root / "sha256").iterdir()]
        return sorted((i for i in images if i is not None), key=lambda i: -i.imported_at)

    def _load(self, image_id: str) -> Image | None:
        idir = self.root / "sha256" / image_id.removeprefix("sha256:")
        try:
            record = json.loads((idir / "image.json").read_text())
        except (OSError, ValueError):
            return None
        names = sorted(n for n, i in self._repositories().items() if i == image_id)
        return Image(id=image_id, rootfs=idir / "rootfs", names=names, **record)

    def _repositories(self) -> dict[str, str]:
        try:
            return json.loads((self.root / "repositories.json").read_text())
        except (OSError, ValueError):
            return {}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # -- importing -------------------------------------------------------------------

    def import_archive(self, path: Path, name: str | None = None) -> list[Image]:
        """Import every image of an OCI layout or `docker save` archive (directory or tar)."""
        path = Path(path)
        if not path.exists():
            raise ImageError(f"{path}: no such file or directory")
        with tempfile.TemporaryDirectory(dir=self.root / "tmp") as tmp:
            src = path if path.is_dir() else _unpack_archive(path, Path(tmp) / "archive")
            if (src / "manifest.json").exists():
                found = _docker_save_images(src)
            elif (src / "index.json").exists() and (src / "oci-layout").exists():
                found = _oci_images(src)
            else:
                raise ImageError(f"{path}: neither an OCI image layout (oci-layout, index.json)"
                                 f" nor a docker save archive (manifest.json)")
            if name is not None:
                if len(found) != 1:
                    raise ImageError(f"{path} holds {len(found)} images; --name needs exactly 1")
                found[0] = (found[0][0], found[0][1], [name])
            return [self._add(config, layers, names) for config, layers, names in found]

    def _add(self, config_bytes: bytes, layers: list[Path], names: list[str]) -> Image:
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        idir = self.root / "sha256" / image_id.removeprefix("sha256:")
        if not (idir / "image.json").exists():
            try:
                config = json.loads(config_bytes).get("config") or {}
            except ValueError as exc:
                raise ImageError(f"image config is not JSON: {exc}") from exc
            work = self.root / "tmp" / uuid.uuid4().hex
            rootfs = work / "rootfs"
            rootfs.mkdir(parents=True)
            try:
                for layer in layers:
                    apply_layer(rootfs, layer)
                record = {"env": config.get("Env") or [], "entrypoint": config.get("Entrypoint"),
                          "cmd": config.get("Cmd"), "working_dir": config.get("WorkingDir") or "",
                          "user": config.get("User") or "", "size": _du(rootfs),
                          "imported_at": time.time()}
                (work / "image.json").write_text(json.dumps(record))
                try:
                    work.rename(idir)
                except OSError:
                    if not (idir / "image.json").exists():
                        raise
            finally:
                shutil.rmtree(work, ignore_errors=True)   # gone unless another import won
        with self._locked():
            repos = self._repositories()
            repos.update({normalize_name(n): image_id for n in names})
            tmp = self.root / "repositories.json.tmp"
            tmp.write_text(json.dumps(repos, indent=1, sort_keys=True))
            tmp.replace(self.root / "repositories.json")
        image = self._load(image_id)
        assert image is not None
        log.info("imported image %s as %s", image_id, ", ".join(image.names) or "<none>")
        return image


# -- archive formats -------------------------------------------------------------------

def _unpack_archive(path: Path, dest: Path) -> Path:
    """Unpack an outer image tar, by the same confined rules as a layer."""
    dest.mkdir()
    try:
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                rel = _member_path(m.name)
                if rel:
                    _extract(tar, m, dest, rel)
    except (tarfile.TarError, OSError) as exc:
        raise ImageError(f"{path}: not a readable tar archive: {exc}") from exc
    return dest


def _file(src: Path, rel: str) -> Path:
    found = resolve_in_root(src, rel)
    if not found.is_file():
        raise ImageError(f"the archive lacks {rel}")
    return found


def _docker_save_images(src: Path) -> list[tuple[bytes, list[Path], list[str]]]:
    try:
        manifest = json.loads((src / "manifest.json").read_text())
        return [(_file(src, entry["Config"]).read_bytes(),
                 [_file(src, layer) for layer in entry["Layers"]],
                 list(entry.get("RepoTags") or [])) for entry in manifest]
    except (ValueError, KeyError, TypeError) as exc:
        raise ImageError(f"malformed docker save manifest.json: {exc}") from exc


def _blob(src: Path, digest: str) -> Path:
    alg, _, hexpart = digest.partition(":")
    if alg != "sha256" or not hexpart or "/" in hexpart:
        raise ImageError(f"unsupported digest {digest!r}")
    path = _file(src, f"blobs/{alg}/{hexpart}")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    if h.hexdigest() != hexpart:
        raise ImageError(f"blob {digest} does not match its digest")
    return path


def _oci_images(src: Path) -> list[tuple[bytes, list[Path], list[str]]]:
    try:
        index = json.loads((src / "index.json").read_text())
        found = []
        for desc in index.get("manifests", []):
            manifest = _manifest(src, desc)
            notes = desc.get("annotations") or {}
            full = notes.get("io.containerd.image.name")
            ref = notes.get("org.opencontainers.image.ref.name")
            # A bare ref.name is only a tag ("latest"): it names no repository on its own.
            names = [full] if full else ([ref] if ref and (":" in ref or "/" in ref) else [])
            found.append((_blob(src, manifest["config"]["digest"]).read_bytes(),
                          [_blob(src, layer["digest"]) for layer in manifest["layers"]], names))
        if not found:
            raise ImageError("index.json lists no images")
        return found
    except (ValueError, KeyError, TypeError) as exc:
        raise ImageError(f"malformed OCI image layout: {exc}") from exc


def _manifest(src: Path, desc: dict) -> dict:
    """The image manifest a descriptor leads to, choosing this host's platform in an index."""
    for _ in range(8):
        doc = json.loads(_blob(src, desc["digest"]).read_text())
        kind = desc.get("mediaType") or doc.get("mediaType")
        if kind not in INDEX_TYPES and "manifests" not in doc:
            return doc
        entries = doc.get("manifests") or []
        if not entries:
            raise ImageError(f"image index {desc['digest']} lists no manifests")
        desc = next((m for m in entries if (m.get("platform") or {}).get("os") == "linux"
                     and m["platform"].get("architecture") == ARCH), entries[0])
    raise ImageError("image indexes nested too deeply")


# -- layers ----------------------------------------------------------------------------

def _member_path(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageError(f"layer entry {name!r} points outside the image")
    return "/".join(parts)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def apply_layer(rootfs: Path, layer: Path) -> None:
    """Apply one layer tar (plain, gzip, bzip2 or xz) onto `rootfs`, honouring whiteouts."""
    with open(layer, "rb") as f:
        if f.read(4) == b"\x28\xb5\x2f\xfd":
            raise ImageError(f"{layer.name}: zstd-compressed layers are not supported")
    try:
        with tarfile.open(layer, "r:*") as tar:
            members = tar.getmembers()
            # Whiteouts hide what lower layers put there: apply them before this layer's files.
            for m in members:
                rel = _member_path(m.name)
                parent, _, base = rel.rpartition("/")
                if base == OPAQUE:
                    target = resolve_in_root(rootfs, parent)
                    if target.is_dir() and not target.is_symlink():
                        for child in target.iterdir():
                            _remove(child)
                elif base.startswith(WHITEOUT):
                    _remove(resolve_in_root(rootfs, parent) / base[len(WHITEOUT):])
            for m in members:
                rel = _member_path(m.name)
                if rel and not rel.rpartition("/")[2].startswith(WHITEOUT):
                    _extract(tar, m, rootfs, rel)
    except tarfile.TarError as exc:
        raise ImageError(f"{layer.name}: not a readable layer tar: {exc}") from exc


def _extract(tar: tarfile.TarFile, m: tarfile.TarInfo, rootfs: Path, rel: str) -> None:
    parent_rel, _, base = rel.rpartition("/")
    parent = resolve_in_root(rootfs, parent_rel)
    parent.mkdir(parents=True, exist_ok=True)
    target = parent / base
    if m.isdir():
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            _remove(target)
        target.mkdir(exist_ok=True)
    else:
        if target.exists() or target.is_symlink():
            _remove(target)
        if m.isreg():
            src = tar.extractfile(m)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)   # type: ignore[misc]
        elif m.issym():
            os.symlink(m.linkname, target)
        elif m.islnk():
            os.link(resolve_in_root(rootfs, _member_path(m.linkname), follow_last=False),
                    target, follow_symlinks=False)
            return      # a hard link shares its target's owner, mode and times
        elif m.isfifo():
            os.mkfifo(target, 0o600)
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            try:
                os.mknod(target, kind | 0o600, os.makedev(m.devmajor, m.devminor))
            except PermissionError:
                log.debug("skipped device node %s (needs root)", rel)
                return
        else:
            return
    if os.geteuid() == 0:
        os.lchown(target, m.uid, m.gid)
    if not m.issym():
        os.chmod(target, m.mode)
    for key, value in m.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            try:
                os.setxattr(target, key[len("SCHILY.xattr."):],
                            value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
            except OSError:
                pass    # e.g. security.* xattrs the file system refuses
    os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)


def _du(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
