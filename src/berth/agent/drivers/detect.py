"""Choose this host's container driver: a reachable Docker Engine, else runc as root, else plain
processes (with a loud warning, from the process driver itself)."""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from .base import Driver, DriverError

log = logging.getLogger(__name__)

DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
DRIVERS = ("docker", "runc", "process")


def make_driver(name: str, data_dir: Path, docker_host: str | None = None) -> Driver:
    """The named driver; raises DriverError when it cannot work on this host."""
    if name == "docker":
        from .docker import DockerDriver
        return DockerDriver(docker_host or f"unix://{DEFAULT_DOCKER_SOCKET}")
    if name == "runc":
        if os.geteuid() != 0:
            raise DriverError("the runc driver needs root")
        if shutil.which("runc") is None:
            raise DriverError("the runc driver needs `runc` on PATH")
        from .runc import RuncDriver
        return RuncDriver(data_dir)
    if name == "process":
        from .process import ProcessDriver
        return ProcessDriver(data_dir)
    raise DriverError(f"unknown driver {name!r} (choose from {', '.join(DRIVERS)})")


def detect_driver(data_dir: Path, docker_host: str | None = None,
                  preferred: str | None = None) -> Driver:
    """`preferred` if given; otherwise the best driver that works here.

    `docker_host` is DOCKER_HOST as configured (the caller reads configuration); without it the
    default socket is tried when it exists.
    """
    if preferred:
        return make_driver(preferred, data_dir, docker_host)
    if docker_host or os.path.exists(DEFAULT_DOCKER_SOCKET):
        try:
            driver = make_driver("docker", data_dir, docker_host)
            log.info("container driver: docker (%s)", docker_host or DEFAULT_DOCKER_SOCKET)
            return driver
        except DriverError as exc:
            log.info("no usable Docker Engine: %s", exc)
    try:
        driver = make_driver("runc", data_dir)
        log.info("container driver: runc")
        return driver
    except DriverError as exc:
        log.info("runc driver unavailable: %s", exc)
    return make_driver("process", data_dir)
