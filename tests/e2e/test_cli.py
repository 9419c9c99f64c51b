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


def _exports(text: str) -> dict[str, str]:
    """`export K=V` lines (as `berth env` prints them) as a dict."""
    import shlex
    out = {}
    for line in text.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        out[key] = shlex.split(value)[0] if value else ""
    return out


def test_client_commands_follow_the_exported_variables_from_any_folder(tmp_path: Path) -> None:
    """From a folder that is not the data dir's, with nothing but what `berth env` exported,
    `berth logs tail`, `berth image import/ls` and `berth env` reach the running berth and its
    image store, and none of them makes a data dir of its own."""
    from agent_process import container, remove_task_containers, stopped, wait_task
    from images import busybox_archive
    up = BerthProcess(tmp_path / "data", command="up").start()
    arn = ""
    try:
        printed = subprocess.run([*BERTH, "env", "--data-dir", str(up.data_dir)],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
        exported = _exports(printed)
        assert exported["AWS_ENDPOINT_URL"] == up.endpoint
        assert exported["BERTH_DATA_DIR"] == str(up.data_dir)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("AWS_", "BERTH_"))}
        env = {**clean, **exported}

        def berth(*args: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run([*BERTH, *args], cwd=elsewhere, env=env, capture_output=True,
                                  text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert "Traceback" not in done.stderr
            return done

        assert _exports(berth("env").stdout) == exported

        logs = up.client("logs")
        logs.create_log_group(logGroupName="/from/elsewhere")
        logs.create_log_stream(logGroupName="/from/elsewhere", logStreamName="s")
        logs.put_log_events(logGroupName="/from/elsewhere", logStreamName="s", logEvents=[
            {"timestamp": int(time.time() * 1000), "message": "seen from elsewhere"}])
        assert "seen from elsewhere" in berth("logs", "tail", "/from/elsewhere").stdout

        archive = busybox_archive(tmp_path / "mine.tar", name="mine/busybox:1")
        assert "mine/busybox:1" in berth("image", "import", str(archive)).stdout
        assert "mine/busybox:1" in berth("image", "ls").stdout

        ecs = up.client("ecs")
        deadline = time.monotonic() + 20
        while not ecs.list_container_instances()["containerInstanceArns"]:
            assert time.monotonic() < deadline, up.log_path.read_text()
            time.sleep(0.1)
        inst = ecs.describe_container_instances(containerInstances=ecs.list_container_instances()[
            "containerInstanceArns"])["containerInstances"][0]
        # The image store is the runc driver's (a Docker Engine keeps its own images).
        if {a["name"]: a.get("value") for a in inst["attributes"]}["berth.driver"] == "runc":
            ecs.register_task_definition(family="mine", containerDefinitions=[{
                "name": "mine", "image": "mine/busybox:1", "memory": 32,
                "command": ["sh", "-c", "exit 7"]}])
            arn = ecs.run_task(taskDefinition="mine")["tasks"][0]["taskArn"]
            task = wait_task(ecs, "default", arn, stopped)
            assert container(task, "mine")["exitCode"] == 7, task
        assert list(elsewhere.iterdir()) == []      # no ./.berth made here
    finally:
        up.stop()
        remove_task_containers(up.data_dir, [arn] if arn else [])


def test_client_commands_without_a_berth_make_nothing_and_say_why(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BERTH_"))}
    for args in (["env"], ["logs", "tail", "/x"], ["image", "ls"],
                 ["image", "import", str(Path(__file__))]):
        done = subprocess.run([*BERTH, *args], cwd=tmp_path, env=clean, capture_output=True,
                              text=True, timeout=30)
        assert done.returncode != 0, args
        assert "no berth data dir at" in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_every_data_dir_option_is_explained_and_version_is_printed() -> None:
    import click

    from berth.cli import main
    seen = 0
    stack: list[click.Command] = [main]
    while stack:
        cmd = stack.pop()
        if isinstance(cmd, click.Group):
            stack.extend(cmd.commands.values())
        for param in cmd.params:
            if param.name == "data_dir":
                seen += 1
                assert isinstance(param, click.Option) and param.help, cmd.name
    assert seen >= 7        # up, server, agent, env, logs tail, image import, image ls
    done = subprocess.run([*BERTH, "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.startswith("berth, version ")
