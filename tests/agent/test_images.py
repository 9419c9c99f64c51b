"""The local image store: both archive formats, layers with whiteouts, archives that try to
escape, and the `berth image` commands."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from images import (
    TEST_IMAGE,
    busybox_archive,
    dir_,
    docker_save,
    file,
    hardlink,
    image_config,
    layer,
    oci_layout,
    opaque,
    symlink,
    whiteout,
)

from berth.agent.drivers.base import ImageNotFound
from berth.agent.images import ImageError, ImageStore, normalize_name

BERTH = Path(sys.executable).parent / "berth"


def _save(tmp: Path, layers: list[bytes], name: str = "t/img:1", **config: object) -> Path:
    return docker_save(tmp / "img.tar", layers, image_config(layers, **config), [name])


def test_docker_save_archive_with_config_defaults(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "data")
    [img] = store.import_archive(busybox_archive(tmp_path / "bb.tar", Entrypoint=["sh", "-c"],
                                                 WorkingDir="/srv", User="nobody"))
    assert img.names == [TEST_IMAGE]
    assert (img.cmd, img.entrypoint, img.working_dir, img.user) == (
        ["sh"], ["sh", "-c"], "/srv", "nobody")
    assert any(e.startswith("PATH=") for e in img.env)
    assert (img.rootfs / "bin/busybox").stat().st_mode & 0o111
    assert os.readlink(img.rootfs / "bin/sh") == "busybox"
    assert (img.rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert store.get("berth-test/busybox").id == img.id
    assert store.get(img.short_id).id == store.get(img.id).id == img.id
    assert img.size > 1_000_000


def test_oci_layout_tar_and_directory(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "data")
    layers = [layer([dir_("etc"), file("etc/os", "oci\n")])]
    config = image_config(layers, Cmd=["cat", "/etc/os"])
    [img] = store.import_archive(oci_layout(tmp_path / "oci.tar", layers, config,
                                            ref_name="example.com/app:2"))
    assert img.names == ["example.com/app:2"]
    assert (img.rootfs / "etc/os").read_text() == "oci\n"
    assert img.cmd == ["cat", "/etc/os"]
    (tmp_path / "layout").mkdir()
    # A bare ref.name is a tag without a repository: the image needs --name to be named.
    layout = oci_layout(tmp_path / "layout", layers, config, ref_name="latest", as_tar=False,
                        compress=False)
    [same] = store.import_archive(layout)
    assert same.id == img.id and same.names == ["example.com/app:2"]
    [named] = store.import_archive(layout, name="mine")
    assert "mine:latest" in named.names and store.get("mine").id == img.id


def test_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    base = layer([dir_("a"), file("a/f1", "one"), file("a/f2", "two"), dir_("a/gone"),
                  file("a/gone/deep", "x"), dir_("d"), file("d/old", "old"), dir_("d/sub"),
                  file("d/sub/x", "x"), file("keep", "k")])
    top = layer([whiteout("a/f1"), whiteout("a/gone"),
                 file("d/new", "new"), opaque("d"),      # marker after a new entry: still kept
                 file("keep", "k2")])
    again = layer([file("a/f1", "back")])
    [img] = ImageStore(tmp_path / "data").import_archive(_save(tmp_path, [base, top, again]))
    root = img.rootfs
    assert sorted(os.listdir(root / "a")) == ["f1", "f2"]
    assert (root / "a/f1").read_text() == "back"
    assert sorted(os.listdir(root / "d")) == ["new"]
    assert (root / "keep").read_text() == "k2"
    assert not list(root.rglob(".wh.*"))


def test_links_and_ownership(tmp_path: Path) -> None:
    owned = layer([dir_("bin"), file("bin/tool", "#!/bin/sh\n", 0o4755),
                   hardlink("bin/tool2", "bin/tool"), symlink("bin/abs", "/bin/tool")])
    [img] = ImageStore(tmp_path / "data").import_archive(_save(tmp_path, [owned]))
    tool = img.rootfs / "bin/tool"
    assert tool.stat().st_ino == (img.rootfs / "bin/tool2").stat().st_ino
    assert os.readlink(img.rootfs / "bin/abs") == "/bin/tool"
    if os.geteuid() == 0:
        assert tool.stat().st_mode & 0o7777 == 0o4755


def test_nothing_escapes_the_root_file_system(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    # A symlink to an absolute host path, then a file "through" it: lands inside the image.
    first = layer([symlink("escape", str(outside)), symlink("up", "../../../..")])
    second = layer([file("escape/pwned", "x"), file("up/also", "y")])
    [img] = ImageStore(tmp_path / "data").import_archive(_save(tmp_path, [first, second]))
    assert not (outside / "pwned").exists()
    assert (img.rootfs / str(outside).lstrip("/") / "pwned").read_text() == "x"
    assert (img.rootfs / "also").read_text() == "y"
    with pytest.raises(ImageError, match="outside the image"):
        ImageStore(tmp_path / "data2").import_archive(
            _save(tmp_path, [layer([file("../evil", "x")])]))
    assert not (tmp_path / "data2" / "images" / "evil").exists()


def test_reimport_is_idempotent_and_names_move(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "data")
    one = [layer([file("v", "1")])]
    two = [layer([file("v", "2")])]
    [a] = store.import_archive(_save(tmp_path, one, name="app"))
    [a2] = store.import_archive(_save(tmp_path, one, name="app"))
    assert a.id == a2.id and len(store.list()) == 1
    [b] = store.import_archive(_save(tmp_path, two, name="app"))
    assert store.get("app:latest").id == b.id != a.id
    assert {i.id: i.names for i in store.list()} == {b.id: ["app:latest"], a.id: []}


def test_bad_input(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "data")
    with pytest.raises(ImageNotFound, match="berth image import"):
        store.get("nothing:here")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ImageError, match="not a readable tar"):
        store.import_archive(junk)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="neither an OCI image layout"):
        store.import_archive(empty)
    layers = [layer([file("x", "1")])]
    (tmp_path / "layout").mkdir()
    layout = oci_layout(tmp_path / "layout", layers, image_config(layers), as_tar=False)
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:])
                          .read_text())
    blob = layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
    blob.write_bytes(blob.read_bytes() + b"tampered")
    with pytest.raises(ImageError, match="does not match its digest"):
        store.import_archive(layout)
    assert store.list() == []


def test_normalize_name() -> None:
    assert normalize_name("busybox") == "busybox:latest"
    assert normalize_name("docker.io/library/busybox:1") == "busybox:1"
    assert normalize_name("registry:5000/team/app") == "registry:5000/team/app:latest"


def test_cli_import_and_ls(tmp_path: Path) -> None:
    data = tmp_path / "data"
    archive = busybox_archive(tmp_path / "bb.tar")
    refused = subprocess.run([str(BERTH), "image", "import", str(archive), "--data-dir",
                              str(data)], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "no berth data dir at" in refused.stderr
    assert not data.exists()        # only up, server and agent make data dirs
    (data / "images").mkdir(parents=True)   # as an agent's first start leaves it
    out = subprocess.run([str(BERTH), "image", "import", str(archive), "--name", "bb:1",
                          "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "bb:1" in out.stdout
    listing = subprocess.run([str(BERTH), "image", "ls", "--data-dir", str(data)],
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    header, row = listing.stdout.splitlines()
    assert header.split() == ["NAME", "IMAGE", "ID", "SIZE"]
    assert row.split()[0] == "bb:1"
    bad = subprocess.run([str(BERTH), "image", "import", str(tmp_path), "--data-dir",
                          str(data)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "neither an OCI image layout" in bad.stderr
    assert json.loads((data / "images" / "repositories.json").read_text()) == {
        "bb:1": "sha256:" + next((data / "images" / "sha256").iterdir()).name}
