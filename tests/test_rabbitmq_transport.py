"""The RabbitMQ transport against the real broker: confirms, returns, consuming, errors."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace

import pika
import pytest
from broker_under_test import plain_amqp_url

from routing._frozen import thaw
from routing.errors import BrokerError, ChannelClosed, ConnectionFailed, PreconditionFailed, Unroutable
from routing.topology import Exchange, Queue, Topology
from routing.transport import open_transport
from routing.transport.base import Consumer, Outcome, Properties, Transport
from routing.transport.rabbitmq import RabbitTransport
from routing.transport.rabbitmq._url import parse_url

pytestmark = pytest.mark.broker


def _queue(name: str) -> Queue:
    # x-expires removes it a minute after the test, even if the test dies half-way.
    return Queue(name, expires=60_000)


@pytest.fixture
def rabbit(amqp_url: str) -> Iterator[RabbitTransport]:
    with RabbitTransport(amqp_url, name="routing-tests") as transport:
        yield transport


def test_implements_the_transport_protocol(rabbit: RabbitTransport, unique: str) -> None:
    assert isinstance(rabbit, Transport)
    rabbit.declare(Topology.of(_queue(unique)))
    consumer = rabbit.consume(unique)
    assert isinstance(consumer, Consumer)
    consumer.cancel()
    assert "guest:guest" not in rabbit.url and "***" in rabbit.url


def test_open_transport_picks_rabbitmq(amqp_url: str) -> None:
    with open_transport(amqp_url) as transport:
        assert isinstance(transport, RabbitTransport)


def test_publish_confirm_get_ack_round_trip(rabbit: RabbitTransport, unique: str) -> None:
    rabbit.declare(Topology.of(_queue(unique)))
    props = Properties(
        content_type="application/json",
        headers={"n": 1, "tags": ["a", "b"], "nested": {"x": 1.5}},
        delivery_mode=2,
        message_id="m-1",
        timestamp=1_700_000_000,
    )
    publication = rabbit.publish("", unique, b'{"a": 1}', props)
    assert rabbit.flush(timeout=10) == []
    assert publication.outcome is Outcome.CONFIRMED
    delivery = rabbit.get(unique)
    assert delivery is not None
    assert delivery.body == b'{"a": 1}' and delivery.routing_key == unique and delivery.exchange == ""
    assert replace(delivery.properties, headers={}) == replace(props, headers={})
    assert thaw(delivery.headers) == {"n": 1, "tags": ["a", "b"], "nested": {"x": 1.5}}
    assert type(delivery.headers["nested"]["x"]) is float
    assert not delivery.redelivered
    rabbit.ack(delivery)
    assert rabbit.get(unique) is None


def test_pipelined_confirms_with_a_small_window(amqp_url: str, unique: str) -> None:
    with RabbitTransport(amqp_url, window=50) as rabbit:
        rabbit.declare(Topology.of(_queue(unique)))
        pubs = [rabbit.publish("", unique, b"%d" % i) for i in range(3000)]
        assert rabbit.flush(timeout=30) == []
        assert all(p.outcome is Outcome.CONFIRMED for p in pubs)
        assert [p.sequence for p in pubs[:3]] == [1, 2, 3]
        assert rabbit.purge(unique) == 3000


def test_mandatory_unroutable_is_returned(rabbit: RabbitTransport, unique: str) -> None:
    ex = Exchange(f"{unique}-ex", "direct", auto_delete=True)
    q = _queue(f"{unique}-q")
    rabbit.declare(Topology.of(ex, q, ex.bind(q, "known")))
    routed = rabbit.publish(ex.name, "known", b"1", mandatory=True)
    lost = rabbit.publish(ex.name, "nobody", b"2", mandatory=True)
    dropped = rabbit.publish(ex.name, "nobody", b"3")  # not mandatory: dropped silently, confirmed
    assert rabbit.flush(timeout=10) == [lost]
    assert routed.outcome is Outcome.CONFIRMED and dropped.outcome is Outcome.CONFIRMED
    assert lost.outcome is Outcome.RETURNED
    with pytest.raises(Unroutable, match=f"{ex.name}.*'nobody'"):
        lost.raise_for_outcome()
    assert rabbit.purge(q.name) == 1


def test_many_returns_interleaved_with_routed_messages(rabbit: RabbitTransport, unique: str) -> None:
    ex = Exchange(f"{unique}-h", "headers", auto_delete=True)
    q = _queue(f"{unique}-q")
    rabbit.declare(Topology.of(ex, q, ex.bind(q, headers={"ok": True})))
    pubs = [
        rabbit.publish(ex.name, "", b"%d" % i, Properties(headers={"ok": i % 3 == 0}), mandatory=True)
        for i in range(300)
    ]
    failures = rabbit.flush(timeout=10)
    assert {p.sequence for p in failures} == {p.sequence for i, p in enumerate(pubs) if i % 3}
    assert all(p.outcome is Outcome.RETURNED for p in failures)
    assert rabbit.purge(q.name) == 100


def test_publish_to_unknown_exchange_settles_with_404_and_the_transport_goes_on(
    rabbit: RabbitTransport, unique: str
) -> None:
    rabbit.declare(Topology.of(_queue(unique)))
    bad = rabbit.publish(f"{unique}-missing", "k", b"x")
    (failed,) = rabbit.flush(timeout=10)
    assert failed is bad and bad.outcome is Outcome.UNCONFIRMED
    with pytest.raises(
        ChannelClosed, match=f"404 NOT_FOUND - no exchange '{unique}-missing'.*127.0.0.1"
    ) as info:
        bad.raise_for_outcome()
    assert info.value.code == 404
    good = rabbit.publish("", unique, b"y")
    assert rabbit.flush(timeout=10) == [] and good.outcome is Outcome.CONFIRMED


def test_get_from_missing_queue_is_a_404(rabbit: RabbitTransport, unique: str) -> None:
    with pytest.raises(ChannelClosed, match="404") as info:
        rabbit.get(f"{unique}-nope")
    assert info.value.code == 404
    with pytest.raises(ChannelClosed, match="404"):
        rabbit.consume(f"{unique}-nope")
    rabbit.declare(Topology.of(_queue(unique)))  # the transport still works
    assert rabbit.get(unique) is None


def test_prefetch_limits_unacked_deliveries(rabbit: RabbitTransport, unique: str) -> None:
    rabbit.declare(Topology.of(_queue(unique)))
    for i in range(5):
        rabbit.publish("", unique, b"%d" % i)
    assert rabbit.flush(timeout=10) == []
    consumer = rabbit.consume(unique, prefetch=2)
    first, second = consumer.get(timeout=5), consumer.get(timeout=5)
    assert first is not None and second is not None
    assert consumer.get(timeout=0.5) is None  # two unacked: the broker sends no third
    rabbit.ack(second, multiple=True)  # acks both
    rest = []
    while (d := consumer.get(timeout=2)) is not None:
        rest.append(d.body)
        rabbit.ack(d)
    assert rest == [b"2", b"3", b"4"]
    consumer.cancel()


def test_nack_and_reject_with_and_without_requeue(rabbit: RabbitTransport, unique: str) -> None:
    rabbit.declare(Topology.of(_queue(unique)))
    for body in (b"a", b"b"):
        rabbit.publish("", unique, body)
    rabbit.flush(timeout=10)
    consumer = rabbit.consume(unique, prefetch=10)
    a = consumer.get(timeout=5)
    assert a is not None and a.body == b"a" and not a.redelivered
    rabbit.nack(a, requeue=True)
    b = consumer.get(timeout=5)
    assert b is not None and b.body == b"b"
    rabbit.reject(b, requeue=True)
    again = [consumer.get(timeout=5) for _ in range(2)]
    assert sorted(d.body for d in again if d) == [b"a", b"b"]
    assert all(d.redelivered for d in again if d)
    rabbit.reject(again[0], requeue=False)
    rabbit.nack(again[1], requeue=False)
    assert consumer.get(timeout=0.5) is None
    consumer.cancel()
    assert rabbit.purge(unique) == 0


def test_double_ack_is_a_406_and_the_consumer_recovers(rabbit: RabbitTransport, unique: str) -> None:
    rabbit.declare(Topology.of(_queue(unique)))
    rabbit.publish("", unique, b"1")
    rabbit.flush(timeout=10)
    consumer = rabbit.consume(unique, prefetch=1)
    d = consumer.get(timeout=5)
    assert d is not None
    rabbit.ack(d)
    rabbit.ack(d)  # unknown delivery tag: the broker closes the channel
    with pytest.raises(PreconditionFailed, match="406 PRECONDITION_FAILED - unknown delivery tag"):
        consumer.get(timeout=5)
    rabbit.publish("", unique, b"2")
    rabbit.flush(timeout=10)
    d2 = consumer.get(timeout=5)
    assert d2 is not None and d2.body == b"2"
    rabbit.ack(d2)
    consumer.cancel()


def test_cancel_ends_iteration_and_returns_unacked(rabbit: RabbitTransport, unique: str) -> None:
    rabbit.declare(Topology.of(_queue(unique)))
    for i in range(3):
        rabbit.publish("", unique, b"%d" % i)
    rabbit.flush(timeout=10)
    consumer = rabbit.consume(unique, prefetch=3)
    seen = []
    for delivery in consumer:
        seen.append(delivery.body)
        if len(seen) == 2:
            consumer.cancel()
    assert seen == [b"0", b"1"]
    assert rabbit.purge(unique) == 3  # nothing was acked: all back in the queue


def test_acking_a_foreign_delivery_is_refused(rabbit: RabbitTransport, unique: str) -> None:
    from routing.transport.base import Delivery

    fake = Delivery(b"", Properties(), "", unique, unique, 1)
    with pytest.raises(BrokerError, match="did not come from this transport"):
        rabbit.ack(fake)


def test_interoperates_with_a_plain_pika_client(rabbit: RabbitTransport, amqp_url: str, unique: str) -> None:
    """The seed tutorial's producer and consumer (durable queue, JSON, prefetch 1, manual ack)."""
    conn = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
    try:
        ch = conn.channel()
        ch.queue_declare(unique, durable=True, arguments={"x-expires": 60_000})
        ch.basic_publish(
            "", unique, json.dumps({"task": "from pika"}).encode(), pika.BasicProperties(delivery_mode=2)
        )
        consumer = rabbit.consume(unique, prefetch=1)
        got = consumer.get(timeout=5)
        assert got is not None and json.loads(got.body) == {"task": "from pika"}
        assert got.properties.delivery_mode == 2
        rabbit.ack(got)
        consumer.cancel()

        rabbit.publish("", unique, json.dumps({"task": "from routing"}).encode(), Properties(delivery_mode=2))
        assert rabbit.flush(timeout=10) == []
        ch.basic_qos(prefetch_count=1)
        received = []

        def handle(channel, method, _props, body):  # type: ignore[no-untyped-def]
            received.append(json.loads(body))
            channel.basic_ack(method.delivery_tag)
            channel.stop_consuming()

        ch.basic_consume(unique, handle)
        conn.call_later(5, ch.stop_consuming)
        ch.start_consuming()
        assert received == [{"task": "from routing"}]
        ch.queue_delete(unique)
    finally:
        conn.close()


