"""Writing image archives, and berth's built-in image.

No container image can be pulled where berth usually runs (no registry, maybe no Docker Engine),
so `make install` builds one real image from the host's static busybox (Debian's
`busybox-static`: a shell and ~270 applets in one 2 MB binary) as a `docker save` archive in the
install's `share/berth/images/`. Agents offer the archives found there to their driver (the runc
driver imports them into its store, the docker driver loads one into the engine when a task
names it), so `busybox` runs out of the box. `python -m berth.agent.archives DIR` builds them.

The archives are deterministic (fixed times, sorted entries): the same busybox gives the same
image id, so importing again changes nothing.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

BUSYBOX = Path("/bin/busybox")
BUSYBOX_IMAGE = "busybox:latest"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
MTIME = 1_700_000_000
CREATED = "2024-01-01T00:00:00Z"


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


def layer(entries: list[Entry]) -> bytes:
    """An uncompressed layer tar of `entries`, in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.path)
            info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, MTIME
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


def busybox_layer(busybox: Path = BUSYBOX) -> bytes:
    """A root file system of `busybox` and its applet links, with root and nobody (~2 MB)."""
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    entries = [dir_(d) for d in ("bin", "etc", "root", "proc", "sys", "dev", "home", "var")]
    entries += [dir_("tmp", 0o1777), file("bin/busybox", busybox.read_bytes(), 0o755),
                file("etc/passwd", PASSWD), file("etc/group", GROUP),
                file("etc/hostname", "busybox\n")]
    entries += [symlink(f"bin/{a}", "busybox") for a in sorted(set(applets)) if a != "busybox"]
    return layer(entries)


def image_config(layers: list[bytes], created_by: str = "berth", **config: object) -> bytes:
    """An image config (Env, Cmd, Entrypoint, WorkingDir, User as given) for these layers."""
    body = {
        "architecture": "amd64", "os": "linux", "created": CREATED,
        "config": {"Env": [f"PATH={PATH}"], **config},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]},
        "history": [{"created": CREATED, "created_by": created_by} for _ in layers],
    }
    return json.dumps(body, sort_keys=True).encode()


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, MTIME
    tar.addfile(info, io.BytesIO(data))


def docker_save(out: Path, layers: list[bytes], config: bytes,
                repo_tags: list[str] | None = None) -> Path:
    """A `docker save` archive: manifest.json, the config, one directory per layer."""
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_names = [hashlib.sha256(x).hexdigest() + "/layer.tar" for x in layers]
    manifest = [{"Config": config_name, "RepoTags": repo_tags or [], "Layers": layer_names}]
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w") as tar:
        add_file(tar, config_name, config)
        for name, data in zip(layer_names, layers):
            add_file(tar, name, data)
        add_file(tar, "manifest.json", json.dumps(manifest).encode())
    tmp.replace(out)
    return out


def busybox_archive(out: Path, name: str = BUSYBOX_IMAGE, busybox: Path = BUSYBOX,
                    base: bytes | None = None, **config: object) -> Path:
    """The busybox image as a `docker save` archive (default Cmd: sh); `base` is its layer
    when already built."""
    layers = [base if base is not None else busybox_layer(busybox)]
    return docker_save(out, layers, image_config(layers, **({"Cmd": ["sh"]} | config)), [name])


def archive_names(path: Path) -> list[str]:
    """The names (RepoTags) a `docker save` archive gives its images; [] if it is none."""
    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile("manifest.json")
            manifest = json.loads(member.read()) if member else []
        return [tag for entry in manifest for tag in entry.get("RepoTags") or []]
    except (OSError, KeyError, ValueError, TypeError, tarfile.TarError):
        return []


def builtin_archives(directory: Path) -> dict[str, Path]:
    """The built-in images `make install` left in `directory`: image name → archive."""
    out: dict[str, Path] = {}
    for path in sorted(Path(directory).glob("*.tar")) if Path(directory).is_dir() else []:
        for name in archive_names(path):
            out[name] = path
    return out


def build_builtin(directory: Path, busybox: Path = BUSYBOX) -> Path | None:
    """Write the built-in busybox image into `directory`; None when the host has no busybox."""
    if not busybox.exists():
        return None
    directory.mkdir(parents=True, exist_ok=True)
    return busybox_archive(directory / "busybox.tar", busybox=busybox)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m berth.agent.archives DIR", file=sys.stderr)
        return 2
    built = build_builtin(Path(argv[0]))
    if built is None:
        print(f"no {BUSYBOX} (Debian package busybox-static): no built-in busybox image",
              file=sys.stderr)
    else:
        print(f"built-in image {BUSYBOX_IMAGE}: {built}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
