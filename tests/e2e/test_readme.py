"""README.md cannot drift: every ```sh block in it runs, in order and in one shell, against a
`berth up` started in a clean folder, as a newcomer would run them.

Blocks under the headings in NOT_RUN install or start berth; the test stands in for them (it
runs from the virtualenv `make install` made, and starts `berth up` itself). A ```text block
right after a ```sh block lists lines its output must contain, in order (`...` matches
anything, runs of spaces and tabs match any run). New sections are run as they are added.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from agent_process import remove_task_containers
from berth_process import BERTH, free_port, stop_process

README = Path(__file__).resolve().parents[2] / "README.md"
NOT_RUN = {"Install": "the test runs from the virtualenv `make install` made",
           "Start berth": "the test starts `berth up` in a clean folder itself"}
MARK = "::readme-block::"


@dataclass
class Block:
    heading: str
    code: str
    expected: list[str] = field(default_factory=list)


def readme_blocks(text: str) -> list[Block]:
    """The ```sh blocks of a markdown text with their heading and expected output."""
    out: list[Block] = []
    heading, fence, lines, last_closed = "", None, [], None
    for line in text.splitlines():
        if fence is None:
            if line.startswith("## "):
                heading = line[3:].strip()
            elif line.startswith("```"):
                fence, lines = line[3:].strip(), []
            elif line.strip():
                last_closed = None      # prose between a sh block and a text block
            continue
        if line.startswith("```"):
            if fence == "sh":
                out.append(Block(heading, "\n".join(lines)))
                last_closed = out[-1]
            elif fence == "text" and last_closed is not None:
                last_closed.expected = [x for x in lines if x.strip()]
                last_closed = None
            fence = None
            continue
        lines.append(line)
    return out


def expected_pattern(line: str) -> str:
    parts = [re.escape(p) for p in re.split(r"\s+", line.strip())]
    return r"[ \t]+".join(parts).replace(re.escape("..."), ".*")


def check_output(block: Block, output: str) -> None:
    at = 0
    for line in block.expected:
        found = re.compile(expected_pattern(line), re.MULTILINE).search(output, at)
        assert found, (f"README section {block.heading!r}: expected {line!r} in order in the "
                       f"output of\n{block.code}\n--- output ---\n{output}")
        at = found.end()


def test_the_readme_is_parsed_into_the_walkthrough() -> None:
    blocks = readme_blocks(README.read_text())
    run = [b for b in blocks if b.heading not in NOT_RUN]
    headings = {b.heading for b in run}
    for section in ("Point your tools at berth", "Containers: run a task",
                    "Containers: a service, scaled up and down", "Functions"):
        assert section in headings, headings
    assert set(NOT_RUN) <= {b.heading for b in blocks}
    assert sum(len(b.expected) for b in run) >= 10
    assert readme_blocks("## A\n```sh\nx\n```\n\n```text\ny\n```\n## B\n```sh\nz\n```\ntext\n"
                         "```text\nw\n```\n") == [Block("A", "x", ["y"]), Block("B", "z")]


def _wait_for_instance(port: int, log: Path, env: dict[str, str]) -> None:
    """Until `berth up` listens and its agent has joined `default`, as its output shows a
    person before they go on."""
    aws = str(Path(sys.executable).parent / "aws")
    deadline = time.monotonic() + 60
    said = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
        except OSError:
            time.sleep(0.2)
            continue
        done = subprocess.run([aws, "ecs", "list-container-instances", "--output", "text"],
                              env=env, capture_output=True, text=True, timeout=30)
        if done.returncode == 0 and "container-instance" in done.stdout:
            return
        said = done.stdout + done.stderr
        time.sleep(0.2)
    pytest.fail(f"berth up did not come up ({said}):\n{log.read_text()[-4000:]}")


def test_every_readme_command_works_against_berth_up_in_a_clean_folder(tmp_path: Path) -> None:
    folder = tmp_path / "clean"
    folder.mkdir()
    # What `make install` leaves in a checkout, for the README's `$PWD/.venv/bin`.
    (folder / ".venv").symlink_to(Path(sys.executable).parents[1])
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BERTH_"))}
    env.update(HOME=str(home), BERTH_PORT=str(port))
    log = tmp_path / "berth-up.log"
    with open(log, "ab") as out:
        up = subprocess.Popen([*BERTH, "up"], cwd=folder, env=env, stdout=out,
                              stderr=subprocess.STDOUT, start_new_session=True)
    data = folder / ".berth"
    try:
        deadline = time.monotonic() + 30
        while not (data / "endpoint").exists():      # written once the keys are
            assert up.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        exported = subprocess.run([*BERTH, "env"], cwd=folder, env=env, capture_output=True,
                                  text=True, timeout=30, check=True).stdout
        client_env = dict(env)
        for line in exported.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            client_env[key] = value.strip("'")
        _wait_for_instance(port, log, client_env)

        blocks = [b for b in readme_blocks(README.read_text()) if b.heading not in NOT_RUN]
        script = "set -euo pipefail\n" + "".join(
            f"echo '{MARK}{i}'\n{b.code}\n" for i, b in enumerate(blocks))
        done = subprocess.run(["bash", "-c", script], cwd=folder, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
        parts = done.stdout.split(MARK)[1:]
        outputs = {int(p.split("\n", 1)[0]): p.split("\n", 1)[1] if "\n" in p else ""
                   for p in parts}
        ran = max(outputs, default=-1)
        assert done.returncode == 0, (
            f"README section {blocks[ran].heading!r} failed (exit {done.returncode}):\n"
            f"{blocks[ran].code}\n--- output ---\n{outputs.get(ran, '')}\n"
            f"--- berth up ---\n{log.read_text()[-3000:]}")
        assert ran == len(blocks) - 1
        for i, block in enumerate(blocks):
            check_output(block, outputs[i])
    finally:
        stop_process(up)
        remove_task_containers(data)        # every container of this data dir's agent
