"""Listening sockets inside a container's own network namespace, where AWS puts the task
metadata and credentials endpoints: 169.254.170.2.

A socket belongs to the network namespace it was made in, wherever it is used afterwards. So a
short-lived thread enters the container's namespace (setns), gives the namespace's loopback
the link-local address, binds and listens, and leaves; the agent then serves the socket from
its own event loop on the host. Needs CAP_SYS_ADMIN (the agent runs as root where the docker
driver runs bridge tasks).
"""
from __future__ import annotations

import ctypes
import os
import socket
import struct
import threading

CLONE_NEWNET = 0x40000000
RTM_NEWADDR, NLM_F_REQUEST, NLM_F_ACK = 20, 0x1, 0x4
NLM_F_EXCL, NLM_F_CREATE, NLMSG_ERROR = 0x200, 0x400, 2
IFA_ADDRESS, IFA_LOCAL, RT_SCOPE_HOST = 1, 2, 254
EEXIST = 17

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    """setns(2) for a network namespace (os.setns arrived only in Python 3.12)."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _add_address(address: str, interface: str = "lo") -> None:
    """Give `interface` the /32 `address` (RTM_NEWADDR over netlink); an address that is
    already there is fine."""
    index = socket.if_nametoindex(interface)
    raw = socket.inet_aton(address)
    attrs = b"".join(struct.pack("HH", 8, kind) + raw for kind in (IFA_LOCAL, IFA_ADDRESS))
    payload = struct.pack("BBBBI", socket.AF_INET, 32, 0, RT_SCOPE_HOST, index) + attrs
    header = struct.pack("IHHII", 16 + len(payload), RTM_NEWADDR,
                         NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as nl:
        nl.sendto(header + payload, (0, 0))
        answer = nl.recv(4096)
    _, kind, _, _, _ = struct.unpack("IHHII", answer[:16])
    if kind == NLMSG_ERROR:
        error = -struct.unpack("i", answer[16:20])[0]
        if error not in (0, EEXIST):
            raise OSError(error, f"adding {address} to {interface}: {os.strerror(error)}")


def listen_in(netns: str, address: str, ports: list[int]) -> list[socket.socket]:
    """Listening TCP sockets on `address`:`port` inside the network namespace at `netns`
    (a /proc/PID/ns/net path), `address` added to its loopback first."""
    result: dict[str, object] = {}

    def enter() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            _add_address(address)
            socks = []
            for port in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                sock.listen(64)
                sock.setblocking(False)
                socks.append(sock)
            result["socks"] = socks
        except BaseException as exc:        # handed to the caller's thread
            result["error"] = exc

    # A thread of its own: the namespace stays with the thread, which ends here.
    worker = threading.Thread(target=enter, name="berth-netns", daemon=True)
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]               # type: ignore[misc]
    return result["socks"]                  # type: ignore[return-value]
