"""`routing.tail`: a temporary queue bound to an exchange, on the embedded broker and on
RabbitMQ; the exchange as the broker has it, and no exchange left behind by a guess."""

from __future__ import annotations

import json

import pytest
from broker_under_test import naming_management as with_management

from routing import open_transport
from routing.embedded import forget
from routing.envelope import Rejection
from routing.errors import DeclareConflicts, TopologyError, UnknownExchange
from routing.management import Management
from routing.properties import Properties
from routing.schemas import SchemaRegistry
from routing.topology import Binding, Exchange, ExchangeType, Queue, Topology
from routing.transport import Outcome, Transport
from routing.watching import ReadOutcome, Tail, open_tail, read_queue


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"exchange": ""}, "default exchange cannot be bound"),
        ({"exchange": "x", "routing_key": "a", "headers": {"h": 1}}, "not both"),
        ({"exchange": "x", "match": "some"}, "choose 'all' or 'any'"),
    ],
)
def test_a_tail_that_cannot_be_bound_is_refused_before_any_io(options: dict[str, object], says: str) -> None:
    with pytest.raises(TopologyError, match=says):
        Tail(**options)  # type: ignore[arg-type]


def test_the_binding_follows_the_exchange_type() -> None:
    topic, direct = Exchange("t", "topic"), Exchange("d", "direct")
    assert Tail(exchange="t").binding(topic, "q") == Binding("t", "q", "#")
    assert Tail(exchange="d", routing_key="k").binding(direct, "q") == Binding("d", "q", "k")
    headers = Tail(exchange="amq.headers", headers={"a": 1}, match="any").binding(None, "q")
    assert headers == Binding("amq.headers", "q", arguments={"x-match": "any", "a": 1})
    assert Tail(exchange="amq.fanout").binding(None, "q") == Binding("amq.fanout", "q")
    with pytest.raises(TopologyError, match="give the routing key"):
        Tail(exchange="d").binding(direct, "q")
    with pytest.raises(TopologyError, match="--header needs a headers exchange"):
        Tail(exchange="t", headers={"a": 1}).binding(topic, "q")
    assert Tail(exchange="x", headers={"a": 1}).guessed_type() is ExchangeType.HEADERS
    assert Tail(exchange="x", routing_key="k").guessed_type() is ExchangeType.TOPIC
    assert Tail(exchange="x").guessed_type() is ExchangeType.FANOUT


def _watch_once(transport: Transport, tail: Tail, key: str, url: str | None = None) -> tuple[str, bytes]:
    """Open the tail, publish one message through its exchange, read it back; returns
    (the tail queue's name, the body received)."""
    with open_tail(transport, tail, url=url) as tap:
        transport.publish(tail.exchange, key, b'{"n": 1}')
        delivery = tap.consumer.get(timeout=10)
        assert delivery is not None and delivery.queue == tap.queue
        transport.ack(delivery)
        return tap.queue, delivery.body


def test_tail_on_the_embedded_broker(memory: Transport) -> None:
    memory.declare(Topology.of(Exchange("logs", "topic")))
    queue, body = _watch_once(memory, Tail(exchange="logs", routing_key="*.error"), "billing.error")
    assert body == b'{"n": 1}'
    with pytest.raises(Exception, match="no queue"):  # deleted on exit
        memory.message_count(queue)


def test_a_tap_reads_decoded_deliveries(memory: Transport) -> None:
    memory.declare(Topology.of(Exchange("logs", "fanout")))
    with open_tail(memory, Tail(exchange="logs")) as tap:
        for body in (b'{"n": 1}', b"not json"):
            memory.publish("logs", "", body, Properties(content_type="application/json", type="t.x"))
        reads = list(tap.read(SchemaRegistry.bundled(allow_unknown=True), limit=2, timeout=5))
        assert [delivery.body for delivery, _ in reads] == [b'{"n": 1}', b"not json"]
        assert isinstance(reads[1][1], Rejection) and not isinstance(reads[0][1], Rejection)
        with pytest.raises(Exception, match="no queue"):  # read to its end: consumer cancelled, queue gone
            memory.message_count(tap.queue)


def test_a_guess_never_leaves_an_exchange_behind(memory: Transport) -> None:
    refused = pytest.raises(UnknownExchange, match="no exchange 'nothing' on the broker")
    with refused, open_tail(memory, Tail(exchange="nothing")):
        pass
    memory.declare(Topology.of(Exchange("nothing", "direct")))  # not there with another type


def test_a_wrong_guess_is_a_conflict(memory: Transport) -> None:
    memory.declare(Topology.of(Exchange("jobs", "direct")))
    with pytest.raises(DeclareConflicts), open_tail(memory, Tail(exchange="jobs")):
        pass
    _watch_once(memory, Tail(exchange="jobs", routing_key="k", exchange_type=ExchangeType.DIRECT), "k")


