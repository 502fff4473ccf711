"""The handler: read the upload, resize it (images.py), write `resized/NAME`, report the result.

A job (`task.resize_image`) names its input by path, relative to the storage folder or absolute
within it (`uploads/cat.jpg`), the box to fit (`width`, `height`), and optionally the output's
name under `resized/` (the input's file name when absent). What becomes of it is written to
`results/<job id>.json` (results.py), the job id being the job's `id` field, else the envelope's.

- A missing input is retried (the upload may not have landed yet), with its path in the reason.
- A corrupt or non-image upload, a path outside the storage folder, a size over the bounds:
  `Permanent`, dead-lettered at once with the reason, the result "failed".
- Running it twice (a redelivery) writes the same files again: the work is idempotent as it is.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from loguru import logger

from examples.image_resizer.images import resize
from examples.image_resizer.results import Result, read_result, result_path, write_result
from examples.image_resizer.storage import RESIZED, atomic_write, inside, storage_dir
from routing import Envelope, Exchange, ExchangeType, Topology
from routing.worker import App, Permanent, RetryPolicy

__all__ = ["MAX_INPUT_BYTES", "RETRY", "app", "job_id", "resize_job", "topology"]

MAX_INPUT_BYTES = 64 * 1024 * 1024  # an upload larger than this is refused, not read
# The simulated worker's policy (examples/resize_worker.py): the same retry queues, so either
# worker can serve the `resize` queue.
RETRY = RetryPolicy(initial=1.0, multiplier=2.0, max_delay=30.0, max_attempts=5)

app = App(retry=RETRY, event_type="task.resize_image")  # plain JSON jobs too, as the tutorial sends
jobs = Exchange("jobs", ExchangeType.DIRECT)
topology = Topology.of(jobs, app.topology("resize"), jobs.bind("resize", "resize"))


def job_id(event: Envelope) -> str:
    """The job's own `id` when it has one, else the envelope's."""
    data = event.data if isinstance(event.data, Mapping) else {}
    own = data.get("id")
    return event.id if own is None else str(own)


def resize_job(storage: Path, job: Mapping[str, Any], job_id: str) -> Result:
    """Do one job in `storage`: the "done" result, or an exception (`Permanent`: never again)."""
    source = job.get("input") or job.get("path")  # `path`: the tutorial's name for it
    width, height = job.get("width"), job.get("height")
    if not isinstance(source, str) or not isinstance(width, int) or not isinstance(height, int):
        raise Permanent("the job needs input, width and height")
    path = inside(storage, source, what="input")
    name = job.get("output") or Path(source).name
    target = inside(storage / RESIZED, str(name), what="output")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"no input {source!r} in {storage} (yet)") from None
    if path.is_dir():
        raise Permanent(f"input {source!r} is a folder, not an image")
    if size > MAX_INPUT_BYTES:
        raise Permanent(f"input {source!r} is {size} bytes, over the {MAX_INPUT_BYTES}-byte limit")
    done = resize(
        path.read_bytes(),
        width=width,
        height=height,
        keep_aspect=job.get("keep_aspect", True) is not False,
        name=target.name,
    )
    atomic_write(target, done.data)
    return Result(
        id=job_id,
        status="done",
        output=target.relative_to(storage).as_posix(),
        width=done.width,
        height=done.height,
    )


@app.handler("task.resize_image")
def resize_image(event: Envelope) -> None:
    storage = storage_dir()
    job = job_id(event)
    try:
        result_path(storage, job)
    except ValueError as exc:
        raise Permanent(str(exc)) from None  # no result can be written for it
    previous = read_result(storage, job)
    failed = previous.attempts if previous is not None and previous.status == "retrying" else 0
    started = time.monotonic()
    try:
        result = resize_job(storage, event.data, job)
    except Exception as exc:
        # The worker dead-letters a Permanent at once, and any failure after the last attempt.
        last = isinstance(exc, Permanent) or RETRY.delay_ms(failed + 1) is None
        reason = f"{type(exc).__name__}: {exc}"
        write_result(
            storage,
            Result(id=job, status="failed" if last else "retrying", reason=reason, attempts=failed + 1),
        )
        raise
    write_result(storage, replace(result, attempts=failed))
    logger.info(
        "job {}: {} is {}x{}, in {:.0f} ms",
        job,
        result.output,
        result.width,
        result.height,
        (time.monotonic() - started) * 1000,
    )
