"""The embedded broker against the reference: the same steps on RabbitMQ (plain pika) and on
`memory://`, compared field by field. Only what the conformance suite cannot see through
the transport interface is here: the exact key order of dead-letter headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pika
import pytest
from broker_under_test import plain_amqp_url

from routing import Exchange, Queue, Topology
from routing.embedded import forget
from routing.profiles import profile
from routing.transport import Properties
from routing.transport.memory import MemoryTransport

pytestmark = pytest.mark.broker


@pytest.fixture
def channel(amqp_url: str) -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
    try:
        yield connection.channel()
    finally:
        connection.close()


@pytest.fixture
def memory(unique: str, rabbitmq_profile: str) -> Iterator[MemoryTransport]:
    """The embedded broker, in the profile of the live broker it is compared with."""
    with MemoryTransport(f"memory://{unique}") as transport:
        transport.broker.profile = profile(rabbitmq_profile)
        yield transport
    forget(f"memory://{unique}")


def shape(value: Any) -> Any:
    """Headers with `time` blanked and key order kept, as comparable plain data."""
    if isinstance(value, Mapping):
        return [(k, None if k == "time" else shape(v)) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [shape(v) for v in value]
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else value


def get_rabbit(channel: Any, queue: str, wait: float = 3.0) -> tuple[Any, Any, bytes]:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        method, props, body = channel.basic_get(queue)
        if method is not None:
            return method, props, body
        time.sleep(0.02)
    raise AssertionError(f"nothing arrived in {queue}")


def on_both(
    channel: Any, memory: MemoryTransport, topology: Topology, cleanup: list[str], steps: Callable[..., Any]
) -> tuple[Any, Any]:
    for x in topology.exchanges:
        channel.exchange_declare(
            x.name, str(x.type), durable=x.durable, auto_delete=True, arguments=x.declare_arguments
        )
    for q in topology.queues:
        channel.queue_declare(q.name, durable=q.durable, arguments=q.declare_arguments)
    for b in topology.bindings:
        channel.queue_bind(b.destination, b.source, b.routing_key)
    memory.declare(topology)
    try:
        return steps(channel, None), steps(None, memory)
    finally:
        for name in cleanup:
            channel.queue_delete(name)


def test_x_death_after_reject_then_maxlen_matches_rabbitmq(
    channel: Any, memory: MemoryTransport, unique: str
) -> None:
    x, dlx = (
        Exchange(f"{unique}.x", "topic", durable=False),
        Exchange(f"{unique}.dlx", "fanout", durable=False),
    )
    q1 = Queue(f"{unique}.q1", dead_letter_exchange=dlx.name)
    q2 = Queue(f"{unique}.q2", max_length=1, dead_letter_exchange=dlx.name, dead_letter_routing_key="k2")
    dlq = Queue(f"{unique}.dlq")
    topology = Topology.of(x, dlx, q1, q2, dlq, x.bind(q1, "a.*"), dlx.bind(dlq))
    headers = {"zeta": 1, "CC": ["a.c"], "BCC": ["a.d"], "alpha": "a"}

    def steps(ch: Any, mem: MemoryTransport | None) -> list[Any]:
        seen = []
        if ch is not None:
            ch.basic_publish(x.name, "a.b", b"m", pika.BasicProperties(headers=headers, expiration="60000"))
            method, _, _ = get_rabbit(ch, q1.name)
            ch.basic_reject(method.delivery_tag, requeue=False)
            method, props, _ = get_rabbit(ch, dlq.name)
            ch.basic_ack(method.delivery_tag)
            seen.append((method.exchange, method.routing_key, props.expiration, shape(props.headers)))
            # Again through a max-length queue, which drops the older of two (reason maxlen).
            ch.basic_publish("", q2.name, b"old", pika.BasicProperties(headers=props.headers))
            ch.basic_publish("", q2.name, b"new")
            method, props, _ = get_rabbit(ch, dlq.name)
            ch.basic_ack(method.delivery_tag)
            seen.append((method.exchange, method.routing_key, props.expiration, shape(props.headers)))
            return seen
        assert mem is not None
        mem.publish(x.name, "a.b", b"m", Properties(headers=headers, expiration="60000"))
        d = mem.get(q1.name)
        assert d is not None
        mem.reject(d, requeue=False)
        d = mem.get(dlq.name)
        assert d is not None
        mem.ack(d)
        seen.append((d.exchange, d.routing_key, d.properties.expiration, shape(dict(d.headers))))
        mem.publish("", q2.name, b"old", Properties(headers=d.headers))
        mem.publish("", q2.name, b"new")
        d = mem.get(dlq.name)
        assert d is not None
        seen.append((d.exchange, d.routing_key, d.properties.expiration, shape(dict(d.headers))))
        return seen

    rabbit, embedded = on_both(channel, memory, topology, [q1.name, q2.name, dlq.name], steps)
    for i, (r, e) in enumerate(zip(rabbit, embedded, strict=True)):
        assert e == r, f"dead letter {i}:\n  rabbitmq: {r}\n  embedded: {e}"


def test_requeue_order_and_delivery_count_match_rabbitmq(
    channel: Any, memory: MemoryTransport, unique: str
) -> None:
    classic, quorum = Queue(f"{unique}.classic"), Queue(f"{unique}.quorum", type="quorum")

    def steps(ch: Any, mem: MemoryTransport | None) -> list[Any]:
        out = []
        for q in (classic, quorum):
            for i in range(1, 5):
                if ch is not None:
                    ch.basic_publish("", q.name, b"m%d" % i)
                else:
                    assert mem is not None
                    mem.publish("", q.name, b"m%d" % i)
            if ch is not None:
                got = [get_rabbit(ch, q.name) for _ in range(3)]
                ch.basic_nack(got[1][0].delivery_tag, requeue=True)
                ch.basic_nack(got[0][0].delivery_tag, requeue=True)
                time.sleep(0.3)  # the returns are applied asynchronously
                while (item := ch.basic_get(q.name, auto_ack=True))[0] is not None:
                    out.append((q.name, item[2], item[0].redelivered, shape(item[1].headers or {})))
            else:
                assert mem is not None
                held = [mem.get(q.name) for _ in range(3)]
                assert all(held)
                mem.nack(held[1])  # type: ignore[arg-type]
                mem.nack(held[0])  # type: ignore[arg-type]
                while (d := mem.get(q.name)) is not None:
                    mem.ack(d)
                    out.append((q.name, d.body, d.redelivered, shape(dict(d.headers))))
        return out

    rabbit, embedded = on_both(
        channel, memory, Topology.of(classic, quorum), [classic.name, quorum.name], steps
    )
    assert embedded == rabbit
