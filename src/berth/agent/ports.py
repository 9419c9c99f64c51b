"""Host ports on this instance: which task holds which, and dynamic ones chosen from the
ephemeral range. A port is never handed out twice: not while a task holds it, never if it is
reserved, and not when something else on the host is already bound to it."""
from __future__ import annotations

import socket
from collections.abc import Callable, Iterable

Port = tuple[int, str]          # (number, "tcp" | "udp")


class NoFreePort(Exception):
    """No port of the range is free, or the one asked for is taken."""


def port_free(port: int, protocol: str = "tcp") -> bool:
    """Whether nothing on this host is bound to `port` (a bind on all addresses succeeds)."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class PortAllocator:
    def __init__(self, reserved: Iterable[int], low: int, high: int,
                 probe: Callable[[int, str], bool] = port_free) -> None:
        if not 0 < low <= high < 65536:
            raise ValueError(f"invalid dynamic port range {low}-{high}")
        self.reserved = frozenset(reserved)
        self.low, self.high = low, high
        self.probe = probe
        self._held: dict[str, set[Port]] = {}
        self._next = low

    def held(self) -> set[Port]:
        return {p for ports in self._held.values() for p in ports}

    def holder(self, port: Port) -> str | None:
        for owner, ports in self._held.items():
            if port in ports:
                return owner
        return None

    def hold(self, owner: str, ports: Iterable[Port]) -> None:
        """Record ports `owner` uses (claimed by the server, or found again after a restart)."""
        self._held.setdefault(owner, set()).update(ports)

    def release(self, owner: str) -> None:
        self._held.pop(owner, None)

    def claim(self, owner: str, port: Port) -> None:
        """Take one given port for `owner`; NoFreePort if it is reserved, held or bound."""
        holder = self.holder(port)
        if holder == owner:
            return
        if port[0] in self.reserved:
            raise NoFreePort(f"host port {port[0]} is reserved on this instance")
        if holder is not None:
            raise NoFreePort(f"host port {port[0]}/{port[1]} is in use by another task")
        if not self.probe(*port):
            raise NoFreePort(f"host port {port[0]}/{port[1]} is already bound on this host")
        self.hold(owner, [port])

    def allocate(self, owner: str, protocol: str = "tcp") -> int:
        """A free port of the dynamic range for `owner`. Goes round the range, so a port just
        given back is not handed out again at once."""
        held = self.held()
        size = self.high - self.low + 1
        for i in range(size):
            port = self.low + (self._next - self.low + i) % size
            if port in self.reserved or (port, protocol) in held:
                continue
            if self.probe(port, protocol):
                self._next = port + 1 if port < self.high else self.low
                self.hold(owner, [(port, protocol)])
                return port
        raise NoFreePort(f"no free host port in {self.low}-{self.high}")
