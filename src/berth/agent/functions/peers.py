"""Which processes a loopback TCP connection comes from, asked of the kernel (sock_diag).

Sandboxes share the host's network, so any of them could connect to another's Runtime API
port and take its invocations; the worker therefore admits a connection only when the
connecting socket is open in a process of the sandbox the port belongs to. One netlink
query per connection (runtimes keep theirs open), then a look at a few /proc fd tables.
"""
from __future__ import annotations

import logging
import os
import socket
import struct
from typing import Iterable

log = logging.getLogger(__name__)

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
ALL_STATES = 0xFFFFFFFF
NO_COOKIE = 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")           # struct nlmsghdr
_MESSAGE = struct.Struct("=BBBB48sIIIII")   # struct inet_diag_msg


def _sockid(src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    """struct inet_diag_sockid: ports and addresses in network order, no interface, no
    cookie."""
    return (struct.pack("!HH", src[1], dst[1]) + socket.inet_aton(src[0]) + bytes(12)
            + socket.inet_aton(dst[0]) + bytes(12) + struct.pack("=III", 0, NO_COOKIE,
                                                                  NO_COOKIE))


def socket_inode(src: tuple[str, int], dst: tuple[str, int]) -> int | None:
    """The inode of the IPv4 TCP socket bound to `src` and connected to `dst`, if any."""
    request = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0,
                          ALL_STATES) + _sockid(src, dst)
    header = _HEADER.pack(_HEADER.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST,
                          1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.send(header + request)
        reply = nl.recv(8192)
    _, kind, _, _, _ = _HEADER.unpack_from(reply)
    if kind != SOCK_DIAG_BY_FAMILY:
        return None          # NLMSG_ERROR: no such socket (it is gone, or never was)
    return int(_MESSAGE.unpack_from(reply, _HEADER.size)[-1])


def held_by(inode: int, pids: Iterable[int]) -> bool:
    """Whether one of `pids` has the socket `inode` open."""
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
            except OSError:
                pass
    return False


def connection_from(peer: tuple[str, int], local: tuple[str, int], pids: Iterable[int]
                    ) -> bool:
    """Whether the connection accepted from `peer` on `local` was made by one of `pids`."""
    try:
        inode = socket_inode(peer, local)
    except (OSError, struct.error):
        log.exception("could not ask the kernel who connected from %s", peer)
        return False
    return inode is not None and held_by(inode, pids)
