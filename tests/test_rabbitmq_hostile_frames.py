"""A malformed frame from the broker, through a proxy in front of the real one: the connection
ends with a lost-connection error naming the frame (a reconnect follows, as for any drop), no
traceback is printed, and the consumer goes on on the new connection. Both transports."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from routing.topology import Queue, Topology
from routing.transport.rabbitmq import AsyncRabbitTransport, RabbitTransport

pytestmark = pytest.mark.broker

# A heartbeat on channel 5: well delimited, but the spec allows heartbeats on channel 0 only.
HOSTILE = b"\x08\x00\x05\x00\x00\x00\x00\xce"


class Proxy:
    """Forwards connections to `target`; `inject(data)` sends `data` to the clients, as if
    the broker had."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._clients: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            self._clients.append(client)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        with client, upstream:
            while not self._stop.is_set():
                ready, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in ready:
                    try:
                        data = sock.recv(65536)
                        if not data:
                            return
                        peers[sock].sendall(data)
                    except OSError:
                        return

    def inject(self, data: bytes) -> None:
        self._clients[-1].sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@pytest.fixture
def proxied(amqp_url: str) -> Iterator[tuple[str, Proxy]]:
    parts = urlsplit(amqp_url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    netloc = parts.netloc.rsplit("@", 1)
    where = f"127.0.0.1:{proxy.port}"
    url = urlunsplit(parts._replace(netloc=f"{netloc[0]}@{where}" if len(netloc) == 2 else where))
    try:
        yield url, proxy
    finally:
        proxy.close()


def test_a_malformed_frame_is_a_lost_connection(
    proxied: tuple[str, Proxy], unique: str, capfd: pytest.CaptureFixture[str]
) -> None:
    url, proxy = proxied
    with RabbitTransport(url, reconnect_timeout=10) as rabbit:
        rabbit.declare(Topology.of(Queue(unique, expires=60_000)))
        consumer = rabbit.consume(unique, prefetch=10)
        assert consumer.get(timeout=0.3) is None
        proxy.inject(HOSTILE)
        assert consumer.get(timeout=1) is None  # the drop is seen, and the connection made again
        assert rabbit.reconnects == 1
        assert "malformed frame" in rabbit.last_drop and "a heartbeat on channel 5" in rabbit.last_drop
        rabbit.publish("", unique, b"after")
        assert not rabbit.flush(timeout=10)
        delivery = consumer.get(timeout=10)
        assert delivery is not None and delivery.body == b"after"
        rabbit.ack(delivery)
    assert "Traceback" not in capfd.readouterr().err


def test_a_malformed_frame_is_a_lost_connection_on_asyncio(
    proxied: tuple[str, Proxy], unique: str, capfd: pytest.CaptureFixture[str]
) -> None:
    url, proxy = proxied

    async def scenario() -> None:
        rabbit = await AsyncRabbitTransport.open(url, reconnect_timeout=10)
        try:
            await rabbit.declare(Topology.of(Queue(unique, expires=60_000)))
            consumer = rabbit.consume(unique, prefetch=10)
            assert await consumer.get(timeout=0.3) is None
            proxy.inject(HOSTILE)
            await asyncio.sleep(0.5)
            assert await consumer.get(timeout=1) is None
            assert rabbit.reconnects == 1
            publication = await rabbit.publish("", unique, b"after")
            assert not await rabbit.flush(timeout=10)
            assert publication.outcome is not None
            delivery = await consumer.get(timeout=10)
            assert delivery is not None and delivery.body == b"after"
            await rabbit.ack(delivery)
        finally:
            with contextlib.suppress(Exception):
                await rabbit.close()

    asyncio.run(scenario())
    assert "Traceback" not in capfd.readouterr().err