@pytest.mark.broker
def test_tail_on_rabbitmq_reads_the_exchange_from_the_management_api(
    amqp_url: str, management_url: str, unique: str
) -> None:
    exchange, ae = f"{unique}.logs", f"{unique}.ae"
    with open_transport(amqp_url) as transport:
        transport.declare(
            Topology.of(
                Exchange(ae, "fanout", auto_delete=True),
                Exchange(exchange, "topic", auto_delete=True, alternate_exchange=ae),
            )
        )
        url = with_management(amqp_url, management_url)
        try:
            queue, body = _watch_once(transport, Tail(exchange=exchange), "any.key", url=url)
            assert body == b'{"n": 1}'
            assert Management.for_broker(url).queue(queue) is None  # deleted on exit
            refused = pytest.raises(UnknownExchange, match=f"no exchange '{unique}.none'")
            with refused, open_tail(transport, Tail(exchange=f"{unique}.none"), url=url):
                pass
        finally:
            transport.delete_exchange(exchange)
            transport.delete_exchange(ae)


@pytest.mark.broker
def test_tail_on_rabbitmq_without_management_undoes_its_guess(amqp_url: str, unique: str) -> None:
    missing = f"{unique}.none"
    with open_transport(amqp_url) as transport:
        refused = pytest.raises(UnknownExchange, match=f"no exchange '{missing}' on the broker")
        with refused, open_tail(transport, Tail(exchange=missing)):  # no URL: no management API to ask
            pass
        gone = transport.publish(missing, "k", b"{}")  # RabbitMQ refuses it: 404, no such exchange
        assert transport.flush(timeout=10) == [gone] and gone.outcome is Outcome.UNCONFIRMED
        transport.declare(Topology.of(Exchange(f"{unique}.x", "fanout")))  # as tail guesses it
        try:
            _watch_once(transport, Tail(exchange=f"{unique}.x"), "")
        finally:
            transport.delete_exchange(f"{unique}.x")


# ------------------------------------------------------------------ read_queue

LOG = {"level": "error", "service": "billing", "message": "boom", "time": "2026-01-01T00:00:00Z"}


def _fill(transport: Transport, queue: str, bodies: list[bytes]) -> None:
    for body in bodies:
        transport.publish("", queue, body, Properties(content_type="application/json", type="log.record"))
    assert transport.flush(timeout=10) == []


def test_read_queue_acks_envelopes_and_keeps_what_it_cannot_read(unique: str) -> None:
    url = f"memory://{unique}"
    try:
        with open_transport(url) as transport:
            transport.declare(Topology.of(Queue("q")))
            _fill(transport, "q", [json.dumps(LOG).encode(), b"not json", json.dumps(LOG).encode()])
            reads = list(read_queue(transport, "q", timeout=0.2))
            assert [r.outcome for r in reads] == [ReadOutcome.ACKED, ReadOutcome.KEPT, ReadOutcome.ACKED]
            assert isinstance(reads[1].result, Rejection) and reads[0].result.data == LOG  # type: ignore[union-attr]
        with open_transport(url) as transport:  # the kept one is back on the queue
            assert transport.message_count("q") == 1
            [left] = list(read_queue(transport, "q", ack=False, timeout=0.2))
            assert left.outcome is ReadOutcome.LEFT
        with open_transport(url) as transport:
            assert transport.message_count("q") == 1
    finally:
        forget(url)


def test_read_queue_with_a_limit_takes_no_more(memory: Transport) -> None:
    memory.declare(Topology.of(Queue("q")))
    _fill(memory, "q", [json.dumps(LOG).encode()] * 5)
    assert len(list(read_queue(memory, "q", limit=2, timeout=1))) == 2
    assert memory.message_count("q") == 3  # none taken beyond the limit, none unacked


def test_a_stopped_read_leaves_the_message_it_stopped_at(unique: str) -> None:
    url = f"memory://{unique}"
    try:
        with open_transport(url) as transport:
            transport.declare(Topology.of(Queue("q")))
            _fill(transport, "q", [json.dumps(LOG).encode()] * 2)
            reads = read_queue(transport, "q", limit=2, timeout=1)
            next(reads)
            reads.close()  # stopped while the first was in hand: it is not acked
            assert transport.message_count("q") == 1
        with open_transport(url) as transport:
            assert transport.message_count("q") == 2  # back on the queue, not lost
    finally:
        forget(url)


@pytest.mark.broker
def test_read_queue_rejects_to_the_dead_letter_exchange_the_management_api_names(
    amqp_url: str, management_url: str, unique: str
) -> None:
    dlx, dead, queue = f"{unique}.dlx", f"{unique}.dead", f"{unique}.work"
    topology = Topology.of(
        Exchange(dlx, "fanout", auto_delete=True),
        Queue(dead, expires=60_000),
        Binding(dlx, dead),
        Queue(queue, expires=60_000, dead_letter_exchange=dlx),
    )
    with open_transport(amqp_url) as transport:
        transport.declare(topology)
        _fill(transport, queue, [b"not json", json.dumps(LOG).encode()])
        url = with_management(amqp_url, management_url)
        reads = list(read_queue(transport, queue, url=url, limit=2, timeout=5))
        assert [r.outcome for r in reads] == [ReadOutcome.DEAD_LETTERED, ReadOutcome.ACKED]
        assert reads[0].dead_letter_exchange == dlx
        for _ in range(50):
            if transport.message_count(dead) == 1:
                break
            transport.wait(0.1)
        assert transport.message_count(dead) == 1 and transport.message_count(queue) == 0
        transport.delete_exchange(dlx)
