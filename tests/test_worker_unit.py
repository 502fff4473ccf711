"""The worker's pure parts, no network: retry policies, the queues around a work queue, the
failure headers and dead letters read back, idempotent handlers, handler registration and
loading an App from `module:attribute`."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from routing import Envelope
from routing.cli.worker_commands import load_app
from routing.embedded import forget
from routing.envelope import ERROR_HEADER, ERROR_PATH_HEADER, body_id
from routing.errors import DefinitionsError, RoutingError
from routing.properties import Properties
from routing.topology import Queue, QueueType, Topology
from routing.transport import Delivery, open_transport
from routing.worker import (
    NO_RETRY,
    App,
    DeadLetterRecord,
    Failure,
    RecentIds,
    RetryPolicy,
    WorkQueues,
    idempotent,
)
from routing.worker.failures import (
    ATTEMPTS,
    ERROR_TYPE,
    FAILED_QUEUE,
    FIRST_FAILURE,
    LAST_FAILURE,
    ORIGINAL_EXCHANGE,
    ORIGINAL_ROUTING_KEY,
    TRACEBACK,
    attempts,
    for_replay,
    record_failure,
)

TESTS = Path(__file__).parent
NOW = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
STAMP = "2026-01-02T03:04:05.678Z"

# ------------------------------------------------------------------ RetryPolicy


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        (RetryPolicy(), [1000, 2000, 4000, 8000, None]),
        (
            RetryPolicy(initial=1, multiplier=10, max_delay=30, max_attempts=6),
            [1000, 10000, 30000, 30000, 30000, None],
        ),
        (RetryPolicy(initial=0.25, multiplier=1, max_delay=5, max_attempts=4), [250, 250, 250, None]),
        (RetryPolicy(initial=0.05, multiplier=2, max_delay=0.2, max_attempts=5), [50, 100, 200, 200, None]),
        (RetryPolicy(initial=0.0001, max_attempts=2), [1, None]),  # never under 1 ms
        (RetryPolicy(initial=1.5, multiplier=1.5, max_delay=3, max_attempts=4), [1500, 2250, 3000, None]),
        (NO_RETRY, [None]),
    ],
)
def test_delay_after_each_failure(policy: RetryPolicy, delays: list[int | None]) -> None:
    assert [policy.delay_ms(n) for n in range(1, len(delays) + 1)] == delays
    assert policy.delay_ms(policy.max_attempts + 5) is None


@pytest.mark.parametrize(
    ("policy", "delays_ms"),
    [
        (RetryPolicy(), (1000, 2000, 4000, 8000)),
        (RetryPolicy(initial=1, multiplier=10, max_delay=30, max_attempts=6), (1000, 10000, 30000)),
        (RetryPolicy(initial=0.25, multiplier=1, max_delay=5, max_attempts=4), (250,)),
        (
            RetryPolicy(initial=0.5, multiplier=1.1, max_delay=2, max_attempts=8),
            (500, 550, 605, 666, 732, 805, 886),
        ),
        (
            RetryPolicy(initial=2, multiplier=3, max_delay=3600, max_attempts=20),
            (2000, 6000, 18000, 54000, 162000, 486000, 1458000, 3600000),
        ),
        (NO_RETRY, ()),
    ],
)
def test_delays_ms_is_every_distinct_delay_ascending(policy: RetryPolicy, delays_ms: tuple[int, ...]) -> None:
    assert policy.delays_ms == delays_ms
    used = {policy.delay_ms(n) for n in range(1, policy.max_attempts)}
    assert set(delays_ms) == used  # one retry queue for each delay the worker will use, no more


def test_delays_ms_covers_delays_after_a_rounding_repeat() -> None:
    policy = RetryPolicy(initial=0.001, multiplier=1.5, max_delay=1, max_attempts=10)
    used = {policy.delay_ms(n) for n in range(1, policy.max_attempts)}  # {1, 2, 3, 5, 8, 11, 17, 26}
    assert set(policy.delays_ms) == used


def test_huge_multipliers_and_attempt_counts_neither_overflow_nor_hang() -> None:
    started = time.perf_counter()
    for policy in (
        RetryPolicy(initial=1, multiplier=1e308, max_delay=60, max_attempts=10**9),
        RetryPolicy(initial=1, multiplier=float("inf"), max_delay=60, max_attempts=10**18),
        RetryPolicy(initial=1, multiplier=2, max_delay=60, max_attempts=10**18),
    ):
        assert policy.delay_ms(1) == 1000
        assert policy.delay_ms(10**6) == 60000
        assert policy.delay_ms(policy.max_attempts - 1) == 60000
        assert policy.delay_ms(policy.max_attempts) is None
        assert policy.delays_ms[0] == 1000 and policy.delays_ms[-1] == 60000
    assert RetryPolicy(initial=1, multiplier=2, max_delay=60, max_attempts=10**18).delays_ms == (
        1000,
        2000,
        4000,
        8000,
        16000,
        32000,
        60000,
    )
    assert time.perf_counter() - started < 1.0


def test_a_huge_max_delay_is_refused_or_capped() -> None:
    try:
        policy = RetryPolicy(initial=1, multiplier=2, max_delay=1e306, max_attempts=2000)
    except RoutingError:
        return
    assert policy.delay_ms(1500) is not None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"initial": 0}, "initial must be > 0 seconds, got 0"),
        ({"initial": -1}, "initial must be > 0"),
        ({"initial": float("nan")}, "initial must be > 0"),
        ({"multiplier": 0.5}, "multiplier must be >= 1, got 0.5"),
        ({"multiplier": float("nan")}, "multiplier must be >= 1"),
        ({"initial": 5, "max_delay": 1}, "max_delay (1) must be >= initial (5)"),
        ({"max_delay": float("nan")}, "max_delay (nan) must be >= initial"),
        ({"max_attempts": 0}, "max_attempts must be an integer >= 1, got 0"),
        ({"max_attempts": -3}, "max_attempts must be an integer >= 1"),
        ({"max_attempts": 2.5}, "max_attempts must be an integer >= 1, got 2.5"),
        ({"max_attempts": True}, "max_attempts must be an integer >= 1, got True"),
        ({"max_attempts": "3"}, "max_attempts must be an integer >= 1, got '3'"),
    ],
)
def test_invalid_policies_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(RoutingError, match=r"^retry policy: ") as caught:
        RetryPolicy(**changes)
    assert message in str(caught.value)


def test_no_retry_gives_up_after_the_first_try() -> None:
    assert NO_RETRY.max_attempts == 1
    assert NO_RETRY.delay_ms(1) is None
    assert NO_RETRY.delays_ms == ()


# ------------------------------------------------------------------ WorkQueues, App.topology


def _queues(topology: Topology) -> dict[str, Queue]:
    return {q.name: q for q in topology.queues}


def test_work_queues_names_and_topology() -> None:
    wq = WorkQueues.for_delays("jobs", [100, 50, 100])
    assert wq.delays_ms == (50, 100)
    assert (wq.name, wq.dead, wq.retry(50)) == ("jobs", "jobs.dead", "jobs.retry.50ms")
    queues = _queues(wq.topology)
    assert sorted(queues) == ["jobs", "jobs.dead", "jobs.retry.100ms", "jobs.retry.50ms"]
    work, dead = queues["jobs"], queues["jobs.dead"]
    # The work queue dead-letters to NAME.dead through the default exchange.
    assert (work.dead_letter_exchange, work.dead_letter_routing_key) == ("", "jobs.dead")
    assert work.message_ttl is None
    assert (dead.dead_letter_exchange, dead.dead_letter_routing_key, dead.message_ttl) == (None, None, None)
    for delay in (50, 100):
        retry = queues[f"jobs.retry.{delay}ms"]
        assert retry.message_ttl == delay
        assert (retry.dead_letter_exchange, retry.dead_letter_routing_key) == ("", "jobs")
    assert all(q.durable and not q.auto_delete and not q.exclusive for q in queues.values())
    assert {q.type for q in queues.values()} == {QueueType.CLASSIC}
    assert wq.topology.exchanges == () and wq.topology.bindings == ()


def test_quorum_makes_every_queue_a_quorum_queue() -> None:
    queues = _queues(WorkQueues.for_delays("jobs", [50], quorum=True).topology)
    assert len(queues) == 3
    assert {q.type for q in queues.values()} == {QueueType.QUORUM}
    app = App(quorum=True)
    assert {q.type for q in app.topology("jobs").queues} == {QueueType.QUORUM}
    assert {q.type for q in App().topology("jobs").queues} == {QueueType.CLASSIC}


def test_app_topology_has_a_retry_queue_for_every_delay_of_every_policy() -> None:
    app = App(retry=RetryPolicy(initial=1, max_attempts=3))  # 1000, 2000

    @app.handler(
        "task.resize_image", retry=RetryPolicy(initial=0.05, multiplier=2, max_delay=0.1, max_attempts=4)
    )
    def resize(event: Envelope) -> None: ...

    @app.handler("cache.invalidate", retry=NO_RETRY)
    def invalidate(event: Envelope) -> None: ...

    @app.handler("config.changed", retry=RetryPolicy(initial=2, max_attempts=2))  # 2000 again
    def changed(event: Envelope) -> None: ...

    @app.handler("log.record")  # the app's policy
    def record(event: Envelope) -> None: ...

    assert app.queues("jobs").delays_ms == (50, 100, 1000, 2000)
    assert sorted(_queues(app.topology("jobs"))) == [
        "jobs",
        "jobs.dead",
        "jobs.retry.1000ms",
        "jobs.retry.100ms",
        "jobs.retry.2000ms",
        "jobs.retry.50ms",
    ]
    assert app.registrations["log.record"].retry == app.retry
    assert sorted(_queues(App(retry=NO_RETRY).topology("jobs"))) == ["jobs", "jobs.dead"]


# ------------------------------------------------------------------ failure headers


def _delivery(
    headers: dict[str, Any] | None = None,
    *,
    exchange: str = "shop",
    routing_key: str = "task.resize",
    queue: str = "jobs",
    body: bytes = b'{"a": 1}',
    **properties: Any,
) -> Delivery:
    props = Properties(headers=headers or {}, **properties)
    return Delivery(body, props, exchange, routing_key, queue, delivery_tag=1)


def _boom(message: str = "cannot decode img.jpg", depth: int = 0) -> Failure:
    """The failure of a handler that raises, caught as the worker catches it (this frame is
    the worker's own and is left out of the traceback summary)."""

    def handler() -> None:
        helper(depth)

    def helper(more: int) -> None:
        if more:
            helper(more - 1)
        raise ValueError(message)

    try:
        handler()
    except ValueError as exc:
        return Failure.from_exception(exc)
    raise AssertionError("unreachable")


def test_failure_from_an_exception() -> None:
    failure = _boom()
    assert (failure.error_type, failure.reason) == ("ValueError", "ValueError: cannot decode img.jpg")
    assert not failure.permanent and failure.path == ""
    frames = failure.traceback.split("; ")
    assert [f.rsplit(" in ", 1)[1] for f in frames] == ["handler", "helper"]
    assert all(f.startswith(f"{__file__}:") for f in frames)
    deep = _boom(depth=10).traceback.split("; ")
    assert [f.rsplit(" in ", 1)[1] for f in deep] == ["helper"] * 5  # the innermost five
    long = _boom("x" * 5000)
    assert len(long.reason) == 1000 and long.reason.endswith("...")


def test_record_failure_on_a_first_failure() -> None:
    d = _delivery(
        {"app": "a"},
        message_id="m-1",
        type="task.resize_image",
        content_type="application/json",
        expiration="60000",
        delivery_mode=2,
    )
    props = record_failure(d, _boom(), now=NOW)
    h = props.headers
    assert h[ATTEMPTS] == 1
    assert h[FIRST_FAILURE] == h[LAST_FAILURE] == STAMP
    assert (h[ORIGINAL_EXCHANGE], h[ORIGINAL_ROUTING_KEY], h[FAILED_QUEUE]) == ("shop", "task.resize", "jobs")
    assert (h[ERROR_TYPE], h[ERROR_HEADER], h[ERROR_PATH_HEADER]) == (
        "ValueError",
        "ValueError: cannot decode img.jpg",
        "",
    )
    assert "in helper" in h[TRACEBACK]
    assert h["app"] == "a"  # the message's own headers stay
    assert props.expiration is None  # the retry queue's TTL is the delay
    assert (props.message_id, props.type, props.content_type, props.delivery_mode) == (
        "m-1",
        "task.resize_image",
        "application/json",
        2,
    )
    assert attempts(d.properties) == 0 and attempts(props) == 1


def test_record_failure_again_keeps_the_origin_and_the_first_failure() -> None:
    first = record_failure(_delivery(), _boom(), now=NOW)
    # Back from the retry queue: RabbitMQ delivers it through the default exchange.
    again = _delivery(dict(first.headers), exchange="", routing_key="jobs")
    later = NOW + timedelta(seconds=2)
    invalid = Failure("InvalidMessage", "data.width: expected integer", path="data.width", permanent=True)
    h = record_failure(again, invalid, now=later).headers
    assert h[ATTEMPTS] == 2
    assert (h[FIRST_FAILURE], h[LAST_FAILURE]) == (STAMP, "2026-01-02T03:04:07.678Z")
    assert (h[ORIGINAL_EXCHANGE], h[ORIGINAL_ROUTING_KEY]) == ("shop", "task.resize")
    assert (h[ERROR_TYPE], h[ERROR_HEADER], h[ERROR_PATH_HEADER], h[TRACEBACK]) == (
        "InvalidMessage",
        "data.width: expected integer",
        "data.width",
        "",
    )


def test_failure_times_are_utc_with_milliseconds() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5, 678_000)  # as pika decodes AMQP timestamps: UTC
    plus_two = datetime(2026, 1, 2, 5, 4, 5, 678_000, tzinfo=timezone(timedelta(hours=2)))
    for when in (NOW, naive, plus_two):
        assert record_failure(_delivery(), _boom(), now=when).headers[FIRST_FAILURE] == STAMP
    stamp = record_failure(_delivery(), _boom()).headers[FIRST_FAILURE]
    assert abs(datetime.fromisoformat(stamp) - datetime.now(UTC)) < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("value", "count"),
    [(None, 0), (0, 0), (3, 3), (-1, 0), (True, 0), ("2", 0), (2.0, 0), (b"2", 0)],
)
def test_attempts_reads_only_a_positive_integer(value: Any, count: int) -> None:
    headers = {} if value is None else {ATTEMPTS: value}
    assert attempts(Properties(headers=headers)) == count


