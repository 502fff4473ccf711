"""The Worker on both brokers: acks, retries through the retry queues, dead letters with the
reason, poison messages, `dlq show`/`replay`, the keep-alive thread, prefetch and fair dispatch.

Each scenario runs a `Worker` in a thread (stopped with `worker.stop()`) on the embedded broker
(`memory://<unique>`: one broker per URL, shared by every transport of this process) and on
RabbitMQ. The test talks to the broker through a transport of its own.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from conformance.conftest import Harness

from routing import Envelope, encode, to_properties
from routing.properties import Properties
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport import Consumer, Delivery, Transport, open_transport
from routing.worker import NO_RETRY, App, DeadLetterRecord, RetryPolicy, Worker, dead_letter_queue
from routing.worker.failures import ATTEMPTS, ERROR_TYPE, ORIGINAL_EXCHANGE, ORIGINAL_ROUTING_KEY
from routing.worker.runner import KEEPALIVE_AFTER

RESIZE = "task.resize_image"
VALID = {"input": "img1.jpg", "width": 10, "height": 10}
WAIT = 10.0  # longest a scenario waits for something that should happen (on a busy machine)
FAST = RetryPolicy(initial=0.05, multiplier=2, max_delay=0.1, max_attempts=3)  # 50 ms, then 100 ms
# How often an idle test worker (and its keep-alive thread) checks for `stop()`: sooner than
# the default only makes each stop quicker, so the suite stays fast.
QUICK_POLL = 0.02


def wait_until(check: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.01)


def event(data: Any = None, type: str = RESIZE) -> Envelope:
    return Envelope.new(type, VALID if data is None else data)


class Spy:
    """A transport that records what the worker publishes and every delivery it is handed
    (to see the headers of each attempt); everything else goes straight to `inner`."""

    worker: Worker  # the worker it was given to

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.published: list[tuple[str, Properties]] = []  # (routing key, properties)
        self.delivered: list[Delivery] = []
        self.consuming = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties | None = None,
        *,
        mandatory: bool = False,
    ) -> Any:
        self.published.append((routing_key, properties or Properties()))
        return self.inner.publish(exchange, routing_key, body, properties, mandatory=mandatory)

    def consume(self, queue: str, *, prefetch: int = 1) -> Consumer:
        consumer = self.inner.consume(queue, prefetch=prefetch)
        spy = self
        self.consuming.set()

        class Recording:
            def get(self, timeout: float | None = None) -> Delivery | None:
                delivery = consumer.get(timeout)
                if delivery is not None:
                    spy.delivered.append(delivery)
                return delivery

            def cancel(self) -> None:
                consumer.cancel()

        return Recording()  # type: ignore[return-value]


class Bench(Harness):
    """The conformance `Harness` (one broker, the test's own transport, cleanup at the end),
    with a work queue and workers in threads."""

    def __init__(self, kind: str, url: str, unique: str) -> None:
        super().__init__(kind, url, unique)
        self.queue = self.name("work")
        self.dead = f"{self.queue}.dead"
        self.queues: set[str] = set()  # the queues of the apps declared: work, retry, dead

    def declare(self, *entities: App | Exchange | Queue | Binding) -> Topology:
        """`Harness.declare`; an App stands for its queues around the work queue."""
        parts: list[Exchange | Queue | Binding] = []
        for entity in entities:
            if isinstance(entity, App):
                topology = entity.topology(self.queue)
                self.queues |= {q.name for q in topology.queues}
                parts += [*topology.exchanges, *topology.queues, *topology.bindings]
            else:
                parts.append(entity)
        return super().declare(*parts)

    @contextlib.contextmanager
    def worker(
        self,
        app: App,
        *,
        url: str | None = None,
        prefetch: int = 1,
        keepalive_after: float = KEEPALIVE_AFTER,
    ) -> Iterator[Spy]:
        """Run `app` on the work queue in a thread, on a connection of its own; stop it at the
        end and close that connection (so anything it left unacked is back in its queue)."""
        self.declare(app)
        transport = Spy(open_transport(url or self.url))
        worker = Worker(
            app,
            transport,  # type: ignore[arg-type]
            self.queue,
            prefetch=prefetch,
            poll=QUICK_POLL,
            keepalive_after=keepalive_after,
        )
        transport.worker = worker
        errors: list[BaseException] = []

        def run() -> None:
            try:
                worker.run()
            except BaseException as exc:  # shown by the test, not lost in the thread
                errors.append(exc)

        thread = threading.Thread(target=run, name="test-worker", daemon=True)
        thread.start()
        try:
            yield transport
        finally:
            worker.stop()
            thread.join(timeout=WAIT)
            transport.inner.close()
        assert not thread.is_alive(), "the worker did not stop"
        assert errors == [], f"the worker crashed: {errors!r}"

    def send(self, envelope: Envelope, *, body: bytes | None = None, **properties: Any) -> Envelope:
        """Publish to the work queue through the default exchange; wait for the confirm."""
        props = replace(to_properties(envelope), **properties)
        self.t.publish("", self.queue, encode(envelope) if body is None else body, props, mandatory=True)
        assert self.t.flush(timeout=WAIT) == []  # routed (declared) and confirmed
        return envelope

    def letters(self, count: int) -> list[DeadLetterRecord]:
        """The dead letters, once `count` have arrived (read with `peek`: they stay)."""
        found: list[DeadLetterRecord] = []

        def arrived() -> bool:
            nonlocal found
            found = dead_letter_queue.peek(self.t, self.dead)
            return len(found) >= count

        wait_until(arrived, f"{count} dead letter(s) in {self.dead!r}")
        return found


@pytest.fixture
def bench(either_url: str, unique: str) -> Iterator[Bench]:
    with Bench.opened("memory" if either_url.startswith("memory:") else "rabbitmq", either_url, unique) as b:
        yield b


def recording_app(policy: RetryPolicy = FAST) -> tuple[App, list[str]]:
    """An app whose resize handler records each envelope id it handled."""
    app = App(retry=policy)
    handled: list[str] = []

    @app.handler(RESIZE)
    def resize(envelope: Envelope) -> None:
        handled.append(envelope.id)

    return app, handled


# ------------------------------------------------------------------ handled


def test_a_handled_message_is_acked(bench: Bench) -> None:
    app, handled = recording_app()
    bench.declare(app)
    sent = [bench.send(event()) for _ in range(3)]
    with bench.worker(app) as spy:
        wait_until(lambda: len(handled) == 3, "3 messages handled")
    assert handled == [e.id for e in sent]
    assert spy.worker.stats.processed == 3
    assert spy.published == []
    # The worker's connection is closed: an unacked message would be back in the queue.
    assert bench.drain(bench.queue) == []
    assert bench.drain(bench.dead) == []


def test_a_failed_attempt_is_retried_through_the_retry_queue(bench: Bench) -> None:
    app = App(retry=FAST)
    calls: list[str] = []

    @app.handler(RESIZE)
    def flaky(envelope: Envelope) -> None:
        calls.append(envelope.id)
        if len(calls) == 1:
            raise RuntimeError("the image store is down")

    bench.declare(app)
    sent = bench.send(event())
    with bench.worker(app) as spy:
        wait_until(lambda: spy.worker.stats.processed == 1, "the retry handled")
    assert calls == [sent.id, sent.id]
    assert (spy.worker.stats.retried, spy.worker.stats.dead_lettered) == (1, 0)
    [(queue, copy)] = spy.published
    assert queue == f"{bench.queue}.retry.50ms"
    assert copy.headers[ATTEMPTS] == 1
    assert copy.headers[ERROR_TYPE] == "RuntimeError"
    first, second = spy.delivered
    assert ATTEMPTS not in first.headers
    # The second attempt came back from the retry queue by TTL, carrying the attempt count.
    assert second.headers[ATTEMPTS] == 1
    assert second.headers["x-routing-error"] == "RuntimeError: the image store is down"
    assert second.headers["x-first-death-reason"] == "expired"
    assert second.headers["x-first-death-queue"] == f"{bench.queue}.retry.50ms"
    for queue in bench.queues:
        assert bench.drain(queue) == [], queue


def test_a_handler_that_always_fails_ends_in_the_dead_letter_queue(bench: Bench) -> None:
    app = App(retry=FAST)
    calls: list[float] = []

    @app.handler(RESIZE)
    def always_fails(envelope: Envelope) -> None:
        calls.append(time.monotonic())
        raise ValueError(f"cannot decode {envelope.data['input']}")

    bench.declare(app)
    started = datetime.now(UTC)
    sent = bench.send(event())
    with bench.worker(app) as spy:
        [letter] = bench.letters(1)
    assert len(calls) == FAST.max_attempts == 3
    # 50 ms after the first failure, then 100 ms after the second.
    assert calls[1] - calls[0] >= 0.045 and calls[2] - calls[1] >= 0.095
    assert [q for q, _ in spy.published] == [
        f"{bench.queue}.retry.50ms",
        f"{bench.queue}.retry.100ms",
        bench.dead,
    ]
    assert [d.headers.get(ATTEMPTS, 0) for d in spy.delivered] == [0, 1, 2]
    assert (letter.id, letter.type, letter.attempts) == (sent.id, RESIZE, 3)
    assert letter.error_type == "ValueError"
    assert letter.reason == "ValueError: cannot decode img1.jpg"
    assert "in always_fails" in letter.traceback and "test_worker.py" in letter.traceback
    assert (letter.exchange, letter.routing_key, letter.queue) == ("", bench.queue, bench.queue)
    assert letter.first_failure is not None and letter.last_failure is not None
    first = datetime.fromisoformat(letter.first_failure)
    last = datetime.fromisoformat(letter.last_failure)
    assert started <= first < last <= datetime.now(UTC)
    assert (last - first).total_seconds() >= 0.14  # two retry delays: 50 + 100 ms
    assert (spy.worker.stats.retried, spy.worker.stats.dead_lettered) == (2, 1)
    for queue in bench.queues - {bench.dead}:
        assert bench.drain(queue) == [], queue
    [dead] = bench.drain(bench.dead)
    assert dead == encode(sent)


# ------------------------------------------------------------------ poison


def test_poison_messages_are_dead_lettered_and_the_worker_keeps_going(bench: Bench) -> None:
    app, handled = recording_app()
    good = event()
    bad_schema = event({"input": "img1.jpg", "width": "ten", "height": 10})
    huge = b'{"pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    unknown = event({"cache": "users", "reason": "renamed", "keys": ["u1"]}, type="cache.invalidate")
    bench.declare(app)
    poison = [
        bench.send(event(), body=b'{"specversion": "1.0", "id": '),
        bench.send(bad_schema),
        bench.send(event(), body=huge),
        bench.send(event(), content_type="text/plain"),
        bench.send(unknown),
    ]
    bench.send(good)
    with bench.worker(app) as spy:
        wait_until(lambda: handled == [good.id], "the valid message after the poison handled")
        letters = bench.letters(5)
        stats = spy.worker.stats
    assert (stats.processed, stats.retried, stats.dead_lettered) == (1, 0, 5)
    assert [letter.id for letter in letters] == [e.id for e in poison]
    assert [letter.error_type for letter in letters] == ["InvalidMessage"] * 4 + ["NoHandler"]
    assert all(letter.attempts == 1 and letter.queue == bench.queue for letter in letters)
    not_json, schema, too_big, text, no_handler = (letter.reason for letter in letters)
    assert not_json.startswith("not JSON: truncated")
    assert schema == "data.width: expected integer, got string"
    assert too_big == f"body is {len(huge)} bytes, over the 1048576-byte limit"
    assert letters[2].size == len(huge)
    assert text.startswith("content type 'text/plain' is not JSON")
    assert no_handler == f"no handler for event type 'cache.invalidate' (handled: {RESIZE})"
    assert bench.drain(bench.queue) == []
    dead = bench.drain(bench.dead)
    assert len(dead[2]) == len(huge)  # the whole body, kept for a replay


# ------------------------------------------------------------------ dlq show / replay


def test_show_and_replay_after_a_fix(bench: Bench) -> None:
    app = App(retry=NO_RETRY)
    broken = threading.Event()
    broken.set()
    handled: list[str] = []

    @app.handler(RESIZE)
    def resize(envelope: Envelope) -> None:
        if broken.is_set():
            raise ConnectionError("thumbnail service unreachable")
        handled.append(envelope.id)

    bench.declare(app)
    sent = [bench.send(event({"input": f"img{n}.jpg", "width": 1, "height": 1})) for n in range(3)]
    ids = [e.id for e in sent]
    with bench.worker(app):
        assert [letter.id for letter in bench.letters(3)] == ids
        shown = dead_letter_queue.peek(bench.t, bench.dead)
        assert [letter.id for letter in shown] == ids  # show leaves them all, in order
        assert all(letter.reason == "ConnectionError: thumbnail service unreachable" for letter in shown)
        assert [letter.id for letter in dead_letter_queue.peek(bench.t, bench.dead, limit=2)] == ids[:2]

        broken.clear()  # the fix
        result = dead_letter_queue.replay(bench.t, bench.dead, ids={ids[1], "no-such-id"})
        assert [letter.id for letter in result.replayed] == [ids[1]]
        assert (result.failed, result.missing) == ((), ("no-such-id",))
        wait_until(lambda: handled == [ids[1]], "the replayed message handled")
        assert [letter.id for letter in dead_letter_queue.peek(bench.t, bench.dead)] == [ids[0], ids[2]]

        result = dead_letter_queue.replay(bench.t, bench.dead)
        assert [letter.id for letter in result.replayed] == [ids[0], ids[2]]
        wait_until(lambda: len(handled) == 3, "every replayed message handled")
    assert handled == [ids[1], ids[0], ids[2]]
    assert dead_letter_queue.peek(bench.t, bench.dead) == []
    assert bench.drain(bench.queue) == []


def test_an_unconfirmed_replay_keeps_the_letter(bench: Bench, unique: str) -> None:
    app, _ = recording_app()
    bench.declare(app)
    gone = event()
    unroutable = event()
    for envelope, exchange, key in (
        (gone, f"{unique}.no-such-exchange", "k"),
        (unroutable, "", f"{unique}.no-such-queue"),
    ):
        headers = {ATTEMPTS: 1, ORIGINAL_EXCHANGE: exchange, ORIGINAL_ROUTING_KEY: key}
        props = replace(to_properties(envelope), headers=headers)
        bench.t.publish("", bench.dead, encode(envelope), props)
    assert bench.t.flush(timeout=WAIT) == []
    result = dead_letter_queue.replay(bench.t, bench.dead, ids={gone.id})
    assert result.replayed == () and result.missing == ()
    [(letter, why)] = result.failed
    assert letter.id == gone.id and "no-such-exchange" in why
    result = dead_letter_queue.replay(bench.t, bench.dead)
    assert result.replayed == ()
    assert [letter.id for letter, _ in result.failed] == [gone.id, unroutable.id]
    # Still there, in their order, and the transport still works.
    assert [letter.id for letter in dead_letter_queue.peek(bench.t, bench.dead)] == [gone.id, unroutable.id]


# ------------------------------------------------------------------ long handlers


def test_a_handler_longer_than_the_keepalive_still_gets_acked(bench: Bench) -> None:
    """On RabbitMQ the worker's connection has a 1 s heartbeat and the handler sleeps 3.5 s:
    without the keep-alive thread the broker drops the silent connection (measured here: after
    2.5-3 s), the ack is lost and the message runs again. The embedded broker has no heartbeat:
    there the keep-alive starts sooner, to run alongside a short handler."""
    rabbit = bench.kind == "rabbitmq"
    keepalive_after = KEEPALIVE_AFTER if rabbit else 0.1
    seconds = 3.5 if rabbit else 0.4
    url = bench.url + ("&" if "?" in bench.url else "?") + "heartbeat=1" if rabbit else bench.url
    app = App(retry=NO_RETRY)
    handled: list[str] = []

    @app.handler(RESIZE)
    def slow(envelope: Envelope) -> None:
        time.sleep(seconds)
        handled.append(envelope.id)

    bench.declare(app)
    sent = bench.send(event())
    with bench.worker(app, url=url, keepalive_after=keepalive_after) as spy:
        wait_until(lambda: spy.worker.stats.processed == 1, "the slow message", seconds + WAIT)
        time.sleep(0.3)  # a redelivery would show up here
    assert handled == [sent.id]
    assert [d.redelivered for d in spy.delivered] == [False]
    assert bench.drain(bench.queue) == []
    assert bench.drain(bench.dead) == []


# ------------------------------------------------------------------ prefetch


def test_prefetch_one_holds_back_only_the_unacked_message(bench: Bench) -> None:
    bench.declare(Queue(bench.queue))
    for n in range(4):
        bench.t.publish("", bench.queue, f"m{n}".encode())
    assert bench.t.flush(timeout=WAIT) == []
    a = open_transport(bench.url)
    b = open_transport(bench.url)
    try:
        consumer_a = a.consume(bench.queue, prefetch=1)
        held = consumer_a.get(timeout=WAIT)
        assert held is not None and held.body == b"m0"
        assert consumer_a.get(timeout=0.2) is None  # prefetch 1: nothing more until m0 is acked
        consumer_b = b.consume(bench.queue, prefetch=10)
        others = []
        for _ in range(3):
            delivery = consumer_b.get(timeout=WAIT)
            assert delivery is not None
            b.ack(delivery)
            others.append(delivery.body)
        assert others == [b"m1", b"m2", b"m3"]
        assert consumer_b.get(timeout=0.3) is None  # A's message stays A's while A lives
        a.close()
        again = consumer_b.get(timeout=WAIT)
        assert again is not None and again.body == b"m0" and again.redelivered
        b.ack(again)
    finally:
        a.close()
        b.close()
    assert bench.drain(bench.queue) == []


def test_prefetch_one_dispatches_fairly_between_a_slow_and_a_fast_worker(bench: Bench) -> None:
    fast, fast_done = recording_app()
    slow = App(retry=FAST)
    slow_done: list[str] = []

    @slow.handler(RESIZE)
    def resize(envelope: Envelope) -> None:
        time.sleep(0.2)
        slow_done.append(envelope.id)

    with bench.worker(slow) as slow_spy, bench.worker(fast) as fast_spy:
        wait_until(lambda: slow_spy.consuming.is_set() and fast_spy.consuming.is_set(), "both consuming")
        for _ in range(20):
            bench.send(event())
        wait_until(lambda: len(fast_done) + len(slow_done) == 20, "20 messages handled")
    # Round-robin without a prefetch limit would give each worker 10.
    assert len(slow_done) <= 4 and len(fast_done) >= 16, (len(slow_done), len(fast_done))
    assert set(fast_done).isdisjoint(slow_done)
    assert bench.drain(bench.queue) == []
