"""`Listener`: one service instance's receiving end of a broadcast, on a thread of its own."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

from routing.broadcast._broadcaster import listener_topology
from routing.broadcast._core import (
    CACHE_INVALIDATE,
    CONFIG_CHANGED,
    Gap,
    ListenerCore,
    ListenerStats,
    gap_cause,
)
from routing.errors import ConnectionLost, RoutingError
from routing.schemas import SchemaRegistry
from routing.transport import Transport, open_transport
from routing.transport.base import Consumer, Delivery

__all__ = ["Listener", "ListenerBase"]

F = TypeVar("F", bound=Callable[..., object])
POLL = 0.2  # seconds between looks at the connection and the overflow queue when idle


class ListenerBase:
    """What the blocking and asyncio listeners share: names, handlers, caches, the core."""

    def __init__(
        self,
        *,
        exchange: str,
        service: str,
        name: str | None,
        max_length: int,
        prefetch: int,
        registry: SchemaRegistry | None,
    ) -> None:
        self.exchange = exchange
        self.service = service
        self.name = name or f"{service}-{uuid.uuid4().hex[:8]}"
        self.queue = f"{exchange}.{self.name}"
        self.topology = listener_topology(exchange, self.queue, max_length)
        self.prefetch = prefetch
        self.core = ListenerCore(exchange=exchange, registry=registry)
        self.overflow_queue = f"{self.queue}.overflow"
        self.connects = 0  # how many times the queue was declared (1 + reconnects seen)
        self._seen_reconnects = 0
        self._last_drop = ""  # why the connection was lost last
        self._held: Delivery | None = None  # the last delivery applied and not acked yet
        self._unacked = 0

    def on_invalidate(self, handler: F) -> F:
        """Call `handler(envelope)` for each `cache.invalidate` (usable as a decorator)."""
        self.core.on(CACHE_INVALIDATE, handler)
        return handler

    def on_config(self, handler: F) -> F:
        """Call `handler(envelope)` for each `config.changed` (usable as a decorator)."""
        self.core.on(CONFIG_CHANGED, handler)
        return handler

    def on_gap(self, handler: Callable[[Gap], object]) -> Callable[[Gap], object]:
        """Call `handler(gap)` whenever events may have been missed (after attached caches
        were cleared)."""
        self.core.on_gap(handler)
        return handler

    def attach(self, cache: Any, name: str = "*", *, clear_on_gap: bool = True) -> None:
        """Keep `cache` fresh: a `dict` or other `MutableMapping` (cachetools' included) has
        the keys each event names dropped (or those matching its glob pattern); a function
        wrapped by `functools.lru_cache` is cleared (it cannot drop one key); a callable is
        called with a `Drop`. `name`: the cache the events name (a glob; "*" for all;
        `config.changed` goes to "config", as `config:<key>`). After a gap it is cleared."""
        self.core.attach(cache, name, clear_on_gap=clear_on_gap)

    @property
    def stats(self) -> ListenerStats:
        return self.core.stats

    def _hold(self, delivery: Delivery) -> Delivery | None:
        """Acks go out in batches (`multiple`), half a prefetch window at a time: the delivery
        to ack now, with every one before it, or None to wait."""
        self._held, self._unacked = delivery, self._unacked + 1
        return self._release() if self._unacked * 2 >= self.prefetch else None

    def _release(self) -> Delivery | None:
        """The delivery to ack (multiple) for everything held, when idle; None when none is."""
        held, self._held, self._unacked = self._held, None, 0
        return held

    def _connected(self, transport: object) -> None:
        """The queue was declared on a new connection: from the second on, a gap."""
        self._release()  # what the old connection delivered is gone with its queue
        self._seen_reconnects = getattr(transport, "reconnects", 0)
        self._declared(self._last_drop)

    def _watch(self, transport: object) -> None:
        """RabbitMQ's transport reconnects by itself and declares the queue again: a gap too."""
        reconnects = getattr(transport, "reconnects", 0)
        if reconnects != self._seen_reconnects:
            self._seen_reconnects = reconnects
            self._declared(getattr(transport, "last_drop", "") or "reconnected")

    def _lost(self, exc: Exception) -> None:
        """The connection is given up (the queue with it): the next one is a gap."""
        if isinstance(exc, RoutingError):
            self.core.log.warning("listener {}: {}; connecting again", self.name, exc)
        else:
            self.core.log.opt(exception=exc).error(
                "listener {}: unexpected {!r}; connecting again", self.name, exc
            )
        self._last_drop = str(exc)

    def _declared(self, reason: str) -> None:
        self.connects += 1
        if self.connects > 1:
            detail = f"queue {self.queue!r} declared again after the connection dropped: {reason}"
            self.core.gap(gap_cause(reason), detail)


class Listener(ListenerBase):
    """Listens on `exchange` (fanout, declared here) from a queue of its own, exclusive and
    auto-delete, holding at most `max_length` events (the oldest dropped beyond that, and
    reported as a gap). `start()` runs it on a daemon thread (or use it as a context
    manager); handlers run on that thread. A lost connection is made again and reported as
    a gap: what was published meanwhile is gone with the old queue. `name`: this
    instance's, unique (random by default), in its queue's name and its connection's."""

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
        self.transport: Transport | None = None
        self._consumer: Consumer | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Connect and declare the queue (errors raise here), then listen on a thread."""
        self._connect()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"listener {self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the connection (which deletes the queue)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._disconnect()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _connect(self) -> None:
        transport = open_transport(self.url, name=self.name)
        try:
            transport.declare(self.topology)
            self._consumer = transport.consume(self.queue, prefetch=self.prefetch)
        except BaseException:
            transport.close()
            raise
        self.transport = transport
        self._connected(transport)

    def _disconnect(self) -> None:
        transport, self.transport, self._consumer = self.transport, None, None
        if transport is not None:
            with contextlib.suppress(RoutingError):  # a lost connection is closed already
                transport.close()

    def _run(self) -> None:
        pause = 0.1
        while not self._stopping.is_set():
            try:
                if self.transport is None:
                    self._connect()
                    pause = 0.1
                self._step()
            except Exception as exc:  # a lost connection, or a bug: never the end of the listener
                if self._stopping.is_set():
                    return
                self._lost(exc)
                self._disconnect()
                self._stopping.wait(pause)
                pause = min(pause * 2, 5.0)

    def _step(self) -> None:
        transport, consumer = self.transport, self._consumer
        assert transport is not None and consumer is not None
        delivery = consumer.get(timeout=POLL)
        self._watch(transport)
        if delivery is None:
            if (held := self._release()) is not None:
                transport.ack(held, multiple=True)
            if consumer.cancelled and not self._stopping.is_set():
                raise ConnectionLost(f"the consumer of {self.queue!r} was cancelled")
            if self._overflowed(transport):
                self.core.overflowed(self.queue)
            return
        received = self.core.receive(delivery.body, delivery.properties)
        if received.skipped:
            self.core.jumped(received, overflowed=self._overflowed(transport))
        self.core.apply(received)
        if (batch := self._hold(delivery)) is not None:
            transport.ack(batch, multiple=True)

    def _overflowed(self, transport: Transport) -> bool:
        """Whether the queue dropped events since the last look (and forget the signal)."""
        found = False
        while (signal := transport.get(self.overflow_queue)) is not None:
            transport.ack(signal)
            found = True
        return found
