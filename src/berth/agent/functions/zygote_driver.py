"""The sandbox driver of the function worker: sandboxes forked from warm zygotes, pre-warmed
blank and isolated, and specialised for their function at its cold start.

With isolation (root, namespaces allowed) each sandbox has its own PID, mount, IPC and UTS
namespaces, a read-only root of system and runtime paths, its code read-only at /var/task,
a private /tmp sized by EphemeralStorage, an unprivileged uid, a seccomp filter (the
profile of ..seccomp, also given to runc containers) and cgroups (memory limit, pids limit,
CPU shares, accounting, freezer). Without, the process fallback forks the same
way and logs what it leaves out (isolation.Isolation.gaps).
"""
from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path

from ..sandbox_spec import (
    DEFAULT_PIDS_MAX,
    DEFAULT_TMP_MB,
    SANDBOX_GID,
    SANDBOX_UID,
    RootLayout,
    cpu_shares_for,
    root_layout,
)
from .. import seccomp
from .cgroups import Hierarchies, SandboxCgroups
from .forkserver import ForkServer, ForkServerError
from .isolation import Isolation
from .prewarm import BlankKind, BlankPool
from .run_record import RunRecord
from .runtimes import (
    NODE_RUNTIME_DIR,
    PYTHON_RUNTIME_DIR,
    RuntimeUnavailable,
    host_runtime_prefixes,
    node_blank,
    node_path,
)
from .sandbox import ForkedSandbox, OutputCallback, Sandbox, SandboxDriver, SandboxSpec

log = logging.getLogger(__name__)

READY_TIMEOUT = 30.0     # seconds a blank may take to isolate itself (Node.js: to boot)


class SandboxStartFailed(Exception):
    """A blank sandbox could not be made or specialised."""


