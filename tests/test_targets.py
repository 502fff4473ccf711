"""`Topology.check(rabbitmq=...)`: what a release deprecates or refuses, per entity (pure)."""

from __future__ import annotations

import pytest

from routing import Queue, Topology
from routing.profiles import ProfileError

TOPOLOGY = Topology.of(
    Queue("tmp", durable=False),
    Queue("lazy", arguments={"x-queue-mode": "lazy"}),
    Queue("v1", arguments={"x-queue-version": 1}),
    Queue("located", arguments={"x-queue-master-locator": "min-masters"}),
    Queue("jobs", type="quorum"),
    Queue("limited", type="quorum", delivery_limit=5),
    Queue("mine", durable=False, exclusive=True),
    Queue("plain"),
)


def _by_queue(release: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for finding in TOPOLOGY.check(rabbitmq=release):
        out.setdefault(finding.entity, []).append(str(finding))
    return out


def test_310_takes_all_of_it_silently() -> None:
    assert TOPOLOGY.check(rabbitmq="3.10") == ()
    assert TOPOLOGY.check(rabbitmq="3.12.1") == ()


def test_40_warns_and_names_entity_release_and_what_to_use() -> None:
    found = _by_queue("4.0.5")
    assert set(found) == {"queue 'tmp'", "queue 'lazy'", "queue 'v1'", "queue 'located'", "queue 'jobs'"}
    assert found["queue 'tmp'"] == [
        "queue 'tmp': RabbitMQ 4.0.5 deprecates a non-durable, non-exclusive queue (refused from 4.3 on); "
        "use a durable queue (with a queue TTL, `expires`, to clean it up) or an exclusive one"
    ]
    assert "use x-queue-leader-locator" in found["queue 'located'"][0]
    assert "gives a quorum queue without delivery_limit a limit of 20" in found["queue 'jobs'"][0]
    assert not any(f.refused for f in TOPOLOGY.check(rabbitmq="4.0"))


def test_43_refuses_what_it_denies_by_default() -> None:
    refused = {f.entity for f in TOPOLOGY.check(rabbitmq="4.3.0") if f.refused}
    assert refused == {"queue 'tmp'", "queue 'lazy'", "queue 'v1'", "queue 'located'"}
    assert "RabbitMQ 4.3.0 refuses a non-durable, non-exclusive queue;" in str(
        next(f for f in TOPOLOGY.check(rabbitmq="4.3.0") if f.entity == "queue 'tmp'")
    )


def test_the_default_target_is_the_newest_verified_release() -> None:
    assert TOPOLOGY.check() == TOPOLOGY.check(rabbitmq="4.0")


def test_an_unknown_release_is_a_clear_error() -> None:
    with pytest.raises(ProfileError, match="supported"):
        TOPOLOGY.check(rabbitmq="3.8.9")


def test_delivery_limit_minus_one_is_none_on_40_and_zero_on_310() -> None:
    # Checked live in tests/test_release_defaults.py: 3.10 dead-letters at the first return.
    topology = Topology.of(Queue("q", type="quorum", delivery_limit=-1))
    [warning] = topology.check(rabbitmq="3.10")
    assert "delivery_limit=-1 as 0" in str(warning) and not warning.refused
    assert topology.check(rabbitmq="4.0") == ()
