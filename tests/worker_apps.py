"""Apps for worker tests, importable by the worker processes the tests start
(`routing worker worker_apps:app` with this folder on PYTHONPATH).

Each handled id is appended, one line per message, to the file `ROUTING_TEST_WORK_LOG`
names: one `write` on an O_APPEND descriptor, so a worker killed with -9 leaves whole lines.
"""

from __future__ import annotations

import os
import time

from routing import Envelope
from routing.worker import App, RetryPolicy

app = App(retry=RetryPolicy(initial=0.05, multiplier=2, max_delay=0.2, max_attempts=3))
_SECONDS = float(os.environ.get("ROUTING_TEST_WORK_SECONDS", "0"))
_log_fd: int | None = None


def _record(line: str) -> None:
    global _log_fd
    if _log_fd is None:
        _log_fd = os.open(os.environ["ROUTING_TEST_WORK_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_log_fd, line.encode() + b"\n")


@app.handler("task.resize_image")
def resize(event: Envelope) -> None:
    if event.data.get("input") == "poison.jpg":
        raise ValueError("cannot decode poison.jpg")
    if _SECONDS:
        time.sleep(_SECONDS)
    _record(f"{event.id} {os.getpid()}")
