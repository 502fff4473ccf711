"""`Publisher.publish_json` (a plain JSON body, no envelope) and `Publisher.tally` (what the
broker answered), on the embedded broker and on RabbitMQ."""

from __future__ import annotations

import json

import pytest

from routing import Publisher, open_transport
from routing.errors import BrokerError, DecodeError, Nacked, ValidationError
from routing.publisher import Tally, check_json_body
from routing.topology import Queue, Topology
from routing.transport import Outcome, Publication, Transport

JOB = {"id": 1, "action": "resize_image", "path": "/uploads/img_1.jpg"}


def _drain(transport: Transport, queue: str) -> list:  # type: ignore[type-arg]
    out = []
    while (delivery := transport.get(queue)) is not None:
        transport.ack(delivery)
        out.append(delivery)
    return out


def test_tally_of_counts_each_outcome_and_keeps_the_first_error() -> None:
    nacked = Nacked("no")
    failures = [
        Publication("x", "k", 1, Outcome.RETURNED),
        Publication("x", "k", 2, Outcome.NACKED, nacked),
        Publication("x", "k", 3, Outcome.NACKED, Nacked("later")),
        Publication("x", "k", 4, Outcome.UNCONFIRMED),
        Publication("x", "k", 5, None),
    ]
    tally = Tally.of(10, failures)
    assert (tally.returned, tally.nacked, tally.unconfirmed, tally.unsettled) == (1, 2, 1, 1)
    assert tally.failed == 5 and tally.confirmed == 5 and not tally.ok
    assert tally.first_error is nacked
    assert Tally.of(3, []) == Tally(published=3) and Tally(published=3).ok


def test_publish_json_sends_the_body_itself_with_a_fresh_id_each(memory: Transport) -> None:
    memory.declare(Topology.of(Queue("jobs")))
    publisher = Publisher(memory, headers={"region": "eu"}, persistent=False)
    body = json.dumps(JOB).encode()
    publisher.publish_json("", "jobs", body, message_id="first")
    publisher.publish_json("", "jobs", body, event_type="task.resize_image")
    assert publisher.flush() == [] and publisher.tally == Tally(published=2)
    first, second = _drain(memory, "jobs")
    assert first.body == body and second.body == body  # no envelope
    assert first.properties.message_id == "first" and second.properties.message_id not in (None, "first")
    assert (first.properties.type, second.properties.type) == (None, "task.resize_image")
    for delivery in (first, second):
        assert delivery.properties.content_type == "application/json"
        assert delivery.properties.delivery_mode == 1
        assert dict(delivery.headers) == {"region": "eu"}


@pytest.mark.parametrize(
    ("body", "event_type", "error", "says"),
    [
        (b"{nope", None, DecodeError, "not JSON: "),
        (b"[1, 2]", None, DecodeError, "expected a JSON object, got list"),
        # every consumer (decode_or_reject) refuses NaN: the check before sending must too
        (b'{"a": NaN}', None, DecodeError, "not JSON: NaN is not valid JSON"),
        (json.dumps({**JOB, "extra": 1}).encode(), "task.resize_image", ValidationError, "extra"),
    ],
)
def test_publish_json_refuses_before_sending(
    memory: Transport, body: bytes, event_type: str | None, error: type[Exception], says: str
) -> None:
    memory.declare(Topology.of(Queue("jobs")))
    publisher = Publisher(memory)
    with pytest.raises(error, match=says):
        check_json_body(body, event_type=event_type)
    with pytest.raises(error, match=says):
        publisher.publish_json("", "jobs", body, event_type=event_type)
    assert publisher.published == 0 and publisher.tally == Tally()
    assert _drain(memory, "jobs") == []


def test_tally_counts_confirmed_returned_nacked_and_unconfirmed(memory: Transport) -> None:
    memory.declare(Topology.of(Queue("one", max_length=1, overflow="reject-publish")))
    publisher = Publisher(memory, mandatory=True)
    data = {"level": "info", "service": "s", "message": "m", "time": "2026-01-01T00:00:00Z"}
    publisher.emit("", "one", "log.record", data)  # confirmed
    publisher.emit("", "one", "log.record", data)  # the queue is full: nacked
    publisher.emit("", "nobody", "log.record", data)  # returned
    publisher.emit("no-such-exchange", "k", "log.record", data)  # refused by the broker
    failures = publisher.flush()
    assert [p.outcome for p in failures] == [Outcome.NACKED, Outcome.RETURNED, Outcome.UNCONFIRMED]
    tally = publisher.tally
    assert (tally.published, tally.confirmed, tally.returned, tally.nacked, tally.unconfirmed) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert isinstance(tally.first_error, Nacked)
    publisher.emit("", "nobody", "log.record", data)
    publisher.flush()
    assert publisher.tally.published == 5 and publisher.tally.returned == 2  # the earlier ones count still


class _Slow:
    """A transport whose first flush gives up with one publication unanswered."""

    def __init__(self, settles_as: Outcome | None) -> None:
        self.settles_as = settles_as
        self.publications: list[Publication] = []
        self.flushes = 0

    def publish(
        self, exchange: str, routing_key: str, body: bytes, properties: object, *, mandatory: bool
    ) -> Publication:
        self.publications.append(Publication(exchange, routing_key, len(self.publications) + 1))
        return self.publications[-1]

    def flush(self, timeout: float | None = None) -> list[Publication]:
        self.flushes += 1
        late = self.publications[0]
        if self.flushes == 1:
            return [late]  # unsettled: the timeout came first
        if self.settles_as is None or late.outcome is not None:
            return []
        late.outcome, late.error = self.settles_as, BrokerError("late")
        return [late]


@pytest.mark.parametrize("settles_as", [None, Outcome.NACKED])
def test_a_publication_unsettled_at_one_flush_is_counted_once(settles_as: Outcome | None) -> None:
    transport = _Slow(settles_as)
    publisher = Publisher(transport)  # type: ignore[arg-type]
    publisher.publish_json("", "q", b"{}")
    publisher.flush(timeout=0)
    assert publisher.tally.unsettled == 1 and publisher.tally.confirmed == 0
    publisher.flush()
    publisher.flush()
    tally = publisher.tally
    assert tally.unsettled == 0
    assert (tally.confirmed, tally.nacked) == ((1, 0) if settles_as is None else (0, 1))


@pytest.mark.broker
def test_tally_on_rabbitmq(amqp_url: str, unique: str) -> None:
    with open_transport(amqp_url) as transport:
        transport.declare(Topology.of(Queue(unique, expires=60_000)))
        publisher = Publisher(transport, mandatory=True)
        for _ in range(3):
            publisher.publish_json("", unique, json.dumps(JOB).encode())
        publisher.publish_json("", f"{unique}.nobody", b"{}")
        [returned] = publisher.flush(timeout=10)
        assert returned.outcome is Outcome.RETURNED
        tally = publisher.tally
        assert (tally.published, tally.confirmed, tally.returned) == (4, 3, 1)
        assert [json.loads(d.body) for d in _drain(transport, unique)] == [JOB] * 3
