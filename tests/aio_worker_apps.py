"""An app with `async def` handlers for `routing worker` tests (with this folder on PYTHONPATH):
`routing worker aio_worker_apps:app`. Each handler appends `start ID` when it begins and
`done ID` when it ends to the file `ROUTING_TEST_WORK_LOG` names, after awaiting
`ROUTING_TEST_WORK_SECONDS` (one `write` on an O_APPEND descriptor per line)."""

from __future__ import annotations

import asyncio
import os

from routing import Envelope
from routing.worker import App, RetryPolicy

app = App(retry=RetryPolicy(initial=0.05, multiplier=2, max_delay=0.2, max_attempts=3))
_SECONDS = float(os.environ.get("ROUTING_TEST_WORK_SECONDS", "0"))


def _record(line: str) -> None:
    fd = os.open(os.environ["ROUTING_TEST_WORK_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


@app.handler("task.resize_image")
async def resize(event: Envelope) -> None:
    _record(f"start {event.id}")
    await asyncio.sleep(_SECONDS)
    _record(f"done {event.id}")