# ----------------------------------------------------------------- errors


def _refused(url: str) -> str:
    start = time.monotonic()
    with pytest.raises(ConnectionFailed) as info:
        RabbitTransport(url)
    assert time.monotonic() - start < 15
    message = str(info.value)
    assert "\n" not in message and "secret-pw" not in message
    assert isinstance(info.value.__cause__, Exception)
    return message


@pytest.fixture
def where(amqp_url: str) -> str:
    """`host:port` of the broker under test, as errors name it."""
    endpoint = parse_url(amqp_url)
    return f"{endpoint.host}:{endpoint.port}"


def test_wrong_password(where: str) -> None:
    message = _refused(f"amqp://guest:secret-pw@{where}/%2F")
    assert where in message and "wrong username or password" in message


def test_missing_vhost(where: str) -> None:
    message = _refused(f"amqp://guest:secret-pw@{where}/no-such-vhost")
    # RabbitMQ checks the password before the vhost; a wrong one says so instead.
    assert where in message


def test_missing_vhost_with_good_credentials(amqp_url: str, where: str) -> None:
    endpoint = parse_url(amqp_url)
    url = f"amqp://{endpoint.username}:{endpoint.password}@{where}/no-such-vhost"
    with pytest.raises(ConnectionFailed, match=rf"{re.escape(where)}.*vhost 'no-such-vhost' does not exist"):
        RabbitTransport(url)


