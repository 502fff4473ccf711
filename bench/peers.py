"""The peers the toolkit is measured against, each written the way its documentation
recommends for throughput with publisher confirms, and raw pika consumers.

Every function does its own connecting (not timed) and returns the seconds its timed part
took: from the first publish until the last confirm, or from `basic.consume` until the last
ack is sent. aio-pika and kombu come from the `bench` extra and are imported lazily:
`versions()` says which are installed.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pika

from bench.stats import Stopwatch, Timed
from routing import Properties

WINDOW = 1000  # unconfirmed publications in flight, for every pipelining contender


def versions() -> dict[str, str | None]:
    """Installed version of each client library, None when it is missing."""
    found: dict[str, str | None] = {}
    libraries = (("pika", "pika"), ("aio-pika", "aio_pika"), ("kombu", "kombu"))
    for name, module in (*libraries, ("opentelemetry-api", "opentelemetry.version")):
        try:
            found[name] = str(importlib.import_module(module).__version__)
        except ImportError:
            found[name] = None
    return found


def pika_properties(p: Properties) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=p.content_type,
        delivery_mode=p.delivery_mode,
        message_id=p.message_id,
        timestamp=p.timestamp,
        type=p.type,
        app_id=p.app_id,
    )


class Admin:
    """A control connection: declare and delete the benchmark's queues, read the broker."""

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        parts = urlsplit(url)  # `management=` is the toolkit's option (bench --web reads it), not pika's
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "management"])
        params = pika.URLParameters(urlunsplit(parts._replace(query=query)))
        params.socket_timeout = timeout
        params.blocked_connection_timeout = 30
        self.conn = pika.BlockingConnection(params)
        self.channel = self.conn.channel()

    @property
    def server_version(self) -> str:
        props = self.conn._impl.server_properties  # what connection.start announced
        version = props.get("version", b"?")
        return version.decode() if isinstance(version, bytes) else str(version)

    def declare(self, queue: str, arguments: dict[str, Any] | None = None) -> None:
        self.channel.queue_declare(queue, durable=True, arguments=arguments)

    def count(self, queue: str) -> int:
        """Ready messages; unacked ones are counted too once their consumer is gone."""
        return int(self.channel.queue_declare(queue, passive=True).method.message_count)

    def delete(self, queue: str) -> None:
        self.channel.queue_delete(queue)

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()


def declare_queue(url: str, queue: str, arguments: dict[str, Any] | None = None) -> None:
    """Declare a durable queue on a short-lived connection (one idle for minutes would miss
    its heartbeats)."""
    admin = Admin(url)
    try:
        admin.declare(queue, arguments)
    finally:
        admin.close()


def delete_queue(url: str, queue: str) -> None:
    admin = Admin(url)
    try:
        admin.delete(queue)
    finally:
        admin.close()


# ---------------------------------------------------------------------------- publishers


