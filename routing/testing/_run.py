"""An App's handlers run to completion: the workers' own per-message code (`Worker.handle`,
`AsyncWorker.handle`) on messages taken one at a time with `get`, until the work queue and
its retry queues stay empty. Taking one at a time is what tells a test the app is done: no
message is ever in flight while the queues are counted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import routing.aio
from routing.errors import RoutingError
from routing.transport import open_transport
from routing.worker import App, AsyncWorker, Worker, WorkerStats, WorkQueues

__all__ = ["run_async", "run_blocking", "run_on_loop"]

POLL = 0.02
# Empty counts are believed once they stay so this long: a retry that has just expired is
# on its way from its retry queue back to the work queue, in neither for a moment.
SETTLE = 0.1


class _Progress:
    """When the app is done, and the failure when it is not done in time."""

    def __init__(self, queues: WorkQueues, timeout: float) -> None:
        self.names = (queues.name, *(queues.retry(d) for d in queues.delays_ms))
        self.timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._quiet_since: float | None = None

    def done(self, counts: Mapping[str, int]) -> bool:
        __tracebackhide__ = True
        now = time.monotonic()
        if any(counts.values()):
            self._quiet_since = None
            if now > self._deadline:
                waiting = ", ".join(f"{q!r} holds {n}" for q, n in counts.items() if n)
                raise AssertionError(
                    f"run_app: the app was not done within {self.timeout:g} s: {waiting} (retry "
                    "policies in tests should wait milliseconds: RetryPolicy(initial=0.01, ...))"
                )
            return False
        if self._quiet_since is None:
            self._quiet_since = now
        return now - self._quiet_since >= SETTLE


def run_blocking(app: App, url: str, queue: str, timeout: float) -> WorkerStats:
    __tracebackhide__ = True
    with open_transport(url, name="routing-pytest-worker") as transport:
        worker = Worker(app, transport, queue)
        progress = _Progress(worker.queues, timeout)
        while True:
            delivery = transport.get(queue)
            if delivery is not None:
                worker.handle(delivery)
            elif progress.done({q: transport.message_count(q) for q in progress.names}):
                return worker.stats
            else:
                transport.wait(POLL)  # services the connection on RabbitMQ


async def run_async(app: App, url: str, queue: str, timeout: float) -> WorkerStats:
    __tracebackhide__ = True
    async with routing.aio.open_transport(url) as transport:
        worker = AsyncWorker(app, transport, queue)
        progress = _Progress(worker.queues, timeout)
        while True:
            delivery = await transport.get(queue)
            if delivery is not None:
                await worker.handle(delivery)
            elif progress.done({q: await transport.message_count(q) for q in progress.names}):
                return worker.stats
            else:
                await asyncio.sleep(POLL)


def run_on_loop(app: App, url: str, queue: str, timeout: float) -> WorkerStats:
    """`run_async` on an event loop of its own; refused from a running loop (it would block it)."""
    __tracebackhide__ = True
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_async(app, url, queue, timeout))
    raise RoutingError("run_app was called on a running event loop: `await broker.run_app_async(app, queue)`")
