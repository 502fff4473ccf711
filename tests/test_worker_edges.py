"""The worker at the edges (issue 12): a dead-letter queue that is missing or refuses the copy,
headers that leave no room for the failure record, texts UTF-8 cannot carry, forged counts.

Every scenario counts the messages across the work queue, its retry queues and its dead-letter
queue at the end: nothing lost, nothing looping. Both brokers, through `Bench` (test_worker).
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from broker_under_test import tutorial_publish
from loguru import logger
from test_worker import (
    FAST,
    QUICK_POLL,
    RESIZE,
    WAIT,
    Bench,
    bench,
    event,
    recording_app,
    wait_until,
)

from routing import Envelope, to_properties
from routing._amqp import FarTimestamp
from routing.errors import BrokerError, ChannelClosed, RoutingError
from routing.properties import encode_properties
from routing.topology import Overflow, Queue, Topology
from routing.transport import open_transport
from routing.worker import NO_RETRY, App, DeadLetterRecord, Worker, dead_letter_queue
from routing.worker.failures import ATTEMPTS, MAX_PROPERTIES
from routing.worker.runner import CopyRefused

__all__ = ["bench"]  # a fixture, used by name


def counts(b: Bench, app: App) -> dict[str, int]:
    """Ready messages in every queue around the work queue (they stay where they are); a
    missing queue counts 0."""
    found = {}
    for queue in sorted(q.name for q in app.topology(b.queue).queues):
        taken = []
        try:
            while (d := b.t.get(queue)) is not None:
                taken.append(d)
        except ChannelClosed:
            pass
        for d in reversed(taken):
            b.t.nack(d, requeue=True)
        found[queue] = len(taken)
    return found


def letters(b: Bench, count: int) -> list[DeadLetterRecord]:
    """The dead letters once `count` are there (the dead-letter queue may be missing until then)."""
    found: list[DeadLetterRecord] = []

    def arrived() -> bool:
        nonlocal found
        try:
            found = dead_letter_queue.peek(b.t, b.dead)
        except ChannelClosed:
            return False
        return len(found) >= count

    wait_until(arrived, f"{count} dead letter(s)")
    return found


def failing_app(message: str = "cannot decode", policy: Any = FAST) -> tuple[App, list[str]]:
    app = App(retry=policy)
    runs: list[str] = []

    @app.handler(RESIZE)
    def resize(envelope: Envelope) -> None:
        runs.append(envelope.id)
        raise ValueError(message)

    return app, runs


def headers_of_size(envelope: Envelope, size: int) -> dict[str, Any]:
    """The envelope's headers and a filler, so its properties take `size` bytes on the wire."""
    props = to_properties(envelope)
    headers = {**props.headers, "blob": ""}
    base = len(encode_properties(replace(props, headers=headers)))
    headers["blob"] = "b" * (size - base)
    assert len(encode_properties(replace(props, headers=headers))) == size
    return headers


