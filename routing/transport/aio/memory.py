"""`memory://` for asyncio: the embedded broker, from an event loop.

The embedded broker lives in this process and never blocks on I/O, so each call is the
blocking `MemoryTransport`'s, made on the loop; only waiting for a delivery is the loop's
(the broker wakes the reader through `MemoryConsumer.on_ready`, from whichever thread
published). An `AsyncMemoryTransport` shares its broker with every transport of the same
URL, blocking or not, as two connections share one RabbitMQ: a sync publisher in a thread
and an async consumer on the loop see the same queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from routing.properties import Properties
from routing.topology import Binding, Topology
from routing.transport.aio.base import AsyncConsumerBase, AsyncPublication, AsyncTransportBase
from routing.transport.base import DeclareReport, Delivery, Publication
from routing.transport.memory import MemoryConsumer, MemoryTransport
from routing.urls import MEMORY_URL

__all__ = ["AsyncMemoryConsumer", "AsyncMemoryTransport"]


class _Transport(MemoryTransport):
    _publication = AsyncPublication  # settled at once, and awaitable


class AsyncMemoryConsumer(AsyncConsumerBase):
    """Deliveries from one queue of the embedded broker, for `async for`."""

    def __init__(self, transport: MemoryTransport, queue: str, prefetch: int) -> None:
        self.queue = queue
        self.prefetch = prefetch
        self._transport = transport
        self._consumer: MemoryConsumer | None = None
        self._ready = asyncio.Event()
        self._cancelled = False  # before it started

    @property
    def cancelled(self) -> bool:
        return self._cancelled or (self._consumer is not None and self._consumer.cancelled)

    async def start(self) -> None:
        """Subscribe (`ChannelClosed` when the queue is missing); once is enough."""
        if self._consumer is not None or self._cancelled:
            return
        loop = asyncio.get_running_loop()
        ready, loop_thread = self._ready, threading.get_ident()

        def wake() -> None:
            if threading.get_ident() == loop_thread:
                ready.set()
            else:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    loop.call_soon_threadsafe(ready.set)

        consumer = self._transport.consume(self.queue, prefetch=self.prefetch)
        consumer.on_ready(wake)
        self._consumer = consumer

    async def get(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery; None after `timeout` seconds without one, or once cancelled."""
        await self.start()
        consumer = self._consumer
        if consumer is None:  # cancelled before it started
            return None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            self._ready.clear()
            delivery = consumer.take()
            if delivery is not None or consumer.cancelled:
                return delivery
            wait = None if deadline is None else deadline - loop.time()
            if wait is not None and wait <= 0:
                return None
            due = consumer.until_due()  # a message TTL to expire meanwhile
            if due is not None:
                wait = due if wait is None else min(wait, due)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait)

    async def cancel(self) -> None:
        """Stop; every delivery left unacked goes back to the queue (redelivered)."""
        self._cancelled = True
        if self._consumer is not None:
            self._consumer.cancel()
        self._ready.set()

    def __repr__(self) -> str:
        return f"<AsyncMemoryConsumer queue={self.queue!r} prefetch={self.prefetch}>"


class AsyncMemoryTransport(AsyncTransportBase):
    """A connection to the embedded broker named by a `memory://` URL, for one event loop.
    Publications come back settled (the broker routes at once) and awaitable."""

    def __init__(self, url: str = MEMORY_URL, *, name: str | None = None) -> None:
        self._sync = _Transport(url, name=name)
        self.url = self._sync.url

    @classmethod
    async def open(cls, url: str = MEMORY_URL, *, name: str | None = None) -> AsyncMemoryTransport:
        return cls(url, name=name)

    @property
    def blocking(self) -> MemoryTransport:
        """The same connection, for blocking code (a thread of the same process)."""
        return self._sync

    @property
    def server_version(self) -> str:
        return self._sync.server_version

    @property
    def closed(self) -> bool:
        return self._sync.closed

    async def declare(self, topology: Topology) -> DeclareReport:
        return self._sync.declare(topology)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties | None = None,
        *,
        mandatory: bool = False,
    ) -> AsyncPublication:
        publication = self._sync.publish(exchange, routing_key, body, properties, mandatory=mandatory)
        assert isinstance(publication, AsyncPublication)  # _Transport's
        return publication

    async def flush(self, timeout: float | None = None) -> list[Publication]:
        return self._sync.flush(timeout)

    def consume(self, queue: str, *, prefetch: int = 1) -> AsyncMemoryConsumer:
        if prefetch < 0:
            raise ValueError(f"prefetch must be 0 (unlimited) or more, got {prefetch}")
        return AsyncMemoryConsumer(self._sync, queue, prefetch)

    async def get(self, queue: str) -> Delivery | None:
        return self._sync.get(queue)

    async def ack(self, delivery: Delivery, *, multiple: bool = False) -> None:
        self._sync.ack(delivery, multiple=multiple)

    async def nack(self, delivery: Delivery, *, requeue: bool = True, multiple: bool = False) -> None:
        self._sync.nack(delivery, requeue=requeue, multiple=multiple)

    async def reject(self, delivery: Delivery, *, requeue: bool = True) -> None:
        self._sync.reject(delivery, requeue=requeue)

    async def message_count(self, queue: str) -> int:
        return self._sync.message_count(queue)

    async def unbind(self, binding: Binding) -> None:
        self._sync.unbind(binding)

    async def purge(self, queue: str) -> int:
        return self._sync.purge(queue)

    async def delete_queue(self, queue: str) -> None:
        self._sync.delete_queue(queue)

    async def delete_exchange(self, exchange: str) -> None:
        self._sync.delete_exchange(exchange)

    async def close(self) -> None:
        self._sync.close()

    def __repr__(self) -> str:
        return f"AsyncMemoryTransport({self.url!r})"
