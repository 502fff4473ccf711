"""One asyncio connection to RabbitMQ: pika's `AsyncioConnection` (with our codec, `_pika`),
its channels as futures, reconnecting, and pika's exceptions as `routing.errors` ones
(`AsyncConnection.errors`, over the one translation, `_connect.translate`).

The twin of `_connection` for an event loop, sharing what is not I/O: the parameters, the
connect-error lines, the translation, the backoff, the channel methods (`ChannelMethods`).
What a reconnect restores and forgets is the transport's (`restore`, `dropped`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import pika.exceptions as px
from loguru import logger
from pika import spec

from routing.errors import BrokerError, ChannelClosed, ConnectionFailed, ConnectionLost
from routing.transport.base import Delivery
from routing.transport.rabbitmq import _pika
from routing.transport.rabbitmq._channel import ChannelMethods
from routing.transport.rabbitmq._connect import (
    connect_error,
    none_answered,
    parameters,
    reconnect_pause,
    refusal,
    translate,
)
from routing.transport.rabbitmq._url import Endpoint

T = TypeVar("T")
CLOSE_TIMEOUT = 5.0  # how long `close` waits for the broker's close-ok


class Waker:
    """Wakes the tasks waiting for something to change (a confirm, a delivery, a drop).
    `wake` from pika's callbacks costs one attribute test when nobody waits."""

    __slots__ = ("_future",)

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    def wake(self) -> None:
        future = self._future
        if future is not None:
            self._future = None
            if not future.done():
                future.set_result(None)

    async def wait(self, timeout: float | None = None) -> None:
        """Until the next `wake`, or `timeout` seconds. Cancelling a waiter leaves the others be."""
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        await asyncio.wait((self._future,), timeout=timeout)


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A channel future's exception counts as seen, so a cancelled caller leaves no log."""
    if not future.cancelled():
        future.exception()


