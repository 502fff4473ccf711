"""The pytest plugin (`routing.pytest_plugin`, entry point `pytest11`) as a user meets it: test
files of a user's, run by pytester, that pass and that fail (their failure messages read), on
the embedded broker and on RabbitMQ (a vhost of the test's own, so what the plugin leaves
behind is seen); and the shop example's test file, examples/test_with_plugin.py, on both.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from routing import Queue, Topology, open_transport
from routing.errors import RoutingError
from routing.testing import Broker

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parents[1]

# What a user's test file starts with: a topology of its own, an app with fast retries.
PREAMBLE = """
import asyncio
import pytest
from routing import Exchange, Publisher, Queue, Topology
from routing.worker import App, Permanent, RetryPolicy

JOB = {"input": "a.jpg", "width": 1, "height": 1}
events = Exchange("t.events", "topic")
orders, billing = Queue("t.orders"), Queue("t.billing", dead_letter_exchange="t.dlx")
dlx, dead = Exchange("t.dlx", "fanout"), Queue("t.dead")
TOPOLOGY = Topology.of(
    events, orders, billing, dlx, dead,
    events.bind(orders, "order.*"), events.bind(billing, "order.paid"), dlx.bind(dead),
)
app = App(retry=RetryPolicy(initial=0.01, max_delay=0.02, max_attempts=3))
done, failed_once = [], set()

@app.handler("task.resize_image")
def resize(event):
    name = event.data["input"]
    if name == "bad.jpg":
        raise ValueError("bad input " + name)
    if name == "flaky.jpg" and name not in failed_once:
        failed_once.add(name)
        raise ConnectionError("try again")
    done.append(name)

async_app = App(retry=RetryPolicy(initial=0.01, max_delay=0.02, max_attempts=2))

@async_app.handler("task.resize_image")
async def resize_async(event):
    await asyncio.sleep(0)
    if event.data["input"] == "bad.jpg":
        raise Permanent("cannot read bad.jpg")
    done.append(event.data["input"])

def emit(transport, key, **job):
    Publisher(transport, source="urn:t").emit("t.events", key, "task.resize_image", {**JOB, **job})

@pytest.fixture
def routing_topology():
    return TOPOLOGY
"""

PASSING = """
def test_routing(routing_topology_declared, routing_transport):
    emit(routing_transport, "order.created")
    emit(routing_transport, "order.paid", input="b.jpg")
    routing_transport.publish("t.events", "shipment.sent", b"x")
    routing_transport.publish("t.events", "refund", b"y", mandatory=True)
    broker = routing_topology_declared
    assert len(broker.assert_published("t.events", type="task.resize_image", count=2)) == 2
    broker.assert_routed("t.orders", routing_key="order.created")
    broker.assert_routed(["t.orders", "t.billing"], routing_key="order.paid")
    broker.assert_unrouted(routing_key="shipment.sent")
    broker.assert_unrouted(routing_key="refund")
    broker.assert_queue("t.orders", types=["task.resize_image", "task.resize_image"])
    broker.assert_queue("t.orders", count=2)  # looking leaves the messages where they are

def test_a_broker_dead_letter(routing_topology_declared, routing_transport):
    emit(routing_transport, "order.paid")
    routing_transport.flush()
    delivery = routing_transport.get("t.billing")
    routing_transport.reject(delivery, requeue=False)
    routing_topology_declared.assert_dead_lettered("t.dead", reason="rejected", count=1)

def test_a_blocking_app(routing_topology_declared, routing_transport):
    broker = routing_topology_declared
    broker.declare(Topology.of(events, app.topology("t.work"), events.bind("t.work", "job")))
    for name in ("a.jpg", "flaky.jpg", "bad.jpg"):
        emit(routing_transport, "job", input=name)
    stats = broker.run_app(app, "t.work")
    assert (stats.processed, stats.retried, stats.dead_lettered) == (2, 3, 1)
    assert sorted(done) == ["a.jpg", "flaky.jpg"]
    broker.assert_dead_lettered("t.work.dead", reason="ValueError: bad input bad.jpg", count=1)
    broker.assert_queue("t.work", count=0)

