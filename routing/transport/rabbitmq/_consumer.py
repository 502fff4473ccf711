"""Consumers: one channel each (its own prefetch), a buffer the channel callback fills, and
recovery when the channel or the connection goes. They use the transport's `Connection`
(its public methods) and nothing of the transport itself."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from loguru import logger

from routing.errors import BrokerError, ChannelClosed
from routing.properties import Properties
from routing.transport.base import ConsumerBase, Delivery
from routing.transport.rabbitmq import _pika
from routing.transport.rabbitmq._connection import ChannelHandle, Connection

SLICE = 0.2  # longest the transport's lock is held while waiting, so other threads get a turn


def delivery(method: Any, properties: Properties, body: bytes, queue: str, owner: object) -> Delivery:
    """A `Delivery` from pika's Basic.Deliver or Basic.GetOk (with our `Properties`, which the
    connection decoded); `owner` (the channel it came on, of either transport) acks it."""
    return Delivery(
        body,
        properties,
        method.exchange,
        method.routing_key,
        queue,
        method.delivery_tag,
        method.redelivered,
        owner,
    )


class RabbitConsumer(ConsumerBase):
    """Deliveries from one queue, at most `prefetch` unacked; iterate, or `get(timeout)`.

    `on_deleted(queue)`: the broker cancelled the consumer (its queue was deleted);
    `on_cancel(consumer)`: it was cancelled here.
    """

    def __init__(
        self,
        connection: Connection,
        queue: str,
        prefetch: int,
        *,
        on_deleted: Callable[[str], None],
        on_cancel: Callable[[RabbitConsumer], None],
    ) -> None:
        self.queue = queue
        self.prefetch = prefetch
        self._conn = connection
        self._on_deleted = on_deleted
        self._on_cancel = on_cancel
        self._buffer: deque[Delivery] = deque()
        self._chan: ChannelHandle | None = None
        self._cancelled = False
        self._lost_queue = False  # the broker cancelled us: the queue was deleted

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def __repr__(self) -> str:
        return f"<Consumer queue={self.queue!r} prefetch={self.prefetch}>"

    def start(self) -> None:
        """Open a channel, set the prefetch, `basic.consume`; `ChannelClosed` when the broker
        refuses (the queue is missing)."""
        what = f"consume from {self.queue!r}"
        with self._conn.errors(what):
            chan = self._chan = self._conn.channel()
            chan.backlog = self._buffer
            chan.channel.basic_qos(prefetch_count=self.prefetch)
            queue, buffer = self.queue, self._buffer

            def deliver(
                exchange: str, key: str, tag: int, redelivered: bool, props: Properties, body: bytes
            ) -> None:
                buffer.append(Delivery(body, props, exchange, key, queue, tag, redelivered, chan))

            def cancelled(_frame: Any) -> None:
                # The queue was deleted (or its node went): tell the consumer, and do not
                # declare it again on a reconnect, which would undo the operator's delete.
                self._lost_queue = True
                self._on_deleted(queue)

            ok: list[bool] = []
            _pika.consume(chan.channel, queue, deliver, cancelled, lambda _f: ok.append(True))
            self._conn.pump(lambda: bool(ok) or not chan.alive, None)
        refused = self._conn.refusal(chan, what)
        if refused is not None:
            raise refused

    def resume(self) -> None:
        """After a reconnect: consume again; a queue gone meanwhile (auto-delete, exclusive)
        makes the next `get` raise."""
        try:
            self.start()
        except ChannelClosed as exc:
            if not exc.code:
                raise
            logger.bind(queue=self.queue).error("cannot resume consumer: {}", exc)
            self._lost_queue = True

    def connection_lost(self) -> None:
        """The connection dropped: what was buffered is requeued by the broker and comes again."""
        self._buffer.clear()
        self._chan = None

    def transport_closed(self) -> None:
        """The transport was closed (its connection with it): cancelled, as the embedded
        broker's consumers are, so `get` returns None and iteration ends."""
        self.connection_lost()
        self._cancelled = True

    def get(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery; None after `timeout` seconds without one, or once cancelled."""
        conn = self._conn
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with conn.lock:
                if self._buffer:
                    return self._buffer.popleft()
                if self._cancelled:
                    return None
                if self._lost_queue:
                    raise BrokerError(f"queue {self.queue!r} was deleted: the broker cancelled the consumer")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                wait = SLICE if remaining is None else min(remaining, SLICE)
                with conn.errors(f"consume from {self.queue!r}", retry=True):
                    conn.live()
                    if self._chan is None or not self._chan.alive:
                        self._restart()
                    conn.pump(lambda: bool(self._buffer) or self._lost_queue or conn.lock.wanted, wait)
            time.sleep(0)  # let a thread waiting for the lock take it

    def _restart(self) -> None:
        """Consume again on a new channel; if the broker closed the old one (a bad ack,
        say), report why once."""
        what = f"consume from {self.queue!r}"
        reason = None if self._chan is None else self._conn.refusal(self._chan, what)
        self._conn.guarded(what, self.start)
        if reason is not None:
            raise reason

    def cancel(self) -> None:
        """Stop; closing the channel returns unacked deliveries to the queue."""
        with self._conn.lock:
            if self._cancelled:
                return
            self._cancelled = True
            self._buffer.clear()
            if self._chan is not None and self._chan.alive:
                with contextlib.suppress(BrokerError), self._conn.errors(f"cancel {self.queue!r}"):
                    self._chan.channel.close()
            self._on_cancel(self)
