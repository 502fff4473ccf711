"""`AsyncWorker`: an App's handlers on one event loop, up to `concurrency` at a time.

The decisions are the blocking `Worker`'s (`routing.worker.steps`): validate, dispatch, ack
once the handler returned, or publish a retry or dead-letter copy and ack once the broker
confirmed it. An `async def` handler is awaited on the loop; a plain one runs in a thread
(`asyncio.to_thread`), so the loop never blocks. Each message is acked on its own, when its
own handler or copy is done: handlers finish out of order, and a `multiple` ack would
settle messages still in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import threading
from collections.abc import Iterator

from loguru import logger

from routing import _telemetry
from routing.envelope import Envelope
from routing.errors import RoutingError
from routing.transport import open_transport as open_blocking
from routing.transport.aio import AsyncTransport, open_transport
from routing.transport.base import Delivery
from routing.urls import resolve
from routing.worker._handlers import Handler, Handlers
from routing.worker.queues import WorkQueues, declare_work_queues
from routing.worker.runner import WorkerStats
from routing.worker.steps import Ack, CallHandler, Effect, Nack, PublishCopy, Reject, steps

__all__ = ["POLL", "AsyncWorker"]

POLL = 0.25  # default seconds between checks for a stop request while the queue is empty


class AsyncWorker:
    """Runs `app` on `queue` over one asyncio transport, up to `concurrency` handlers in
    flight; `prefetch` (at least `concurrency`, which is its default) bounds the messages
    the broker hands this worker before they are acked. `stop()` (or SIGTERM/SIGINT under
    `serve`) stops taking messages and lets those in flight finish within
    `shutdown_timeout`; then, or at a second signal, they are cancelled and their messages
    go back to the queue unacked. A plain handler's thread cannot be stopped: it runs on,
    but its message is not acked."""

    def __init__(
        self,
        app: Handlers,
        transport: AsyncTransport,
        queue: str,
        *,
        concurrency: int = 1,
        prefetch: int | None = None,
        shutdown_timeout: float = 30.0,
        dead_letters_to_queue: bool = True,
        poll: float = POLL,
    ) -> None:
        if concurrency < 1:
            raise RoutingError(f"AsyncWorker: concurrency must be 1 or more, got {concurrency!r}")
        self.app = app
        self.transport = transport
        self.queues: WorkQueues = app.queues(queue)
        self.concurrency = concurrency
        self.prefetch = max(prefetch or concurrency, concurrency)
        self.shutdown_timeout = shutdown_timeout
        # See `Worker`: whether the work queue is known to dead-letter to QUEUE.dead.
        self.dead_letters_to_queue = dead_letters_to_queue
        self.poll = poll
        self.stats = WorkerStats()
        self._stopping = False
        self._now = False  # stop at once: cancel the handlers in flight
        self._wake: asyncio.Event | None = None  # set on stop and on each finished handler
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None  # what stopped a handler's message (CopyRefused, ...)
        self._log = logger.bind(queue=queue)

    @classmethod
    async def serve(
        cls,
        app: Handlers,
        url: str | None = None,
        *,
        queue: str,
        concurrency: int = 1,
        prefetch: int | None = None,
        shutdown_timeout: float = 30.0,
        declare: bool = True,
        dead_letters_to_queue: bool | None = None,
    ) -> WorkerStats:
        """Connect, declare the queues (`app.topology(queue)`), and run until a signal; see
        `Worker.serve`. The queues are declared by the blocking declare, in a thread."""
        url = resolve(url)
        if declare:
            await asyncio.to_thread(_declare, url, app.queues(queue))
        async with open_transport(url) as transport:
            worker = cls(
                app,
                transport,
                queue,
                concurrency=concurrency,
                prefetch=prefetch,
                shutdown_timeout=shutdown_timeout,
                dead_letters_to_queue=declare if dead_letters_to_queue is None else dead_letters_to_queue,
            )
            with worker.signals():
                return await worker.run()

    def stop(self, *, now: bool = False) -> None:
        """Stop taking messages; those in flight finish (`now`: are cancelled). Any thread
        may call it."""
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            with contextlib.suppress(RuntimeError):  # the loop is closed: it has stopped
                loop.call_soon_threadsafe(self._request_stop, now)
            return
        self._request_stop(now)

    def _request_stop(self, now: bool) -> None:
        self._stopping = True
        self._now = self._now or now
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> WorkerStats:
        """Consume until `stop()`; raises what stopped a message (`CopyRefused`, a lost
        connection) once the others in flight are done."""
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        self._wake = asyncio.Event()
        name = self.queues.name
        consumer = self.transport.consume(name, prefetch=self.prefetch)
        await consumer.start()
        self._log.info(
            "worker consuming {!r} (up to {} at a time, prefetch {})", name, self.concurrency, self.prefetch
        )
        try:
            while not self._stopping:
                if len(self._in_flight) >= self.concurrency:
                    await self._wait()
                    continue
                delivery = await consumer.get(timeout=self.poll)
                if delivery is not None:
                    task = asyncio.create_task(self.handle(delivery))
                    self._in_flight.add(task)
                    task.add_done_callback(self._finished)
                elif consumer.cancelled:
                    break
            await self._drain()
        finally:
            for task in self._in_flight:
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            await consumer.cancel()  # prefetched and cancelled messages go back to the queue
        self._log.info("worker stopped: {}", self.stats)
        if self._error is not None:
            raise self._error
        return self.stats

    async def _wait(self, timeout: float | None = None) -> None:
        """Until a handler finishes or a stop is asked for (or `timeout` seconds)."""
        assert self._wake is not None
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _drain(self) -> None:
        """Let the handlers in flight finish within `shutdown_timeout`, then cancel them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_timeout
        if self._in_flight and not self._now:
            self._log.warning(
                "finishing {} message(s) in flight (up to {:g} s)",
                len(self._in_flight),
                self.shutdown_timeout,
            )
        while self._in_flight and not self._now and (left := deadline - loop.time()) > 0:
            await self._wait(left)
        if self._in_flight:
            self.stats.interrupted = True
            why = "asked to stop at once" if self._now else f"not done within {self.shutdown_timeout:g} s"
            self._log.warning(
                "stopped at once ({}): {} message(s) in flight go back to the queue",
                why,
                len(self._in_flight),
            )

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._error = self._error or error
            self._stopping = True
        if self._wake is not None:
            self._wake.set()

    async def handle(self, delivery: Delivery) -> None:
        """One message: validate, dispatch, then ack, retry or dead-letter it (`steps`)."""
        plan = steps(
            delivery, app=self.app, queues=self.queues, dead_letters_to_queue=self.dead_letters_to_queue
        )
        with _telemetry.processing(self.transport, delivery) as trace:
            try:
                effect = next(plan)
                while True:
                    effect = plan.send(await trace.aperform(self._perform, effect))
            except StopIteration as done:
                self.stats.count(trace.settled(done.value))

    async def _perform(self, effect: Effect) -> object:
        """Do one of `steps`' effects on the asyncio transport; its result for `steps`."""
        t = self.transport
        if isinstance(effect, CallHandler):
            function = effect.registration.function
            try:
                if inspect.iscoroutinefunction(function):
                    await function(effect.event)
                else:
                    result, error = await asyncio.to_thread(_call, function, effect.event)
                    if error is not None:
                        return error
                    if inspect.isawaitable(result):  # a plain wrapper around an `async def`
                        await result
            except Exception as exc:  # the handler's failure is the message's, not the worker's
                return exc
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the worker is stopping: the message goes back unacked
                return exc  # the handler's own (something it awaited was cancelled): a failure
        elif isinstance(effect, Ack):
            await t.ack(effect.delivery)
        elif isinstance(effect, Nack):
            await t.nack(effect.delivery, requeue=True)
        elif isinstance(effect, Reject):
            await t.reject(effect.delivery, requeue=False)
        elif isinstance(effect, PublishCopy):
            try:
                publication = await t.publish(
                    "", effect.queue, effect.body, effect.properties, mandatory=True
                )
            except RoutingError as exc:
                return exc
            await publication
            return publication
        else:
            try:
                await t.declare(effect.topology)
            except RoutingError as exc:
                return exc
        return None

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT: stop taking messages and let those in flight finish within
        `shutdown_timeout`; a second signal cancels them at once. Only in the main thread,
        on a loop that can take signal handlers; elsewhere this does nothing."""
        loop = asyncio.get_running_loop()
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: signal.Signals) -> None:
            if self._stopping:
                self._log.warning("second signal ({}): stopping at once", signum.name)
                self.stop(now=True)
                return
            self._log.warning(
                "{}: finishing the messages in flight (up to {:g} s); send again to stop at once",
                signum.name,
                self.shutdown_timeout,
            )
            self.stop()

        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)


def _call(function: Handler, event: Envelope) -> tuple[object, Exception | None]:
    """A plain handler's call, in a worker thread: its result, or the exception it raised
    (whose traceback then starts here, not in asyncio's thread machinery)."""
    try:
        return function(event), None
    except Exception as exc:  # the handler's failure is the message's, not the worker's
        return None, exc


def _declare(url: str, queues: WorkQueues) -> None:
    with open_blocking(url) as transport:
        declare_work_queues(transport, queues)
