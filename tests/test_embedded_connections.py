"""Transports as connections to one embedded broker: exclusive and auto-delete queues,
closing, and acks on the wrong connection. Texts are RabbitMQ 3.10.8's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from routing import Exchange, Queue, Topology
from routing.embedded import forget
from routing.errors import BrokerError, ChannelClosed, DeclareConflicts, PreconditionFailed
from routing.transport import Outcome
from routing.transport.memory import MemoryTransport


@pytest.fixture
def url(unique: str) -> Iterator[str]:
    yield f"memory://{unique}"
    forget(f"memory://{unique}")


@pytest.fixture
def a(url: str) -> Iterator[MemoryTransport]:
    with MemoryTransport(url) as transport:
        yield transport


@pytest.fixture
def b(url: str) -> Iterator[MemoryTransport]:
    with MemoryTransport(url) as transport:
        yield transport


def test_exclusive_queue_is_locked_to_its_connection(a: MemoryTransport, b: MemoryTransport) -> None:
    a.declare(Topology.of(Queue("mine", exclusive=True, auto_delete=True)))
    for op in (b.get, b.consume, b.purge, b.delete_queue):
        with pytest.raises(ChannelClosed) as err:
            op("mine")
        assert err.value.code == 405
        assert err.value.text.startswith(
            "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine'"
        )
    with pytest.raises(DeclareConflicts) as conflicts:
        b.declare(Topology.of(Queue("mine", exclusive=True, auto_delete=True)))
    assert conflicts.value.conflicts[0].startswith("queue 'mine': 405 cannot obtain exclusive access")
    with pytest.raises(DeclareConflicts):
        a.declare(Topology.of(Queue("mine")))  # same connection, not exclusive: 405 too
    assert b.publish("", "mine", b"anyone may publish").outcome is Outcome.CONFIRMED
    d = a.get("mine")
    assert d is not None and d.body == b"anyone may publish"


def test_closing_the_owner_deletes_its_exclusive_queues(a: MemoryTransport, b: MemoryTransport) -> None:
    x = Exchange("bus", "fanout")
    a.declare(Topology.of(x, Queue("mine", exclusive=True), x.bind("mine")))
    a.close()
    assert b.publish("bus", "", b"", mandatory=True).outcome is Outcome.RETURNED
    b.declare(Topology.of(Queue("mine", exclusive=True)))  # the name is free again


def test_auto_delete_queue_goes_with_its_last_consumer(a: MemoryTransport) -> None:
    a.declare(Topology.of(Queue("temp", auto_delete=True)))
    a.publish("", "temp", b"m")
    assert a.get("temp") is not None  # basic.get is not a consumer: the queue stays
    first, second = a.consume("temp"), a.consume("temp")
    first.cancel()
    assert a.broker.has_queue("temp")
    second.cancel()
    assert not a.broker.has_queue("temp")


def test_close_requeues_unacked_as_redelivered(a: MemoryTransport, b: MemoryTransport) -> None:
    a.declare(Topology.of(Queue("q")))
    for i in range(4):
        a.publish("", "q", b"m%d" % i)
    consumer = a.consume("q", prefetch=2)
    taken = consumer.get(timeout=0)
    fetched = a.get("q")
    assert taken is not None and fetched is not None
    a.close()
    assert consumer.get(timeout=0) is None and list(consumer) == []
    got = []
    while (d := b.get("q")) is not None:
        got.append((d.body, d.redelivered))
        b.ack(d)
    assert got == [(b"m0", True), (b"m1", True), (b"m2", True), (b"m3", False)]


def test_a_closed_transport_refuses_work(a: MemoryTransport) -> None:
    a.declare(Topology.of(Queue("q")))
    a.publish("", "q", b"m")
    d = a.get("q")
    a.close()
    a.close()  # twice is fine
    assert a.closed and d is not None
    a.ack(d)  # its channel is closed: the message went back, the ack does nothing
    for call in (lambda: a.publish("", "q", b""), lambda: a.get("q"), lambda: a.consume("q")):
        with pytest.raises(BrokerError, match="the transport is closed"):
            call()


def test_settling_on_another_connection_is_refused(a: MemoryTransport, b: MemoryTransport) -> None:
    a.declare(Topology.of(Queue("q")))
    a.publish("", "q", b"m")
    d = a.get("q")
    assert d is not None
    with pytest.raises(BrokerError, match="ack: this delivery did not come from this transport"):
        b.ack(d)
    a.ack(d)
    with pytest.raises(PreconditionFailed, match="unknown delivery tag 1"):
        a.nack(d)


def test_deleting_a_queue_cancels_its_consumers(a: MemoryTransport, b: MemoryTransport) -> None:
    a.declare(Topology.of(Queue("q")))
    consumer = a.consume("q")
    a.publish("", "q", b"m")
    d = consumer.get(timeout=0)
    b.delete_queue("q")
    with pytest.raises(BrokerError, match="queue 'q' was deleted: the broker cancelled the consumer"):
        consumer.get(timeout=0)
    assert consumer.cancelled and d is not None
    a.ack(d)  # RabbitMQ accepts acks for a deleted queue's deliveries
    consumer.cancel()
    assert consumer.get(timeout=0) is None


def test_delivery_tags_count_per_channel(a: MemoryTransport) -> None:
    a.declare(Topology.of(Queue("q")))
    for _ in range(3):
        a.publish("", "q", b"m")
    c1, c2 = a.consume("q", prefetch=1), a.consume("q", prefetch=1)
    d1, d2 = c1.get(timeout=0), c2.get(timeout=0)
    d3 = a.get("q")
    assert d1 is not None and d2 is not None and d3 is not None
    assert (d1.delivery_tag, d2.delivery_tag, d3.delivery_tag) == (1, 1, 1)
    assert (d1.queue, d1.exchange, d1.routing_key) == ("q", "", "q")


def test_negative_prefetch_is_refused(a: MemoryTransport) -> None:
    a.declare(Topology.of(Queue("q")))
    with pytest.raises(ValueError, match="prefetch"):
        a.consume("q", prefetch=-1)