def test_for_replay_drops_the_failure_history_only() -> None:
    failed = record_failure(_delivery({"app": "a", "x-custom": 1}, message_id="m-1"), _boom(), now=NOW)
    headers = {
        **failed.headers,
        "x-death": [{"count": 1, "reason": "rejected", "queue": "jobs"}],
        "x-first-death-reason": "rejected",
        "x-first-death-queue": "jobs",
        "x-first-death-exchange": "shop",
    }
    replayed = for_replay(Properties(headers=headers, message_id="m-1", type="t"))
    assert dict(replayed.headers) == {"app": "a", "x-custom": 1}
    assert (replayed.message_id, replayed.type) == ("m-1", "t")
    assert attempts(replayed) == 0


# ------------------------------------------------------------------ DeadLetterRecord.from_delivery


def test_dead_letter_annotated_by_the_worker() -> None:
    props = record_failure(_delivery(message_id="m-1", type="task.resize_image"), _boom(), now=NOW)
    props = record_failure(
        _delivery(dict(props.headers), message_id="m-1", type="task.resize_image"),
        _boom(),
        now=NOW + timedelta(seconds=1),
    )
    letter = DeadLetterRecord.from_delivery(
        Delivery(b"body", props, "", "jobs.dead", "jobs.dead", delivery_tag=7)
    )
    assert letter == DeadLetterRecord(
        id="m-1",
        type="task.resize_image",
        reason="ValueError: cannot decode img.jpg",
        error_type="ValueError",
        attempts=2,
        first_failure=STAMP,
        last_failure="2026-01-02T03:04:06.678Z",
        exchange="shop",
        routing_key="task.resize",
        queue="jobs",
        traceback=props.headers[TRACEBACK],
        size=4,
    )


