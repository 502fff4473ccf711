"""The conformance suite on the asyncio transports: a blocking `Transport` whose every call is
the asyncio transport's, awaited on an event loop of its own (in a thread), so the scenarios,
written once against the blocking interface, run unchanged on four transports.

Nothing here is routing's: the bridge only awaits, so what the scenarios see is what the
asyncio transport did.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Self, TypeVar

import routing.aio
from routing.properties import Properties
from routing.topology import Binding, Topology
from routing.transport import DeclareReport, Delivery, Publication
from routing.transport.aio import AsyncConsumer, AsyncTransport

T = TypeVar("T")
LONGEST = 120.0  # no call of a scenario waits longer: a hung await fails the test, not the run


async def _opened(url: str) -> AsyncTransport:
    return await routing.aio.open_transport(url)


class Loop:
    """An event loop running in a daemon thread; `run(coroutine)` waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="conformance-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(LONGEST)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class BlockingConsumer:
    def __init__(self, loop: Loop, consumer: AsyncConsumer) -> None:
        self._loop = loop
        self._consumer = consumer
        self.queue = consumer.queue
        self.prefetch = consumer.prefetch

    @property
    def cancelled(self) -> bool:
        return self._consumer.cancelled

    def get(self, timeout: float | None = None) -> Delivery | None:
        return self._loop.run(self._consumer.get(timeout))

    def cancel(self) -> None:
        self._loop.run(self._consumer.cancel())

    def __iter__(self) -> Iterator[Delivery]:
        while (delivery := self.get()) is not None:
            yield delivery

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class BlockingTransport:
    """`routing.transport.Transport` over an asyncio transport on its own loop."""

    def __init__(self, loop: Loop, transport: AsyncTransport) -> None:
        self._loop = loop
        self._t = transport
        self.url = transport.url

    @classmethod
    def open(cls, url: str) -> BlockingTransport:
        loop = Loop()
        try:
            return cls(loop, loop.run(_opened(url)))
        except BaseException:
            loop.stop()
            raise

    @property
    def server_version(self) -> str:
        return self._t.server_version

    @property
    def closed(self) -> bool:
        return self._t.closed

    def declare(self, topology: Topology) -> DeclareReport:
        return self._loop.run(self._t.declare(topology))

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties | None = None,
        *,
        mandatory: bool = False,
    ) -> Publication:
        return self._loop.run(self._t.publish(exchange, routing_key, body, properties, mandatory=mandatory))

    def flush(self, timeout: float | None = None) -> list[Publication]:
        return self._loop.run(self._t.flush(timeout))

    def batch(self) -> AbstractContextManager[None]:
        return self._t.batch()

    def consume(self, queue: str, *, prefetch: int = 1) -> BlockingConsumer:
        consumer = self._t.consume(queue, prefetch=prefetch)
        self._loop.run(consumer.start())
        return BlockingConsumer(self._loop, consumer)

    def get(self, queue: str) -> Delivery | None:
        return self._loop.run(self._t.get(queue))

    def ack(self, delivery: Delivery, *, multiple: bool = False) -> None:
        self._loop.run(self._t.ack(delivery, multiple=multiple))

    def nack(self, delivery: Delivery, *, requeue: bool = True, multiple: bool = False) -> None:
        self._loop.run(self._t.nack(delivery, requeue=requeue, multiple=multiple))

    def reject(self, delivery: Delivery, *, requeue: bool = True) -> None:
        self._loop.run(self._t.reject(delivery, requeue=requeue))

    def wait(self, timeout: float) -> None:
        self._loop.run(asyncio.sleep(timeout))

    def message_count(self, queue: str) -> int:
        return self._loop.run(self._t.message_count(queue))

    def unbind(self, binding: Binding) -> None:
        self._loop.run(self._t.unbind(binding))

    def purge(self, queue: str) -> int:
        return self._loop.run(self._t.purge(queue))

    def delete_queue(self, queue: str) -> None:
        self._loop.run(self._t.delete_queue(queue))

    def delete_exchange(self, exchange: str) -> None:
        self._loop.run(self._t.delete_exchange(exchange))

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._t.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
