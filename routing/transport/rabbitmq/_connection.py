"""One connection to RabbitMQ: the pika connection, its lock, pumping, reconnecting, and the one
place where pika's exceptions on a live connection become `routing.errors` ones
(`Connection.errors`; a connection that cannot be opened is `_connect`'s `ConnectionFailed`).

The transport and its consumers use only what is public here. What a reconnect must restore
(topology, consumers, unconfirmed publications) and forget (channels, buffers) is the
transport's: it passes `restore` and `dropped` callbacks in.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

import pika.exceptions as px
from loguru import logger

from routing.errors import BrokerError, ChannelClosed, ConnectionFailed, ConnectionLost
from routing.transport.base import Delivery
from routing.transport.rabbitmq import _pika
from routing.transport.rabbitmq._channel import ChannelMethods
from routing.transport.rabbitmq._connect import (
    connect,
    none_answered,
    reconnect_pause,
    refusal,
    translate,
)
from routing.transport.rabbitmq._url import Endpoint


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


class ChannelHandle(ChannelMethods):
    """A channel of one connection. Deliveries remember theirs: once it is gone the broker
    has requeued them, and their tags mean nothing on any other channel. The methods that
    carry a field table (`ChannelMethods`) are encoded with our codec; `channel` is pika's."""

    __slots__ = ("alive", "backlog", "channel", "reason")

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.alive = True
        self.reason: BaseException | None = None
        self.backlog: deque[Delivery] | None = None  # a consumer's deliveries not yet taken
        _pika.on_close(channel, self._closed)

    def _closed(self, _channel: Any, reason: BaseException) -> None:
        self.alive = False
        self.reason = reason

    @property
    def closed_by_broker(self) -> bool:
        return isinstance(self.reason, px.ChannelClosedByBroker)

    @property
    def is_open(self) -> bool:
        return self.alive and bool(self.channel.is_open)

    def _send_rpc(self, like: Any, payload: bytes, reply: Any) -> Any:
        return _pika.rpc(self.channel, like, payload, reply)


