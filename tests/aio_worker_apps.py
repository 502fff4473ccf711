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


def serve_on_memory(queue: str, count: int, concurrency: int) -> None:
    """`AsyncWorker.serve` on an embedded broker of this process, with `count` jobs queued
    first; prints the stats as `processed retried dead_lettered interrupted` when it stops."""
    from routing import encode, to_properties
    from routing.transport import open_transport
    from routing.worker.async_runner import AsyncWorker

    url = f"memory://{queue}"
    with open_transport(url) as t:
        t.declare(app.topology(queue))
        for n in range(count):
            envelope = Envelope.new("task.resize_image", {"input": f"{n}.jpg", "width": 1, "height": 1})
            t.publish("", queue, encode(envelope), to_properties(envelope))
        stats = asyncio.run(
            AsyncWorker.serve(app, url, queue=queue, concurrency=concurrency, shutdown_timeout=10)
        )
        print(
            stats.processed,
            stats.retried,
            stats.dead_lettered,
            stats.interrupted,
            t.message_count(queue),
            flush=True,
        )


if __name__ == "__main__":
    import sys

    serve_on_memory(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
