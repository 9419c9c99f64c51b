"""The runc driver: daemonless containers, one OCI bundle each under `<data>/containers/<id>/`.

The root file system is an overlay of an image from the local image store with a private upper
directory (a copy where overlay is unavailable), or the host's own file system for the image
`host`. A shim supervises each container (see shim.py), so output and exit status survive the
agent; lifecycle commands go to `runc --root <data>/runc`.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..images import HOST_IMAGE, Image, ImageError, ImageStore, normalize_name
from ..oci import (
    RLIMIT_NAMES,
    Runc,
    RuncError,
    Sandbox,
    SandboxProcess,
    cgroup_dirs,
    mount_overlay,
    oom_counter,
    resolve_in_root,
    resolve_user,
    unmount,
    write_bundle,
)
from ..sandbox_spec import MIB, SandboxLimits, SandboxMount
from .base import (
    DEFAULT_PATH,
    CannotStart,
    ContainerSpec,
    DriverError,
    ExecResult,
    image_argv,
    validate,
)
from .stats import cgroup_usage, docker_stats
from .supervised import SupervisedDriver, default_rlimits

log = logging.getLogger(__name__)

CGROUP_PARENT = "/berth"
# A container's init (initProcessEnabled) is the host's static tini, bound in read-only where
# no image has anything (/dev is the container's own tmpfs), as Docker binds its docker-init.
INIT_BINARIES = ("tini-static", "docker-init")
INIT_PATH = "/dev/init"


def find_init() -> str:
    """The host's static init for containers; CannotStart if it has none."""
    for name in INIT_BINARIES:
        found = shutil.which(name)
        if found:
            return os.path.realpath(found)
    raise CannotStart("initProcessEnabled needs a static init on the host (tini-static, from "
                      "the Debian package tini)")


