"""`App`: the handlers of a service, one per event type, with their retry policies.

    app = App()

    @app.handler("task.resize_image", retry=RetryPolicy(initial=2, max_attempts=4))
    def resize(event: Envelope) -> None:
        ...

    app.run("amqp://...", queue="resize")      # or: routing worker shop.jobs:app --queue resize

An App holds no connection; `Worker` (one process, one connection) runs it on a queue. The
runner reads only `Handlers`, the part of an App below it, so imports go one way.
"""

from __future__ import annotations

import asyncio

from routing.errors import RoutingError
from routing.worker._handlers import Handler, Handlers, Registration
from routing.worker.async_runner import AsyncWorker
from routing.worker.runner import Worker, WorkerStats

__all__ = ["App", "Handler", "Registration"]


class App(Handlers):
    """Handlers by event type. `retry` is the default policy; `quorum` declares the work,
    retry and dead-letter queues as quorum queues. `registry` validates every message
    before a handler sees it (the bundled schemas by default); `max_bytes` is checked
    before a body is decoded."""

    def run(
        self,
        url: str | None = None,
        *,
        queue: str,
        prefetch: int = 1,
        shutdown_timeout: float = 30.0,
        declare: bool = True,
        concurrency: int = 1,
    ) -> WorkerStats:
        """Consume `queue` until SIGTERM/SIGINT (or `Worker.stop()`); see `Worker`. An app
        with `async def` handlers runs on an event loop (`AsyncWorker`, `asyncio.run`), up to
        `concurrency` handlers in flight; a blocking app takes one message at a time."""
        if self.has_async_handlers:
            return asyncio.run(
                AsyncWorker.serve(
                    self,
                    url,
                    queue=queue,
                    concurrency=concurrency,
                    prefetch=max(prefetch, concurrency),
                    shutdown_timeout=shutdown_timeout,
                    declare=declare,
                )
            )
        if concurrency != 1:
            raise RoutingError(
                f"{self!r}: concurrency {concurrency} needs `async def` handlers; run more processes "
                "(`routing worker --concurrency N`) for blocking ones"
            )
        return Worker.serve(
            self, url, queue=queue, prefetch=prefetch, shutdown_timeout=shutdown_timeout, declare=declare
        )
