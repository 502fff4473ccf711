"""Publisher: validated envelopes out, exactly what was sent in, on both brokers. Also the
RabbitMQ transport's one-buffer publishing path: large bodies split into frames, order kept."""

from __future__ import annotations

import pytest

from routing import Envelope, Publisher, ValidationError, decode
from routing.errors import Unroutable
from routing.schemas import SchemaRegistry
from routing.topology import Queue
from routing.transport import Outcome

from .conftest import Harness

REGISTRY = SchemaRegistry.bundled()
LOG = {"level": "error", "service": "billing", "message": "boom", "time": "2026-11-21T17:00:00Z"}


def test_emit_delivers_a_valid_envelope(harness: Harness) -> None:
    queue = harness.name("events")
    harness.declare(Queue(queue))
    publisher = Publisher(harness.t, source="urn:test:billing")
    publication = publisher.emit("", queue, "log.record", LOG, subject="payments")
    assert publisher.flush() == []
    assert publication.outcome is Outcome.CONFIRMED
    delivery = harness.take(queue)
    event = decode(delivery.body, delivery.properties, registry=REGISTRY)
    assert (event.type, event.source, event.subject, dict(event.data)) == (
        "log.record",
        "urn:test:billing",
        "payments",
        LOG,
    )
    assert delivery.properties.message_id == event.id
    assert delivery.properties.delivery_mode == 2


def test_invalid_event_is_refused_before_sending(harness: Harness) -> None:
    queue = harness.name("events")
    harness.declare(Queue(queue))
    publisher = Publisher(harness.t)
    with pytest.raises(ValidationError) as caught:
        publisher.emit("", queue, "log.record", {**LOG, "level": "loud"})
    assert caught.value.path == "data.level"
    publisher.publish("", queue, Envelope.new("log.record", LOG))  # the next one still goes
    assert publisher.flush() == []
    assert len(harness.drain(queue)) == 1


def test_mandatory_unroutable_comes_back_from_flush(harness: Harness) -> None:
    publisher = Publisher(harness.t, mandatory=True)
    publication = publisher.emit("", harness.name("nowhere"), "log.record", LOG)
    failures = publisher.flush()
    assert failures == [publication]
    assert publication.outcome is Outcome.RETURNED
    assert isinstance(publication.error, Unroutable)


def test_bodies_larger_than_a_frame_and_order(harness: Harness) -> None:
    """RabbitMQ's frame_max is 128 KiB: a 1 MiB body goes as several body frames."""
    queue = harness.name("bulk")
    harness.declare(Queue(queue))
    big = bytes(range(256)) * 4096 + b"end"
    bodies = [b"%d" % n for n in range(3000)]
    harness.publish_all("", [(queue, big), *((queue, body) for body in bodies)])
    assert harness.drain(queue) == [big, *bodies]