class RuncDriver(SupervisedDriver):
    name = "runc"
    network_modes = frozenset({"host", "none"})

    def __init__(self, data_dir: Path, runc_binary: str = "runc") -> None:
        super().__init__(data_dir)
        self.runc = Runc(self.data_dir / "runc", runc_binary)
        self.images = ImageStore(self.data_dir)
        self._overlay_ok = True

    def offer(self, archives: Mapping[str, Path]) -> None:
        """Import the offered images this store lacks, so `berth image ls` lists them."""
        have = set(self.images.names())
        for path in {p for name, p in archives.items() if normalize_name(name) not in have}:
            try:
                self.images.import_archive(path)
            except ImageError as exc:
                log.warning("built-in image %s not imported: %s", path, exc)

    def create(self, spec: ContainerSpec) -> str:
        validate(spec, self.network_modes)
        image = None if spec.image == HOST_IMAGE else self.images.get(spec.image)
        for m in spec.mounts:
            if m.source is not None and not os.path.exists(m.source):
                raise CannotStart(f"mount source {m.source} does not exist")
        cid, cdir = self._new_dir(spec, stop_timeout=spec.stop_timeout)
        try:
            sandbox = self._sandbox(cid, spec, image)
            write_bundle(cdir, sandbox)
            if image is not None:
                self._prepare_rootfs(cdir, image, sandbox.process.cwd)
            oom = oom_counter(sandbox.cgroups_path)
            pid_file = cdir / "init.pid"
            self._launch(cdir, {"mode": "runc", "argv": self.runc.create_argv(cid, cdir, pid_file),
                                "pid_file": str(pid_file), "oom_file": str(oom) if oom else None})
        except BaseException:
            self.remove(cid)
            raise
        return cid

    def _sandbox(self, cid: str, spec: ContainerSpec, image: Image | None) -> Sandbox:
        lookup_root = Path("/") if image is None else image.rootfs
        argv = image_argv(spec, image.entrypoint if image else None, image.cmd if image else None)
        try:
            uid, gid, groups, home = resolve_user(lookup_root, spec.user or
                                                  (image.user if image else None))
        except LookupError as exc:
            raise CannotStart(str(exc)) from exc
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": cid[:12]}
        for item in image.env if image else []:
            key, _, value = item.partition("=")
            env[key] = value
        env.setdefault("HOME", home)
        env.update(spec.environment)
        unknown = [u.name for u in spec.ulimits if u.name not in RLIMIT_NAMES]
        if unknown:
            raise CannotStart(f"unknown ulimit {', '.join(unknown)}")
        mounts = [SandboxMount(m.target, m.source, m.read_only) for m in spec.mounts]
        if spec.init:
            mounts.append(SandboxMount(INIT_PATH, find_init(), read_only=True))
            argv = [INIT_PATH, "--", *argv]
        if spec.network == "host" and image is not None:
            mounts += [SandboxMount(f, f, read_only=True) for f in ("/etc/resolv.conf",
                                                                    "/etc/hosts")
                       if os.path.exists(f)]
        return Sandbox(
            process=SandboxProcess(
                args=argv, env=env,
                cwd=spec.working_dir or (image.working_dir if image else "") or "/",
                uid=uid, gid=gid, additional_gids=groups,
                rlimits=default_rlimits({u.name: (u.soft, u.hard) for u in spec.ulimits})),
            cgroups_path=f"{CGROUP_PARENT}/{cid}", hostname=cid[:12], network=spec.network,
            host_root=image is None, read_only_root=spec.read_only_root, mounts=mounts,
            limits=SandboxLimits(
                memory_bytes=spec.memory_mib * MIB if spec.memory_mib else None,
                memory_reservation_bytes=spec.memory_reservation_mib * MIB
                if spec.memory_reservation_mib else None,
                pids=spec.pids_limit, cpu_shares=spec.cpu_shares))

    def _prepare_rootfs(self, cdir: Path, image: Image, cwd: str) -> None:
        rootfs = cdir / "rootfs"
        if self._overlay_ok:
            (cdir / "upper").mkdir()
            (cdir / "work").mkdir()
            try:
                mount_overlay(image.rootfs, cdir / "upper", cdir / "work", rootfs)
            except OSError as exc:
                log.warning("overlay mounts fail here (%s); copying image root file systems "
                            "instead", exc)
                self._overlay_ok = False
        if not self._overlay_ok:
            subprocess.run(["cp", "-a", f"{image.rootfs}/.", str(rootfs)], check=True,
                           capture_output=True)
        # Docker creates a missing working directory; so do we (inside the container's root).
        resolve_in_root(rootfs, cwd).mkdir(parents=True, exist_ok=True)

    def start(self, cid: str) -> None:
        cdir = self._dir(cid)
        if self.state(cid).status != "created":
            raise CannotStart(f"container {cid} is not in the created state")
        started = time.time()
        try:
            self.runc.start(cid)
        except RuncError as exc:
            raise CannotStart(str(exc)) from exc
        self._mark_started(cdir, started)

    def stop(self, cid: str, timeout: float) -> None:
        cdir = self._dir(cid)
        if self._init_pid(cdir) is None:
            return
        started = self.state(cid).status == "running"
        try:
            # A created container has not run its command yet: nothing to ask politely.
            self.runc.kill(cid, "TERM" if started else "KILL")
        except RuncError:
            pass        # exited meanwhile
        if started and not self._wait_exit_file(cdir, timeout):
            try:
                self.runc.kill(cid, "KILL", all_processes=True)
            except RuncError:
                pass
        self._wait_exit_file(cdir, 10)

    def remove(self, cid: str) -> None:
        try:
            cdir = self._dir(cid)
        except DriverError:
            return
        try:
            self.runc.delete(cid)
        except RuncError as exc:
            log.warning("runc delete %s: %s", cid, exc)
        self._wait_exit_file(cdir, 5)   # let the shim finish writing before the files go
        rootfs = cdir / "rootfs"
        unmount(rootfs)
        if os.path.ismount(rootfs):
            raise DriverError(f"{rootfs} is still mounted; not deleting the container's files")
        self._remove_dir(cdir)

    def stats(self, cid: str) -> dict[str, Any]:
        meta = self._meta(cid)
        usage = cgroup_usage(cgroup_dirs(f"{CGROUP_PARENT}/{cid}"))
        return docker_stats(usage, meta["name"], cid)

    def exec(self, cid: str, cmd: list[str], timeout: float) -> ExecResult:
        cdir = self._dir(cid)
        if self.state(cid).status != "running":
            raise DriverError(f"container {cid} is not running")
        try:
            code, out = self.runc.exec(cid, cmd, timeout, cdir / f"exec-{uuid.uuid4().hex}.pid")
        except RuncError as exc:
            raise DriverError(str(exc)) from exc
        return ExecResult(code, out)