class Connection:
    """A pika `BlockingConnection` to the first of `endpoints` that answers, made again
    (exponential backoff, full jitter) within `reconnect_timeout` when it drops.

    `restore()` runs after each reconnect; `dropped(error)` when a connection is given up
    (its channels are already marked dead). Hold `lock` around every use.
    """

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        name: str | None,
        reconnect_timeout: float,
        restore: Callable[[], None],
        dropped: Callable[[ConnectionLost], None],
    ) -> None:
        self._endpoints = list(endpoints)
        self.endpoint = self._endpoints[0]  # the one connected to (or last connected to)
        self.url = ",".join(ep.url for ep in self._endpoints)
        self._name = name
        self.reconnect_timeout = reconnect_timeout
        self.reconnects = 0
        self.last_drop = ""  # why the connection dropped last (the broker's reason, if it gave one)
        self._restore = restore
        self._dropped = dropped
        self.lock = FairLock(self.wake)
        self._channels: list[ChannelHandle] = []
        self._closed = False
        self._lost: ConnectionLost | None = None  # the last drop `errors` raised
        self._batches = 0  # open `batch()`es: writes are held back (`_pika.hold`)
        self._conn: Any = None
        self._conn = self._connect()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def server_version(self) -> str:
        """The version in the broker's `connection.start` ("3.10.8"); "" when it gave none."""
        self.live()
        version = _pika.server_properties(self._conn).get("version", b"")
        return version.decode(errors="replace") if isinstance(version, bytes) else str(version)

    def _connect(self) -> Any:
        failures: list[ConnectionFailed] = []
        for ep in self._endpoints:
            try:
                conn = connect(ep, self._name)
            except ConnectionFailed as exc:
                failures.append(exc)
            else:
                self.endpoint = ep
                logger.bind(url=ep.url).debug("connected")
                if self._batches:  # a reconnect inside a batch: the new connection batches too
                    _pika.hold(conn, True)
                return conn
        raise none_answered(failures)

    def live(self) -> None:
        """Make sure there is a live connection: reconnect (and restore) if it dropped;
        `ConnectionLost` when that does not work within `reconnect_timeout`."""
        if self._closed:
            raise BrokerError(f"{self.url}: the transport is closed")
        if self._conn is not None and self._conn.is_open:
            return
        if self._conn is not None:
            self.drop(ConnectionLost(f"{self.url}: connection closed"))
        deadline = time.monotonic() + self.reconnect_timeout
        attempt = 0
        while self._conn is None:
            try:
                self._conn = self._connect()
            except ConnectionFailed as exc:
                attempt += 1
                pause = reconnect_pause(attempt, deadline, self.reconnect_timeout, exc, self.url)
                time.sleep(pause)
        self.reconnects += 1
        logger.bind(url=self.endpoint.url).warning("reconnected; restoring topology and consumers")
        with self.errors("restore", retry=True):
            self._restore()
        if self._conn is None:  # it dropped again while restoring
            self.live()

    def drop(self, error: ConnectionLost) -> None:
        """Forget a dead connection: its channels, and (through `dropped`) what depended on it."""
        self.last_drop = str(error)
        for chan in self._channels:
            chan.alive = False
        self._channels = []
        self._dropped(error)
        if self._conn is not None:
            with contextlib.suppress(Exception):  # already dead; closing is only tidying up
                self._conn.close()
        self._conn = None

    def close(self, error: ConnectionLost) -> None:
        """Drop the connection for good: later calls raise `BrokerError`."""
        self.drop(error)
        self._closed = True

    def errors(self, what: str, *, retry: bool = False) -> Errors:
        """A context manager: pika's exceptions, raised by what runs inside, as `routing.errors`
        ones (see `Errors`). Reusable: a hot path may keep one."""
        return Errors(self, what, retry)

    def _translate(self, exc: BaseException, what: str, retry: bool) -> bool:
        """For `Errors.__exit__`: raise the routing error for `exc`, or return whether to swallow it."""
        if isinstance(exc, ConnectionLost):
            return retry and exc is self._lost
        error = translate(exc, what, self.endpoint)
        if error is None:
            return False
        if isinstance(error, ConnectionLost):
            self._lost = error
            self.drop(error)
            if retry:
                return True
        raise error from exc

    def guarded(self, what: str, action: Callable[[], Any]) -> Any:
        """Run an idempotent channel operation: a refusal becomes ChannelClosed; after a
        dropped connection (restored) or a closed channel (reopened) it is tried once more."""
        for attempt in (1, 2):
            self.live()
            try:
                with self.errors(what, retry=attempt == 1):
                    return action()
            except ChannelClosed as exc:
                if exc.code or attempt == 2:  # a refusal has the broker's reply code
                    raise
        raise AssertionError("unreachable")

    def channel(self) -> ChannelHandle:
        """A new channel on the live connection."""
        self.live()
        chan = ChannelHandle(self._conn.channel())
        self._channels = [c for c in self._channels if c.alive]
        self._channels.append(chan)
        return chan

    def refusal(self, chan: ChannelHandle, what: str) -> ChannelClosed | None:
        """Why the broker closed `chan` (`ChannelClosed`, naming `what`), or None if it did not."""
        return refusal(chan, what, self.endpoint)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Hold back what is written on this connection (`_pika.hold`) until it is needed:
        64 KB of it, a frame of pika's, a `pump`, or the end of the (outermost) batch, even
        by an exception. What a dropped connection held is lost with it, as what it had sent."""
        with self.lock:
            self._batches += 1
            if self._batches == 1 and self._conn is not None:
                _pika.hold(self._conn, True)
        try:
            yield
        finally:
            with self.lock:
                self._batches -= 1
                if not self._batches and self._conn is not None:
                    with self.errors("write a batch", retry=True):
                        if not _pika.hold(self._conn, False):
                            self.pump(lambda: False, 0)  # pika's loop writes what the socket did not take

    def pump(self, ready: Callable[[], bool], timeout: float | None) -> None:
        """Process I/O until `ready()` or `timeout` seconds; raises pika's error if the
        connection drops (run it inside `errors`)."""
        _pika.pump(self._conn, ready, timeout)

    def wake(self) -> None:
        """From another thread: end the current `pump` early."""
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):  # closing or closed: nothing to wake
                _pika.wake(conn)


class Errors:
    """pika's exceptions as `routing.errors` ones, in one place (httpx's
    `map_httpcore_exceptions` is the model): a broker's refusal as `ChannelClosed` (406:
    `PreconditionFailed`) naming `what` and the node, a closed channel as `ChannelClosed`
    with code 0, a dropped connection as `ConnectionLost` once it is dropped, anything else
    of pika's as `BrokerError`; each `from` pika's. `retry`: a dropped connection (here or in
    a nested `errors`) is not raised: the caller goes round again and `live()` reconnects."""

    __slots__ = ("_connection", "_retry", "_what")

    def __init__(self, connection: Connection, what: str, retry: bool) -> None:
        self._connection = connection
        self._what = what
        self._retry = retry

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            return False
        return self._connection._translate(exc, self._what, self._retry)
