"""The seed tutorial's plain pika work queue interoperates with the toolkit, both ways.

The seed producer: `BlockingConnection`, `queue_declare(durable=True)`, `basic_publish` of
`json.dumps({"id": 1, "action": "resize_image"})` with `delivery_mode=2`. The seed consumer:
`basic_qos(prefetch_count=1)`, `json.loads` the body, manual `basic_ack`. No mocks: both
sides talk to the real RabbitMQ.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from broker_under_test import plain_amqp_url

from routing.envelope import Envelope, Rejection, decode_or_reject, encode, to_properties
from routing.schemas import SchemaRegistry
from routing.topology import Queue, Topology
from routing.transport import Outcome
from routing.transport.rabbitmq import RabbitTransport

pytestmark = pytest.mark.broker

REGISTRY = SchemaRegistry.bundled()
SEED_JOBS = [{"id": 1, "action": "resize_image"}, {"id": 2, "action": "resize_image"}]


@pytest.fixture
def seed_channel(amqp_url: str, unique: str) -> Iterator[Any]:
    """A plain pika channel with the tutorial's durable queue declared (deleted at the end)."""
    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
    try:
        channel = connection.channel()
        channel.queue_declare(queue=unique, durable=True)
        yield channel
        channel.queue_delete(unique)
    finally:
        connection.close()


@pytest.fixture
def rabbit(amqp_url: str) -> Iterator[RabbitTransport]:
    with RabbitTransport(amqp_url, name="routing-seed-interop") as transport:
        yield transport


def test_seed_producer_to_toolkit_consumer(seed_channel: Any, rabbit: RabbitTransport, unique: str) -> None:
    # The toolkit declares the same durable queue: equivalent, so no 406.
    report = rabbit.declare(Topology.of(Queue(unique, durable=True)))
    assert report.conflicts == () and report.created == ()
    for job in SEED_JOBS:
        seed_channel.basic_publish(
            exchange="",
            routing_key=unique,
            body=json.dumps(job),
            properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
        )
    consumer = rabbit.consume(unique, prefetch=1)
    decoded = []
    for _ in SEED_JOBS:
        delivery = consumer.get(timeout=5)
        assert delivery is not None, "the seed producer's job did not arrive"
        assert delivery.properties.delivery_mode == 2 and not delivery.redelivered
        envelope = decode_or_reject(
            delivery.body, delivery.properties, registry=REGISTRY, event_type="task.resize_image"
        )
        assert isinstance(envelope, Envelope), envelope
        rabbit.ack(delivery)
        decoded.append(envelope)
    consumer.cancel()
    assert [(e.type, dict(e.data)) for e in decoded] == [("task.resize_image", job) for job in SEED_JOBS]
    assert rabbit.purge(unique) == 0


def test_seed_job_missing_its_action_is_rejected_by_the_toolkit(
    seed_channel: Any, rabbit: RabbitTransport, unique: str
) -> None:
    seed_channel.basic_publish("", unique, json.dumps({"id": 3}), pika.BasicProperties(delivery_mode=2))
    consumer = rabbit.consume(unique, prefetch=1)
    delivery = consumer.get(timeout=5)
    assert delivery is not None
    outcome = decode_or_reject(
        delivery.body, delivery.properties, registry=REGISTRY, event_type="task.resize_image"
    )
    assert isinstance(outcome, Rejection)
    assert outcome.reason == "data: needs one of input+width+height, id+action"
    rabbit.reject(delivery, requeue=False)
    consumer.cancel()


def test_toolkit_publisher_to_seed_consumer(seed_channel: Any, rabbit: RabbitTransport, unique: str) -> None:
    envelopes = [Envelope.new("task.resize_image", job, source="urn:test:uploader") for job in SEED_JOBS]
    publications = [
        rabbit.publish("", unique, encode(e, registry=REGISTRY), to_properties(e)) for e in envelopes
    ]
    assert rabbit.flush(timeout=10) == []
    assert all(p.outcome is Outcome.CONFIRMED for p in publications)

    # The tutorial's worker, verbatim in spirit: one unacked message at a time, manual ack.
    seed_channel.basic_qos(prefetch_count=1)
    received: list[tuple[dict[str, Any], int | None]] = []

    def callback(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        received.append((json.loads(body), properties.delivery_mode))
        ch.basic_ack(delivery_tag=method.delivery_tag)
        if len(received) == len(SEED_JOBS):
            ch.stop_consuming()

    seed_channel.basic_consume(queue=unique, on_message_callback=callback)
    seed_channel.connection.call_later(5, seed_channel.stop_consuming)
    seed_channel.start_consuming()

    assert len(received) == len(SEED_JOBS), "the seed consumer did not get every job"
    for (document, delivery_mode), envelope in zip(received, envelopes, strict=True):
        assert delivery_mode == 2  # persistent, as the tutorial's producer sends
        assert document["type"] == "task.resize_image" and document["id"] == envelope.id
        assert document["data"] == dict(envelope.data)
    # Every message was acked by the seed consumer: nothing left, nothing unacked.
    assert seed_channel.queue_declare(queue=unique, durable=True, passive=True).method.message_count == 0
