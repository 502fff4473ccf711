"""The asyncio transport interface, the twin of `routing.transport.base` for event loops.

The same methods as the blocking `Transport`, awaitable where they wait: `declare`,
`publish` (which returns an `AsyncPublication` at once unless the confirm window is full;
`await publication` waits for the broker's answer), `flush`, `get`, `ack`, `nack`,
`reject`, `purge`, `delete_queue`, `delete_exchange`, `close`. `consume(queue,
prefetch=)` returns an `AsyncConsumer`, an async iterator of deliveries. The values that
cross it (`Delivery`, `Publication`, `Outcome`, `DeclareReport`, `Properties`) are the
blocking transport's, so everything above the transport (envelopes, the worker's failure
copies) is shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from routing.properties import Properties
from routing.topology import Binding, Topology
from routing.transport.base import DeclareReport, Delivery, Outcome, Publication

__all__ = [
    "AsyncConsumer",
    "AsyncConsumerBase",
    "AsyncPublication",
    "AsyncTransport",
    "AsyncTransportBase",
]


@dataclass(slots=True, eq=False)
class AsyncPublication(Publication):
    """A `Publication` that can be awaited: `await publication` returns its `Outcome` once
    the broker has answered (CONFIRMED, RETURNED, NACKED, or UNCONFIRMED when the
    connection dropped first). It raises nothing for those: `raise_for_outcome()` does.

    The transport calls `settle()` after setting `outcome`; a future is made only for a
    publication someone awaits, so unawaited publishing costs nothing extra."""

    _waiter: asyncio.Future[Outcome] | None = field(default=None, repr=False, compare=False)

    # One publication is itself only, so that `asyncio.gather(*publications)` can take them.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def settle(self) -> None:
        """Wake whoever awaits this publication (its `outcome` is set)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done() and self.outcome is not None:
            waiter.set_result(self.outcome)

    def __await__(self) -> Generator[Any, None, Outcome]:
        if self.outcome is not None:
            return self.outcome
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        return (yield from asyncio.shield(self._waiter).__await__())


@runtime_checkable
class AsyncConsumer(Protocol):
    """Deliveries from one queue, at most `prefetch` unacked at a time: `async for delivery
    in consumer`. Use as an async context manager (leaving cancels). The consumer starts at
    the first `get`, iteration step or `async with` (`start()` starts it explicitly, and
    raises `ChannelClosed` there when the queue is missing)."""

    queue: str
    prefetch: int

    @property
    def cancelled(self) -> bool: ...

    async def start(self) -> None: ...
    async def get(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery, or None after `timeout` seconds with none, or once cancelled."""
        ...

    async def cancel(self) -> None:
        """Stop receiving; unacked deliveries go back to the queue."""
        ...

    def __aiter__(self) -> AsyncIterator[Delivery]: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@runtime_checkable
class AsyncTransport(Protocol):
    """One interface, two brokers, for one event loop. Use as an async context manager."""

    url: str  # redacted: never holds a password

    @property
    def server_version(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    async def declare(self, topology: Topology) -> DeclareReport: ...
    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties | None = None,
        *,
        mandatory: bool = False,
    ) -> AsyncPublication:
        """Send; returns at once unless the confirm window is full (then waits for room).
        `await` the publication for its outcome."""
        ...

    async def flush(self, timeout: float | None = None) -> list[Publication]:
        """Wait until every publication so far is settled; returns those not confirmed since
        the last flush (after `timeout`, the unanswered ones too, unsettled)."""
        ...

    def consume(self, queue: str, *, prefetch: int = 1) -> AsyncConsumer: ...
    async def get(self, queue: str) -> Delivery | None: ...
    async def ack(self, delivery: Delivery, *, multiple: bool = False) -> None: ...
    async def nack(self, delivery: Delivery, *, requeue: bool = True, multiple: bool = False) -> None: ...
    async def reject(self, delivery: Delivery, *, requeue: bool = True) -> None: ...
    async def message_count(self, queue: str) -> int: ...
    async def unbind(self, binding: Binding) -> None: ...
    async def purge(self, queue: str) -> int: ...
    async def delete_queue(self, queue: str) -> None: ...
    async def delete_exchange(self, exchange: str) -> None: ...
    async def close(self) -> None: ...
    def batch(self) -> AbstractContextManager[None]:
        """`Transport.batch`, accepted as a no-op (asyncio already batches writes)."""
        ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class AsyncTransportBase:
    """What both asyncio transports share: `closed`, and use as an async context manager
    (leaving closes), also by `async with await open_transport(url)`."""

    _closed: bool = False

    @property
    def closed(self) -> bool:
        """True once `close` was called: every other call then raises `BrokerError`."""
        return self._closed

    async def close(self) -> None:
        raise NotImplementedError

    def batch(self) -> AbstractContextManager[None]:
        """`Transport.batch`, accepted so code using it runs here too: the asyncio transports
        already write what is published in one go per turn of the event loop."""
        return nullcontext()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class AsyncConsumerBase:
    """What both asyncio consumers share: iteration until cancelled, and use as an async
    context manager (entering starts, leaving cancels)."""

    async def start(self) -> None:
        raise NotImplementedError

    async def get(self, timeout: float | None = None) -> Delivery | None:
        raise NotImplementedError

    async def cancel(self) -> None:
        raise NotImplementedError

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self._deliveries()

    async def _deliveries(self) -> AsyncIterator[Delivery]:
        while (delivery := await self.get()) is not None:
            yield delivery

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.cancel()
