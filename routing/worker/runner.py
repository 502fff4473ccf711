"""`Worker`: one process's consumer loop. Ack after the handler returns; on failure publish a
copy to a retry queue or the dead-letter queue, and ack only once the broker confirmed it.

At-least-once: a crash between the work and the ack (or between a confirmed copy and the
ack) delivers the message again, so handlers should be idempotent (`routing.worker.idempotent`).
Nothing is lost on the way: until the ack, RabbitMQ holds the message and requeues it when
the connection goes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

from loguru import logger

from routing import _telemetry
from routing.errors import RoutingError
from routing.transport import Delivery, Transport, open_transport
from routing.urls import resolve
from routing.worker._handlers import Handlers
from routing.worker.queues import WorkQueues, declare_work_queues
from routing.worker.steps import (
    Ack,
    CallHandler,
    CopyRefused,
    Effect,
    Nack,
    PublishCopy,
    Reject,
    Settled,
    steps,
)

__all__ = ["KEEPALIVE_AFTER", "POLL", "CopyRefused", "Shutdown", "Worker", "WorkerStats"]


POLL = 0.25  # default seconds between checks for a stop request while the queue is empty
KEEPALIVE_AFTER = 1.0  # default: a handler running longer than this gets its connection serviced


@dataclass(slots=True)
class WorkerStats:
    processed: int = 0  # handler returned, acked
    retried: int = 0  # handler raised; a copy waits in a retry queue
    dead_lettered: int = 0  # invalid, no handler, or out of attempts; confirmed in QUEUE.dead
    interrupted: bool = False  # stopped at once (second signal, shutdown timeout)

    def count(self, settled: Settled) -> None:
        """One more message that ended as `settled` (one that comes again is not counted)."""
        if settled is Settled.PROCESSED:
            self.processed += 1
        elif settled is Settled.RETRIED:
            self.retried += 1
        elif settled is Settled.DEAD_LETTERED:
            self.dead_lettered += 1


class Shutdown(BaseException):
    """Raised in the worker's thread to stop at once. A BaseException, so a handler's
    `except Exception` cannot swallow it; the unacked message goes back to the queue."""


class Worker:
    """Runs `app` on `queue` over one transport, one message at a time. `prefetch` bounds
    the messages the broker hands this worker before it acks (1: fair dispatch among
    competing workers). `stop()` (or SIGTERM/SIGINT under `serve`) finishes the message in
    progress, acks it and returns; `shutdown_timeout` bounds that wait. `poll` is how often
    (seconds) an idle worker checks for `stop()`; a handler running longer than
    `keepalive_after` seconds gets its connection serviced meanwhile (heartbeats)."""

    def __init__(
        self,
        app: Handlers,
        transport: Transport,
        queue: str,
        *,
        prefetch: int = 1,
        shutdown_timeout: float = 30.0,
        ack_batch: int | None = None,
        dead_letters_to_queue: bool = True,
        poll: float = POLL,
        keepalive_after: float = KEEPALIVE_AFTER,
    ) -> None:
        _blocking_only(app)
        self.app = app
        # Whether the work queue is known to dead-letter to QUEUE.dead: true when it was
        # declared from `app.topology(queue)` (not with `--no-declare`, where it may be a
        # plain queue whose rejected messages are gone).
        self.dead_letters_to_queue = dead_letters_to_queue
        self.transport = transport
        self.queues: WorkQueues = app.queues(queue)
        self.prefetch = prefetch
        self.shutdown_timeout = shutdown_timeout
        self.poll = poll
        # Handled messages are acked together (one `multiple` ack) up to this many at a
        # time, and always before the worker waits for more: with prefetch 1, one by one.
        self.ack_batch = ack_batch if ack_batch is not None else max(1, prefetch // 4)
        self._done: Delivery | None = None  # the latest handled delivery not yet acked
        self._done_count = 0
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._keeper = _Keeper(transport, poll=poll, keepalive_after=keepalive_after)
        self._log = logger.bind(queue=queue)

    @classmethod
    def serve(
        cls,
        app: Handlers,
        url: str | None = None,
        *,
        queue: str,
        prefetch: int = 1,
        shutdown_timeout: float = 30.0,
        declare: bool = True,
        dead_letters_to_queue: bool | None = None,
    ) -> WorkerStats:
        """Connect, declare the queues (`app.topology(queue)`), and run until a signal.
        `dead_letters_to_queue`: the work queue is known to dead-letter to QUEUE.dead (by
        default, when this call declares it)."""
        _blocking_only(app)
        with open_transport(resolve(url)) as transport:
            if declare:
                declare_work_queues(transport, app.queues(queue))
            worker = cls(
                app,
                transport,
                queue,
                prefetch=prefetch,
                shutdown_timeout=shutdown_timeout,
                dead_letters_to_queue=declare if dead_letters_to_queue is None else dead_letters_to_queue,
            )
            with worker.signals():
                try:
                    return worker.run()
                except Shutdown as exc:
                    worker.stats.interrupted = True
                    worker._log.warning("stopped at once ({}); unacked messages go back to the queue", exc)
                    return worker.stats

    def stop(self) -> None:
        """Finish the message in progress, then return from `run` (any thread may call it)."""
        self._stop.set()

    def run(self) -> WorkerStats:
        """Consume until `stop()`."""
        name = self.queues.name
        consumer = self.transport.consume(name, prefetch=self.prefetch)
        self._log.info("worker consuming {!r} (prefetch {})", name, self.prefetch)
        self._keeper.start()
        try:
            while not self._stop.is_set():
                delivery = consumer.get(timeout=0 if self._done is not None else self.poll)
                if delivery is None:
                    self._ack_done()  # nothing waiting: ack what is finished before blocking
                else:
                    self.handle(delivery)
        finally:
            with contextlib.suppress(RoutingError):  # the connection went: they are requeued
                self._ack_done()
            self._keeper.close()
            consumer.cancel()  # prefetched, unstarted messages go back to the queue
        self._log.info("worker stopped: {}", self.stats)
        return self.stats

    def handle(self, delivery: Delivery) -> None:
        """One message: validate, dispatch, then ack, retry or dead-letter it (`steps`)."""
        plan = steps(
            delivery, app=self.app, queues=self.queues, dead_letters_to_queue=self.dead_letters_to_queue
        )
        with _telemetry.processing(self.transport, delivery) as trace:
            try:
                effect = next(plan)
                while True:
                    effect = plan.send(trace.perform(self._perform, effect))
            except StopIteration as done:
                self.stats.count(trace.settled(done.value))

    def _perform(self, effect: Effect) -> object:
        """Do one of `steps`' effects on the blocking transport; its result for `steps`."""
        t = self.transport
        if isinstance(effect, CallHandler):
            try:
                with self._keeper.busy():
                    effect.registration.function(effect.event)
            except Exception as exc:  # the handler's failure is the message's, not the worker's
                return exc
            return None
        if isinstance(effect, Ack) and effect.handled and self.ack_batch > 1:
            if self._done is not None and self._done.consumer is not effect.delivery.consumer:
                self._ack_done()  # another channel (after a reconnect): its tags are separate
            self._done = effect.delivery
            self._done_count += 1
            if self._done_count >= self.ack_batch:
                self._ack_done()
            return None
        self._ack_done()  # settle the finished ones first: acks go out in delivery order
        if isinstance(effect, Ack):
            t.ack(effect.delivery)
        elif isinstance(effect, Nack):
            t.nack(effect.delivery, requeue=True)
        elif isinstance(effect, Reject):
            t.reject(effect.delivery, requeue=False)
        elif isinstance(effect, PublishCopy):
            try:
                publication = t.publish("", effect.queue, effect.body, effect.properties, mandatory=True)
            except RoutingError as exc:
                return exc
            t.flush()
            return publication
        else:
            try:
                t.declare(effect.topology)
            except RoutingError as exc:
                return exc
        return None

    def _ack_done(self) -> None:
        """Ack every handled message up to the latest, in one `multiple` ack."""
        done, self._done, self._done_count = self._done, None, 0
        if done is not None:
            self.transport.ack(done, multiple=True)

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT: stop taking messages and finish the one in progress within
        `shutdown_timeout`; a second signal, or the timeout, stops at once (`Shutdown`).
        Signals can only be handled in the main thread; elsewhere this does nothing."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if self._stop.is_set():
                raise Shutdown(f"second signal ({signal.Signals(signum).name})")
            self._log.warning(
                "{}: finishing the message in progress (up to {:g} s); send again to stop at once",
                signal.Signals(signum).name,
                self.shutdown_timeout,
            )
            self._stop.set()
            signal.setitimer(signal.ITIMER_REAL, self.shutdown_timeout)

        def on_timeout(_signum: int, _frame: FrameType | None) -> None:
            raise Shutdown(f"the message in progress did not finish within {self.shutdown_timeout:g} s")

        handlers = {signal.SIGTERM: on_signal, signal.SIGINT: on_signal, signal.SIGALRM: on_timeout}
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _blocking_only(app: Handlers) -> None:
    if app.has_async_handlers:
        raise RoutingError(
            f"{app!r} has `async def` handlers: run it on an event loop with routing.worker.AsyncWorker "
            "(`routing worker` does that by itself)"
        )


class _Keeper:
    """Services the connection while a long handler runs. pika's BlockingConnection does
    I/O only when called, so without this a job longer than two heartbeat intervals would
    lose its connection, and its ack with it (the message would run again)."""

    def __init__(self, transport: Transport, *, poll: float, keepalive_after: float) -> None:
        self._transport = transport
        self._poll = poll
        self._keepalive_after = keepalive_after
        self._running = threading.Event()
        self._finished = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="routing-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        self._finished.clear()
        self._running.set()
        try:
            yield
        finally:
            self._running.clear()
            self._finished.set()

    def _loop(self) -> None:
        while not self._closed.is_set():
            if not self._running.wait(self._poll) or self._finished.wait(self._keepalive_after):
                continue  # idle, or a short handler: the consumer loop does the I/O
            while self._running.is_set() and not self._closed.is_set():
                try:
                    self._transport.wait(1.0)
                except RoutingError as exc:  # the handler's ack will find out too
                    logger.warning("connection trouble while a handler runs: {}", exc)
                    self._closed.wait(1.0)

    def close(self) -> None:
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
