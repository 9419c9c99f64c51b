"""Test images built by hand, since none can be pulled.

`busybox_layer()` is a root file system from Debian's static busybox (a shell and ~270 applets,
/etc/passwd with root and nobody); `docker_save()` and `oci_layout()` wrap layers and an image
config into the two archive formats berth imports and Docker loads. `layer()` builds small
layers entry by entry, whiteouts included, for the image store's own tests.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
TEST_IMAGE = "berth-test/busybox:latest"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


@dataclass
class Entry:
    """One tar entry: kind "file" | "dir" | "symlink" | "hardlink"."""
    path: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""
    uid: int = 0
    gid: int = 0


def file(path: str, data: bytes | str = b"", mode: int = 0o644) -> Entry:
    return Entry(path, "file", data.encode() if isinstance(data, str) else data, mode)


def dir_(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, "dir", mode=mode)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, "symlink", mode=0o777, target=target)


def hardlink(path: str, target: str) -> Entry:
    return Entry(path, "hardlink", target=target)


def whiteout(path: str) -> Entry:
    """Hide `path` of the layers below (`dir/.wh.name`)."""
    parent, _, name = path.rpartition("/")
    return file(f"{parent}/.wh.{name}" if parent else f".wh.{name}")


def opaque(directory: str) -> Entry:
    """Hide everything the layers below put in `directory`."""
    return file(f"{directory}/.wh..wh..opq")


def layer(entries: list[Entry]) -> bytes:
    """An uncompressed layer tar of `entries`, in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.path)
            info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, 1_700_000_000
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e.target
                tar.addfile(info)
            elif e.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, e.target
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


@lru_cache(maxsize=1)
def busybox_layer() -> bytes:
    """A busybox root file system as one layer (~2 MB)."""
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    entries = [dir_(d) for d in ("bin", "etc", "root", "proc", "sys", "dev", "home", "var")]
    entries += [dir_("tmp", 0o1777), file("bin/busybox", BUSYBOX.read_bytes(), 0o755),
                file("etc/passwd", PASSWD), file("etc/group", GROUP),
                file("etc/hostname", "busybox\n")]
    entries += [symlink(f"bin/{a}", "busybox") for a in applets if a != "busybox"]
    return layer(entries)


def image_config(layers: list[bytes], **config: object) -> bytes:
    """An image config (Env, Cmd, Entrypoint, WorkingDir, User as given) for these layers."""
    body = {
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": [f"PATH={PATH}"], **config},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "tests/images.py"}
                    for _ in layers],
    }
    return json.dumps(body, sort_keys=True).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


def docker_save(out: Path, layers: list[bytes], config: bytes,
                repo_tags: list[str] | None = None) -> Path:
    """A `docker save` archive: manifest.json, the config, one directory per layer."""
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_names = [hashlib.sha256(x).hexdigest() + "/layer.tar" for x in layers]
    manifest = [{"Config": config_name, "RepoTags": repo_tags or [], "Layers": layer_names}]
    with tarfile.open(out, "w") as tar:
        _add(tar, config_name, config)
        for name, data in zip(layer_names, layers):
            _add(tar, name, data)
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    return out


def oci_layout(out: Path, layers: list[bytes], config: bytes, ref_name: str | None = None,
               as_tar: bool = True, compress: bool = True) -> Path:
    """An OCI image layout (a directory, or a tar of one) with gzip layers by default."""
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest

    layer_type = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
    stored = [gzip.compress(x, mtime=0) if compress else x for x in layers]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": blob(config), "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": blob(x), "size": len(x)} for x in stored],
    }).encode()
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": blob(manifest), "size": len(manifest)}
    if ref_name:
        desc["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
    files = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
             "index.json": json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode()}
    files.update({f"blobs/sha256/{d.split(':')[1]}": data for d, data in blobs.items()})
    if as_tar:
        with tarfile.open(out, "w") as tar:
            for name, data in files.items():
                _add(tar, name, data)
    else:
        for name, data in files.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)
    return out


def busybox_archive(out: Path, name: str = TEST_IMAGE, **config: object) -> Path:
    """The busybox test image as a docker save archive (default Cmd: sh)."""
    layers = [busybox_layer()]
    return docker_save(out, layers, image_config(layers, **({"Cmd": ["sh"]} | config)), [name])
