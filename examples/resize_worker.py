"""The seed tutorial's image-resize worker, with the work simulated (no image library needed).

    routing declare examples.resize_worker:topology --url amqp://guest:guest@localhost/
    routing worker examples.resize_worker:app --queue resize --concurrency 3 --url amqp://guest:guest@localhost/
    routing publish --exchange jobs --routing-key resize --type task.resize_image \\
        --data '{"input": "cat.jpg", "width": 320, "height": 200}' --url amqp://guest:guest@localhost/
    routing dlq show resize.dead --url amqp://guest:guest@localhost/
    routing asyncapi examples.resize_worker:topology --worker examples.resize_worker:app resize

The tutorial's own producer works as it is: its plain JSON jobs (`{"id": 1, "action":
"resize_image", "path": "/uploads/img_1.jpg"}`, application/json, persistent) name no event
type, and this queue takes them as `task.resize_image` (`App(event_type=...)`; for another
app, `routing worker ... --type task.resize_image`). Each plain job is its own message: its
id is the AMQP message_id, or a fresh one once it fails.

A job whose input ends in `.corrupt` always fails: it is retried after 1, 2, 4 and 8 seconds,
then dead-lettered with the reason. Duplicates (a redelivery after a crash) are skipped by id.
"""

from __future__ import annotations

import time

from loguru import logger

from routing import Envelope, Exchange, Publishes, Topology
from routing.worker import App, RetryPolicy, idempotent

app = App(
    retry=RetryPolicy(initial=1.0, multiplier=2.0, max_delay=30.0, max_attempts=5),
    event_type="task.resize_image",  # plain JSON bodies, such as the tutorial's jobs
)

jobs = Exchange("jobs", "direct")
topology = Topology.of(jobs, app.topology("resize"), jobs.bind("resize", "resize"))
publishes = (Publishes("jobs", "resize", "task.resize_image"),)  # for `routing asyncapi`


@app.handler("task.resize_image")
@idempotent
def resize(event: Envelope) -> None:
    job = event.data
    source = str(job.get("input") or job.get("path") or "")
    if source.endswith(".corrupt"):
        raise ValueError(f"cannot decode {source}")
    time.sleep(0.2)  # the "resize"
    logger.info("resized {} to {}x{}", source, job.get("width", "-"), job.get("height", "-"))
