"""Differential test: random topologies and operations on the embedded broker and on RabbitMQ.

Each scenario (seeded, so a failure is reproducible by its id) declares a small topology
(an exchange, one to three classic or quorum queues with max-length, overflow, dead-lettering
and delivery limits, a dead-letter queue) and runs publishes, gets, acks, nacks, rejects,
consumers and cancels on both brokers, the embedded one in the live broker's profile. What a
client sees after each step (the step's result: outcomes, bodies, redelivered flags, headers
with `x-death`; then every queue's depth) and every queue's contents at the end must be equal.
A differing scenario is shrunk to the fewest steps that still differ and printed readably.

`ROUTING_DIFFERENTIAL_SCENARIOS` (default 40) and `ROUTING_DIFFERENTIAL_SEED` (default 12)
choose how many and which.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import pytest

from routing.embedded import forget
from routing.profiles import profile
from routing.topology import Binding, Exchange, Queue
from routing.transport import Transport, open_transport
from routing.transport.memory import MemoryTransport

from .scenario import (
    Cancel,
    Consume,
    Get,
    LiveDepth,
    Publish,
    Receive,
    Scenario,
    Settle,
    Step,
    first_difference,
    observe,
)

pytestmark = pytest.mark.broker

COUNT = int(os.environ.get("ROUTING_DIFFERENTIAL_SCENARIOS", "40"))
SEED = int(os.environ.get("ROUTING_DIFFERENTIAL_SEED", "12"))
KEYS = ("a", "b")


def generate(rng: random.Random, prefix: str) -> Scenario:
    """A random scenario; names start with `prefix` (unique per run)."""
    kind = rng.choice(["fanout", "direct", "topic"])
    x = Exchange(f"{prefix}.x", kind, durable=False, auto_delete=True)
    dlx = Exchange(f"{prefix}.dlx", "fanout", durable=False, auto_delete=True)
    dlq = Queue(f"{prefix}.dlq")
    entities: list[Exchange | Queue | Binding] = [x, dlx, dlq, dlx.bind(dlq)]
    queues = []
    for i in range(rng.randint(1, 3)):
        quorum = rng.random() < 0.4
        args: dict[str, Any] = {"type": "quorum"} if quorum else {}
        if rng.random() < 0.6:
            args["max_length"] = rng.randint(1, 3)
            overflows = ["drop-head", "reject-publish"] + ([] if quorum else ["reject-publish-dlx"])
            args["overflow"] = rng.choice(overflows)
        if rng.random() < 0.7:
            # Into the dead-letter exchange, or back into the topic's own exchange.
            args["dead_letter_exchange"] = dlx.name if rng.random() < 0.8 else x.name
            if rng.random() < 0.3:
                args["dead_letter_routing_key"] = rng.choice(KEYS)
        if quorum and rng.random() < 0.5:
            args["delivery_limit"] = rng.randint(0, 2)
        q = Queue(f"{prefix}.q{i}", **args)
        queues.append(q)
        entities.append(q)
        key = {"fanout": "", "direct": rng.choice(KEYS), "topic": rng.choice(["a", "#", "*"])}[kind]
        entities.append(x.bind(q, key))
        if rng.random() < 0.2:
            entities.append(dlx.bind(q))
    names = [q.name for q in queues] + [dlq.name]
    steps: list[Step] = []
    consumers = 0
    for n in range(rng.randint(6, 14)):
        roll = rng.random()
        if roll < 0.4 or n == 0:
            steps.append(Publish(x.name, rng.choice(KEYS), f"m{n}"))
        elif roll < 0.55:
            steps.append(Get(rng.choice(names)))
        elif roll < 0.75:
            steps.append(Settle(rng.randint(0, 3), rng.choice(["ack", "requeue", "reject"])))
        elif roll < 0.83 and consumers < 2:
            steps.append(Consume(rng.choice(names), rng.randint(1, 3)))
            consumers += 1
        elif roll < 0.95 and consumers:
            steps.append(Receive(rng.randrange(consumers)))
        elif consumers:
            steps.append(Cancel(rng.randrange(consumers)))
        else:
            steps.append(Publish(x.name, rng.choice(KEYS), f"m{n}"))
    return Scenario(tuple(entities), tuple(steps))


class Pair:
    """A scenario on both brokers, compared."""

    def __init__(self, amqp_url: str, live_profile: str, unique: str) -> None:
        self.live: Transport = open_transport(amqp_url)
        self.depth = LiveDepth(amqp_url)
        self.url = f"memory://{unique}"
        self.profile = profile(live_profile)
        self.runs = 0

    def differ(self, scenario: Scenario) -> tuple[int, Any, Any] | None:
        """The first differing observation (index, rabbitmq, embedded), or None."""
        self.runs += 1
        rabbit = observe(self.live, scenario, self.depth)
        memory = MemoryTransport(self.url)
        memory.broker.profile = self.profile
        try:
            embedded = observe(memory, scenario)
        finally:
            memory.close()
            forget(self.url)
        at = first_difference(rabbit, embedded)
        if at is None:
            return None
        return at, rabbit[at] if at < len(rabbit) else None, embedded[at] if at < len(embedded) else None

    def shrink(self, scenario: Scenario, budget: int = 40) -> tuple[Scenario, tuple[int, Any, Any]]:
        """Drop steps one by one while the scenario still differs (twice, to be sure it does)."""
        found = self.differ(scenario)
        assert found is not None
        steps = list(scenario.steps)
        i = len(steps) - 1
        while i >= 0 and self.runs < budget:
            trial = Scenario(scenario.entities, tuple(steps[:i] + steps[i + 1 :]))
            result = self.differ(trial)
            if result is not None and self.differ(trial) is not None:
                steps, found = list(trial.steps), result
            i -= 1
        return Scenario(scenario.entities, tuple(steps)), found

    def close(self) -> None:
        self.depth.close()
        self.live.close()


@pytest.fixture
def pair(amqp_url: str, rabbitmq_profile: str, unique: str) -> Iterator[Pair]:
    p = Pair(amqp_url, rabbitmq_profile, unique)
    try:
        yield p
    finally:
        p.close()


@pytest.mark.parametrize("seed", range(SEED, SEED + COUNT))
def test_embedded_broker_agrees_with_rabbitmq(seed: int, pair: Pair, unique: str) -> None:
    scenario = generate(random.Random(seed), unique)
    if pair.differ(scenario) is None:
        return
    if pair.differ(scenario) is None:  # once only: RabbitMQ's timing, not a difference
        pytest.skip(f"seed {seed}: differed once, agreed when run again")
    small, (at, rabbit, embedded) = pair.shrink(scenario)
    pytest.fail(
        f"seed {seed}: the embedded broker differs from RabbitMQ\n{small}\n"
        f"first difference at observation {at}:\n  rabbitmq: {rabbit}\n  embedded: {embedded}",
        pytrace=False,
    )
