"""Topology values: immutable, equal when RabbitMQ would see the same declaration, and
refused at construction when RabbitMQ would refuse them or they could not work."""

from __future__ import annotations

import dataclasses

import pytest

from routing import Binding, Exchange, Overflow, Queue, QueueType, Topology, TopologyError


def test_values_are_frozen_and_hashable() -> None:
    q = Queue("q", message_ttl=1000, arguments={"x-queue-mode": "lazy"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        q.arguments["x-new"] = 1  # type: ignore[index]
    b = Binding("x", "q", arguments={"x-match": "any", "a": [1, {"b": 2}]})
    assert {q, b, Exchange("x")}  # hashable, nested arguments included


def test_typed_and_raw_arguments_are_the_same_queue() -> None:
    typed = Queue("q", type="quorum", message_ttl=5, dead_letter_exchange="dlx", delivery_limit=3)
    raw = Queue(
        "q",
        arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": 5,
            "x-dead-letter-exchange": "dlx",
            "x-delivery-limit": 3,
        },
    )
    assert typed == raw
    assert typed.declare_arguments == dict(raw.declare_arguments)
    assert typed.type is QueueType.QUORUM


def test_declare_arguments_are_what_rabbitmq_receives() -> None:
    q = Queue("q", max_length=10, overflow="reject-publish", single_active_consumer=True)
    assert q.overflow is Overflow.REJECT_PUBLISH
    assert q.declare_arguments == {
        "x-max-length": 10,
        "x-overflow": "reject-publish",
        "x-single-active-consumer": True,
    }
    assert Queue("c").declare_arguments == {}  # classic: no x-queue-type, as the broker reports it
    ex = Exchange("e", "topic", alternate_exchange="ae")
    assert ex.declare_arguments == {"alternate-exchange": "ae"}
    assert ex == Exchange("e", "topic", arguments={"alternate-exchange": "ae"})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Queue("q", type="quorum", durable=False), "always durable"),
        (lambda: Queue("q", type="quorum", exclusive=True), "cannot be exclusive"),
        (lambda: Queue("q", type="quorum", auto_delete=True), "cannot be auto-delete"),
        (lambda: Queue("q", type="stream"), "is not one of classic, quorum"),
        (lambda: Queue("q", message_ttl="1000"), "message_ttl (x-message-ttl) must be an integer >= 0"),
        (lambda: Queue("q", message_ttl=-1), "must be an integer >= 0"),
        (lambda: Queue("q", max_length=True), "max_length (x-max-length) must be"),
        (lambda: Queue("q", expires=0), "integer >= 1"),
        (lambda: Queue("q", overflow="drop-tail"), "drop-head, reject-publish or reject-publish-dlx"),
        (lambda: Queue("q", delivery_limit=5), "is for quorum queues only, not classic"),
        (lambda: Queue("q", type="quorum", max_priority=5), "is for classic queues only"),
        (lambda: Queue("q", max_priority=256), "an integer 1-255"),
        (lambda: Queue("q", single_active_consumer="yes"), "true or false"),
        (lambda: Queue("q", dead_letter_routing_key="k"), "needs a dead_letter_exchange"),
        (lambda: Queue("q", message_ttl=5, arguments={"x-message-ttl": 6}), "disagree"),
        (lambda: Queue("q", type="quorum", overflow="reject-publish-dlx"), "reject-publish-dlx"),
        (lambda: Queue("amq.q"), "'amq.' prefix is reserved"),
        (lambda: Queue(""), "name is empty"),
        (lambda: Queue("é" * 128), "is 256 bytes: RabbitMQ allows 255"),
        (lambda: Exchange("amq.mine"), "reserved"),
        (lambda: Exchange("x", "x-consistent-hash"), "is not one of direct, fanout, topic, headers"),
        (lambda: Exchange("x", arguments={"k": object()}), "cannot be sent as an AMQP argument"),
        (lambda: Binding("", "q"), "default exchange cannot be bound"),
        (lambda: Binding("x", "q", arguments={"x-match": "some"}), "x-match 'some' is not one of all, any"),
        (lambda: Binding("x", "q", "k" * 256), "routing key is over 255 bytes"),
    ],
)
def test_invalid_values_say_what_to_change(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TopologyError) as info:
        make()
    assert message in str(info.value)


def test_topology_reads_like_the_picture_and_sorts_itself() -> None:
    logs = Exchange("logs", "topic")
    pager, archive = Queue("pager"), Queue("archive")
    one = Topology.of(logs, pager, archive, logs.bind(pager, "*.error"), logs.bind(archive, "#"))
    two = Topology.of(logs.bind(archive, "#"), archive, [pager, logs], logs.bind(pager, "*.error"))
    assert one == two and hash(one) == hash(two)
    assert [q.name for q in one.queues] == ["archive", "pager"]
    assert one.exchange("amq.topic") is not None and one.exchange("") is not None
    assert one + Topology.of(Queue("extra")) == Topology.of(one, Queue("extra"))


