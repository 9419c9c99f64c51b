"""The `berth` command as a newcomer uses it: start, point clients at it, stop."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from berth_process import BERTH, BerthProcess, free_port


def _start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([*BERTH, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)


def _wait_listening(proc: subprocess.Popen[str], port: int) -> None:
    """Wait until the server answers on its port."""
    import socket
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.05)
    else:
        pytest.fail("berth did not start listening")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("command", ["server", "up"])
def test_starts_prints_how_to_connect_and_stops_cleanly(tmp_path: Path, command: str,
                                                        sig: int) -> None:
    port = free_port()
    env = {**os.environ, "BERTH_PORT": str(port), "BERTH_DATA_DIR": str(tmp_path / "d")}
    proc = _start([command], env=env)
    _wait_listening(proc, port)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert f"listening on http://127.0.0.1:{port}" in out
    assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}" in out
    assert "export AWS_SECRET_ACCESS_KEY=" in out
    assert "Traceback" not in out


def test_keys_are_generated_once_private_and_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = BerthProcess(data)
    first.args = [a for a in first.args if a not in ("--access-key", "--secret-key")
                  and not a.startswith(("AKIATEST", "test-secret"))]
    first.start()
    first.stop()
    creds = data / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    keys = json.loads(creds.read_text())
    assert keys["access_key"].startswith("AKIA") and len(keys["secret_key"]) >= 30
    first.start()  # a restart keeps the same keys
    first.stop()
    assert json.loads(creds.read_text()) == keys


def test_env_points_the_aws_cli_at_the_running_berth(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = BerthProcess(data)
    proc.args = [a for a in proc.args if a not in ("--access-key", "--secret-key")
                 and not a.startswith(("AKIATEST", "test-secret"))]
    proc.start()
    try:
        aws = str(Path(sys.executable).parent / "aws")
        script = (f'eval "$({sys.executable} -m berth.cli env --data-dir {data})" && '
                  f"{aws} logs create-log-group --log-group-name /from/env && "
                  f"{aws} logs describe-log-groups --output json")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        done = subprocess.run(["bash", "-c", script], env=clean, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        names = [g["logGroupName"] for g in json.loads(done.stdout)["logGroups"]]
        assert names == ["/from/env"]
    finally:
        proc.stop()


def test_env_without_a_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run([*BERTH, "env", "--data-dir", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "no berth data dir" in done.stderr
    assert "Traceback" not in done.stderr
