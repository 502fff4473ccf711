"""Consumers: one channel each (its own prefetch), a buffer the channel callback fills, and
recovery when the channel or the connection goes."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pika
import pika.exceptions as px

from routing.errors import BrokerError, ConnectionLost
from routing.transport.base import Delivery
from routing.transport.rabbitmq._connect import CONNECTION_ERRORS, channel_error
from routing.transport.rabbitmq._wire import delivery

if TYPE_CHECKING:
    from routing.transport.rabbitmq._transport import RabbitTransport

SLICE = 0.2  # longest the transport's lock is held while waiting, so other threads get a turn


class FairLock:
    """A re-entrant lock that tells its holder when another thread waits for it, so a
    consumer waiting for deliveries steps aside for a publisher on the same transport."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._lock = threading.RLock()
        self._wake = wake  # interrupts the holder's I/O wait
        self.wanted = False

    def __enter__(self) -> FairLock:
        if not self._lock.acquire(blocking=False):
            self.wanted = True
            self._wake()
            self._lock.acquire()
            self.wanted = False
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class Chan:
    """A channel of one connection. Deliveries remember theirs: once it is gone the broker
    has requeued them, and their tags mean nothing on any other channel."""

    __slots__ = ("alive", "backlog", "channel", "reason")

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.alive = True
        self.reason: BaseException | None = None
        self.backlog: deque[Delivery] | None = None  # a consumer's deliveries not yet taken
        channel._impl.add_on_close_callback(self._closed)

    def _closed(self, _channel: Any, reason: BaseException) -> None:
        self.alive = False
        self.reason = reason

    @property
    def closed_by_broker(self) -> bool:
        return isinstance(self.reason, px.ChannelClosedByBroker)


class RabbitConsumer:
    """Deliveries from one queue, at most `prefetch` unacked; iterate, or `get(timeout)`."""

    def __init__(self, transport: RabbitTransport, queue: str, prefetch: int) -> None:
        self.queue = queue
        self.prefetch = prefetch
        self._t = transport
        self.buffer: deque[Delivery] = deque()
        self.chan: Chan | None = None
        self.cancelled = False
        self.lost_queue = False  # the broker cancelled us: the queue was deleted

    def __iter__(self) -> Iterator[Delivery]:
        while (item := self.get()) is not None:
            yield item

    def __repr__(self) -> str:
        return f"<Consumer queue={self.queue!r} prefetch={self.prefetch}>"

    def start(self) -> None:
        """Open a channel, set the prefetch, `basic.consume`; pika's ChannelClosedByBroker
        when the queue is missing."""
        t = self._t
        chan = self.chan = Chan(t._conn.channel())
        chan.backlog = self.buffer
        chan.channel.basic_qos(prefetch_count=self.prefetch)
        impl = chan.channel._impl
        queue, buffer = self.queue, self.buffer

        def deliver(_ch: Any, method: Any, props: Any, body: bytes) -> None:
            buffer.append(delivery(method, props, body, queue, chan))

        def cancelled(_frame: Any) -> None:
            # The queue was deleted (or its node went): tell the consumer, and do not
            # declare it again on a reconnect, which would undo the operator's delete.
            self.lost_queue = True
            t._forget_queue(queue)

        ok: list[bool] = []
        # BlockingChannel's own handler looks the tag up among the consumers it started;
        # ours it did not start, so it raised KeyError and pika closed the connection.
        impl.callbacks.remove(
            impl.channel_number, pika.spec.Basic.Cancel, chan.channel._on_consumer_cancelled_by_broker
        )
        impl.add_on_cancel_callback(cancelled)
        impl.basic_consume(queue, deliver, auto_ack=False, callback=lambda _f: ok.append(True))
        t._pump(lambda: bool(ok) or not chan.alive, None)
        if chan.closed_by_broker:
            raise chan.reason  # type: ignore[misc]

    def get(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery; None after `timeout` seconds without one, or once cancelled."""
        t = self._t
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with t._lock:
                if self.buffer:
                    return self.buffer.popleft()
                if self.cancelled:
                    return None
                if self.lost_queue:
                    raise BrokerError(f"queue {self.queue!r} was deleted: the broker cancelled the consumer")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                wait = SLICE if remaining is None else min(remaining, SLICE)
                try:
                    t._ensure()
                    if self.chan is None or not self.chan.alive:
                        self._restart()
                    t._pump(lambda: bool(self.buffer) or self.lost_queue or t._lock.wanted, wait)
                except CONNECTION_ERRORS as exc:
                    t._drop(ConnectionLost(f"{t._endpoint.url}: connection lost while consuming: {exc!r}"))
            time.sleep(0)  # let a thread waiting for the lock take it

    def _restart(self) -> None:
        """Consume again on a new channel; if the broker closed the old one (a bad ack,
        say), report why once."""
        t = self._t
        what = f"consume from {self.queue!r}"
        reason = self.chan.reason if self.chan is not None and self.chan.closed_by_broker else None
        t._guarded(what, self.start)
        if reason is not None:
            raise channel_error(reason, what, t._endpoint) from reason

    def cancel(self) -> None:
        """Stop; closing the channel returns unacked deliveries to the queue."""
        with self._t._lock:
            if self.cancelled:
                return
            self.cancelled = True
            self.buffer.clear()
            if self.chan is not None and self.chan.alive:
                with contextlib.suppress(px.AMQPError):
                    self.chan.channel.close()
            self._t._forget(self)