def test_identical_duplicates_merge_and_different_ones_are_refused() -> None:
    assert len(Topology.of(Queue("q"), Queue("q")).queues) == 1
    with pytest.raises(TopologyError, match=r"queue 'q' is given twice with different settings \(durable"):
        Topology.of(Queue("q"), Queue("q", durable=False))
    with pytest.raises(TopologyError, match=r"exchange 'x' is given twice.*type: direct != topic"):
        Topology.of(Exchange("x"), Exchange("x", "topic"))


@pytest.mark.parametrize(
    ("entities", "message"),
    [
        ([Queue("q"), Binding("nope", "q")], "no exchange 'nope' in the topology; add it"),
        ([Exchange("x"), Binding("x", "nope")], "no queue 'nope' in the topology"),
        ([Exchange("x"), Binding("x", "y", destination_type="exchange")], "no exchange 'y'"),
        ([Exchange("x", alternate_exchange="ae")], "alternate exchange 'ae' is not in the topology"),
        ([Queue("q", dead_letter_exchange="dlx")], "dead-letter exchange 'dlx' is not in the topology"),
        ([Queue("q"), "q"], "takes exchanges, queues and bindings"),
    ],
)
def test_references_must_resolve(entities: list[object], message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        Topology.of(*entities)


def test_dead_letter_to_the_default_or_builtin_exchange_is_fine() -> None:
    Topology.of(Queue("q", dead_letter_exchange="", dead_letter_routing_key="dlq"), Queue("dlq"))
    Topology.of(Queue("q", dead_letter_exchange="amq.direct"))


def test_bind_helper_builds_every_kind_of_binding() -> None:
    h, x, q = Exchange("h", "headers"), Exchange("x", "fanout"), Queue("q")
    b = h.bind(q, headers={"format": "pdf"}, match="any")
    assert b.arguments == {"format": "pdf", "x-match": "any"}
    e2e = x.bind(h)
    assert e2e.destination_type == "exchange" and e2e.describe() == "x -> h"
    assert h.bind("q", "k").describe() == "h -> q [k]"


# Issue 12 item 9: what RabbitMQ refuses at declare (406, or a closed connection) is refused
# here, naming the entity and the argument. Bounds checked live on 3.10.8 and 4.0.5.
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Queue("q", message_ttl=2**40), "queue 'q': message_ttl (x-message-ttl) must be"),
        (lambda: Queue("q", message_ttl=315_360_000_001), "<= 315360000000 (ms, ten years)"),
        (lambda: Queue("q", expires=2**40), "queue 'q': expires (x-expires) must be an integer >= 1 and <="),
        (lambda: Queue("q", arguments={"x-message-ttl": 2**40}), "x-message-ttl"),
        (
            lambda: Queue("q", max_length=2**63),
            "max_length (x-max-length) must be an integer >= 0 and < 2**63",
        ),
        (
            lambda: Queue("q", type="quorum", arguments={"x-queue-mode": "lazy"}),
            "queue 'q': argument 'x-queue-mode' is for classic queues only",
        ),
        (
            lambda: Queue("q", type="quorum", arguments={"x-queue-version": 2}),
            "argument 'x-queue-version' is for classic queues only",
        ),
        (
            lambda: Queue("q", arguments={"x-custom": 2**63}),
            "queue 'q': argument x-custom is 9223372036854775808",
        ),
        (
            lambda: Queue("q", arguments={"x-f": float("nan")}),
            "argument x-f is nan: RabbitMQ closes the connection",
        ),
        (lambda: Exchange("x", arguments={"x-l": [1, float("inf")]}), "exchange 'x': argument x-l[1] is inf"),
        (lambda: Queue("q", arguments={"k" * 256: 1}), "has a name of 256 bytes; AMQP allows 255"),
        (lambda: Queue("q", arguments={"\ud800": 1}), "has a name that is not valid UTF-8"),
        (lambda: Queue("q", arguments={"x-s": "\ud800"}), "argument x-s is not valid UTF-8"),
        (lambda: Queue("q", dead_letter_exchange="\udcff"), "x-dead-letter-exchange is not valid UTF-8"),
        (lambda: Queue("\udcff"), "queue name '\\udcff' is not valid UTF-8"),
        (lambda: Exchange("a\udcff"), "exchange name 'a\\udcff' is not valid UTF-8"),
        (lambda: Binding("x", "q", "a\udcff"), "routing key 'a\\udcff' is not valid UTF-8"),
        (
            lambda: Binding("x", "q", arguments={"x-match": "any", "n": float("nan")}),
            "binding 'x' -> 'q': argument n is nan",
        ),
    ],
)
def test_values_rabbitmq_refuses_at_declare_are_refused_at_construction(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TopologyError) as info:
        make()
    assert message in str(info.value)
    str(info.value).encode()  # printable: a lone surrogate is shown escaped


def test_rabbitmqs_largest_values_are_taken() -> None:
    Queue("q", message_ttl=315_360_000_000, expires=315_360_000_000, max_length=2**63 - 1)
    Queue("q", type="quorum", delivery_limit=2**63 - 1, arguments={"x-custom": -(2**63)})
    Queue("q", arguments={"x-queue-mode": "lazy", "k" * 255: 1.5})
