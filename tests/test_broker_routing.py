"""The proof: `route()` predicts exactly the queues RabbitMQ delivers to.

Seeded random topologies (every exchange type, headers bindings under all four `x-match`
modes with void values, int-vs-float and `x-` keys, exchange-to-exchange bindings with
cycles, alternate exchanges, including the AE of an exchange reached only through an e2e
binding) are declared on the real broker under unique names. One message per case (exchange,
routing key, headers, CC/BCC) carries its case number in `message_id`; after the confirms,
every queue is drained once and what arrived is compared with `route()`, case by case.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from routing.pipeline import route
from routing.topology import DestinationType, Exchange, ExchangeType, Queue, Topology
from routing.transport.base import Properties
from routing.transport.rabbitmq import RabbitTransport

pytestmark = pytest.mark.broker

SEEDS = range(int(__import__("os").environ.get("ROUTING_TEST_SEEDS", "8")))
CASES_PER_TOPOLOGY = 160

WORDS = ["a", "b", "c"]
ROUTING_KEYS = ["", "a", "b", "c", "a.b", "b.a", "a.b.c", "a..b", "a.", ".a", "c.c.c.c"]
HEADER_VALUES: list[Any] = [1, 1.0, 2, 2.5, "1", "a", True, False, None, [1, "a"], [1.0, "a"], {"k": 1}]
HEADER_KEYS = ["h1", "h2", "x-k", "X-K"]


def _topic_key(rng: random.Random) -> str:
    words = [rng.choice([*WORDS, "*", "#", ""]) for _ in range(rng.randint(0, 3))]
    if sum(w == "#" for w in words) > 2:  # beyond two '#' 3.10's matcher gets exponential
        words = [w for w in words if w != "#"]
    return ".".join(words)


def _headers_arguments(rng: random.Random) -> dict[str, Any]:
    args: dict[str, Any] = {k: rng.choice(HEADER_VALUES) for k in rng.sample(HEADER_KEYS, rng.randint(0, 3))}
    mode = rng.choice(["all", "any", "all-with-x", "any-with-x", None])
    if mode is not None:
        args["x-match"] = mode
    return args


def _binding_key(rng: random.Random, kind: ExchangeType) -> str:
    if kind is ExchangeType.TOPIC:
        return _topic_key(rng)
    return rng.choice(ROUTING_KEYS)


def generate(rng: random.Random, prefix: str) -> Topology:
    """A random topology; names carry `prefix` so concurrent runs never meet."""
    kinds = list(ExchangeType)
    exchanges = []
    for i in range(rng.randint(4, 7)):
        kind = kinds[i % 4] if i < 4 else rng.choice(kinds)
        exchanges.append((f"{prefix}-x{i}", kind))
    names = [n for n, _ in exchanges]
    alternates = {n: rng.choice(names) for n in names if rng.random() < 0.4}
    entities: list[Any] = [
        Exchange(n, kind, durable=False, alternate_exchange=alternates.get(n)) for n, kind in exchanges
    ]
    # Always one chain where the AE belongs to an exchange reached only through e2e:
    # x0 -> via (internal topic, AE `ae`) -> back to x0 (a cycle); ae (fanout) -> q0.
    ae = Exchange(f"{prefix}-xae", "fanout", durable=False)
    via = Exchange(f"{prefix}-xvia", "topic", durable=False, internal=True, alternate_exchange=ae.name)
    queues = [f"{prefix}-q{i}" for i in range(rng.randint(4, 7))]
    first = entities[0]
    entities += [
        via,
        ae,
        # Exclusive: gone with the test's connection, whatever happens.
        *(Queue(q, durable=False, exclusive=True) for q in queues),
        first.bind(via, _binding_key(rng, first.type)),
        via.bind(first, "a.#"),  # other keys find nothing on `via`: its AE applies
        ae.bind(queues[0]),
    ]
    by_name = {e.name: e for e in entities if isinstance(e, Exchange)}
    for _ in range(rng.randint(6, 14)):
        source = rng.choice([*names, via.name])
        kind = by_name[source].type
        to_exchange = rng.random() < 0.3
        destination: Any = by_name[rng.choice(names)] if to_exchange else rng.choice(queues)
        if kind is ExchangeType.HEADERS:
            entities.append(by_name[source].bind(destination, arguments=_headers_arguments(rng)))
        else:
            entities.append(by_name[source].bind(destination, _binding_key(rng, kind)))
    return Topology.of(entities)


def cases(rng: random.Random, topology: Topology) -> Iterator[tuple[str, str, dict[str, Any]]]:
    publishable = [e.name for e in topology.exchanges if not e.internal] + [""]
    queues = [q.name for q in topology.queues]
    for _ in range(CASES_PER_TOPOLOGY):
        exchange = rng.choice(publishable)
        key = rng.choice(queues) if exchange == "" and rng.random() < 0.7 else rng.choice(ROUTING_KEYS)
        headers = {k: rng.choice(HEADER_VALUES) for k in rng.sample(HEADER_KEYS, rng.randint(0, 4))}
        if rng.random() < 0.15:
            headers[rng.choice(["CC", "BCC"])] = rng.sample(ROUTING_KEYS + queues, rng.randint(1, 2))
        yield exchange, key, headers


@pytest.fixture(scope="module")
def rabbit(amqp_url: str) -> Iterator[RabbitTransport]:
    with RabbitTransport(amqp_url, name="routing-broker-routing") as transport:
        yield transport


@pytest.mark.parametrize("seed", SEEDS)
def test_route_predicts_what_rabbitmq_delivers(
    rabbit: RabbitTransport, unique: str, seed: int, rabbitmq_profile: str
) -> None:
    rng = random.Random(seed)
    topology = generate(rng, unique)
    rabbit.declare(topology)
    try:
        all_cases = list(cases(rng, topology))
        expected = {}
        for n, (exchange, key, headers) in enumerate(all_cases):
            expected[n] = route(topology, exchange, key, headers, rabbitmq=rabbitmq_profile)
            rabbit.publish(exchange, key, b"", Properties(message_id=str(n), headers=headers))
        assert rabbit.flush(timeout=30) == []

        arrived: dict[int, list[str]] = defaultdict(list)
        for q in topology.queues:
            while (delivery := rabbit.get(q.name)) is not None:
                arrived[int(delivery.properties.message_id or -1)].append(q.name)
                assert "BCC" not in delivery.headers  # RabbitMQ strips it
                rabbit.ack(delivery)

        wrong = []
        for n, (exchange, key, headers) in enumerate(all_cases):
            got = arrived.get(n, [])
            if sorted(got) != sorted(expected[n]):
                wrong.append(
                    f"case {n}: exchange {exchange!r} key {key!r} headers {headers}: "
                    f"route() {sorted(expected[n])} but RabbitMQ {sorted(got)}"
                )
        assert not wrong, f"seed {seed}: {len(wrong)} of {len(all_cases)} cases differ\n" + "\n".join(
            wrong[:20]
        )
        reached = sum(1 for n in expected if expected[n])
        assert reached > len(all_cases) // 10, "too few routed cases to prove anything"
    finally:
        for e in topology.exchanges:
            rabbit.delete_exchange(e.name)
        for q in topology.queues:
            rabbit.delete_queue(q.name)


def test_a_wrong_prediction_is_caught(rabbit: RabbitTransport, unique: str) -> None:
    """The comparison can fail: a topology that differs from the declared one predicts wrong."""
    x = Exchange(f"{unique}-x", "topic", durable=False)
    q = Queue(f"{unique}-q", durable=False, exclusive=True)
    declared = Topology.of(x, q, x.bind(q, "a.*"))
    believed = Topology.of(x, q, x.bind(q, "a.#"))
    rabbit.declare(declared)
    try:
        rabbit.publish(x.name, "a", b"")
        rabbit.flush(timeout=10)
        got = {q.name} if rabbit.get(q.name) is not None else set()
        assert route(believed, x.name, "a") != got
        assert route(declared, x.name, "a") == got
    finally:
        rabbit.delete_exchange(x.name)
        rabbit.delete_queue(q.name)


def test_generator_covers_what_it_claims() -> None:
    seen: set[str] = set()
    for seed in SEEDS:
        topology = generate(random.Random(seed), "p")
        for b in topology.bindings:
            source = topology.exchange(b.source)
            assert source is not None
            seen.add(str(source.type))
            if b.destination_type is DestinationType.EXCHANGE:
                seen.add("e2e")
            seen.add(str(b.arguments.get("x-match", "")))
        if any(e.alternate_exchange for e in topology.exchanges if not e.name.endswith("xvia")):
            seen.add("random-ae")
    assert {"direct", "fanout", "topic", "headers", "e2e", "all", "any", "all-with-x", "any-with-x"} <= seen
    assert "random-ae" in seen