def test_an_async_app(routing_topology_declared, routing_transport):
    done.clear()
    broker = routing_topology_declared
    broker.declare(Topology.of(events, async_app.topology("t.async"), events.bind("t.async", "job")))
    emit(routing_transport, "job", input="a.jpg")
    emit(routing_transport, "job", input="bad.jpg")
    stats = broker.run_app(async_app, "t.async")
    assert (stats.processed, stats.dead_lettered) == (1, 1)
    broker.assert_dead_lettered("t.async.dead", reason="Permanent: cannot read bad.jpg")

def test_an_async_app_from_a_coroutine(routing_topology_declared, routing_transport):
    broker = routing_topology_declared
    broker.declare(Topology.of(events, async_app.topology("t.async"), events.bind("t.async", "job")))
    emit(routing_transport, "job", input="d.jpg")
    stats = asyncio.run(broker.run_app_async(async_app, "t.async"))
    assert stats.processed == 1

@pytest.mark.routing_topology(Topology.of(Queue("t.marked")))
def test_a_marker_names_the_topology(routing_topology_declared):
    assert routing_topology_declared.queues == ("t.marked",)
"""

FAILING = """
def test_routed_elsewhere(routing_topology_declared, routing_transport):
    emit(routing_transport, "order.created")
    routing_topology_declared.assert_routed(["t.orders", "t.billing"], type="task.resize_image")

def test_routed_after_all(routing_topology_declared, routing_transport):
    emit(routing_transport, "order.created")
    routing_topology_declared.assert_unrouted(routing_key="order.created")

def test_not_published(routing_topology_declared, routing_transport):
    emit(routing_transport, "order.created")
    routing_topology_declared.assert_published(routing_key="order.paid")

def test_nothing_to_route(routing_topology_declared):
    routing_topology_declared.assert_routed("t.orders", type="task.resize_image")

def test_another_reason(routing_topology_declared, routing_transport):
    broker = routing_topology_declared
    broker.declare(Topology.of(events, app.topology("t.work"), events.bind("t.work", "job")))
    emit(routing_transport, "job", input="bad.jpg")
    broker.run_app(app, "t.work")
    broker.assert_dead_lettered("t.work.dead", reason="KeyError", timeout=0.2)

def test_other_messages(routing_topology_declared, routing_transport):
    emit(routing_transport, "order.created")
    routing_topology_declared.assert_queue("t.orders", types=["task.resize_image"] * 2, timeout=0.2)

def test_never_done(routing_topology_declared, routing_transport):
    slow = App(retry=RetryPolicy(initial=30, max_delay=30, max_attempts=2))
    slow.handler("task.resize_image")(lambda event: 1 / 0)
    broker = routing_topology_declared
    broker.declare(Topology.of(events, slow.topology("t.slow"), events.bind("t.slow", "job")))
    emit(routing_transport, "job")
    broker.run_app(slow, "t.slow", timeout=0.5)
"""

# No `routing_topology` of its own, no marker.
BARE = """
def test_no_topology(routing_topology_declared):
    pass
"""

# pytester's own run: strict markers (the plugin registers its own) and warnings as errors.
INI = """
[pytest]
addopts = --strict-markers -p no:cacheprovider
filterwarnings = error
"""


def _management_get(management_url: str, path: str) -> object:
    parts = urlsplit(management_url)
    token = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    request = urllib.request.Request(
        f"{parts.scheme}://{parts.hostname}:{parts.port}/api/{path}",
        headers={"Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.broker)])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: the plugin's default, an embedded broker per test; else RabbitMQ, a vhost of
    this test's own (deleted after)."""
    yield None if request.param == "memory" else request.getfixturevalue("vhost_url")


