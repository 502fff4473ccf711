"""Run N worker processes under one command, and keep N running.

Competing workers scale by process (one connection each, no shared GIL). Each child runs in
its own session, so a Ctrl-C in the terminal reaches only the supervisor, which passes
every SIGTERM/SIGINT on exactly once: the first makes the workers finish what they hold,
the second stops them at once (a child still starting, before its worker handles signals, is
ended by the first, which counts as a clean stop: it held nothing). A child that dies on its own (killed, out of memory) is
restarted, with backoff if it keeps dying; on Linux a child also gets SIGTERM if the
supervisor itself is killed. A child that exits 1 has stopped on an error it reported in
one line (its queue deleted, a copy the broker refused): running it again would only say
that again, so it is not restarted, and once every child has stopped the supervisor exits 1.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from loguru import logger

__all__ = ["POLL", "STABLE_AFTER", "STOPPED_ON_ERROR", "supervise"]


_PR_SET_PDEATHSIG = 1
POLL = 0.2
STABLE_AFTER = 60.0  # a child that ran this long is healthy again: its restart backoff resets
STOPPED_ON_ERROR = 1  # the CLI's exit code for an error it reported in one line


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):  # not Linux: an orphan works on until stopped
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Child:
    def __init__(self, number: int, command: Sequence[str], env: Mapping[str, str]) -> None:
        self.number = number
        self.command = list(command)
        self.env = dict(env)
        self.backoff = 0.0
        self.restart_at = 0.0
        self.started = 0.0
        self.process: subprocess.Popen[bytes] | None = None
        self.gave_up = False  # stopped on an error: not restarted

    def start(self) -> None:
        linux = sys.platform.startswith("linux")
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent if linux else None,
        )
        self.started = time.monotonic()
        logger.info("worker {} started (pid {})", self.number, self.process.pid)


def supervise(command: Sequence[str], count: int, *, env: Mapping[str, str] | None = None) -> int:
    """Run `count` copies of `command` until a signal stops them; returns the worst exit code
    of the final stop (0 when every worker stopped cleanly)."""
    children = [_Child(n, command, env if env is not None else os.environ) for n in range(1, count + 1)]
    signals: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        signals.append(signum)
        for child in children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.start()
        while True:
            if not signals:
                _restart_dead(children)
                if all(c.gave_up for c in children):
                    logger.error("every worker stopped on an error; see the lines above")
                    return STOPPED_ON_ERROR
            elif all(c.process is None or c.process.poll() is not None for c in children):
                return max((_stop_code(c, signals) for c in children), default=0)
            time.sleep(POLL)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_code(child: _Child, signals: list[int]) -> int:
    """A stopped child's part of the supervisor's exit code: its own, but 0 when the signal
    passed on to it ended it by default, which happens only before its worker took over the
    signals (while it was starting: it held no message)."""
    if child.process is None:
        return 0
    code: int = child.process.returncode
    if -code in signals:
        logger.info("worker {} was stopped while it was starting", child.number)
        return 0
    return abs(code)


def _restart_dead(children: list[_Child]) -> None:
    now = time.monotonic()
    for child in children:
        process = child.process
        if process is None:
            if now >= child.restart_at:
                child.start()
            continue
        code = process.poll()
        if code is None or child.gave_up:
            continue
        if code == STOPPED_ON_ERROR:
            logger.error(
                "worker {} (pid {}) stopped on an error; not restarting it", child.number, process.pid
            )
            child.gave_up = True
            continue
        lived = now - child.started
        child.backoff = 0.0 if lived > STABLE_AFTER else min(30.0, max(0.5, child.backoff * 2))
        logger.warning(
            "worker {} (pid {}) exited with {}; restarting in {:g} s",
            child.number,
            process.pid,
            code,
            child.backoff,
        )
        child.process = None
        child.restart_at = now + child.backoff