class _PikaLong(int):
    """pika decodes an AMQP long-long as an int subclass of its own."""


def test_dead_letter_from_rabbitmq_as_pika_gives_x_death() -> None:
    # Expired in jobs.retry (newest entry first) after being rejected from jobs: the first death counts.
    headers = {
        "x-death": [
            {
                "count": _PikaLong(1),
                "reason": "expired",
                "queue": "jobs.retry",
                "time": datetime(2026, 1, 2, 3, 9, 9),
                "exchange": "",
                "routing-keys": ["jobs.retry"],
            },
            {
                "count": _PikaLong(3),
                "reason": "rejected",
                "queue": "jobs",
                "time": datetime(2026, 1, 2, 3, 4, 5),  # naive UTC, as pika decodes it
                "exchange": "shop",
                "routing-keys": ["task.resize", "cc.key"],
            },
        ],
        "x-first-death-reason": "rejected",
        "x-first-death-queue": "jobs",
        "x-first-death-exchange": "shop",
    }
    body = b'{"width": 1}'
    letter = DeadLetterRecord.from_delivery(
        _delivery(headers, exchange="dlx", routing_key="x", queue="dead", body=body)
    )
    assert letter == DeadLetterRecord(
        id=body_id(body),  # no message_id: the body's hash
        type=None,
        reason="dead-lettered by RabbitMQ: rejected",
        error_type="rejected",
        attempts=3,
        first_failure="2026-01-02T03:04:05.000Z",
        last_failure="2026-01-02T03:04:05.000Z",
        exchange="shop",
        routing_key="task.resize",
        queue="jobs",
        traceback="",
        size=len(body),
    )