def _left_in(management_url: str, vhost_url: str) -> list[str]:
    """The queues and exchanges (not the broker's own) in the vhost of `vhost_url`."""
    vhost = quote(urlsplit(vhost_url).path[1:], safe="")
    queues = [f"queue {q['name']}" for q in _management_get(management_url, f"queues/{vhost}")]  # type: ignore[attr-defined]
    exchanges = [
        f"exchange {x['name']}"
        for x in _management_get(management_url, f"exchanges/{vhost}")  # type: ignore[attr-defined]
        if x["name"] and not x["name"].startswith("amq.")
    ]
    return queues + exchanges


def _run(pytester: pytest.Pytester, url: str | None, body: str, **more: str) -> pytest.RunResult:
    pytester.makeini(INI)
    pytester.makepyfile(test_user=PREAMBLE + body, **more)
    return pytester.runpytest(*(["--routing-url", url] if url else []))


def test_a_users_passing_tests(
    pytester: pytest.Pytester, broker_url: str | None, request: pytest.FixtureRequest
) -> None:
    result = _run(pytester, broker_url, PASSING)
    result.assert_outcomes(passed=6)
    if broker_url is not None:  # what the tests declared is gone
        assert _left_in(request.getfixturevalue("management_url"), broker_url) == []


def _shows(result: pytest.RunResult, lines: list[str]) -> None:
    """These lines in this order in the output, `*` any text (and `[` itself, not fnmatch's class)."""
    result.stdout.fnmatch_lines([line.replace("[", "[[]") for line in lines])


def test_a_users_failing_tests_read_well(pytester: pytest.Pytester, broker_url: str | None) -> None:
    result = _run(pytester, broker_url, FAILING, test_bare=BARE)
    result.assert_outcomes(failed=7, errors=1)
    _shows(
        result,
        [
            "*AssertionError: task.resize_image (id *) to exchange 't.events' key 'order.created' "
            "was routed to other queues than expected",
            "*  expected: ['t.billing', 't.orders']",
            "*  actual:   ['t.orders']",
            "*  missing:  ['t.billing']",
            "*  extra:    []",
        ],
    )
    _shows(result, ["*key 'order.created' was routed, to ['t.orders']; expected it unrouted"])
    _shows(
        result,
        [
            "*AssertionError: expected a message with key 'order.paid' published through routing_transport, found 0",
            "*  published:",
            "*    - task.resize_image (id *) to exchange 't.events' key 'order.created'",
        ],
    )
    _shows(
        result,
        [
            "*AssertionError: no message with type 'task.resize_image' was published through routing_transport",
            "*  published:",
            "*    (none)",
        ],
    )
    _shows(
        result,
        [
            "*AssertionError: expected a dead letter in 't.work.dead' with a reason containing 'KeyError', "
            "found 0 within 0.2 s",
            "*  in 't.work.dead':",
            "*    - task.resize_image (id *): 'ValueError: bad input bad.jpg', attempts 3",
        ],
    )
    _shows(
        result,
        [
            "*AssertionError: queue 't.orders' does not hold what was expected (waited 0.2 s)",
            "*  expected: ['task.resize_image', 'task.resize_image']",
            "*  actual:   ['task.resize_image']",
        ],
    )
    _shows(
        result,
        ["*AssertionError: run_app: the app was not done within 0.5 s: 't.slow.retry.30000ms' holds 1*"],
    )
    _shows(result, ["*routing_topology_declared needs a topology: define a `routing_topology` fixture*"])
    # Each failure points at the user's line, not into the plugin.
    for module in ("_broker", "_run"):
        result.stdout.no_fnmatch_line(f"*routing/testing/{module}.py:*")
    assert result.stdout.str().count(": AssertionError\n") == 7


