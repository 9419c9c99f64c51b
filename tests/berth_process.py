"""Starts real berth processes for tests and points real AWS clients at them."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
import httpx
from botocore.config import Config

BERTH = [sys.executable, "-m", "berth.cli"]
ACCESS_KEY = "AKIATESTBERTH0000001"
SECRET_KEY = "test-secret-key-for-berth-e2e-0000000000"


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    """The error a client call must fail with, as a 400: botocore's parsed `Error`."""
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kwargs)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err.value.response["Error"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                 timeout: float = 15) -> int:
    """Ask a process we started to stop; SIGKILL it if it has not within `timeout`."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class BerthProcess:
    """One `berth server` (or `berth up`) process on a free port with its own data dir."""

    def __init__(self, data_dir: Path, command: str = "server",
                 database_url: str | None = None, extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        """`env`: variables for the process besides this one's (BERTH_* settings)."""
        self.data_dir = data_dir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.args = [*BERTH, command, "--port", str(self.port), "--data-dir", str(data_dir),
                     "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, *extra_args]
        if database_url:
            self.args += ["--database-url", database_url]
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    def start(self, timeout: float = 20) -> "BerthProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     env={**os.environ, **self.extra_env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berth exited early:\n{self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"berth did not listen in {timeout}s:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.proc is not None
        return stop_process(self.proc, sig, timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def env(self) -> dict[str, str]:
        return {**os.environ, "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self, service: str, region: str = "us-east-1", **kw: Any) -> Any:
        kw.setdefault("aws_access_key_id", ACCESS_KEY)
        kw.setdefault("aws_secret_access_key", SECRET_KEY)
        kw.setdefault("config", Config(retries={"max_attempts": 1}))
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region, **kw)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.endpoint, timeout=30)

    def aws_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        aws = str(Path(sys.executable).parent / "aws")
        return subprocess.run([aws, *args, "--output", "json"], env=self.env(), text=True,
                              capture_output=True, check=check, timeout=60)