def test_dead_letter_from_the_embedded_broker(unique: str) -> None:
    url = f"memory://{unique}"
    try:
        with open_transport(url) as t:
            t.declare(
                Topology.of(
                    Queue("jobs", dead_letter_exchange="", dead_letter_routing_key="jobs.dead"),
                    Queue("jobs.dead"),
                )
            )
            t.publish("", "jobs", b"{}", Properties(message_id="m-9", type="task.resize_image"))
            got = t.get("jobs")
            assert got is not None
            t.reject(got, requeue=False)
            dead = t.get("jobs.dead")
            assert dead is not None
    finally:
        forget(url)
    letter = DeadLetterRecord.from_delivery(dead)
    assert (letter.id, letter.type, letter.reason, letter.error_type, letter.attempts) == (
        "m-9",
        "task.resize_image",
        "dead-lettered by RabbitMQ: rejected",
        "rejected",
        1,
    )
    assert (letter.exchange, letter.routing_key, letter.queue) == ("", "jobs", "jobs")
    assert letter.first_failure is not None and letter.first_failure == letter.last_failure
    assert abs(datetime.fromisoformat(letter.first_failure) - datetime.now(UTC)) < timedelta(seconds=5)


def test_dead_letter_published_there_by_someone_else() -> None:
    letter = DeadLetterRecord.from_delivery(
        _delivery({"app": "a"}, exchange="", routing_key="jobs.dead", queue="jobs.dead", message_id="m-2")
    )
    assert letter == DeadLetterRecord(
        id="m-2",
        type=None,
        reason="no failure recorded",
        error_type="",
        attempts=0,
        first_failure=None,
        last_failure=None,
        exchange="",
        routing_key="jobs.dead",
        queue="jobs.dead",
        traceback="",
        size=8,
    )


