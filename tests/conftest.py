"""Shared fixtures. Tests marked `broker` talk to a real RabbitMQ.

The broker is `ROUTING_TEST_URL` (default amqp://guest:guest@127.0.0.1:5672/), its management
API `ROUTING_TEST_MANAGEMENT_URL` (`tests/broker_under_test.py`). When it does not answer,
broker tests are skipped on a developer's machine and fail under `CI=true`. Tests assume no
port: what they expect to see of the broker's address comes from these fixtures.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import pytest
from broker_under_test import AMQP_URL, MANAGEMENT_URL, admin, naming_management, release

if TYPE_CHECKING:
    from routing.transport.memory import MemoryTransport

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _require(url: str, port: int, what: str) -> None:
    if _answers(url, port):
        return
    message = f"{what} does not answer at {urlsplit(url).hostname}:{urlsplit(url).port or port}"
    if IN_CI:
        pytest.fail(f"{message}; CI must run the broker tests", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The RabbitMQ URL for broker tests, naming its management API (`?management=`) when the
    library would not find it by itself; skips (or fails in CI) when the broker is down."""
    _require(AMQP_URL, 5672, "RabbitMQ")
    return naming_management(AMQP_URL, MANAGEMENT_URL)


@pytest.fixture(scope="session")
def management_url() -> str:
    """The management HTTP API's base URL, with credentials."""
    _require(MANAGEMENT_URL, 15672, "RabbitMQ's management API")
    return MANAGEMENT_URL


@pytest.fixture(scope="session")
def rabbitmq_version(amqp_url: str) -> str:
    """The version the broker under test announces in `connection.start` ("3.10.8", "4.0.5")."""
    return release(AMQP_URL)


@pytest.fixture(scope="session")
def rabbitmq_profile(rabbitmq_version: str) -> str:
    """The profile name ("3.10", "4.0") of the broker under test."""
    from routing.profiles import profile

    return profile(rabbitmq_version).name


@pytest.fixture
def vhost_url(amqp_url: str, management_url: str, unique: str) -> Iterator[str]:
    """An AMQP URL for a vhost of this test's own (it sees only what the test made), naming
    the management API when the library would not find it; the vhost is deleted after."""
    vhost = quote(unique, safe="")
    admin(management_url, "PUT", f"vhosts/{vhost}", {})
    user = urlsplit(management_url).username
    admin(
        management_url, "PUT", f"permissions/{vhost}/{user}", {"configure": ".*", "write": ".*", "read": ".*"}
    )
    try:
        yield naming_management(urlsplit(amqp_url)._replace(path=f"/{vhost}").geturl(), management_url)
    finally:
        admin(management_url, "DELETE", f"vhosts/{vhost}")


@pytest.fixture
def task_queue(amqp_url: str, unique: str) -> Iterator[str]:
    """A durable queue with no dead-letter exchange, as the pika tutorial declares `task_queue`."""
    from routing.topology import Queue, Topology
    from routing.transport import open_transport

    name = f"{unique}.task_queue"
    with open_transport(amqp_url) as t:
        t.declare(Topology.of(Queue(name)))
    yield name
    with open_transport(amqp_url) as t:
        t.delete_queue(name)


@pytest.fixture
def unique() -> str:
    """A prefix unique to this test, so runs never collide on the shared broker."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.broker)])
def either_url(request: pytest.FixtureRequest, unique: str) -> Iterator[str]:
    """The test runs twice: on an embedded broker of its own (forgotten after), then on RabbitMQ."""
    if request.param == "memory":
        from routing.embedded import forget

        yield f"memory://{unique}"
        forget(f"memory://{unique}")
    else:
        yield request.getfixturevalue("amqp_url")


@pytest.fixture
def routing_url(either_url: str) -> str:
    """The pytest plugin's broker (routing.pytest_plugin): tests here that use its fixtures run
    on the embedded broker and then on RabbitMQ, as `either_url` tests do."""
    return either_url


@pytest.fixture
def memory(unique: str) -> Iterator[MemoryTransport]:
    """A transport on an embedded broker of this test's own, forgotten after."""
    from routing.embedded import forget
    from routing.transport.memory import MemoryTransport

    with MemoryTransport(f"memory://{unique}") as transport:
        yield transport
    forget(f"memory://{unique}")


@pytest.fixture(autouse=True)
def _broker_marker(request: pytest.FixtureRequest) -> None:
    """A `broker` test needs RabbitMQ even if it never asks for `amqp_url` itself."""
    if request.node.get_closest_marker("broker"):
        request.getfixturevalue("amqp_url")
    only = request.node.get_closest_marker("rabbitmq")
    if only is not None:
        wanted = only.args[0]
        live = request.getfixturevalue("rabbitmq_version")
        from routing.profiles import profile

        if profile(live).name != profile(wanted).name:
            pytest.skip(f"true only for RabbitMQ {wanted}; the broker under test is RabbitMQ {live}")


# Figures that fault and failover tests measure (messages sent, lost, duplicates, seconds
# to recover), printed at the end of the run whether the tests pass or not.
_FIGURES: list[tuple[str, dict[str, object]]] = []


@pytest.fixture
def report_figures(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """`report_figures(sent=5000, lost=0, ...)`: shown in the run's summary under this test."""

    def record(**figures: object) -> None:
        _FIGURES.append((request.node.nodeid, figures))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("figures measured by the fault tests")
    for nodeid, figures in _FIGURES:
        terminalreporter.write_line(f"{nodeid}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


# Fixtures that reach the broker under test: a test that asks for one is a broker test even
# when it forgot the marker, so CI's second run (`-m "broker or conformance"`, on 4.0) runs it.
_BROKER_FIXTURES = {"amqp_url", "management_url", "rabbitmq_version", "rabbitmq_profile"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _BROKER_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker(
            "broker"
        ):
            item.add_marker(pytest.mark.broker)
