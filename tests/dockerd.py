"""A private, throw-away Docker Engine for tests.

`docker_engine()` starts Debian's `dockerd` on its own unix socket, data root and exec root
(under a short /tmp path: unix socket paths are limited to 108 bytes), without touching the
host's iptables or default bridge, yields its `unix://` URL, and stops it by PID afterwards.
"""
from __future__ import annotations

import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0


class DockerUnavailable(RuntimeError):
    """dockerd is not installed here."""


def find_dockerd() -> str:
    found = shutil.which("dockerd") or ("/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists()
                                        else None)
    if not found:
        raise DockerUnavailable("dockerd not found; install Debian's docker.io with "
                                "`bash scripts/system-packages.sh` (run by `make install`)")
    return found


def _ping(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in s.recv(256)
    except OSError:
        return False


@contextmanager
def docker_engine() -> Iterator[str]:
    """Start a private dockerd; yield its `unix://` URL; stop it and delete its files."""
    dockerd = find_dockerd()
    root = Path(tempfile.mkdtemp(prefix="bdk-", dir="/tmp"))
    sock = root / "d.sock"
    tag = secrets.token_hex(4)
    (root / "daemon.json").write_text("{}")
    argv = [dockerd, "--iptables=false", "--bridge=none", "--storage-driver=overlay2",
            "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
            "--pidfile", str(root / "d.pid"), "--config-file", str(root / "daemon.json"),
            "-H", f"unix://{sock}", "--log-level=warn",
            # If the host runs a containerd of its own, dockerd uses it: keep apart from the
            # host's Docker there too.
            "--containerd-namespace", f"berth-test-{tag}",
            "--containerd-plugins-namespace", f"berth-test-{tag}-plugins"]
    logfile = open(root / "dockerd.log", "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logfile,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ping(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (root / "dockerd.log").read_text(errors="replace")[-4000:]
                raise RuntimeError(f"dockerd did not come up (exit {proc.returncode}):\n{log}")
            time.sleep(0.05)
        yield f"unix://{sock}"
    finally:
        bridges = _bridges(f"unix://{sock}") if proc.poll() is None else []
        _stop(proc)
        _delete_links(bridges)
        logfile.close()
        _unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


def _bridges(url: str) -> list[str]:
    """The host interfaces of the engine's user-defined networks (`br-<id[:12]>`).

    The engine leaves them on the host when it stops; each holds one of the default address
    pools, and once ~30 are left no new network can be made on this host."""
    import docker
    try:
        client = docker.DockerClient(base_url=url, timeout=10)
        try:
            return [f"br-{n.id[:12]}" for n in client.networks.list()
                    if n.attrs.get("Driver") == "bridge" and n.name != "bridge"]
        finally:
            client.close()
    except docker.errors.DockerException:
        return []


def _delete_links(names: list[str]) -> None:
    for name in names:
        subprocess.run(["ip", "link", "delete", name], capture_output=True)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM our dockerd (it stops its containers and containerd), SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _unmount_under(root: Path) -> None:
    """Detach mounts a killed daemon left under its directories, deepest first."""
    prefix = str(root) + "/"
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