# ------------------------------------------------------------------ idempotent, RecentIds


def _event(event_id: str = "e-1") -> Envelope:
    return Envelope(id=event_id, source="urn:test", type="cache.invalidate")


def test_idempotent_skips_an_id_it_has_handled() -> None:
    calls: list[str] = []

    @idempotent
    def handle(event: Envelope) -> str:
        calls.append(event.id)
        return "done"

    assert handle(_event("a")) == "done"
    assert handle(_event("a")) is None  # skipped, acked unhandled
    assert handle(_event("b")) == "done"
    assert calls == ["a", "b"]
    assert handle.__name__ == "handle"
    assert "a" in handle.seen and len(handle.seen) == 2  # type: ignore[attr-defined]


def test_idempotent_does_not_record_a_failure() -> None:
    calls: list[str] = []

    @idempotent
    def handle(event: Envelope) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        handle(_event("a"))
    assert "a" not in handle.seen  # type: ignore[attr-defined]
    handle(_event("a"))  # the retry runs
    handle(_event("a"))  # the duplicate of a success does not
    assert calls == ["a", "a"]


def test_idempotent_with_a_shared_store() -> None:
    store = RecentIds(10)
    calls: list[str] = []

    @idempotent(seen=store)
    def one(event: Envelope) -> None:
        calls.append("one")

    @idempotent(seen=store)
    def two(event: Envelope) -> None:
        calls.append("two")

    one(_event("a"))
    two(_event("a"))  # another worker already handled it
    assert calls == ["one"]
    assert one.seen is store  # type: ignore[attr-defined]