class Run:
    """A Worker in a thread on a connection of its own, its stats and what ended it."""

    def __init__(self, b: Bench, app: App, *, dead_letters_to_queue: bool = True) -> None:
        self.transport = open_transport(b.url)
        self.worker = Worker(
            app, self.transport, b.queue, dead_letters_to_queue=dead_letters_to_queue, poll=QUICK_POLL
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(WAIT)
        self.transport.close()
        assert not self.thread.is_alive()


# ------------------------------------------------------------ item 2: a copy the broker did not take


def test_a_missing_dead_letter_queue_is_declared_again_and_the_letter_kept(bench: Bench) -> None:
    app, _runs = failing_app()
    bench.declare(app)
    bench.t.delete_queue(bench.dead)  # an operator tidied up
    bench.send(event({"input": 5}))  # invalid: straight to the dead-letter queue
    run = Run(bench, app)
    try:
        found = letters(bench, 1)
    finally:
        run.stop()
    assert run.error is None
    assert found[0].error_type == "InvalidMessage"
    assert run.worker.stats.dead_lettered == 1
    assert counts(bench, app) == {q: (1 if q == bench.dead else 0) for q in counts(bench, app)}


def test_a_dead_letter_copy_the_broker_refuses_leaves_the_original_and_stops(bench: Bench) -> None:
    app, _runs = failing_app()
    bench.declare(app)
    bench.t.delete_queue(bench.dead)
    # A full dead-letter queue that refuses publishes: every copy comes back nacked.
    full = Queue(bench.dead, max_length=0, overflow=Overflow.REJECT_PUBLISH)
    bench.t.declare(Topology.of(full))
    sent = bench.send(event({"input": 5}))
    run = Run(bench, app)
    try:
        wait_until(lambda: not run.thread.is_alive(), "the worker to stop")
    finally:
        run.stop()
    assert isinstance(run.error, CopyRefused), run.error
    assert f"message {sent.id}" in str(run.error) and "stays in" in str(run.error)
    assert run.worker.stats.dead_lettered == 0
    found = counts(bench, app)
    assert found[bench.queue] == 1, found  # kept, not rejected to nowhere
    assert sum(found.values()) == 1


# ------------------------------------------------------------ item 3: headers that fill the frame


@pytest.mark.parametrize("size", [130_000, MAX_PROPERTIES - 600])
def test_large_headers_on_a_failing_handler_are_retried_a_bounded_number_of_times(
    bench: Bench, size: int
) -> None:
    app, runs = failing_app("x" * 900)
    bench.declare(app)
    envelope = event()
    bench.send(envelope, headers=headers_of_size(envelope, size))
    run = Run(bench, app)
    try:
        [letter] = letters(bench, 1)
    finally:
        run.stop()
    assert run.error is None, run.error
    assert len(runs) == FAST.max_attempts  # bounded: 3 handler runs, no loop
    assert letter.attempts == FAST.max_attempts
    assert letter.error_type == "ValueError"
    found = counts(bench, app)
    assert found[bench.dead] == 1 and sum(found.values()) == 1, found


def test_headers_that_leave_no_room_are_dead_lettered_by_the_broker(bench: Bench) -> None:
    app, runs = failing_app()
    bench.declare(app)
    envelope = event()
    # 100 bytes under the frame with the envelope's own headers: no failure record fits.
    bench.send(envelope, headers=headers_of_size(envelope, MAX_PROPERTIES - 100))
    run = Run(bench, app)
    try:
        wait_until(lambda: counts(bench, app)[bench.dead] == 1, "the dead letter")
    finally:
        run.stop()
    assert run.error is None, run.error
    assert len(runs) == 1
    found = counts(bench, app)
    assert found[bench.dead] == 1 and sum(found.values()) == 1, found


def test_headers_that_leave_no_room_on_a_queue_it_did_not_declare_stay_and_stop_the_worker(
    bench: Bench,
) -> None:
    # With --no-declare the work queue may be a plain one: a reject would destroy the
    # message (review of issue 12: it did, and the stats said "dead-lettered").
    app, runs = failing_app()
    plain = Queue(bench.queue, durable=False, auto_delete=False)
    bench.declare(plain)
    envelope = event()
    bench.send(envelope, headers=headers_of_size(envelope, MAX_PROPERTIES - 100))
    run = Run(bench, app, dead_letters_to_queue=False)
    run.thread.join(WAIT)
    run.stop()
    assert isinstance(run.error, CopyRefused) and "--no-declare" in str(run.error), run.error
    assert len(runs) == 1 and run.worker.stats.dead_lettered == 0
    wait_until(lambda: bench.t.message_count(plain.name) == 1, "the message back on its queue")


# ------------------------------------------------------------ item 4: texts and numbers the wire refuses


def test_a_lone_surrogate_in_a_handler_error_is_dead_lettered_and_the_worker_goes_on(bench: Bench) -> None:
    app, _runs = failing_app("bad \ud800 input")
    bench.declare(app)
    bench.send(event())
    run = Run(bench, app)
    try:
        [letter] = letters(bench, 1)
    finally:
        run.stop()
    assert run.error is None, run.error
    assert letter.reason == "ValueError: bad \\ud800 input"


def test_a_lone_surrogate_in_an_invalid_field_is_dead_lettered(bench: Bench) -> None:
    app, runs = failing_app()
    bench.declare(app)
    # JSON may escape a lone surrogate; the schema refuses the field and names it.
    body = b'{"input": "a.jpg", "width": 1, "height": 1, "\\ud800": 1}'
    bench.send(event(), body=body, headers={}, type=RESIZE, content_type="application/json")
    bench.send(event())  # behind it: the queue is not blocked
    run = Run(bench, app)
    try:
        found = letters(bench, 2)
    finally:
        run.stop()
    assert run.error is None, run.error
    assert found[0].error_type == "InvalidMessage"
    assert found[0].reason == 'data["\\ud800"]: not allowed here'
    assert len(runs) == FAST.max_attempts


def test_a_forged_attempt_count_does_not_crash_the_worker(bench: Bench) -> None:
    app, runs = failing_app()
    bench.declare(app)
    envelope = event()
    props = to_properties(envelope)
    bench.send(envelope, headers={**props.headers, ATTEMPTS: 2**63 - 1})
    run = Run(bench, app)
    try:
        [letter] = letters(bench, 1)
    finally:
        run.stop()
    assert run.error is None, run.error
    assert len(runs) == 1  # a count that large is out of attempts
    assert letter.error_type == "ValueError"
    found = counts(bench, app)
    assert found[bench.dead] == 1 and sum(found.values()) == 1, found


@pytest.mark.parametrize(
    "forged",
    [["junk"], [{"count": "abc", "reason": "expired", "queue": "Q.retry", "exchange": ""}]],
    ids=["not-a-table", "text-count"],
)
def test_a_forged_x_death_is_left_out_of_retry_copies_and_nothing_is_lost(bench: Bench, forged: Any) -> None:
    # RabbitMQ 3.10 dropped the copy and everything else in its retry queue when that queue's
    # TTL dead-lettered a copy carrying the forged x-death (review of issue 12).
    app, runs = failing_app()
    bench.declare(app)
    first, second = event(), event()
    bench.send(first, headers={**to_properties(first).headers, "x-death": forged})
    bench.send(second)
    run = Run(bench, app)
    try:
        found_letters = letters(bench, 2)
    finally:
        run.stop()
    assert run.error is None, run.error
    assert len(runs) == 2 * FAST.max_attempts
    assert sorted(letter.id for letter in found_letters) == sorted([first.id, second.id])
    found = counts(bench, app)
    assert found[bench.dead] == 2 and sum(found.values()) == 2, found


YEAR_10000 = 253_402_300_800  # seconds: 10000-01-01T00:00:00Z, past what `datetime` holds


def test_a_timestamp_header_after_the_year_9999_is_handled_and_dead_lettered(bench: Bench) -> None:
    app, runs = failing_app()
    bench.declare(app)
    envelope = event()
    headers = {**to_properties(envelope).headers, "when": FarTimestamp(YEAR_10000 + 1)}
    bench.send(envelope, headers=headers)
    run = Run(bench, app)
    try:
        [letter] = letters(bench, 1)
    finally:
        run.stop()
    assert run.error is None, run.error
    assert len(runs) == FAST.max_attempts  # each attempt was delivered: the connection stayed up
    assert letter.error_type == "ValueError"
    delivery = bench.take(bench.dead)
    assert bench.drain(bench.dead) == []
    assert delivery.headers["when"] == YEAR_10000 + 1
    assert isinstance(delivery.headers["when"], FarTimestamp) or bench.kind == "memory"


# ------------------------------------------------------------ item 5: a queue deleted under a consumer


def test_a_queue_deleted_under_a_consumer_is_an_error_and_stays_deleted(bench: Bench) -> None:
    queue = Queue(f"{bench.queue}.gone")
    bench.delete_at_end(queue.name)
    with open_transport(bench.url) as t:
        t.declare(Topology.of(queue))
        consumer = t.consume(queue.name)
        assert consumer.get(timeout=0.05) is None
        bench.t.delete_queue(queue.name)  # an operator, on another connection
        with pytest.raises(BrokerError, match="was deleted: the broker cancelled the consumer"):
            wait_until(lambda: consumer.get(timeout=0.05) is not None, "the cancel")
        assert getattr(t, "reconnects", 0) == 0  # the cancel did not cost the connection
        t.publish("", "nowhere", b"{}")  # the transport still works
        assert t.flush(timeout=WAIT) == []
    with pytest.raises(ChannelClosed, match="404"):  # not declared again behind the operator's back
        bench.t.get(queue.name)


def test_a_worker_whose_queue_is_deleted_stops_with_one_line(bench: Bench) -> None:
    app, handled = recording_app()
    bench.declare(app)
    bench.send(event())
    run = Run(bench, app)
    try:
        wait_until(lambda: handled, "the worker to consume")
        bench.t.delete_queue(bench.queue)
        wait_until(lambda: not run.thread.is_alive(), "the worker to stop")
    finally:
        run.stop()
    assert isinstance(run.error, BrokerError)
    assert str(run.error) == f"queue {bench.queue!r} was deleted: the broker cancelled the consumer"
    with pytest.raises(ChannelClosed, match="404"):
        bench.t.get(bench.queue)


# ------------------------------------------------------------ item 27: the tutorial's producer


@pytest.mark.broker
def test_the_example_worker_handles_the_tutorials_plain_jobs(amqp_url: str, unique: str) -> None:
    example = runpy.run_path(str(Path(__file__).parents[1] / "examples" / "resize_worker.py"))
    app: App = example["app"]
    b = Bench("rabbitmq", amqp_url, unique)
    try:
        b.declare(app)
        jobs = [{"id": n, "action": "resize_image", "path": f"/uploads/img_{n}.jpg"} for n in (1, 2)]
        tutorial_publish(amqp_url, b.queue, [json.dumps(job).encode() for job in jobs])
        run = Run(b, app)
        try:
            wait_until(lambda: run.worker.stats.processed == 2, "both jobs handled", timeout=WAIT)
        finally:
            run.stop()
        assert run.error is None, run.error
        assert (run.worker.stats.retried, run.worker.stats.dead_lettered) == (0, 0)
        assert sum(counts(b, app).values()) == 0
    finally:
        b.close()


# ------------------------------------------------------------ item 35: plain bodies, ids and log lines


def test_two_identical_plain_jobs_are_two_dead_letters_replayed_one_by_one(bench: Bench) -> None:
    app, _runs = failing_app(policy=NO_RETRY)
    app.event_type = RESIZE
    bench.declare(app)
    job = b'{"input": "same.jpg", "width": 1, "height": 1}'
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING", format="{message}")
    logger.enable("routing")
    try:
        for _ in range(2):
            bench.send(event(), body=job, headers={}, message_id=None, type=None)
        run = Run(bench, app)
        try:
            found = letters(bench, 2)
        finally:
            run.stop()
    finally:
        logger.remove(sink)
        logger.disable("routing")
    assert run.error is None, run.error
    first, second = (letter.id for letter in found)
    assert first != second  # not one content hash for both
    result = dead_letter_queue.replay(bench.t, bench.dead, ids={second})
    assert [r.id for r in result.replayed] == [second]
    assert [letter.id for letter in dead_letter_queue.peek(bench.t, bench.dead)] == [first]
    # The warnings name the message: the body's hash, as the handler saw it.
    assert all("message sha256:" in line for line in warnings), warnings


NODE_PRODUCER = """
const amqp = require('amqplib');
(async () => {
  const connection = await amqp.connect(process.argv[2]);
  const channel = await connection.createConfirmChannel();
  const job = {id: 7, action: 'resize_image', path: '/uploads/img_7.jpg'};
  channel.sendToQueue(process.argv[3], Buffer.from(JSON.stringify(job)),
                      {persistent: true, contentType: 'application/json'});
  await channel.waitForConfirms();
  await connection.close();
})().catch((e) => { console.error(e); process.exit(1); });
"""


@pytest.fixture(scope="module")
def amqplib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with Node's `amqplib` installed (npm), for a producer we did not write."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI needs node and npm for the amqplib interop test")
        pytest.skip("node and npm are not installed")
    folder = tmp_path_factory.mktemp("amqplib")
    subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "amqplib"],
        cwd=folder,
        check=True,
        timeout=300,
        capture_output=True,
    )
    (folder / "producer.js").write_text(NODE_PRODUCER)
    return folder