def test_closed_port() -> None:
    message = _refused("amqp://guest:secret-pw@127.0.0.1:1/%2F")
    assert "127.0.0.1:1" in message and "connection refused" in message


def test_tls_to_a_plain_port_fails_clearly(where: str) -> None:
    message = _refused(f"amqps://guest:secret-pw@{where}/%2F")
    assert "TLS" in message and where in message


def test_failover_to_the_next_url(amqp_url: str) -> None:
    with RabbitTransport(["amqp://guest:guest@127.0.0.1:1/%2F", amqp_url]) as rabbit:
        assert rabbit.publish("", "no-such-queue-anywhere", b"x").sequence == 1
        assert rabbit.flush(timeout=10) == []


def test_all_failover_urls_failing_names_each_host() -> None:
    with pytest.raises(ConnectionFailed, match=r"no broker answered: .*127.0.0.1:1.*127.0.0.1:2"):
        RabbitTransport(["amqp://u:secret-pw@127.0.0.1:1/", "amqp://u:secret-pw@127.0.0.1:2/"])


def test_a_waiting_consumer_does_not_hold_up_a_publisher_thread(rabbit: RabbitTransport, unique: str) -> None:
    """One transport, two threads: a consumer blocked on an empty queue must not make each
    publish wait for its polling slice."""
    import threading

    rabbit.declare(Topology.of(_queue(f"{unique}-idle"), _queue(f"{unique}-busy")))
    consumer = rabbit.consume(f"{unique}-idle")
    waiting = threading.Thread(target=lambda: consumer.get(timeout=4))
    waiting.start()
    time.sleep(0.3)
    start = time.monotonic()
    for i in range(30):  # now and then, as an application does: each must get the lock soon
        rabbit.publish("", f"{unique}-busy", b"%d" % i)
        time.sleep(0.02)
    assert rabbit.flush(timeout=10) == []
    elapsed = time.monotonic() - start
    waiting.join()
    consumer.cancel()
    assert elapsed < 2.5, f"30 publishes took {elapsed:.1f}s next to a waiting consumer"
    assert rabbit.purge(f"{unique}-busy") == 30
