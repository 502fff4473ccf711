"""Both transports are the same peers above the seam: `closed`, `unbind`, `message_count`, and
consumers and transports as context managers, with no question of which broker it is."""

from __future__ import annotations

import pytest

from routing.errors import BrokerError, PropertyError
from routing.topology import Exchange, ExchangeType, Queue, Topology
from routing.transport import Consumer, ConsumerBase, Transport, TransportBase, open_transport


@pytest.fixture
def url(either_url: str) -> str:
    return either_url


def _topology(unique: str) -> Topology:
    exchange = Exchange(
        f"{unique}.x", ExchangeType.DIRECT
    )  # not auto-delete: unbinding the last binding would delete it
    queue = Queue(f"{unique}.q", expires=60_000)
    return Topology.of(exchange, queue, exchange.bind(queue, "k"))


def test_closed_and_the_context_manager(url: str) -> None:
    transport = open_transport(url)
    assert isinstance(transport, Transport) and isinstance(transport, TransportBase)
    with transport as same:
        assert same is transport and not transport.closed
    assert transport.closed
    with pytest.raises(BrokerError, match="the transport is closed"):
        transport.message_count("anything")
    transport.close()  # again: nothing happens
    assert transport.closed


def test_unbind_and_message_count(url: str, unique: str) -> None:
    topology = _topology(unique)
    (binding,) = topology.bindings
    queue = f"{unique}.q"
    with open_transport(url) as transport:
        transport.declare(topology)
        try:
            transport.publish(f"{unique}.x", "k", b"routed")
            assert transport.flush(timeout=10) == []
            transport.unbind(binding)
            transport.publish(f"{unique}.x", "k", b"dropped: no binding")
            assert transport.flush(timeout=10) == []
            assert transport.message_count(queue) == 1
            transport.unbind(binding)  # a missing binding is fine
        finally:
            transport.delete_queue(queue)
            transport.delete_exchange(f"{unique}.x")


def test_consumers_are_context_managers(url: str, unique: str) -> None:
    queue = f"{unique}.q"
    with open_transport(url) as transport:
        transport.declare(Topology.of(Queue(queue, expires=60_000)))
        try:
            transport.publish("", queue, b"one")
            assert transport.flush(timeout=10) == []
            with transport.consume(queue, prefetch=5) as consumer:
                assert isinstance(consumer, Consumer) and isinstance(consumer, ConsumerBase)
                assert consumer.queue == queue and consumer.prefetch == 5 and not consumer.cancelled
                delivery = consumer.get(timeout=10)
                assert delivery is not None and delivery.body == b"one"
            assert consumer.cancelled
            assert consumer.get(timeout=0.1) is None
            assert list(consumer) == []
            assert transport.message_count(queue) == 1  # unacked: back on the queue
        finally:
            transport.delete_queue(queue)


def test_a_consumer_ends_when_its_transport_closes(url: str, unique: str) -> None:
    # The Consumer protocol: `cancelled` is "True once `cancel` was called (or the transport
    # closed)"; both peers then end their iteration instead of one of them raising.
    queue = f"{unique}.q"
    with open_transport(url) as cleaner:
        cleaner.declare(Topology.of(Queue(queue, expires=60_000)))
        transport = open_transport(url)
        consumer = transport.consume(queue)
        transport.close()
        assert consumer.cancelled
        assert consumer.get(timeout=0.1) is None
        assert list(consumer) == []
        consumer.cancel()  # again: nothing happens
        if not url.startswith("memory"):
            cleaner.delete_queue(queue)


@pytest.mark.parametrize("name", ["q" * 256, "\ud800", "é" * 128])
def test_a_queue_name_amqp_cannot_carry_is_refused_alike_before_sending(
    url: str, unique: str, name: str
) -> None:
    with open_transport(url) as transport:
        for call in (
            lambda: transport.consume(name),
            lambda: transport.get(name),
            lambda: transport.purge(name),
            lambda: transport.delete_queue(name),
            lambda: transport.message_count(name),
        ):
            with pytest.raises(
                PropertyError, match=r"^queue is (256 bytes; AMQP allows 255|not valid UTF-8)"
            ):
                call()
        transport.declare(_topology(unique))  # nothing was sent: the connection is as it was
        assert transport.message_count(f"{unique}.q") == 0
