"""Connection loss on a private broker node: publishers and consumers recover, and no
message is counted as delivered without its confirm."""

from __future__ import annotations

import threading
import time

import pytest
from rabbit_node import RabbitNode, rabbit_node  # noqa: F401  (the fixture)

from routing.topology import Queue, Topology
from routing.transport.base import Outcome, Properties, Publication
from routing.transport.rabbitmq import RabbitTransport

# `broker`: the private node runs the broker under test's release, so the 4.0 run has these too.
pytestmark = [pytest.mark.slow, pytest.mark.broker]

PERSISTENT = Properties(delivery_mode=2)


def _drain(transport: RabbitTransport, queue: str, expect: int, timeout: float = 60) -> set[bytes]:
    """Consume until `expect` distinct bodies arrived (redeliveries allowed) or `timeout`."""
    seen: set[bytes] = set()
    consumer = transport.consume(queue, prefetch=100)
    deadline = time.monotonic() + timeout
    while len(seen) < expect and time.monotonic() < deadline:
        delivery = consumer.get(timeout=1)
        if delivery is not None:
            seen.add(delivery.body)
            transport.ack(delivery)
    consumer.cancel()
    return seen


def _later(seconds: float, action) -> threading.Thread:  # type: ignore[no-untyped-def]
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
    thread.start()
    return thread


def test_close_all_connections_mid_stream(rabbit_node: RabbitNode) -> None:  # noqa: F811
    queue = "recovery-close-all"
    topology = Topology.of(Queue(queue))
    received: set[bytes] = set()
    consumer_done = threading.Event()

    def consume() -> None:
        with RabbitTransport(rabbit_node.url, reconnect_timeout=30) as sub:
            sub.declare(topology)
            consumer = sub.consume(queue, prefetch=50)
            idle_since = time.monotonic()
            while time.monotonic() - idle_since < 3:
                delivery = consumer.get(timeout=0.5)
                if delivery is not None:
                    received.add(delivery.body)
                    sub.ack(delivery)
                    idle_since = time.monotonic()
            consumer_done.set()
            assert sub.reconnects >= 1

    with RabbitTransport(rabbit_node.url, reconnect_timeout=30) as pub:
        pub.declare(topology)
        consumer_thread = threading.Thread(target=consume)
        consumer_thread.start()
        closer = _later(0.5, rabbit_node.close_all_connections)
        publications: list[Publication] = []
        failures: list[Publication] = []
        i = 0
        while closer.is_alive() or pub.reconnects == 0 or i < 6000:
            publications.append(pub.publish("", queue, b"m%d" % i, PERSISTENT))
            i += 1
            if i % 1000 == 0:
                failures += pub.flush(timeout=30)
        failures += pub.flush(timeout=30)
        assert pub.reconnects >= 1
    consumer_thread.join(timeout=90)
    assert consumer_done.is_set()

    assert all(p.settled for p in publications), "flush left publications unsettled"
    confirmed = {b"m%d" % n for n, p in enumerate(publications) if p.outcome is Outcome.CONFIRMED}
    unconfirmed = [p for p in publications if p.outcome is not Outcome.CONFIRMED]
    assert {id(p) for p in unconfirmed} == {id(p) for p in failures}  # every one reported by flush
    assert all(p.outcome is Outcome.UNCONFIRMED for p in unconfirmed)
    assert confirmed <= received, f"{len(confirmed - received)} confirmed messages never arrived"
    assert len(confirmed) > len(publications) // 2


def test_broker_restart_with_resend_delivers_everything(rabbit_node: RabbitNode) -> None:  # noqa: F811
    queue = "recovery-restart"
    with RabbitTransport(rabbit_node.url, resend=True, reconnect_timeout=60) as pub:
        pub.declare(Topology.of(Queue(queue)))
        restarter = _later(0.3, rabbit_node.restart_app)
        publications = []
        i = 0
        while restarter.is_alive() or i < 5000:
            publications.append(pub.publish("", queue, b"r%d" % i, PERSISTENT))
            i += 1
        assert pub.flush(timeout=60) == []
        assert pub.reconnects >= 1
        assert all(p.outcome is Outcome.CONFIRMED for p in publications)
    with RabbitTransport(rabbit_node.url) as sub:
        received = _drain(sub, queue, len(publications))
    assert received == {b"r%d" % n for n in range(len(publications))}


def test_reconnect_declares_the_topology_again(rabbit_node: RabbitNode) -> None:  # noqa: F811
    """An exclusive queue dies with its connection; the transport brings it back."""
    with RabbitTransport(rabbit_node.url, reconnect_timeout=30) as rabbit:
        rabbit.declare(Topology.of(Queue("recovery-exclusive", durable=False, exclusive=True)))
        rabbit_node.close_all_connections()
        time.sleep(0.5)
        returned = rabbit.publish("", "recovery-exclusive", b"x", mandatory=True)
        assert rabbit.flush(timeout=30) == []
        assert returned.outcome is Outcome.CONFIRMED
        assert rabbit.reconnects == 1
        assert rabbit.get("recovery-exclusive") is not None


def test_unreachable_for_too_long_is_connection_lost(rabbit_node: RabbitNode) -> None:  # noqa: F811
    from routing.errors import ConnectionLost

    with RabbitTransport(rabbit_node.url, reconnect_timeout=2) as rabbit:
        rabbit.declare(Topology.of(Queue("recovery-down")))
        rabbit_node.stop_app()
        try:
            with pytest.raises(ConnectionLost, match=rf"127.0.0.1:{rabbit_node.port}.*connection refused"):
                rabbit.publish("", "recovery-down", b"x")
                rabbit.flush(timeout=10)
        finally:
            rabbit_node.start_app()