def pika_blocking(url: str, queue: str, body: bytes, props: Properties, n: int) -> Timed:
    """pika's `BlockingConnection` with `confirm_delivery()`: each publish waits for its
    confirm (pika's documented way to get confirms from a blocking channel)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        properties = pika_properties(props)
        watch = Stopwatch()
        for _ in range(n):
            channel.basic_publish("", queue, body, properties)
        return watch.stop()
    finally:
        conn.close()


class _Confirms:
    """Which delivery tags the broker has confirmed (acks may cover many with `multiple`)."""

    def __init__(self) -> None:
        self.upto = 0  # every tag <= upto is settled
        self.above: set[int] = set()  # settled one by one, beyond `upto`
        self.nacked = 0

    def settle(self, tag: int, multiple: bool) -> None:
        if multiple:
            if tag > self.upto:
                self.upto = tag
                self.above = {t for t in self.above if t > tag}
        elif tag == self.upto + 1:
            self.upto = tag
        else:
            self.above.add(tag)
        while self.upto + 1 in self.above:
            self.upto += 1
            self.above.discard(self.upto)

    @property
    def count(self) -> int:
        return self.upto + len(self.above)


def pika_pipelined(url: str, queue: str, body: bytes, props: Properties, n: int) -> Timed:
    """pika's `SelectConnection`, as its asynchronous publisher example does it: publish
    while fewer than `WINDOW` are unconfirmed, count `multiple=True` acks, publish more
    from the confirm callback."""
    properties = pika_properties(props)
    confirms = _Confirms()
    sent_so_far = 0
    watch: Stopwatch | None = None
    timed: Timed | None = None
    error: list[BaseException] = []

    def publish_more(channel: Any) -> None:
        nonlocal sent_so_far
        sent = sent_so_far
        limit = min(n, confirms.count + WINDOW)
        while sent < limit:
            channel.basic_publish("", queue, body, properties)
            sent += 1
        sent_so_far = sent

    def on_confirm(channel: Any, frame: Any) -> None:
        nonlocal timed
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            confirms.nacked += 1
        confirms.settle(method.delivery_tag, method.multiple)
        if confirms.count >= n:
            assert watch is not None
            timed = watch.stop()
            conn.close()
        else:
            publish_more(channel)

    def on_channel(channel: Any) -> None:
        def started(_frame: Any) -> None:
            nonlocal watch
            watch = Stopwatch()
            publish_more(channel)

        channel.confirm_delivery(lambda frame: on_confirm(channel, frame), callback=started)

    def on_failed(_conn: Any, exc: BaseException) -> None:
        error.append(exc)
        conn.ioloop.stop()

    def on_closed(_conn: Any, _reason: BaseException) -> None:
        conn.ioloop.stop()

    conn = pika.SelectConnection(
        pika.URLParameters(url),
        on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
        on_open_error_callback=on_failed,
        on_close_callback=on_closed,
    )
    conn.ioloop.start()
    if error:
        raise error[0]
    if timed is None:
        raise RuntimeError(f"pika pipelined: connection closed after {confirms.count} of {n} confirms")
    if confirms.nacked:
        raise RuntimeError(f"pika pipelined: {confirms.nacked} nacks")
    return timed


def aio_pika_confirms(url: str, queue: str, body: bytes, props: Properties, n: int) -> Timed:
    """aio-pika with publisher confirms, its tutorial's "handle confirms asynchronously"
    strategy: each `publish` is a task that awaits its own confirm; at most `WINDOW` in flight."""
    import aio_pika

    async def run() -> Timed:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = channel.default_exchange
            message = aio_pika.Message(
                body,
                content_type=props.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=props.message_id,
                timestamp=props.timestamp,
                type=props.type,
                app_id=props.app_id,
            )
            window = asyncio.Semaphore(WINDOW)

            async def publish_one() -> None:
                try:
                    await exchange.publish(message, routing_key=queue, mandatory=False)
                finally:
                    window.release()

            watch = Stopwatch()
            tasks = []
            for _ in range(n):
                await window.acquire()
                tasks.append(asyncio.create_task(publish_one()))
            await asyncio.gather(*tasks)
            return watch.stop()

    return asyncio.run(run())


def kombu_confirms(url: str, queue: str, body: bytes, props: Properties, n: int) -> Timed:
    """kombu over py-amqp with `transport_options={"confirm_publish": True}` (its documented
    switch for confirms): each `Producer.publish` waits for its confirm."""
    import kombu

    with kombu.Connection(url, transport_options={"confirm_publish": True}) as conn:
        producer = kombu.Producer(conn.channel())  # connects now, not on the first publish
        publish = producer.publish
        content_type, message_id = props.content_type, props.message_id
        watch = Stopwatch()
        for _ in range(n):
            publish(
                body,  # bytes with a content type: kombu sends them as they are
                exchange="",
                routing_key=queue,
                delivery_mode=2,
                content_type=content_type,
                content_encoding="utf-8",
                message_id=message_id,
                type=props.type,
                app_id=props.app_id,
            )
        return watch.stop()


# ----------------------------------------------------------------------------- consumers


def pika_consume(url: str, queue: str, n: int, *, prefetch: int, ack_every: int = 1) -> Timed:
    """pika's `BlockingConnection`, `basic_consume` with a callback that acks, the way its
    consumer examples do; with `ack_every` > 1 one `multiple=True` ack covers that many."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        channel.basic_qos(prefetch_count=prefetch)
        seen = 0

        def on_message(ch: Any, method: Any, _props: Any, _body: bytes) -> None:
            nonlocal seen
            seen += 1
            if ack_every == 1:
                ch.basic_ack(method.delivery_tag)
            elif seen % ack_every == 0 or seen == n:
                ch.basic_ack(method.delivery_tag, multiple=True)
            if seen == n:
                ch.stop_consuming()

        channel.basic_consume(queue, on_message)
        watch = Stopwatch()
        channel.start_consuming()
        return watch.stop()
    finally:
        conn.close()


def aio_pika_consume(url: str, queue: str, n: int, *, prefetch: int) -> Timed:
    """aio-pika's `queue.iterator()` with `await message.ack()` for each, as its consumer
    tutorial reads a queue."""
    import aio_pika

    async def run() -> Timed:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=prefetch)
            source = await channel.declare_queue(queue, passive=True)
            seen = 0
            watch = Stopwatch()
            async with source.iterator() as messages:
                async for message in messages:
                    await message.ack()
                    seen += 1
                    if seen == n:
                        break
            return watch.stop()

    return asyncio.run(run())


def fill(url: str, queue: str, body: bytes, props: Properties, n: int) -> None:
    """Put `n` persistent messages in `queue`, fast (not timed)."""
    pika_pipelined(url, queue, body, props, n)
