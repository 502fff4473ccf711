"""`batch()`: publishes held back and written many to a `send`, against the real broker."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from test_aio_rabbitmq import _close_my_connection

import routing.aio
from routing.publisher import Publisher
from routing.topology import Exchange, Queue, Topology
from routing.transport.base import Outcome
from routing.transport.memory import MemoryTransport
from routing.transport.rabbitmq import RabbitTransport


def _queue(name: str) -> Queue:
    return Queue(name, expires=60_000)  # gone a minute after a test that died


@pytest.fixture
def rabbit(amqp_url: str, unique: str) -> Iterator[RabbitTransport]:
    with RabbitTransport(amqp_url, name=f"routing-tests-batch-{unique}") as transport:
        transport.declare(Topology.of(_queue(unique)))
        yield transport


def _data(i: int) -> dict[str, object]:
    return {"cache": "users", "keys": ["u1"], "reason": "test", "version": i}


def _bodies(transport: RabbitTransport, queue: str, n: int) -> list[bytes]:
    """Take (and ack) `n` messages from `queue`, in order; waits up to 10 s for them to arrive."""
    got: list[bytes] = []
    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        delivery = transport.get(queue)
        if delivery is None:
            time.sleep(0.01)
            continue
        got.append(delivery.body)
        transport.ack(delivery)
    return got


@pytest.mark.broker
def test_emits_in_a_batch_are_confirmed_and_consumed_in_order(rabbit: RabbitTransport, unique: str) -> None:
    publisher = Publisher(rabbit, source="urn:test:batch")
    with publisher.batch():
        pubs = [publisher.emit("", unique, "cache.invalidate", _data(i)) for i in range(500)]
    assert publisher.flush(timeout=30) == []
    assert all(p.outcome is Outcome.CONFIRMED for p in pubs)
    consumer = rabbit.consume(unique, prefetch=100)
    seen = []
    for _ in range(500):
        delivery = consumer.get(timeout=10)
        assert delivery is not None
        seen.append(delivery.body)
        rabbit.ack(delivery)
    consumer.cancel()
    assert [json.loads(body)["data"]["version"] for body in seen] == list(range(500))


@pytest.mark.broker
def test_flush_inside_a_batch_writes_what_it_waits_for(rabbit: RabbitTransport, unique: str) -> None:
    with rabbit.batch():
        pubs = [rabbit.publish("", unique, b"%d" % i) for i in range(3)]
        assert rabbit.flush(timeout=10) == []  # would time out had the frames stayed held
        assert all(p.outcome is Outcome.CONFIRMED for p in pubs)
        assert rabbit.get(unique) is not None  # reads inside a batch work too


@pytest.mark.broker
def test_a_batch_larger_than_the_confirm_window_does_not_deadlock(amqp_url: str, unique: str) -> None:
    with RabbitTransport(amqp_url, window=10) as rabbit:
        rabbit.declare(Topology.of(_queue(unique)))
        with rabbit.batch():
            pubs = [rabbit.publish("", unique, b"%d" % i) for i in range(1000)]
        assert rabbit.flush(timeout=30) == []
        assert all(p.outcome is Outcome.CONFIRMED for p in pubs)
        assert rabbit.message_count(unique) == 1000


@pytest.mark.broker
def test_large_messages_in_a_batch_arrive_whole_and_in_order(rabbit: RabbitTransport, unique: str) -> None:
    bodies = [bytes([i]) * 50_000 for i in range(20)]  # past 64 KB: written out as the batch goes
    with rabbit.batch():
        for body in bodies:
            rabbit.publish("", unique, body)
    assert rabbit.flush(timeout=30) == []
    assert _bodies(rabbit, unique, 20) == bodies


@pytest.mark.broker
def test_an_exception_in_a_batch_still_writes_and_settles_what_was_published(
    rabbit: RabbitTransport, unique: str
) -> None:
    with pytest.raises(RuntimeError, match="half-way"), rabbit.batch():
        pubs = [rabbit.publish("", unique, b"%d" % i) for i in range(5)]
        raise RuntimeError("half-way")
    assert rabbit.flush(timeout=10) == []
    assert all(p.outcome is Outcome.CONFIRMED for p in pubs)
    assert _bodies(rabbit, unique, 5) == [b"%d" % i for i in range(5)]


@pytest.mark.broker
def test_mandatory_unroutable_in_a_batch_is_returned(rabbit: RabbitTransport, unique: str) -> None:
    rabbit.declare(Topology.of(Exchange(f"{unique}.x", "direct", auto_delete=True)))
    with rabbit.batch():
        routed = rabbit.publish("", unique, b"routed", mandatory=True)
        lost = rabbit.publish(f"{unique}.x", "nowhere", b"lost", mandatory=True)
        also = rabbit.publish("", unique, b"also", mandatory=True)
    assert rabbit.flush(timeout=10) == [lost]
    assert (routed.outcome, lost.outcome, also.outcome) == (
        Outcome.CONFIRMED,
        Outcome.RETURNED,
        Outcome.CONFIRMED,
    )


@pytest.mark.broker
def test_held_until_the_batch_ends_then_seen_from_another_connection(
    rabbit: RabbitTransport, amqp_url: str, unique: str
) -> None:
    with RabbitTransport(amqp_url) as other:
        with rabbit.batch():
            for i in range(3):
                rabbit.publish("", unique, b"%d" % i)
            other.declare(Topology.of(_queue(unique)))  # a round trip on the other connection
            assert other.message_count(unique) == 0  # held back: the broker has none of them
        # No flush: the end of the batch put them on the wire.
        assert _bodies(other, unique, 3) == [b"0", b"1", b"2"]


@pytest.mark.broker
@pytest.mark.parametrize("resend", [False, True])
def test_held_publishes_on_a_dropped_connection_are_in_flight_ones(
    amqp_url: str, management_url: str, unique: str, resend: bool
) -> None:
    """Held back when the connection drops: UNCONFIRMED, or sent again with `resend`, as
    publications written and not yet confirmed are."""
    name = f"routing-tests-batch-drop-{unique}"
    with RabbitTransport(amqp_url, name=name, resend=resend, reconnect_timeout=30) as rabbit:
        rabbit.declare(Topology.of(_queue(unique)))
        rabbit.publish("", unique, b"first")  # opens the publishing channel
        assert rabbit.flush(timeout=10) == []
        assert _bodies(rabbit, unique, 1) == [b"first"]
        with rabbit.batch():
            _close_my_connection(management_url, name)
            time.sleep(0.5)  # the broker's close reaches the socket
            pubs = [rabbit.publish("", unique, b"%d" % i) for i in range(3)]  # held, never read
        failures = rabbit.flush(timeout=30)
        if resend:
            assert failures == [] and all(p.outcome is Outcome.CONFIRMED for p in pubs)
            assert _bodies(rabbit, unique, 3) == [b"0", b"1", b"2"]
        else:
            assert failures == pubs and all(p.outcome is Outcome.UNCONFIRMED for p in pubs)
            assert rabbit.message_count(unique) == 0
        assert rabbit.last_drop  # it did drop (and reconnected to answer message_count)


def test_other_transports_accept_a_batch_and_change_nothing(unique: str) -> None:
    with MemoryTransport() as memory:
        memory.declare(Topology.of(Queue(unique)))
        publisher = Publisher(memory, source="urn:test:batch")
        with publisher.batch():
            publisher.emit("", unique, "cache.invalidate", _data(1))
            assert memory.message_count(unique) == 1  # nothing held: delivered at once
        assert publisher.flush() == []

    async def on_asyncio() -> None:
        async with routing.aio.open_transport("memory://") as transport:
            with routing.aio.Publisher(transport).batch():
                await transport.publish("", "nowhere", b"x")
            assert await transport.flush() == []

    asyncio.run(on_asyncio())
