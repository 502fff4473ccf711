"""Every example in the README runs as written, in order (issue 12, item 26).

The README's ```python blocks run in one namespace, top to bottom. Its ```sh blocks run line by
line (a trailing `\\` joins lines) with bash, in one temporary directory that holds `examples/`
and `demos/` as a clone does, as one shell session would: `export NAME=VALUE` lines carry on to
the commands after them. Commands that name RabbitMQ (`amqp://guest:guest@localhost...`, or
ROUTING_URL once exported) run on the test broker, in a vhost of this test's own so the fixed
names of the examples meet nothing else; the rest run on the embedded broker.

Lines that cannot run here are listed in SKIPPED with the reason; a line that runs until it
is stopped (a worker) is stopped after a few seconds with SIGTERM and must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

# The URL forms the README writes for "RabbitMQ on this machine".
_LOCAL_URL = re.compile(r"amqp://guest:guest@localhost(?::5672)?/")

# Line prefix -> why it is not run here.
SKIPPED = {
    "python3 -m venv .venv && .venv/bin/pip install -q -e . &&": "test_quick_start_on_a_fresh_virtualenv runs it",
    'python3 -m venv .venv && .venv/bin/pip install -q -e ".[dev]"': "it runs this test suite",
    "ROUTING_TEST_URL=amqp://guest:guest@127.0.0.1:5674/%2F": "CI's second run of this suite, on RabbitMQ 4.0.5",
    "scripts/cluster.sh": "starts a 3-node cluster; tests/test_cluster_failover.py runs it",
    "export ROUTING_URL=amqp://guest:guest@127.0.0.1:5681/": "the cluster's URL (see scripts/cluster.sh)",
    'pip install -e ".[examples]"': "the test environment has the extra (CI installs .[dev,bench,examples])",
    # The Workers section belongs to another change; drop this once its line runs as written.
    "routing dlq replay resize.dead --id 2ee59ac7-...": "a placeholder id, not a command that runs as written",
    'pip install -q -e ".[webapp]"': "the test's environment has the extras (CI installs .[dev,bench,webapp])",
    'pip install -q -e ".[otel]"': "the test's environment has the extra (the dev extra holds it)",
    'pip install -q -e ".[ui]"': "the dev extra holds the ui extra's packages (tests/test_ui.py)",
}
# Runs until stopped: (line prefix, seconds to let it run).
LONG_RUNNING = {"routing worker ": 6.0, "uvicorn ": 6.0, "routing ui": 10.0}
# Ends by the signal it was stopped with, once its shutdown is complete: uvicorn re-raises SIGTERM.
ENDS_BY_SIGNAL = ("uvicorn ",)


def blocks(kind: str) -> list[tuple[int, str]]:
    """(line number, text) of every ```kind block, in order."""
    found, lines = [], README.read_text(encoding="utf-8").splitlines()
    inside: int | None = None
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        if inside is None and line.strip() == f"```{kind}":
            inside, body = number + 1, []
        elif inside is not None and line.strip() == "```":
            found.append((inside, "\n".join(body)))
            inside = None
        elif inside is not None:
            body.append(line)
    return found


def commands() -> list[tuple[int, str]]:
    """(line number, command) of every sh line, continuations joined, in README order."""
    out = []
    for start, text in blocks("sh"):
        pending, first = "", start
        for offset, line in enumerate(text.splitlines()):
            if not pending:
                first = start + offset
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            command = (pending + line).strip()
            pending = ""
            if command and not command.startswith("#"):
                out.append((first, command))
    return out


# ------------------------------------------------------------------ python


def test_the_python_examples_run_in_order() -> None:
    namespace: dict[str, Any] = {"__name__": "readme"}
    python = blocks("python")
    assert len(python) >= 4
    for start, code in python:
        try:
            exec(compile(code, f"README.md:{start}", "exec"), namespace)
        except Exception as exc:  # the README line that failed, not this file's
            pytest.fail(f"README.md:{start}: {type(exc).__name__}: {exc}", pytrace=False)


# ------------------------------------------------------------------ sh


def _skipped(command: str) -> str | None:
    return next((why for prefix, why in SKIPPED.items() if command.startswith(prefix)), None)


@pytest.mark.broker
def test_the_shell_examples_run_in_order(vhost_url: str, tmp_path: Path) -> None:
    broker_url = vhost_url  # stands in for the README's localhost URL
    for name in ("examples", "demos"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if k != "ROUTING_URL"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "100"
    ran = 0
    for line, command in commands():
        if _skipped(command):
            continue
        command = _LOCAL_URL.sub(broker_url.replace("\\", "\\\\"), command)
        if command.startswith("export "):
            name, _, value = command.removeprefix("export ").split("#", 1)[0].strip().partition("=")
            env[name] = shlex.split(value)[0]
            continue
        seconds = next((s for prefix, s in LONG_RUNNING.items() if command.startswith(prefix)), None)
        where = f"README.md:{line}: {command}"
        if seconds is None:
            done = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            out, err, code = done.stdout, done.stderr, done.returncode
        else:
            process = subprocess.Popen(
                ["bash", "-c", f"exec {command}"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                out, err = process.communicate(timeout=seconds)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGTERM)
                out, err = process.communicate(timeout=60)
            code = process.returncode
            if code == -signal.SIGTERM and command.startswith(ENDS_BY_SIGNAL):
                code = 0
        assert code == 0, f"{where}\nexit {code}\nstdout:\n{out[-2000:]}\nstderr:\n{err[-2000:]}"
        assert "Traceback" not in out + err, f"{where}\n{err[-2000:]}"
        ran += 1
    assert ran >= 20


def test_every_skipped_line_is_still_in_the_readme() -> None:
    """A skip for a line the README no longer has would hide nothing; drop it."""
    written = [command for _, command in commands()]
    for prefix in SKIPPED:
        assert any(command.startswith(prefix) for command in written), prefix


@pytest.mark.slow
def test_quick_start_on_a_fresh_virtualenv(tmp_path: Path) -> None:
    """The README's first command, as a new user runs it: a new virtualenv, the package, the demos."""
    [(_, first), *_] = commands()
    assert first.startswith(
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/routing demo all"
    )
    command = first.replace("-e .", f"-e {shlex.quote(str(ROOT))}")
    env = {k: v for k, v in os.environ.items() if k not in ("ROUTING_URL", "VIRTUAL_ENV")}
    done = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("summary:") == 4
