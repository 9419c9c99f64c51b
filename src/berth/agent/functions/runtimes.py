"""How each Lambda runtime starts: which program, which interpreter, which environment.

Interpreters are started by their real path (a pyenv shim is a bash script costing ~70 ms).
A `python3.X` function runs on that Python if the host has it, else on the server's own.
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ...lambda_.model import FunctionConfig
from ..client import Credentials
from . import credentials as role_credentials
from .sandbox import SandboxSpec

log = logging.getLogger(__name__)

RUNTIMES_DIR = Path(__file__).resolve().parents[2] / "runtimes"
PYTHON_RUNTIME_DIR = RUNTIMES_DIR / "python"
NODE_RUNTIME_DIR = RUNTIMES_DIR / "nodejs"
# The AWS SDKs the runtimes carry (scripts/runtime-sdks.sh installs them): boto3 in the
# Python runtime's `sdk`, the AWS SDK for JavaScript v3 in the Node.js runtime's node_modules.
PYTHON_SDK = "sdk"
NODE_SDK = "node_modules"
SERVER_PYTHON = os.path.realpath(sys.executable)


class RuntimeUnavailable(Exception):
    """The function's runtime cannot start on this host (errorType, message)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type, self.message = error_type, message


@lru_cache(maxsize=None)
def python_for(version: str) -> str:
    """The real path of a Python `version` ("3.12") on this host, else the server's own."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return SERVER_PYTHON
    major, _, minor = version.partition(".")
    if not (major == "3" and minor.isdigit() and int(minor) >= 9):
        # berth's Python runtime needs 3.9 or later (socket.send_fds, os.pidfd_open).
        log.warning("python%s functions run on the server's Python %d.%d (%s)", version,
                    sys.version_info.major, sys.version_info.minor, SERVER_PYTHON)
        return SERVER_PYTHON
    candidates = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python{version}"),
                        key=lambda p: [int(x) for x in p.split("/")[4].split(".")
                                       if x.isdigit()], reverse=True)
    candidates += [f"/usr/local/bin/python{version}", f"/usr/bin/python{version}"]
    for path in candidates:
        if os.access(path, os.X_OK):
            return os.path.realpath(path)
    log.warning("no Python %s on this host: python%s functions run on the server's Python "
                "%d.%d (%s)", version, version, sys.version_info.major,
                sys.version_info.minor, SERVER_PYTHON)
    return SERVER_PYTHON


@lru_cache(maxsize=1)
def node_path() -> str:
    found = shutil.which("node")
    if found is None:
        raise RuntimeUnavailable("Runtime.InvalidEntrypoint", "Node.js is not installed on "
                                 "this host")
    return os.path.realpath(found)


@dataclass(frozen=True)
class Paths:
    """The sandbox's view: the task root and runtime dir as it sees them, and its /tmp."""

    task_root: str
    runtime_dir: str
    tmp: str


# Variables Node.js reads only when it starts: a function setting one gets a fresh node.
NODE_STARTUP_VARIABLES = ("NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "NODE_ICU_DATA",
                          "NODE_PRESERVE_SYMLINKS", "UV_THREADPOOL_SIZE")


def _node_path_variable(runtime_dir: str, task_root: str) -> str:
    return (f"/opt/nodejs/node_modules:{runtime_dir}/node_modules:{runtime_dir}:"
            f"{task_root}")


def node_blank(private_mounts: bool) -> tuple[list[str], dict[str, str]]:
    """How a blank Node.js sandbox starts, before it knows its function."""
    runtime_dir = "/var/runtime" if private_mounts else str(NODE_RUNTIME_DIR)
    node = node_path()
    env = {"PATH": f"{os.path.dirname(node)}:/usr/local/bin:/usr/bin:/bin",
           "LANG": "en_US.UTF-8", "TZ": ":UTC",
           "NODE_PATH": _node_path_variable(runtime_dir, "/var/task")}
    return [node, f"{runtime_dir}/bootstrap.js"], env


def host_runtime_prefixes() -> list[str]:
    """Install trees of the host's language runtimes that sandboxes must see read-only:
    the server's Python, every Python `python_for` may choose, and Node.js."""
    interpreters = [SERVER_PYTHON, *glob.glob("/root/.pyenv/versions/*/bin/python3.*")]
    try:
        interpreters.append(node_path())
    except RuntimeUnavailable:
        pass
    prefixes = set()
    for exe in interpreters:
        if exe.endswith("-config"):
            continue
        prefixes.add(os.path.dirname(os.path.dirname(os.path.realpath(exe))))
    return sorted(prefixes)


