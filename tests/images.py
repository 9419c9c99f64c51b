"""Test images built by hand, since none can be pulled.

`busybox_layer()` is a root file system from Debian's static busybox (a shell and ~270 applets,
/etc/passwd with root and nobody); `docker_save()` and `oci_layout()` wrap layers and an image
config into the two archive formats berth imports and Docker loads. `layer()` builds small
layers entry by entry, whiteouts included, for the image store's own tests.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from functools import lru_cache
from pathlib import Path

from berth.agent import archives
from berth.agent.archives import (
    Entry,
    add_file,
    dir_,
    docker_save,
    file,
    image_config,
    layer,
    symlink,
)

__all__ = ["Entry", "dir_", "docker_save", "file", "image_config", "layer", "symlink",
           "hardlink", "whiteout", "opaque", "busybox_layer", "oci_layout", "busybox_archive",
           "TEST_IMAGE"]

TEST_IMAGE = "berth-test/busybox:latest"


def hardlink(path: str, target: str) -> Entry:
    return Entry(path, "hardlink", target=target)


def whiteout(path: str) -> Entry:
    """Hide `path` of the layers below (`dir/.wh.name`)."""
    parent, _, name = path.rpartition("/")
    return file(f"{parent}/.wh.{name}" if parent else f".wh.{name}")


def opaque(directory: str) -> Entry:
    """Hide everything the layers below put in `directory`."""
    return file(f"{directory}/.wh..wh..opq")


@lru_cache(maxsize=1)
def busybox_layer() -> bytes:
    """A busybox root file system as one layer (~2 MB), built once per test session."""
    return archives.busybox_layer()


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
                add_file(tar, name, data)
    else:
        for name, data in files.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)
    return out


def busybox_archive(out: Path, name: str = TEST_IMAGE, **config: object) -> Path:
    """The busybox test image as a docker save archive (default Cmd: sh)."""
    return archives.busybox_archive(out, name, base=busybox_layer(), **config)
