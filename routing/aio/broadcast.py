"""`routing.broadcast` for asyncio: a `Broadcaster` on an asyncio transport, and a
`Listener` that runs as a task on the event loop.

    async with routing.aio.open_transport(url) as transport:
        broadcaster = Broadcaster(transport, exchange="app.invalidations")
        await broadcaster.invalidate("users", "user:1", reason="renamed")

    listener = Listener(url, exchange="app.invalidations", service="api")
    listener.attach(users, name="users")
    async with listener:          # a task; handlers run on the loop (plain functions)
        ...

Everything but the I/O is the blocking one's (`routing.broadcast`: events, sequence
tracking, gaps, attached caches, stats); this module only awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from routing.aio.publisher import Publisher
from routing.broadcast import BroadcasterBase, ListenerBase
from routing.broadcast._listener import POLL
from routing.envelope import DEFAULT_SOURCE
from routing.errors import ConnectionLost, RoutingError
from routing.schemas import SchemaRegistry
from routing.transport.aio import AsyncConsumer, AsyncTransport, open_transport
from routing.transport.base import Outcome, Publication

__all__ = ["Broadcaster", "Listener"]


class Broadcaster(BroadcasterBase):
    """`routing.broadcast.Broadcaster` on an asyncio transport; the exchange is declared at
    the first event."""

    def __init__(
        self,
        transport: AsyncTransport,
        *,
        exchange: str,
        source: str = DEFAULT_SOURCE,
        publisher: str | None = None,
        registry: SchemaRegistry | None = None,
    ) -> None:
        super().__init__(exchange, publisher)
        self.transport = transport
        self._publisher = Publisher(transport, source=source, registry=registry, persistent=False)
        self._declared = False

    async def invalidate(
        self,
        cache: str,
        keys: Iterable[str] | str | None = None,
        *,
        pattern: str | None = None,
        reason: str | None = None,
        version: int | None = None,
        wait: bool = True,
    ) -> Publication:
        """Tell every listener to drop `keys` (or those matching the glob `pattern`) from `cache`."""
        return await self._send(*self._invalidation(cache, keys, pattern, reason, version), wait)

    async def config_changed(
        self, service: str, keys: Iterable[str] | str, version: int | str, *, wait: bool = True
    ) -> Publication:
        """Tell every listener that `service`'s config `keys` changed, now at `version`."""
        return await self._send(*self._config(service, keys, version), wait)

    async def flush(self, timeout: float | None = None) -> list[Publication]:
        return await self._publisher.flush(timeout)

    async def _send(self, event_type: str, data: dict[str, Any], wait: bool) -> Publication:
        if not self._declared:
            await self.transport.declare(self.topology)
            self._declared = True
        publication = await self._publisher.emit(
            self.exchange, "", event_type, data, extensions=self.numbering.extensions()
        )
        if wait and await publication is not Outcome.CONFIRMED:
            publication.raise_for_outcome()
        return publication


class Listener(ListenerBase):
    """`routing.broadcast.Listener` as an asyncio task: `await listener.start()` (connects,
    declares; errors raise there) and `await listener.stop()`, or `async with listener`."""

    def __init__(
        self,
        url: str | None = None,
        *,
        exchange: str,
        service: str = "service",
        name: str | None = None,
        max_length: int = 10_000,
        prefetch: int = 100,
        registry: SchemaRegistry | None = None,
    ) -> None:
        super().__init__(
            exchange=exchange,
            service=service,
            name=name,
            max_length=max_length,
            prefetch=prefetch,
            registry=registry,
        )
        self.url = url
        self.transport: AsyncTransport | None = None
        self._consumer: AsyncConsumer | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Self:
        await self._connect()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"listener {self.name}")
        return self

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._disconnect()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _connect(self) -> None:
        transport = await open_transport(self.url, name=self.name)
        try:
            await transport.declare(self.topology)
            consumer = transport.consume(self.queue, prefetch=self.prefetch)
            await consumer.start()
        except BaseException:
            await transport.close()
            raise
        self.transport, self._consumer = transport, consumer
        self._connected(transport)

    async def _disconnect(self) -> None:
        transport, self.transport, self._consumer = self.transport, None, None
        if transport is not None:
            with contextlib.suppress(RoutingError):
                await transport.close()

    async def _run(self) -> None:
        pause = 0.1
        while not self._stopping:
            try:
                if self.transport is None:
                    await self._connect()
                    pause = 0.1
                await self._step()
            except Exception as exc:  # a lost connection, or a bug: never the end of the listener
                self._lost(exc)
                await self._disconnect()
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    async def _step(self) -> None:
        transport, consumer = self.transport, self._consumer
        assert transport is not None and consumer is not None
        delivery = await consumer.get(timeout=POLL)
        self._watch(transport)
        if delivery is None:
            if (held := self._release()) is not None:
                await transport.ack(held, multiple=True)
            if consumer.cancelled and not self._stopping:
                raise ConnectionLost(f"the consumer of {self.queue!r} was cancelled")
            if await self._overflowed(transport):
                self.core.overflowed(self.queue)
            return
        received = self.core.receive(delivery.body, delivery.properties)
        if received.skipped:
            self.core.jumped(received, overflowed=await self._overflowed(transport))
        self.core.apply(received)
        if (batch := self._hold(delivery)) is not None:
            await transport.ack(batch, multiple=True)

    async def _overflowed(self, transport: AsyncTransport) -> bool:
        found = False
        while (signal := await transport.get(self.overflow_queue)) is not None:
            await transport.ack(signal)
            found = True
        return found
