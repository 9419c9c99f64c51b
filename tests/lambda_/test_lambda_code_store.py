"""The code store: checks on uploads, content addressing, unpacking with modes kept."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from berth.api.errors import ServiceError
from berth.lambda_.code import UNZIP_FAILED, CodeStore, check_zip
from berth.lambda_.code_download import code_url, verify_token
from berth.state.store import Store


def code_store(tmp_path: Path) -> CodeStore:
    """A code store over a fresh SQLite database in `tmp_path`."""
    store = Store(f"sqlite:///{tmp_path / 'berth.db'}")
    store.create_all()
    return CodeStore(tmp_path, store)


def build_zip(entries: list[tuple[str, bytes, int | None]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            else:       # as a Windows tool writes it: DOS attributes, no Unix mode
                info.create_system, info.external_attr = 0, 0x20
            z.writestr(info, data)
    return buf.getvalue()


def test_put_names_code_by_sha256_and_stores_it_once(tmp_path: Path) -> None:
    store = code_store(tmp_path)
    data = build_zip([("app.py", b"def h(e, c):\n    return 1\n", None)])
    stored = store.put(data, "CreateFunction")
    digest = hashlib.sha256(data)
    assert stored.code_sha256 == base64.b64encode(digest.digest()).decode()
    assert stored.size == len(data)
    path = tmp_path / "lambda" / "code" / f"{digest.hexdigest()}.zip"
    assert path.read_bytes() == data
    mtime = path.stat().st_mtime_ns
    assert store.put(data, "CreateFunction") == stored
    assert path.stat().st_mtime_ns == mtime          # not rewritten
    assert store.read(stored.code_sha256) == data


def test_unpacked_keeps_modes_and_is_reused(tmp_path: Path) -> None:
    store = code_store(tmp_path)
    data = build_zip([("bootstrap", b"#!/bin/sh\necho hi\n", 0o100755),
                      ("lib/", b"", 0o40755),
                      ("lib/data.txt", b"x" * 10, 0o100644),
                      ("private.txt", b"owner only", 0o100600),
                      ("plain.txt", b"no mode", None)])
    stored = store.put(data, "CreateFunction")
    root = store.unpacked(stored.code_sha256)
    assert root == tmp_path / "lambda" / "unpacked" / hashlib.sha256(data).hexdigest()
    assert stat.S_IMODE((root / "bootstrap").stat().st_mode) == 0o755
    assert os.access(root / "bootstrap", os.X_OK)
    assert (root / "lib" / "data.txt").read_bytes() == b"x" * 10
    assert stat.S_IMODE((root / "private.txt").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "plain.txt").stat().st_mode) == 0o644
    # Second call finds the finished tree and leaves no temporary directories behind.
    (root / "marker").write_text("kept")
    assert store.unpacked(stored.code_sha256) == root
    assert (root / "marker").exists()
    assert [p.name for p in root.parent.iterdir()] == [root.name]


def test_discard_removes_the_zip_and_leaves_running_code_alone(tmp_path: Path) -> None:
    store = code_store(tmp_path)
    stored = store.put(build_zip([("a.py", b"1", None)]), "CreateFunction")
    root = store.unpacked(stored.code_sha256)
    store.discard(stored.code_sha256)
    assert not store.path(stored.code_sha256).exists()
    assert (root / "a.py").read_bytes() == b"1"
    store.discard_unpacked(stored.code_sha256)
    assert not root.exists()


@pytest.mark.parametrize("name", ["../escape.py", "/abs.py", "a/../../b.py"])
def test_path_traversal_is_refused(tmp_path: Path, name: str) -> None:
    data = build_zip([(name, b"x", None)])
    with pytest.raises(ServiceError) as err:
        code_store(tmp_path).put(data, "CreateFunction")
    assert err.value.code == "InvalidParameterValueException"
    assert not any((tmp_path / "lambda" / "code").iterdir())


def test_unpack_refuses_a_traversal_that_reached_the_store(tmp_path: Path) -> None:
    # A zip written straight into the store (not through put) is still unpacked safely.
    store = code_store(tmp_path)
    data = build_zip([("ok.py", b"1", None), ("../../evil", b"x", None)])
    digest = hashlib.sha256(data)
    (store.code_dir / f"{digest.hexdigest()}.zip").write_bytes(data)
    with pytest.raises(ValueError):
        store.unpacked(base64.b64encode(digest.digest()).decode())
    assert not (tmp_path / "evil").exists() and not (tmp_path / "lambda" / "evil").exists()
    assert list(store.unpacked_dir.iterdir()) == []


def test_symlinks_inside_the_tree_are_kept(tmp_path: Path) -> None:
    store = code_store(tmp_path)
    data = build_zip([("real.txt", b"content", 0o100644),
                      ("link.txt", b"real.txt", 0o120777)])
    root = store.unpacked(store.put(data, "CreateFunction").code_sha256)
    assert (root / "link.txt").is_symlink()
    assert (root / "link.txt").read_text() == "content"


def test_broken_zip_and_truncated_zip_are_refused() -> None:
    good = build_zip([("a.py", b"print(1)\n" * 100, None)])
    for bad in (b"not a zip at all", good[: len(good) // 2], b""):
        with pytest.raises(ServiceError) as err:
            check_zip(bad, "CreateFunction")
        assert (err.value.code, err.value.message) == ("InvalidParameterValueException",
                                                       UNZIP_FAILED)
    # A member whose bytes were damaged fails its CRC check.
    damaged = bytearray(good)
    start = damaged.index(b"PK\x03\x04") + 30 + len("a.py")
    damaged[start + 5] ^= 0xFF
    with pytest.raises(ServiceError):
        check_zip(bytes(damaged), "CreateFunction")


def test_code_url_tokens_verify_and_expire() -> None:
    hex_digest = "ab" * 32
    url = code_url("http://h:1", "secret", hex_digest, ttl=600, now=1000.0)
    token = url.rsplit("/", 1)[1]
    assert url.startswith("http://h:1/_berth/lambda/code/")
    assert verify_token("secret", token, now=1500.0) == hex_digest
    assert verify_token("secret", token, now=1601.0) is None          # expired
    assert verify_token("other-secret", token, now=1500.0) is None    # another server's key
    forged = token.replace(hex_digest, "cd" * 32)
    assert verify_token("secret", forged, now=1500.0) is None
    later = token.split(".")
    later[1] = str(int(later[1]) + 3600)                              # extended expiry
    assert verify_token("secret", ".".join(later), now=1500.0) is None


def test_download_app_serves_signed_urls_only(tmp_path: Path) -> None:
    import anyio
    import httpx

    from berth.config import Settings
    from berth.lambda_.code_download import code_download_app

    settings = Settings(data_dir=tmp_path, access_key="AK", secret_key="sk")
    data = build_zip([("bootstrap", b"#!/bin/sh\n" + b"#" * 100_000, 0o100755)])
    code = code_store(tmp_path)
    stored = code.put(data, "CreateFunction")
    app = code_download_app(settings, code.store)
    good = code_url("http://test", "sk", stored.hex)
    expired = code_url("http://test", "sk", stored.hex, now=0)
    other_key = code_url("http://test", "not-sk", stored.hex)

    async def fetch() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.get(good), await client.head(good), await client.get(expired),
                    await client.get(other_key), await client.post(good),
                    await client.get("/_berth/lambda/other")]

    got, head, old, forged, posted, elsewhere = anyio.run(fetch)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "application/zip"
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)
    assert [old.status_code, forged.status_code] == [403, 403]
    assert b"AccessDenied" in old.content
    assert posted.status_code == 405 and elsewhere.status_code == 404
    code_store(tmp_path).discard(stored.code_sha256)
    assert anyio.run(_status, app, good) == 404


async def _status(app: object, url: str) -> int:
    import httpx
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return (await client.get(url)).status_code


def test_code_is_served_from_the_store_when_this_host_has_no_copy(tmp_path: Path) -> None:
    # Another replica sharing the database received the upload; this host's cache is empty.
    data = build_zip([("app.py", b"def h(e, c):\n    return 'replica'\n", 0o644)])
    stored = code_store(tmp_path).put(data, "CreateFunction")
    other = tmp_path / "other-replica"
    other.mkdir()
    replica = CodeStore(other, Store(f"sqlite:///{tmp_path / 'berth.db'}"))
    assert not replica.path(stored.code_sha256).exists()
    assert replica.read(stored.code_sha256) == data
    tree = replica.unpacked(stored.code_sha256)
    assert (tree / "app.py").read_bytes().endswith(b"'replica'\n")
    replica.discard(stored.code_sha256)
    assert not replica.known(stored.hex)


LINK = 0o120777


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_links_are_kept_as_written_and_never_followed_on_the_host(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    (tmp_path / "data").mkdir()
    store = code_store(tmp_path / "data")
    data = build_zip([("abs", str(outside).encode(), LINK), ("up", b"../../../..", LINK),
                      ("dup", b"first", LINK), ("dup", b"second", LINK),
                      ("dir/", b"", 0o40700), ("dir/f", b"x", 0o100640)])
    root = store.unpacked(store.put(data, "CreateFunction").code_sha256)
    assert os.readlink(root / "abs") == str(outside)
    assert os.readlink(root / "up") == "../../../.."
    assert os.readlink(root / "dup") == "second"
    assert stat.S_IMODE((root / "dir").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "dir" / "f").stat().st_mode) == 0o640
    # Nothing was written, or chmodded, through the links.
    assert list(outside.iterdir()) == []
    assert stat.S_IMODE(outside.stat().st_mode) == 0o700


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("entries", [
    [("link", b"/tmp", LINK), ("link/pwned", b"x", 0o100644)],     # a file through a link
    [("a", b"x", 0o100644), ("a", b"/tmp", LINK)],                 # one name, two kinds
    [("f", b"x", 0o100644), ("f/g", b"y", 0o100644)],              # beneath a file
    [("n" * 256, b"x", 0o100644)],
    [("empty", b"", LINK)],
])
def test_members_that_cannot_be_unpacked_are_refused(tmp_path: Path,
                                                     entries: list[tuple[str, bytes, int]]
                                                     ) -> None:
    with pytest.raises(ServiceError) as err:
        code_store(tmp_path).put(build_zip(entries), "CreateFunction")
    assert err.value.code == "InvalidParameterValueException"
    assert err.value.message.startswith(UNZIP_FAILED)
    assert not any((tmp_path / "lambda" / "code").iterdir())
    assert not any((tmp_path / "lambda" / "unpacked").iterdir())
