"""The pytest plugin (entry point `pytest11`, name `routing`): fixtures for testing code that
publishes and handles messages, on the embedded broker by default and on RabbitMQ with
`--routing-url URL` (or `ROUTING_PYTEST_URL`). Disable it with `-p no:routing`.

Fixtures: `routing_url`, `routing_broker` (a `routing.testing.Broker`), `routing_transport`
(its recording transport), `routing_topology` (override it) and `routing_topology_declared`
(the broker with the test's topology declared, and deleted after on RabbitMQ: the one of its
`@pytest.mark.routing_topology(topology)` marker, else `routing_topology`'s).

pytest loads this module at start-up in every run of an environment that has routing: it
imports nothing of routing's until a test asks for one of its fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from routing.testing import Broker
    from routing.topology import Topology
    from routing.transport import Transport

__all__ = [
    "ENV_URL",
    "pytest_addoption",
    "pytest_configure",
    "routing_broker",
    "routing_topology",
    "routing_topology_declared",
    "routing_transport",
    "routing_url",
]

# Not ROUTING_URL (what the CLI and open_transport() use: it may name a broker that matters),
# nor ROUTING_TEST_URL (routing's own test suite's).
ENV_URL = "ROUTING_PYTEST_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("routing", "routing: the broker the routing_* fixtures use")
    group.addoption(
        "--routing-url",
        default=None,
        metavar="URL",
        help=f"run the routing_* fixtures on this broker (amqp://...); default ${ENV_URL}, else an "
        "embedded broker per test",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "routing_topology(topology): the Topology that routing_topology_declared declares"
    )


@pytest.fixture
def routing_url(request: pytest.FixtureRequest) -> str:
    """The broker this test's routing fixtures use: `--routing-url`, `$ROUTING_PYTEST_URL`, or
    an embedded broker of this test's own (`memory://pytest-<uuid>`)."""
    from routing.testing import Broker

    return Broker.url_for_test(request.config.getoption("--routing-url") or os.environ.get(ENV_URL))


@pytest.fixture
def routing_broker(routing_url: str) -> Iterator[Broker]:
    """The broker under test as this test sees it (`routing.testing.Broker`): closed after,
    with what it created on RabbitMQ deleted."""
    from routing.testing import Broker

    with Broker(routing_url) as broker:
        yield broker


@pytest.fixture
def routing_transport(routing_broker: Broker) -> Transport:
    """A transport on the broker under test that records what is published through it."""
    return routing_broker.transport


@pytest.fixture
def routing_topology() -> Topology:
    """The topology `routing_topology_declared` declares: override this fixture (in a test
    module or a conftest.py) to name yours, or mark a test `@pytest.mark.routing_topology(t)`."""
    pytest.fail(
        "routing_topology_declared needs a topology: define a `routing_topology` fixture that "
        "returns one, or mark the test @pytest.mark.routing_topology(topology)",
        pytrace=False,
    )


@pytest.fixture
def routing_topology_declared(routing_broker: Broker, request: pytest.FixtureRequest) -> Broker:
    """The broker under test with the test's topology declared on it: its
    `routing_topology` marker's, else the `routing_topology` fixture's."""
    marker = request.node.get_closest_marker("routing_topology")
    if marker is not None and len(marker.args) != 1:
        pytest.fail("@pytest.mark.routing_topology takes one Topology", pytrace=False)
    topology = marker.args[0] if marker is not None else request.getfixturevalue("routing_topology")
    from routing.errors import RoutingError

    try:
        routing_broker.declare(topology)
    except RoutingError as exc:  # the broker's answer says it all; routing's frames would not
        pytest.fail(f"routing_topology_declared: {exc}", pytrace=False)
    return routing_broker