class AsyncChannel(ChannelMethods):
    """An asynchronous pika channel whose calls return futures. Its close fails them with
    pika's reason (the caller translates it in `errors`); `on_close(channel)` runs then."""

    __slots__ = ("_get", "_pending", "alive", "backlog", "channel", "on_close", "reason")

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.alive = True
        self.reason: BaseException | None = None
        self.backlog: deque[Delivery] | None = None  # a consumer's deliveries not yet taken
        self.on_close: Callable[[AsyncChannel], None] | None = None
        self._pending: set[asyncio.Future[Any]] = set()
        self._get: asyncio.Future[Any] | None = None  # the basic.get awaiting its answer
        channel.add_on_close_callback(self._closed)
        channel.add_callback(self._empty, [spec.Basic.GetEmpty], one_shot=False)

    def _closed(self, _channel: Any, reason: BaseException) -> None:
        self.alive = False
        self.reason = reason
        for future in self._pending:
            if not future.done():
                future.set_exception(reason)
        self._pending.clear()
        if self.on_close is not None:
            self.on_close(self)

    @property
    def closed_by_broker(self) -> bool:
        return isinstance(self.reason, px.ChannelClosedByBroker)

    @property
    def is_open(self) -> bool:
        return self.alive and bool(self.channel.is_open)

    def future(self) -> asyncio.Future[Any]:
        """A future this channel's close fails."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self.alive:
            future.set_exception(self.reason or px.ChannelWrongStateError("Channel is closed."))
        else:
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)
        future.add_done_callback(_retrieved)
        return future

    def call(self, start: Callable[[Callable[..., None]], Any]) -> asyncio.Future[Any]:
        """`start(callback)` (one of pika's channel methods); a future of the callback's first argument."""
        future = self.future()

        def done(result: Any = None, *_rest: Any) -> None:
            if not future.done():
                future.set_result(result)

        start(done)
        return future

    def _send_rpc(self, like: Any, payload: bytes, reply: Any) -> asyncio.Future[Any]:
        return self.call(lambda done: _pika.rpc_start(self.channel, like, payload, reply, done))

    def queue_purge(self, queue: str) -> asyncio.Future[Any]:
        return self.call(lambda done: self.channel.queue_purge(queue, callback=done))

    def queue_delete(self, queue: str) -> asyncio.Future[Any]:
        return self.call(lambda done: self.channel.queue_delete(queue, callback=done))

    def exchange_delete(self, exchange: str) -> asyncio.Future[Any]:
        return self.call(lambda done: self.channel.exchange_delete(exchange, callback=done))

    def qos(self, prefetch: int) -> asyncio.Future[Any]:
        return self.call(lambda done: self.channel.basic_qos(prefetch_count=prefetch, callback=done))

    def basic_get(self, queue: str) -> asyncio.Future[Any]:
        """(method, properties, body), or None for `basic.get-empty`. One at a time."""
        future = self._get = self.future()

        def got(_channel: Any, method: Any, properties: Any, body: bytes) -> None:
            if not future.done():
                future.set_result((method, properties, body))

        if not future.done():
            self.channel.basic_get(queue, got, auto_ack=False)
        return future

    def _empty(self, _frame: Any) -> None:
        future, self._get = self._get, None
        if future is not None and not future.done():
            future.set_result(None)


class AsyncConnection:
    """A pika `AsyncioConnection` to the first of `endpoints` that answers, made again
    (exponential backoff, full jitter) within `reconnect_timeout` when it drops.
    `await open()` first. `restore()` runs after each reconnect (before any other task
    goes on); `dropped(error)` when a connection is given up."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        name: str | None,
        reconnect_timeout: float,
        restore: Callable[[], Awaitable[None]],
        dropped: Callable[[ConnectionLost], None],
    ) -> None:
        self._endpoints = list(endpoints)
        self.endpoint = self._endpoints[0]
        self.url = ",".join(ep.url for ep in self._endpoints)
        self._name = name
        self.reconnect_timeout = reconnect_timeout
        self.reconnects = 0
        self._restore = restore
        self._dropped = dropped
        self._conn: Any = None
        self._ready = False  # connected and restored: other tasks may use it
        self._restorer: asyncio.Task[Any] | None = None
        self._lock = asyncio.Lock()  # one reconnect at a time
        self._channels: list[AsyncChannel] = []
        self._closing: dict[int, asyncio.Future[None]] = {}
        self._closed = False
        self.server_version = ""

    async def open(self) -> None:
        self._conn = await self._connect()
        self._ready = True

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def is_open(self) -> bool:
        """Connected now (not necessarily restored yet)."""
        return self._conn is not None and bool(self._conn.is_open)

    async def _connect(self) -> Any:
        failures: list[ConnectionFailed] = []
        for ep in self._endpoints:
            try:
                conn = await self._connect_to(ep)
            except ConnectionFailed as exc:
                failures.append(exc)
            else:
                self.endpoint = ep
                version = _pika.server_properties(conn).get("version", b"")
                self.server_version = (
                    version.decode(errors="replace") if isinstance(version, bytes) else str(version)
                )
                logger.bind(url=ep.url).debug("connected")
                return conn
        raise none_answered(failures)

    async def _connect_to(self, ep: Endpoint) -> Any:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        params = parameters(ep, self._name)

        def finished(result: Any) -> None:
            if not done.done():
                done.set_result(result)

        workflow = _pika.open_asyncio(params, loop, finished)
        try:
            result = await done
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # already finished: nothing to abort
                workflow.abort()
            raise
        if isinstance(result, BaseException):
            raise connect_error(ep, result) from result
        result.add_on_close_callback(self._on_close)
        return result

    def _on_close(self, conn: Any, reason: BaseException) -> None:
        closing = self._closing.pop(id(conn), None)
        if closing is not None:
            if not closing.done():
                closing.set_result(None)
            return
        if conn is self._conn:  # the broker closed it, or the network went
            logger.bind(url=self.endpoint.url).warning("connection lost: {!r}", reason)
            self.drop(ConnectionLost(f"{self.endpoint.url}: connection lost: {reason!r}"))

    async def live(self) -> None:
        """Make sure there is a live connection, reconnecting (and restoring) if it dropped;
        `ConnectionLost` when that does not work within `reconnect_timeout`."""
        if self._closed:
            raise BrokerError(f"{self.url}: the transport is closed")
        conn = self._conn
        restoring = self._restorer is not None and asyncio.current_task() is self._restorer
        if conn is not None and conn.is_open and (self._ready or restoring):
            return
        if restoring:  # dropped again while restoring: `_reconnect` goes round again
            raise ConnectionLost(f"{self.endpoint.url}: connection lost while restoring")
        async with self._lock:
            if self._closed:
                raise BrokerError(f"{self.url}: the transport is closed")
            if self._conn is not None and self._conn.is_open and self._ready:
                return  # another task reconnected meanwhile
            await self._reconnect()

    async def _reconnect(self) -> None:
        if self._conn is not None:
            self.drop(ConnectionLost(f"{self.url}: connection closed"))
        deadline = time.monotonic() + self.reconnect_timeout
        attempt = 0
        while True:
            while self._conn is None:
                if self._closed:  # closed by another task meanwhile: no new connection
                    raise BrokerError(f"{self.url}: the transport is closed")
                try:
                    self._conn = await self._connect()
                    if self._closed:
                        self.drop(ConnectionLost(f"{self.url}: the transport is closed"))
                        continue
                except ConnectionFailed as exc:
                    attempt += 1
                    pause = reconnect_pause(attempt, deadline, self.reconnect_timeout, exc, self.url)
                    await asyncio.sleep(pause)
            self.reconnects += 1
            logger.bind(url=self.endpoint.url).warning("reconnected; restoring topology and consumers")
            self._restorer = asyncio.current_task()
            try:
                with self.errors("restore"):
                    await self._restore()
            except ConnectionLost:
                if self._conn is not None and self._conn.is_open:
                    raise
                continue  # dropped again while restoring
            finally:
                self._restorer = None
            if self._conn is not None:
                self._ready = True
                return

    def drop(self, error: ConnectionLost) -> None:
        """Forget the connection: its channels, and (through `dropped`) what depended on it."""
        conn, self._conn, self._ready = self._conn, None, False
        for chan in self._channels:
            chan.alive = False
        self._channels = []
        self._dropped(error)
        if conn is not None and not (conn.is_closed or conn.is_closing):
            self._closing[id(conn)] = asyncio.get_running_loop().create_future()
            with contextlib.suppress(Exception):  # already dying; closing is only tidying up
                conn.close()

    async def close(self, error: ConnectionLost) -> None:
        """Close the connection for good (waiting for the broker's close-ok): later calls
        raise `BrokerError`."""
        self.drop(error)
        self._closed = True
        waiting = [f for f in self._closing.values() if not f.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=CLOSE_TIMEOUT)

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """pika's exceptions, raised by what runs inside, as `routing.errors` ones (see
        `_connect.translate`), each `from` pika's; a dropped connection is forgotten."""
        try:
            yield
        except BrokerError:
            raise
        except Exception as exc:
            error = translate(exc, what, self.endpoint)
            if error is None:
                raise
            if isinstance(error, ConnectionLost) and self._conn is not None and not self._conn.is_open:
                self.drop(error)
            raise error from exc

    async def guarded(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """Run an idempotent channel operation: a refusal becomes ChannelClosed; after a
        dropped connection (restored) or a closed channel (reopened) it is tried once more."""
        for attempt in (1, 2):
            await self.live()
            try:
                with self.errors(what):
                    return await action()
            except ChannelClosed as exc:
                if exc.code or attempt == 2:  # a refusal has the broker's reply code
                    raise
            except ConnectionLost:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def channel(self) -> AsyncChannel:
        """A new open channel on the live connection."""
        await self.live()
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[Any] = loop.create_future()
        opened.add_done_callback(_retrieved)

        def open_ok(raw: Any) -> None:
            if not opened.done():
                opened.set_result(raw)

        def closed(_raw: Any, reason: BaseException) -> None:
            if not opened.done():
                opened.set_exception(reason)

        with self.errors("open a channel"):
            raw = self._conn.channel(on_open_callback=open_ok)
            chan = AsyncChannel(raw)
            raw.add_on_close_callback(closed)
            await opened
        self._channels = [c for c in self._channels if c.alive]
        self._channels.append(chan)
        return chan

    def refusal(self, chan: AsyncChannel, what: str) -> ChannelClosed | None:
        """Why the broker closed `chan` (`ChannelClosed`, naming `what`), or None if it did not."""
        return refusal(chan, what, self.endpoint)
