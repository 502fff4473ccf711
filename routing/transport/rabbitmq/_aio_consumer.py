"""Asyncio consumers: one channel each (its own prefetch), a deque pika's delivery callback
fills, a `Waker` for the task reading it, and recovery when the channel or the connection
goes; `settle` writes acks straight to the socket. The twin of `_consumer` (whose `delivery` builds the values); they use the
`AsyncConnection` (its public methods) and nothing of the transport itself."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from loguru import logger

from routing.errors import BrokerError, ChannelClosed
from routing.properties import Properties
from routing.transport.aio.base import AsyncConsumerBase
from routing.transport.base import Delivery
from routing.transport.rabbitmq import _pika
from routing.transport.rabbitmq._aio_connection import AsyncChannel, AsyncConnection, Waker


def settle(conn: AsyncConnection, item: Delivery, what: str, method: int, bits: int) -> None:
    """Write an ack, nack or reject (`method`, `bits`: `_encode.settle_frame`) for `item` on the channel it came from,
    without waiting (a refusal, such as an unknown tag, closes the channel: the consumer
    reports it at its next `get`)."""
    chan = item.consumer
    if not isinstance(chan, AsyncChannel):
        raise BrokerError(f"{what}: this delivery did not come from this transport")
    if not chan.is_open:
        # Its channel is gone, so the broker has already put the message back.
        logger.bind(queue=item.queue).info("{} of a delivery from a closed channel: skipped", what)
        return
    with conn.errors(what):
        # More deliveries waiting means another ack comes soon: let the kernel send both
        # together. What the socket does not take, the loop writes.
        _pika.settle(chan.channel, method, item.delivery_tag, bits, more=bool(chan.backlog))


class AsyncRabbitConsumer(AsyncConsumerBase):
    """Deliveries from one queue, at most `prefetch` unacked; `async for`, or `get(timeout)`.
    Starts at the first `get` (or `start()`, or `async with`).

    `on_start(consumer)`: it consumes (the transport resumes it after a reconnect);
    `on_deleted(queue)`: the broker cancelled it (its queue was deleted);
    `on_cancel(consumer)`: it was cancelled here.
    """

    def __init__(
        self,
        connection: AsyncConnection,
        queue: str,
        prefetch: int,
        *,
        on_start: Callable[[AsyncRabbitConsumer], None],
        on_deleted: Callable[[str], None],
        on_cancel: Callable[[AsyncRabbitConsumer], None],
    ) -> None:
        self.queue = queue
        self.prefetch = prefetch
        self._conn = connection
        self._on_start = on_start
        self._on_deleted = on_deleted
        self._on_cancel = on_cancel
        self._buffer: deque[Delivery] = deque()
        self._waker = Waker()
        self._chan: AsyncChannel | None = None
        self._started = False
        self._cancelled = False
        self._lost_queue = False  # the broker cancelled us: the queue was deleted

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def __repr__(self) -> str:
        return f"<AsyncConsumer queue={self.queue!r} prefetch={self.prefetch}>"

    async def start(self) -> None:
        """Consume; `ChannelClosed` when the broker refuses (the queue is missing)."""
        if self._started or self._cancelled:
            return
        await self._conn.guarded(f"consume from {self.queue!r}", self._consume)
        self._started = True
        self._on_start(self)

    async def _consume(self) -> None:
        """Open a channel, set the prefetch, `basic.consume`."""
        chan = self._chan = await self._conn.channel()
        chan.backlog = buffer = self._buffer
        chan.on_close = lambda _chan: self._waker.wake()
        queue, wake = self.queue, self._waker.wake

        def deliver(
            exchange: str, key: str, tag: int, redelivered: bool, props: Properties, body: bytes
        ) -> None:
            buffer.append(Delivery(body, props, exchange, key, queue, tag, redelivered, chan))
            wake()

        def cancelled(_frame: Any) -> None:
            # The queue was deleted (or its node went): tell the consumer, and do not
            # declare it again on a reconnect, which would undo the operator's delete.
            self._lost_queue = True
            self._on_deleted(queue)
            wake()

        await chan.qos(self.prefetch)
        await chan.call(lambda done: _pika.consume(chan.channel, queue, deliver, cancelled, done))

    async def resume(self) -> None:
        """After a reconnect: consume again; a queue gone meanwhile (auto-delete, exclusive)
        makes the next `get` raise."""
        try:
            with self._conn.errors(f"consume from {self.queue!r}"):
                await self._consume()
        except ChannelClosed as exc:
            if not exc.code:
                raise
            logger.bind(queue=self.queue).error("cannot resume consumer: {}", exc)
            self._lost_queue = True

    def connection_lost(self) -> None:
        """The connection dropped: what was buffered is requeued by the broker and comes again."""
        self._buffer.clear()
        self._chan = None
        self._waker.wake()

    def transport_closed(self) -> None:
        """The transport was closed: cancelled, so `get` returns None and iteration ends."""
        self.connection_lost()
        self._cancelled = True

    async def get(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery; None after `timeout` seconds without one, or once cancelled."""
        buffer = self._buffer
        if buffer:
            return buffer.popleft()
        if not self._started:
            await self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if buffer:
                return buffer.popleft()
            if self._cancelled:
                return None
            if self._lost_queue:
                raise BrokerError(f"queue {self.queue!r} was deleted: the broker cancelled the consumer")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            chan = self._chan
            if chan is None or not chan.alive:
                await self._restart(chan)
                continue
            await self._waker.wait(remaining)

    async def _restart(self, old: AsyncChannel | None) -> None:
        """Consume again on a new channel (a reconnect may have done it already); if the
        broker closed the old one (a bad ack, say), report why once."""
        what = f"consume from {self.queue!r}"
        reason = None if old is None else self._conn.refusal(old, what)
        await self._conn.live()  # reconnects, and resumes this consumer with the others
        if self._chan is None or not self._chan.alive:
            await self._conn.guarded(what, self._consume)
        if reason is not None:
            raise reason

    async def cancel(self) -> None:
        """Stop; closing the channel returns unacked deliveries to the queue."""
        if self._cancelled:
            return
        self._cancelled = True
        self._buffer.clear()
        self._waker.wake()
        chan = self._chan
        if chan is not None and chan.is_open:
            closed = chan.future()
            with contextlib.suppress(BrokerError), self._conn.errors(f"cancel {self.queue!r}"):
                chan.channel.close()
                await closed
        self._on_cancel(self)