@pytest.mark.broker
def test_what_was_there_before_stays(pytester: pytest.Pytester, vhost_url: str, management_url: str) -> None:
    with open_transport(vhost_url) as transport:
        transport.declare(Topology.of(Queue("t.orders")))  # the broker's before the tests
    result = _run(pytester, vhost_url, PASSING)
    result.assert_outcomes(passed=6)
    assert _left_in(management_url, vhost_url) == ["queue t.orders"]
    with open_transport(vhost_url) as transport:
        assert transport.message_count("t.orders") == 0  # emptied again after each test
        transport.publish("", "t.orders", b"not the tests'")
        assert transport.flush() == []
    result = pytester.runpytest("--routing-url", vhost_url, "-k", "test_routing")
    result.assert_outcomes(errors=1)
    _shows(
        result,
        [
            "routing_topology_declared: queues of the topology were on the broker before this test, "
            "with messages ('t.orders' holds 1) at amqp://guest:***@*: the test would see them. Purge them*"
        ],
    )


def test_a_queue_with_messages_before_is_refused(either_url: str, unique: str) -> None:
    name = f"{unique}.old"
    with open_transport(either_url) as transport:
        transport.declare(Topology.of(Queue(name)))
        transport.publish("", name, b"left over")
        assert transport.flush() == []
        try:
            with (
                Broker(either_url) as broker,
                pytest.raises(RoutingError, match=rf"'{name}' holds 1") as raised,
            ):
                broker.declare(Topology.of(Queue(name), Queue(f"{unique}.new")))
            assert "give the tests a vhost of their own" in str(raised.value)
            assert transport.message_count(name) == 1  # refused, not purged
        finally:
            transport.delete_queue(name)
            transport.delete_queue(f"{unique}.new")


def test_the_url_option_env_and_default(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        test_user="""
import os
def test_url(routing_url, routing_transport):
    assert routing_url == os.environ["EXPECTED"] or (os.environ["EXPECTED"] == "memory" and routing_url.startswith("memory://pytest-"))
"""
    )
    monkeypatch.delenv("ROUTING_PYTEST_URL", raising=False)
    monkeypatch.setenv("EXPECTED", "memory")
    pytester.runpytest().assert_outcomes(passed=1)
    monkeypatch.setenv("ROUTING_PYTEST_URL", "memory://from-env")
    monkeypatch.setenv("EXPECTED", "memory://from-env")
    pytester.runpytest().assert_outcomes(passed=1)
    monkeypatch.setenv("EXPECTED", "memory://from-option")
    pytester.runpytest("--routing-url", "memory://from-option").assert_outcomes(passed=1)


def test_it_loads_by_entry_point_and_can_be_left_out(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_user="def test_it(routing_broker):\n    pass\n")
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["routing: the broker the routing_* fixtures use:", "*--routing-url=URL*"])
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("-p", "no:routing")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'routing_broker' not found*"])


def test_loading_the_plugin_imports_none_of_the_helpers() -> None:
    code = "import sys, routing.pytest_plugin; print(sorted(m for m in sys.modules if m.startswith(('routing.testing', 'routing.worker'))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("where", ["memory", pytest.param("rabbitmq", marks=pytest.mark.broker)])
def test_the_example_test_file(where: str, request: pytest.FixtureRequest) -> None:
    """examples/test_with_plugin.py as its docstring runs it, in a process of its own."""
    url = [] if where == "memory" else ["--routing-url", request.getfixturevalue("vhost_url")]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "examples/test_with_plugin.py",
            *url,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout
    if where == "rabbitmq":
        assert _left_in(request.getfixturevalue("management_url"), url[1]) == []


def test_the_readme_example(pytester: pytest.Pytester, broker_url: str | None) -> None:
    """The README's "Testing your handlers" example, as a user's test file, on both brokers."""
    from test_readme import README, blocks

    section = README.read_text(encoding="utf-8").partition("\n## Testing your handlers\n")[2]
    assert section, "README.md has no section 'Testing your handlers'"
    code = next(text for _, text in blocks("python") if text in section)
    pytester.makeini(INI)
    pytester.makepyfile(test_readme_example=code)
    pytester.runpytest(*(["--routing-url", broker_url] if broker_url else [])).assert_outcomes(passed=1)