def build_spec(config: FunctionConfig, code_dir: Path, tmp_dir: Path | None, api_port: int,
               log_stream: str, private_mounts: bool, endpoint: str | None = None,
               credentials: Credentials | None = None) -> SandboxSpec:
    """How the sandbox of `config` starts; `endpoint` is berth's as the sandbox reaches it,
    `credentials` its execution role's."""
    runtime = config.runtime
    if runtime.startswith("python"):
        runtime_dir = PYTHON_RUNTIME_DIR
    elif runtime.startswith("nodejs"):
        runtime_dir = NODE_RUNTIME_DIR
    elif runtime.startswith("provided"):
        runtime_dir = PYTHON_RUNTIME_DIR
    else:
        raise RuntimeUnavailable("Runtime.InvalidRuntime",
                                 f"The runtime {runtime} is not supported by berth.")
    if private_mounts:
        paths = Paths("/var/task", "/var/runtime", "/tmp")
    else:
        assert tmp_dir is not None
        paths = Paths(str(code_dir), str(runtime_dir), str(tmp_dir))
    env = _environment(config, paths, api_port, log_stream, endpoint, credentials)
    if not private_mounts:
        env["TMPDIR"] = paths.tmp
    task = paths.task_root

    def spec(kind: str, argv: list[str] | None = None, python: str = "",
             sys_path: list[str] | None = None) -> SandboxSpec:
        return SandboxSpec(kind, env, task, config.memory_size, str(code_dir),
                           str(runtime_dir), config.ephemeral_storage, argv, python,
                           sys_path or [])

    if runtime.startswith("python"):
        version = runtime.removeprefix("python")
        python = python_for(version)
        env["PATH"] = f"{os.path.dirname(python)}:{env['PATH']}"
        sdk = f"{paths.runtime_dir}/{PYTHON_SDK}"
        env["PYTHONPATH"] = f"{task}:{paths.runtime_dir}:{sdk}"
        # As on Lambda: the function's own packages and layers come before the runtime's SDK.
        sys_path = [task, f"/opt/python/lib/python{version}/site-packages", "/opt/python", sdk]
        if (code_dir / "lib").is_dir():
            # Libraries the code ships in lib/ are found through LD_LIBRARY_PATH, which the
            # dynamic loader reads only when a program starts: no forking from the zygote.
            return spec("exec", argv=[python, "-s", "-m", "berth_runtime.bootstrap"])
        return spec("python", python=python, sys_path=sys_path)
    if runtime.startswith("nodejs"):
        node = node_path()
        env["PATH"] = f"{os.path.dirname(node)}:{env['PATH']}"
        env["NODE_PATH"] = _node_path_variable(paths.runtime_dir, task)
        if not private_mounts:
            _link_node_sdk(code_dir.parent)
        if any(name in config.environment for name in NODE_STARTUP_VARIABLES):
            return spec("exec", argv=[node, f"{paths.runtime_dir}/bootstrap.js"])
        return spec("node")
    bootstrap = code_dir / "bootstrap"
    if not bootstrap.is_file() or not os.access(bootstrap, os.X_OK):
        raise RuntimeUnavailable(
            "Runtime.InvalidEntrypoint",
            f"Couldn't find valid bootstrap(s): [{task}/bootstrap /opt/bootstrap]")
    env.pop("AWS_EXECUTION_ENV", None)
    return spec("exec", argv=[f"{task}/bootstrap"])


def _link_node_sdk(code_parent: Path) -> None:
    """ES modules find packages only in a `node_modules` of a parent directory (NODE_PATH is
    for `require`): without a private root, the runtime's SDK is linked beside the code
    trees. Isolated sandboxes have /node_modules for the same reason (isolate.enter)."""
    link = code_parent / NODE_SDK
    if not link.is_symlink():
        try:
            link.symlink_to(NODE_RUNTIME_DIR / NODE_SDK)
        except FileExistsError:
            pass


def _environment(config: FunctionConfig, paths: Paths, api_port: int, log_stream: str,
                 endpoint: str | None, credentials: Credentials | None) -> dict[str, str]:
    task, runtime_dir = paths.task_root, paths.runtime_dir
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/opt/bin",
        "LD_LIBRARY_PATH": f"/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{task}:"
                           f"{task}/lib:/opt/lib",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
    }
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    if config.runtime.startswith("nodejs"):
        # The SDK berth ships warns once per sandbox that later releases need Node.js 22:
        # a note about berth's choice of SDK, not about the function.
        env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] = "true"
    # The function's own variables may override the ones above, never the ones below.
    env.update(config.environment)
    env.update({
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": config.version,
        "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
        "LAMBDA_TASK_ROOT": task,
        "LAMBDA_RUNTIME_DIR": runtime_dir,
        "_HANDLER": config.handler,
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api_port}",
    })
    env.update(role_credentials.environment(credentials))
    return env
