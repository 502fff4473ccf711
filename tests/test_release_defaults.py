"""Defaults that differ between releases, on the live broker and the embedded one of the same release:
a quorum queue's delivery limit (4.0: 20, and -1 for none) and the largest message (4.0: 16 MiB)."""

from __future__ import annotations

import time

import pytest

from routing.embedded import forget
from routing.topology import Exchange, Queue, Topology
from routing.transport import Outcome, Transport, open_transport

NACKS = 25  # past 4.0's default limit of 20


def _nacked_until_gone(t: Transport, queue: str) -> int:
    """Get and nack-requeue the one message until it is gone or NACKS times; how many nacks."""
    for n in range(NACKS):
        delivery = None
        for _ in range(100):  # a quorum queue applies a return asynchronously on RabbitMQ
            delivery = t.get(queue)
            if delivery is not None:
                break
            time.sleep(0.02)
        if delivery is None:
            return n
        t.nack(delivery, requeue=True)
    return NACKS


@pytest.mark.broker
@pytest.mark.parametrize(
    ("limit", "expected"), [(-1, {"3.10": 1, "4.0": NACKS}), (None, {"3.10": NACKS, "4.0": 21})]
)
def test_minus_one_is_no_limit_and_none_is_the_releases_default(
    limit: int | None, expected: dict[str, int], amqp_url: str, rabbitmq_profile: str, unique: str
) -> None:
    dlx = Exchange(f"{unique}.dlx", "fanout", auto_delete=True)
    dead = Queue(f"{unique}.dead", durable=False, auto_delete=True)
    work = Queue(f"{unique}.work", type="quorum", delivery_limit=limit, dead_letter_exchange=dlx.name)
    topology = Topology.of(dlx, dead, work, dlx.bind(dead))
    memory_url = f"memory://{unique}?rabbitmq={rabbitmq_profile}"
    seen: dict[str, tuple[int, int]] = {}
    for url in (amqp_url, memory_url):
        with open_transport(url) as t:
            t.declare(topology)
            try:
                sent = t.publish("", work.name, b"job")
                t.flush()
                sent.raise_for_outcome()
                nacks = _nacked_until_gone(t, work.name)
                for _ in range(50):  # the dead letter, if any, lands asynchronously on RabbitMQ
                    if nacks == NACKS or t.message_count(dead.name) == 1:
                        break
                    time.sleep(0.05)
                seen[url] = (nacks, t.message_count(dead.name))
            finally:
                t.delete_queue(work.name)
                t.delete_queue(dead.name)
    forget(memory_url)
    want = expected[rabbitmq_profile]
    assert seen[amqp_url] == (want, 0 if want == NACKS else 1)
    assert seen[memory_url] == seen[amqp_url]  # the embedded broker of the same release agrees


@pytest.mark.broker
@pytest.mark.slow
def test_the_largest_message_is_the_releases_default(
    amqp_url: str, rabbitmq_profile: str, unique: str
) -> None:
    queue = Queue(f"{unique}.big", durable=False, auto_delete=True)
    body = b"x" * (16 * 1024 * 1024 + 1)  # one byte over 4.0's max_message_size
    memory_url = f"memory://{unique}?rabbitmq={rabbitmq_profile}"
    seen = {}
    for url in (amqp_url, memory_url):
        with open_transport(url) as t:
            t.declare(Topology.of(queue))
            sent = t.publish("", queue.name, body)
            t.flush()
            code = getattr(sent.error, "code", None)
            seen[url] = (sent.outcome, code)
            t.delete_queue(queue.name)
    forget(memory_url)
    expected = (Outcome.CONFIRMED, None) if rabbitmq_profile == "3.10" else (Outcome.UNCONFIRMED, 406)
    assert seen[amqp_url] == expected
    assert seen[memory_url] == seen[amqp_url]
