"""Queue semantics of the embedded broker against the live RabbitMQ, scenario by scenario
(issue 12, items 13-20): each scenario runs on both, with the embedded broker in the live
broker's profile, and everything a client sees after each step must be equal."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from conformance.scenario import (
    Cancel,
    Consume,
    Get,
    LiveDepth,
    Publish,
    Receive,
    Scenario,
    Settle,
    Sleep,
    Step,
    Together,
    first_difference,
    observe,
)

from routing.embedded import forget
from routing.profiles import profile
from routing.topology import Binding, Exchange, Queue
from routing.transport import open_transport
from routing.transport.memory import MemoryTransport

pytestmark = pytest.mark.broker

Build = Callable[[str], tuple[tuple[Exchange | Queue | Binding, ...], tuple[Step, ...]]]


@pytest.fixture
def both(amqp_url: str, rabbitmq_profile: str, unique: str) -> Iterator[Callable[[Scenario], None]]:
    live = open_transport(amqp_url)
    depth = LiveDepth(amqp_url)
    memory = MemoryTransport(f"memory://{unique}")
    memory.broker.profile = profile(rabbitmq_profile)

    def check(scenario: Scenario) -> None:
        rabbit = observe(live, scenario, depth)
        embedded = observe(memory, scenario)
        at = first_difference(rabbit, embedded)
        assert at is None, (
            f"{scenario}\nfirst difference at {at}:\n  rabbitmq: {rabbit[at]}\n  embedded: {embedded[at]}"
        )

    try:
        yield check
    finally:
        memory.close()
        depth.close()
        live.close()
        forget(f"memory://{unique}")


def _dlq(u: str) -> tuple[Exchange, Queue, Binding]:
    dlx = Exchange(f"{u}.dlx", "fanout", durable=False, auto_delete=True)
    dlq = Queue(f"{u}.dlq")
    return dlx, dlq, dlx.bind(dlq)


def test_requeue_into_full_drop_head_classic_queue(both: Callable[[Scenario], None], unique: str) -> None:
    dlx, dlq, b = _dlq(unique)
    q = Queue(f"{unique}.q", max_length=2, dead_letter_exchange=dlx.name)
    steps = (
        Publish("", q.name, "m1"),
        Publish("", q.name, "m2"),
        Get(q.name),
        Publish("", q.name, "m3"),
        Settle(0, "requeue"),
    )
    both(Scenario((dlx, dlq, b, q), steps))


def test_cancel_into_full_drop_head_quorum_queue(both: Callable[[Scenario], None], unique: str) -> None:
    dlx, dlq, b = _dlq(unique)
    q = Queue(f"{unique}.q", type="quorum", max_length=1, dead_letter_exchange=dlx.name)
    steps = (
        Publish("", q.name, "a"),
        Consume(q.name, 3),
        Publish("", q.name, "b"),
        Receive(0),
        Publish("", q.name, "c"),
        Cancel(0),
    )
    both(Scenario((dlx, dlq, b, q), steps))


def test_quorum_reject_publish_is_a_soft_limit(both: Callable[[Scenario], None], unique: str) -> None:
    q = Queue(f"{unique}.q", type="quorum", max_length=2, overflow="reject-publish")
    publish = tuple(Publish("", q.name, f"m{i}") for i in range(1, 6))
    drain = (Get(q.name), Settle(0, "ack"), Get(q.name), Settle(0, "ack"))
    both(Scenario((q,), (*publish, *drain, *publish[:2])))


@pytest.mark.parametrize("limit", [None, 5], ids=["no-limit", "delivery-limit"])
def test_quorum_requeue_position(both: Callable[[Scenario], None], unique: str, limit: int | None) -> None:
    q = Queue(f"{unique}.q", type="quorum", delivery_limit=limit)
    steps = (
        Publish("", q.name, "m1"),
        Publish("", q.name, "m2"),
        Publish("", q.name, "m3"),
        Get(q.name),
        Settle(0, "requeue"),
        Consume(q.name, 1),
        Receive(0),
        Cancel(0),
    )
    both(Scenario((q,), steps))


def test_quorum_delivery_limit_zero_credit(both: Callable[[Scenario], None], unique: str) -> None:
    dlx, dlq, b = _dlq(unique)
    q = Queue(f"{unique}.q", type="quorum", delivery_limit=0, dead_letter_exchange=dlx.name)
    steps: tuple[Step, ...] = (
        *(Publish("", q.name, f"m{i}") for i in range(1, 6)),
        Consume(q.name, 1),
        Receive(0),
        Settle(0, "requeue"),
        Receive(0),
        Receive(0),
    )
    both(Scenario((dlx, dlq, b, q), steps))


def test_fanout_dead_letters_land_within_the_publish(both: Callable[[Scenario], None], unique: str) -> None:
    x = Exchange(f"{unique}.x", "fanout", durable=False, auto_delete=True)
    q2 = Queue(f"{unique}.q2")
    dlx = Exchange(f"{unique}.dlx", "fanout", durable=False, auto_delete=True)
    q1 = Queue(f"{unique}.q1", max_length=1, dead_letter_exchange=dlx.name)
    entities = (x, dlx, q1, q2, x.bind(q1), x.bind(q2), dlx.bind(q2))
    both(Scenario(entities, (Publish(x.name, "", "m1"), Publish(x.name, "", "m2"))))


def test_reject_into_the_same_full_queue(both: Callable[[Scenario], None], unique: str) -> None:
    dlx = Exchange(f"{unique}.dlx", "fanout", durable=False, auto_delete=True)
    q = Queue(f"{unique}.q", max_length=1, dead_letter_exchange=dlx.name)
    steps = (
        Publish("", q.name, "m1"),
        Consume(q.name, 1),
        Publish("", q.name, "m2"),
        Receive(0),
        Settle(0, "reject"),  # m2 reaches the consumer before the dead m1 is back in q
        Receive(0),
    )
    both(Scenario((dlx, q, dlx.bind(q)), steps))


def test_expired_messages_given_back_in_order(both: Callable[[Scenario], None], unique: str) -> None:
    dlx, dlq, b = _dlq(unique)
    q = Queue(f"{unique}.q", dead_letter_exchange=dlx.name)
    steps = (
        Publish("", q.name, "m1", expiration="500"),  # a step on RabbitMQ takes ~60 ms
        Publish("", q.name, "m2"),
        Get(q.name),
        Get(q.name),
        Sleep(600),
        Together((Settle(0, "requeue"), Settle(0, "reject"))),
    )
    both(Scenario((dlx, dlq, b, q), steps))


def test_expired_message_uncovered_by_a_get(both: Callable[[Scenario], None], unique: str) -> None:
    dlx, dlq, b = _dlq(unique)
    q = Queue(f"{unique}.q", dead_letter_exchange=dlx.name)
    steps = (
        Publish("", q.name, "m1"),
        Publish("", q.name, "m2", expiration="100"),
        Sleep(200),
        Together((Get(q.name), Settle(0, "requeue"))),
    )
    both(Scenario((dlx, dlq, b, q), steps))


def test_refused_get_closes_the_channel(both: Callable[[Scenario], None], unique: str) -> None:
    q = Queue(f"{unique}.q")
    steps = (
        Publish("", q.name, "m1"),
        Publish("", q.name, "m2"),
        Get(q.name),
        Get(f"{unique}.missing"),
        Settle(0, "ack"),
        Get(q.name),
        Get(q.name),
    )
    both(Scenario((q,), steps))


def test_quorum_default_delivery_limit(both: Callable[[Scenario], None], unique: str) -> None:
    # 4.0 gives a quorum queue without x-delivery-limit a limit of 20; 3.10 has none.
    dlx, dlq, b = _dlq(unique)
    q = Queue(f"{unique}.q", type="quorum", dead_letter_exchange=dlx.name)
    again = (Get(q.name), Settle(0, "requeue"))
    steps = (Publish("", q.name, "m1"), Together(again * 20), Get(q.name), Settle(0, "requeue"), Get(q.name))
    both(Scenario((dlx, dlq, b, q), steps))


def test_dead_letters_get_into_a_refusing_quorum_queue(both: Callable[[Scenario], None], unique: str) -> None:
    # Only publishing channels are told a quorum reject-publish queue is full: a dead letter
    # (here from q0's reject-publish-dlx, back through the same fanout) still gets in.
    x = Exchange(f"{unique}.x", "fanout", durable=False, auto_delete=True)
    q0 = Queue(f"{unique}.q0", max_length=1, overflow="reject-publish-dlx", dead_letter_exchange=x.name)
    q2 = Queue(f"{unique}.q2", type="quorum", max_length=1, overflow="reject-publish")
    qc = Queue(f"{unique}.qc")
    entities = (x, q0, q2, qc, x.bind(q0), x.bind(q2), x.bind(qc))
    both(Scenario(entities, tuple(Publish(x.name, "", f"m{i}") for i in range(3))))