@pytest.mark.broker
def test_the_example_worker_handles_a_plain_job_from_node_amqplib(
    amqp_url: str, unique: str, amqplib: Path
) -> None:
    example = runpy.run_path(str(Path(__file__).parents[1] / "examples" / "resize_worker.py"))
    app: App = example["app"]
    b = Bench("rabbitmq", amqp_url, unique)
    try:
        b.declare(app)
        node_url = amqp_url.split("?", 1)[0]
        subprocess.run(
            ["node", "producer.js", node_url, b.queue],
            cwd=amqplib,
            check=True,
            timeout=60,
            capture_output=True,
        )
        run = Run(b, app)
        try:
            wait_until(lambda: run.worker.stats.processed == 1, "the job handled")
        finally:
            run.stop()
        assert run.error is None, run.error
        assert (run.worker.stats.retried, run.worker.stats.dead_lettered) == (0, 0)
        assert sum(counts(b, app).values()) == 0
    finally:
        b.close()


class Refusing:
    """A transport that refuses, before sending, any publish to `queue` (as a transport does
    with headers it will not encode); everything else goes to `inner`."""

    def __init__(self, inner: Any, queue: str) -> None:
        self.inner = inner
        self.queue = queue

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def publish(self, exchange: str, routing_key: str, *args: Any, **kwargs: Any) -> Any:
        if routing_key == self.queue:
            raise RoutingError("header 'x': cannot be encoded")
        return self.inner.publish(exchange, routing_key, *args, **kwargs)


def test_a_copy_refused_before_sending_leaves_the_original_and_stops(bench: Bench) -> None:
    app, _runs = failing_app()
    bench.declare(app)
    sent = bench.send(event({"input": 5}))  # invalid: its copy goes to the dead-letter queue
    transport = Refusing(open_transport(bench.url), bench.dead)
    worker = Worker(app, transport, bench.queue, poll=QUICK_POLL)  # type: ignore[arg-type]
    try:
        with pytest.raises(CopyRefused, match=f"message {sent.id}: the broker did not take its copy"):
            worker.run()
    finally:
        transport.inner.close()
    assert worker.stats.dead_lettered == 0
    found = counts(bench, app)
    assert found[bench.queue] == 1 and sum(found.values()) == 1, found