def test_recent_ids_forgets_the_least_recently_added() -> None:
    ids = RecentIds(2)
    ids.add("a")
    ids.add("b")
    ids.add("a")  # handled again: now the newest
    ids.add("c")
    assert ("a" in ids, "b" in ids, "c" in ids) == (True, False, True)
    assert len(ids) == 2
    with pytest.raises(RoutingError, match="maxsize must be >= 1, got 0"):
        RecentIds(0)


def test_an_idempotent_handler_forgets_the_oldest_id() -> None:
    calls: list[str] = []

    @idempotent(seen=RecentIds(2))
    def handle(event: Envelope) -> None:
        calls.append(event.id)

    for event_id in ("a", "b", "c", "a", "c"):
        handle(_event(event_id))
    assert calls == ["a", "b", "c", "a"]  # "a" was evicted by "c", so it ran again


# ------------------------------------------------------------------ App.handler


def test_handler_registration() -> None:
    app = App()

    def resize(event: Envelope) -> None: ...

    assert app.handler("task.resize_image")(resize) is resize
    route = app.registration_for("task.resize_image")
    assert route is not None and route.function is resize and route.retry == app.retry == RetryPolicy()
    assert app.registration_for("cache.invalidate") is None
    assert list(app.registrations) == ["task.resize_image"]
    with pytest.raises(TypeError):
        app.registrations["x"] = route  # type: ignore[index]
    assert repr(app) == "<App handlers=['task.resize_image']>"


def test_a_second_handler_for_a_type_is_refused() -> None:
    app = App()

    @app.handler("task.resize_image")
    def resize(event: Envelope) -> None: ...

    def resize_again(event: Envelope) -> None: ...

    with pytest.raises(RoutingError) as caught:
        app.handler("task.resize_image")(resize_again)
    message = str(caught.value)
    assert "'task.resize_image'" in message and "resize_again" in message and "would replace" in message
    assert "test_a_second_handler_for_a_type_is_refused.<locals>.resize" in message
    assert app.registrations["task.resize_image"].function is resize


@pytest.mark.parametrize("event_type", ["", None, 3])
def test_a_handler_needs_an_event_type(event_type: Any) -> None:
    with pytest.raises(RoutingError, match="event type must be a non-empty string"):
        App().handler(event_type)


# ------------------------------------------------------------------ load_app


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))


def test_load_app_by_reference(on_path: None) -> None:
    import worker_apps

    assert load_app("worker_apps:app") is worker_apps.app


def test_load_app_from_a_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    module = f"jobs_{unique.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(
        "from routing.worker import App\n"
        "app = App()\n"
        "def make():\n    return app\n"
        "def not_an_app():\n    return 42\n"
        "class Jobs:\n    app = app\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        made = load_app(f"{module}:make")
        assert isinstance(made, App) and made is load_app(f"{module}:app") is load_app(f"{module}:Jobs.app")
        with pytest.raises(
            DefinitionsError,
            match=rf"^{module}:not_an_app: not_an_app\(\) returned type int, not a routing.worker.App$",
        ):
            load_app(f"{module}:not_an_app")
    finally:
        sys.modules.pop(module, None)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("worker_apps:_SECONDS", "worker_apps:_SECONDS: is of type float, not a routing.worker.App"),
        ("worker_apps:App", "worker_apps:App: is of type type, not a routing.worker.App"),
        ("worker_apps:nope", "worker_apps:nope: 'worker_apps' has no attribute 'nope'"),
        ("no_such_module_here:app", "no_such_module_here:app: no module named 'no_such_module_here'"),
        ("worker_apps", "worker_apps: expected module:attribute, e.g. shop.jobs:app"),
    ],
)
def test_load_app_refuses_what_is_not_an_app(on_path: None, ref: str, message: str) -> None:
    with pytest.raises(DefinitionsError) as caught:
        load_app(ref)
    assert str(caught.value).startswith(message)


def test_load_app_refuses_a_handler_function(on_path: None) -> None:
    with pytest.raises(DefinitionsError, match="worker_apps:resize"):
        load_app("worker_apps:resize")


def test_a_policy_needing_too_many_retry_queues_is_refused() -> None:
    with pytest.raises(RoutingError, match="use a larger multiplier"):
        RetryPolicy(initial=0.001, multiplier=1.00001, max_delay=60, max_attempts=10**6)
    # The same slow growth is fine when few attempts are allowed.
    assert len(RetryPolicy(initial=0.001, multiplier=1.00001, max_delay=60, max_attempts=5).delays_ms) == 1