class ZygoteDriver(SandboxDriver):
    def __init__(self, work_dir: Path, default_python: str, isolate: bool = True,
                 prewarm_python: int = 4, prewarm_node: int = 2,
                 pids_max: int = DEFAULT_PIDS_MAX, private_paths: tuple[Path, ...] = (),
                 record: RunRecord | None = None) -> None:
        self.work_dir = work_dir
        self.record = record
        self.default_python = default_python
        self.want_isolation = isolate
        self.prewarm = {"python": prewarm_python, "node": prewarm_node}
        self.pids_max = pids_max
        # Host paths no sandbox may see even where a runtime's tree would show them.
        self.private_paths = (work_dir.parent, *private_paths)
        self.zygotes: dict[str, ForkServer] = {}
        self.hierarchies = Hierarchies()
        self.isolation = Isolation(False, frozenset(), "not started")
        self.layout: RootLayout | None = None
        self.stage = work_dir / ".root"
        self.pool = BlankPool(self._make_blank, {})

    async def start(self) -> None:
        self.hierarchies = await asyncio.to_thread(Hierarchies.detect)
        if self.record is not None:
            self.record.cgroups(self.hierarchies.unique)
        zygote = self._zygote(self.default_python)
        await zygote.start()
        namespaces = self.want_isolation and bool(zygote.hello.get("namespaces"))
        if not self.want_isolation:
            reason = "disabled by configuration"
        else:
            reason = "" if namespaces else zygote.hello.get("isolation_error") or "unavailable"
        self.isolation = Isolation(namespaces, frozenset(self.hierarchies.bases), reason,
                                   zygote.seccomp_error)
        self.private_mounts = namespaces
        if namespaces:
            self.stage.mkdir(parents=True, exist_ok=True)
            self.layout = await asyncio.to_thread(root_layout, host_runtime_prefixes(),
                                                  self.private_paths)
            log.info("%s", self.isolation.summary())
        else:
            log.warning("%s", self.isolation.summary())
        targets = {BlankKind("python", self.default_python, str(PYTHON_RUNTIME_DIR)):
                   self.prewarm["python"]}
        try:
            node_path()
            targets[BlankKind("node", self.default_python, str(NODE_RUNTIME_DIR))] = (
                self.prewarm["node"])
        except RuntimeUnavailable:
            pass
        self.pool.targets.update(targets)
        self.pool.start()

    def _zygote(self, python: str) -> ForkServer:
        zygote = self.zygotes.get(python)
        if zygote is None:
            zygote = self.zygotes[python] = ForkServer(
                python, seccomp.profile(),
                self.record.process if self.record is not None else None)
        return zygote

    async def stop(self) -> None:
        await self.pool.stop()
        for zygote in self.zygotes.values():
            zygote.close()
        self.zygotes.clear()
        self.hierarchies.remove()

    def kind_of(self, spec: SandboxSpec) -> BlankKind:
        python = spec.python if spec.kind == "python" else self.default_python
        return BlankKind(spec.kind, python or self.default_python, spec.runtime_dir)

    async def acquire(self, spec: SandboxSpec) -> ForkedSandbox:
        return await self.pool.take(self.kind_of(spec))

    async def specialise(self, sandbox: Sandbox, spec: SandboxSpec,
                         on_output: OutputCallback) -> None:
        assert isinstance(sandbox, ForkedSandbox)
        try:
            if sandbox.cgroups is not None:
                sandbox.cgroups.apply(spec.memory_mb, cpu_shares_for(spec.memory_mb))
            sandbox.attach_output(on_output)
            request = {"uid": SANDBOX_UID, "gid": SANDBOX_GID, "message": {
                "env": spec.env, "cwd": spec.cwd, "sys_path": spec.sys_path,
                "argv": spec.argv}}
            if self.private_mounts:
                request["mounts"] = [[spec.code_dir, "/var/task"]]
                if spec.tmp_mb != DEFAULT_TMP_MB:
                    request["tmp_mb"] = spec.tmp_mb
            await self._zygote(self.kind_of(spec).python).specialise(
                "s-" + sandbox.id, sandbox.pid, request)
        except (OSError, ForkServerError) as exc:
            raise SandboxStartFailed(f"could not specialise a sandbox: {exc}") from exc

    async def _make_blank(self, kind: BlankKind) -> ForkedSandbox:
        sandbox_id = uuid.uuid4().hex
        cgroups = None
        if self.hierarchies.bases:
            cgroups = await asyncio.to_thread(SandboxCgroups, self.hierarchies, sandbox_id,
                                              self.pids_max)
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(read_fd, False)
        sandbox = ForkedSandbox(sandbox_id, cgroups, read_fd)
        request: dict[str, object] = {
            "kind": kind.kind, "uid": SANDBOX_UID, "gid": SANDBOX_GID,
            "cgroups": cgroups.procs_files if cgroups is not None else [],
            "isolation": (self.layout.plan(self.stage, Path(kind.runtime_dir))
                          if self.private_mounts and self.layout is not None else None)}
        if kind.kind == "node":
            request["node_argv"], request["node_env"] = node_blank(self.private_mounts)
        zygote = self._zygote(kind.python)
        try:
            sandbox.pid = await zygote.blank(sandbox_id, request, write_fd, sandbox.on_exit)
            os.close(write_fd)
            write_fd = -1
            await asyncio.wait_for(zygote.wait_ready(sandbox.pid), READY_TIMEOUT)
            if sandbox.exited.done():
                raise ForkServerError("exited while isolating itself")
        except BaseException as exc:
            if write_fd >= 0:
                os.close(write_fd)
            sandbox.kill()
            if sandbox.pid:
                try:
                    await asyncio.wait_for(asyncio.shield(sandbox.exited), 5)
                except TimeoutError:
                    pass
            sandbox.drain_output()
            output = sandbox.early_output().decode(errors="replace").strip()[-2000:]
            await sandbox.destroy()
            if isinstance(exc, (OSError, ForkServerError, TimeoutError)):
                raise SandboxStartFailed(f"a blank {kind.kind} sandbox failed: {exc}"
                                         + (f"\n{output}" if output else "")) from exc
            raise
        return sandbox
