"""`routing dlq show`, `routing dlq replay` and `routing worker`'s refusals, through CliRunner.

The dead letters here are published straight to QUEUE.dead with the headers the worker writes
(`record_failure`), so each test knows exactly what the queue holds; the worker's own path to
the dead-letter queue is tested in test_worker.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

import pika
import pytest
from broker_under_test import plain_amqp_url
from click.testing import CliRunner, Result

from routing import Envelope, encode, to_properties
from routing.cli import main
from routing.errors import ChannelClosed
from routing.topology import Queue, Topology
from routing.transport import Delivery, Transport, open_transport
from routing.urls import redact
from routing.worker import NO_RETRY, App, DeadLetterRecord, Failure
from routing.worker.failures import record_failure

TESTS = Path(__file__).parent
NOWHERE = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens: these commands must fail before connecting


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_line_error(result: Result, *, stderr: bool = False) -> str:
    """The single `Error: ...` line of a failed command (exit 1, no traceback); with
    `stderr`, the one line there (stdout may name the broker first)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    [line] = (result.stderr if stderr else result.output).splitlines()
    assert line.startswith("Error: ")
    return line


def worker_app() -> App:
    """tests/worker_apps.py's app (its retry queues are the ones `routing worker` declares)."""
    import worker_apps

    return worker_apps.app


def resize(envelope: Envelope) -> None:
    raise ValueError(f"cannot decode {envelope.data['input']}")


class Dead:
    """A work queue and its dead-letter queue on RabbitMQ, with two dead letters in it."""

    def __init__(self, t: Transport, queue: str) -> None:
        self.t = t
        self.queue = queue
        self.dead = f"{queue}.dead"
        self.envelopes = [
            Envelope.new("task.resize_image", {"input": "poison.jpg", "width": 1, "height": 1}),
            Envelope.new("cache.invalidate", {"cache": "users", "reason": "r", "keys": ["u1"]}),
        ]
        self.ids = [e.id for e in self.envelopes]
        try:
            resize(self.envelopes[0])
        except ValueError as exc:
            failed = Failure.from_exception(exc)
        no_handler = Failure("NoHandler", "no handler for event type 'cache.invalidate'", permanent=True)
        self.publish(self.envelopes[0], failed, attempts=3)
        self.publish(self.envelopes[1], no_handler, attempts=1)

    def publish(self, envelope: Envelope, failure: Failure, attempts: int) -> None:
        body = encode(envelope)
        delivery = Delivery(body, to_properties(envelope), "", self.queue, self.queue, delivery_tag=0)
        for _ in range(attempts):
            delivery = replace(delivery, properties=record_failure(delivery, failure))
        self.t.publish("", self.dead, body, delivery.properties, mandatory=True)
        assert self.t.flush(timeout=10) == []

    def ids_in(self, queue: str) -> list[str | None]:
        """Message ids of what `queue` holds, in order; the queue keeps them."""
        taken = []
        while (delivery := self.t.get(queue)) is not None:
            taken.append(delivery)
        for delivery in reversed(taken):
            self.t.nack(delivery, requeue=True)
        return [d.properties.message_id for d in taken]


@pytest.fixture
def dead(amqp_url: str, unique: str) -> Iterator[Dead]:
    topology = App(retry=NO_RETRY).topology(f"{unique}.resize")
    with open_transport(amqp_url) as t:
        t.declare(topology)
        try:
            yield Dead(t, f"{unique}.resize")
        finally:
            for queue in topology.queues:
                t.delete_queue(queue.name)


# ------------------------------------------------------------------ dlq show


@pytest.mark.broker
def test_dlq_show_lists_each_letter_and_why(amqp_url: str, dead: Dead) -> None:
    result = run("dlq", "show", dead.dead, "--url", amqp_url)
    assert result.exit_code == 0, result.output
    broker, *lines = result.output.splitlines()
    assert broker == f"broker: {redact(amqp_url)}"  # every command names its broker first
    assert lines[0] == f"2 dead letter(s) in {dead.dead!r}"
    first, second = dead.ids
    assert (
        lines[1] == f"1. id {first}  type task.resize_image  attempts 3  from exchange '' key {dead.queue!r}"
    )
    assert lines[2] == "   ValueError: cannot decode poison.jpg"
    assert lines[3].startswith("   failed first 20") and lines[3].endswith(f"; queue {dead.queue!r}")
    assert lines[4].startswith("   at ") and lines[4].endswith("in resize")
    assert (
        lines[5] == f"2. id {second}  type cache.invalidate  attempts 1  from exchange '' key {dead.queue!r}"
    )
    assert lines[6] == "   no handler for event type 'cache.invalidate'"
    assert len(lines) == 8  # the failure times; no traceback for a message no handler saw
    assert dead.ids_in(dead.dead) == dead.ids  # show takes nothing away

    limited = run("dlq", "show", dead.dead, "--limit", "1", "--url", amqp_url)
    assert limited.exit_code == 0, limited.output
    # Issue 12 item 35: "(first 1)" did not say of how many.
    assert limited.output.splitlines()[1] == f"2 dead letter(s) in {dead.dead!r} (the first 1 of 2)"
    assert f"id {second}" not in limited.output
    assert dead.ids_in(dead.dead) == dead.ids


@pytest.mark.broker
def test_dlq_show_json(amqp_url: str, dead: Dead) -> None:
    result = run("dlq", "show", dead.dead, "--json", "--url", amqp_url)
    assert result.exit_code == 0, result.output
    letters = [json.loads(line) for line in result.output.splitlines()]
    assert [letter["id"] for letter in letters] == dead.ids
    assert all(set(letter) == {f.name for f in fields(DeadLetterRecord)} for letter in letters)
    first = letters[0]
    assert (first["type"], first["attempts"], first["error_type"]) == ("task.resize_image", 3, "ValueError")
    assert first["reason"] == "ValueError: cannot decode poison.jpg"
    assert (first["exchange"], first["routing_key"], first["queue"]) == ("", dead.queue, dead.queue)
    assert first["size"] == len(encode(dead.envelopes[0]))
    assert letters[1]["error_type"] == "NoHandler" and letters[1]["traceback"] == ""


@pytest.mark.broker
def test_dlq_show_of_an_empty_and_of_a_missing_queue(amqp_url: str, dead: Dead, unique: str) -> None:
    empty = run("dlq", "show", dead.queue, "--url", amqp_url)
    assert (empty.exit_code, empty.stdout) == (
        0,
        f"broker: {redact(amqp_url)}\n0 dead letter(s) in {dead.queue!r}\n",
    )
    missing = run("dlq", "show", f"{unique}.none", "--url", amqp_url)
    assert f"{unique}.none" in one_line_error(missing, stderr=True)


def test_dlq_needs_rabbitmq() -> None:
    line = one_line_error(run("dlq", "show", "jobs.dead", "--url", "memory://"))
    assert line.startswith("Error: dlq show needs RabbitMQ")


# ------------------------------------------------------------------ dlq replay


@pytest.mark.broker
def test_dlq_replay_by_id(amqp_url: str, dead: Dead) -> None:
    first, second = dead.ids
    result = run("dlq", "replay", dead.dead, "--id", second, "--url", amqp_url)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"broker: {redact(amqp_url)}",
        f"replayed {second} to exchange '' key {dead.queue!r}",
        "1 replayed, 0 failed, 0 not found",
    ]
    assert dead.ids_in(dead.dead) == [first]
    replayed = dead.t.get(dead.queue)
    assert replayed is not None
    dead.t.ack(replayed)
    assert replayed.body == encode(dead.envelopes[1])
    assert not [h for h in replayed.headers if h.startswith("x-routing-")]  # a new message again
    assert replayed.properties.type == "cache.invalidate"


@pytest.mark.broker
def test_dlq_replay_all(amqp_url: str, dead: Dead) -> None:
    result = run("dlq", "replay", dead.dead, "--all", "--url", amqp_url)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "2 replayed, 0 failed, 0 not found"
    assert dead.ids_in(dead.dead) == []
    assert dead.ids_in(dead.queue) == dead.ids


@pytest.mark.broker
def test_dlq_replay_of_an_unknown_id_exits_1(amqp_url: str, dead: Dead) -> None:
    result = run("dlq", "replay", dead.dead, "--id", "no-such-id", "--id", dead.ids[0], "--url", amqp_url)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "not found: no-such-id" in result.stderr
    assert result.stdout.splitlines()[-1] == "1 replayed, 0 failed, 1 not found"
    assert dead.ids_in(dead.dead) == dead.ids[1:]


@pytest.mark.parametrize("choice", [(), ("--all", "--id", "x")], ids=["neither", "both"])
def test_dlq_replay_needs_id_or_all(choice: tuple[str, ...]) -> None:
    result = run("dlq", "replay", "jobs.dead", *choice, "--url", NOWHERE)
    assert result.exit_code == 2, result.output
    assert "give --id ID (one or more) or --all" in result.output
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ routing worker


@pytest.fixture
def apps_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))


def test_worker_refuses_the_embedded_broker(apps_on_path: None, monkeypatch: pytest.MonkeyPatch) -> None:
    line = one_line_error(run("worker", "worker_apps:app", "--queue", "jobs", "--url", "memory://"))
    assert line.startswith("Error: worker needs RabbitMQ: the embedded broker lives inside one process")
    assert "--url amqp://" in line
    monkeypatch.delenv("ROUTING_URL", raising=False)  # no URL at all means the embedded broker
    assert one_line_error(run("worker", "worker_apps:app", "--queue", "jobs")) == line


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_such_module_here:app", "Error: no_such_module_here:app: no module named 'no_such_module_here'"),
        ("worker_apps:nope", "Error: worker_apps:nope: 'worker_apps' has no attribute 'nope'"),
        ("worker_apps", "Error: worker_apps: expected module:attribute, e.g. shop.jobs:app"),
        ("worker_apps:_SECONDS", "Error: worker_apps:_SECONDS: is of type float, not a routing.worker.App"),
        ("worker_apps:App", "Error: worker_apps:App: is of type type, not a routing.worker.App"),
    ],
)
def test_worker_refuses_a_bad_app_reference(apps_on_path: None, ref: str, message: str) -> None:
    # Checked before connecting: NOWHERE would fail with a connection error instead.
    line = one_line_error(run("worker", ref, "--queue", "jobs", "--url", NOWHERE))
    assert line.startswith(message), line


def test_worker_refuses_a_handler_given_for_the_app(apps_on_path: None) -> None:
    line = one_line_error(run("worker", "worker_apps:resize", "--queue", "jobs", "--url", NOWHERE))
    assert line.startswith("Error: worker_apps:resize: ")


@pytest.mark.broker
def test_worker_type_takes_the_tutorials_plain_jobs(amqp_url: str, unique: str, tmp_path: Path) -> None:
    """`--type` names the event type of plain JSON bodies; at the default log level each
    handled message is one line naming its id; the broker is named on the first line."""
    queue = f"{unique}.tasks"
    log = tmp_path / "work.log"
    env = {**os.environ, "PYTHONPATH": str(TESTS), "ROUTING_TEST_WORK_LOG": str(log)}
    command = [sys.executable, "-m", "routing", "worker", "worker_apps:app", "--queue", queue]
    command += ["--type", "task.resize_image", "--url", amqp_url]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
        channel = connection.channel()
        deadline = time.monotonic() + 30
        while True:  # the worker declares the queue; the tutorial's producer then sends to it
            try:
                channel.queue_declare(queue, passive=True)
                break
            except pika.exceptions.ChannelClosedByBroker:
                assert time.monotonic() < deadline and process.poll() is None, "the worker did not declare"
                channel = connection.channel()
                time.sleep(0.1)
        job = {"id": 1, "action": "resize_image", "path": "/uploads/img_1.jpg"}
        channel.basic_publish(
            "",
            queue,
            json.dumps(job),
            pika.BasicProperties(delivery_mode=2, content_type="application/json", message_id="job-1"),
        )
        connection.close()
        while not (log.exists() and log.read_text()):
            assert time.monotonic() < deadline, "the job was not handled"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        with open_transport(amqp_url) as t:
            for q in worker_app().topology(queue).queues:
                t.delete_queue(q.name)
    assert process.returncode == 0, err
    assert log.read_text().split()[0] == "job-1"
    lines = out.splitlines()
    assert lines[0] == f"broker: {redact(amqp_url)}; 1 worker(s) on {queue!r}, prefetch 1"
    assert lines[-1] == "stopped: 1 processed, 0 retried, 0 dead-lettered"
    assert "message job-1 (task.resize_image) handled in" in err


@pytest.mark.broker
def test_worker_on_an_incompatible_queue_leaves_nothing_behind(
    apps_on_path: None, amqp_url: str, unique: str
) -> None:
    """Issue 12 item 32: `tasks` exists as another kind of queue; the worker fails and does
    not leave `tasks.dead` and `tasks.retry.*` behind."""
    queue = f"{unique}.tasks"
    around = [q.name for q in worker_app().topology(queue).queues if q.name != queue]
    with open_transport(amqp_url) as t:
        t.declare(Topology.of(Queue(queue)))  # the tutorial's plain durable queue
        try:
            result = run("worker", "worker_apps:app", "--queue", queue, "--url", amqp_url)
            assert result.exit_code == 1, result.output
            assert "Traceback" not in result.output
            assert result.stderr.splitlines()[-1] == (
                f"Error: {queue!r}: the broker has these queues with other settings; nothing was declared"
            )
            for name in around:
                with pytest.raises(ChannelClosed, match="404"):
                    t.get(name)
        finally:
            for name in [queue, *around]:
                t.delete_queue(name)


# ------------------------------------------------------------------ dead letters as others left them


def publish_raw(amqp_url: str, queue: str, body: bytes, **properties: object) -> None:
    """Publish with plain pika, as another client would (header names and values pika
    sends as given, bytes included)."""
    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish("", queue, body, pika.BasicProperties(**properties))  # type: ignore[arg-type]
    connection.close()


@pytest.mark.broker
def test_dlq_show_and_replay_a_forged_x_death_count(amqp_url: str, dead: Dead) -> None:
    """Issue 12 item 29: a count "abc" made show and replay fail with a traceback."""
    death = {
        "count": "abc",
        "reason": "rejected",
        "queue": dead.queue,
        "exchange": "",
        "routing-keys": [dead.queue],
    }
    headers = {"x-death": [death], "x-first-death-reason": "rejected", "x-first-death-queue": dead.queue}
    publish_raw(amqp_url, dead.dead, b'{"y": 1}', message_id="forged", headers=headers)
    shown = run("dlq", "show", dead.dead, "--url", amqp_url)
    assert shown.exit_code == 0, shown.output
    assert f"3. id forged  type -  attempts abc  from exchange '' key {dead.queue!r}" in shown.output
    as_json = run("dlq", "show", dead.dead, "--json", "--url", amqp_url)
    assert json.loads(as_json.output.splitlines()[2])["attempts"] == "abc"
    replayed = run("dlq", "replay", dead.dead, "--id", "forged", "--url", amqp_url)
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.splitlines()[-1] == "1 replayed, 0 failed, 0 not found"
    assert dead.ids_in(dead.queue) == ["forged"]
    assert dead.ids_in(dead.dead) == dead.ids


@pytest.mark.broker
def test_dlq_replay_all_of_letters_with_lone_surrogates_and_bad_utf8(amqp_url: str, dead: Dead) -> None:
    """Issue 12 item 29: a body with an escaped "\\ud800", and header names and values that
    are not UTF-8, are shown and replayed, not a traceback."""
    headers = {
        b"bad\xed\xa0\x80": b"v\xed\xa0\x80",
        "x-routing-attempts": 1,
        "x-routing-original-routing-key": dead.queue,
        "x-routing-queue": dead.queue,
        "x-routing-error": b"reason \xed\xa0\x80",
    }
    publish_raw(amqp_url, dead.dead, b'{"x": "\\ud800"}', message_id="odd", headers=headers)
    shown = run("dlq", "show", dead.dead, "--url", amqp_url)
    assert shown.exit_code == 0, shown.output
    assert "3. id odd" in shown.output and "Traceback" not in shown.output
    result = run("dlq", "replay", dead.dead, "--all", "--url", amqp_url)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "3 replayed, 0 failed, 0 not found"
    assert dead.ids_in(dead.queue) == [*dead.ids, "odd"]
    [odd] = [d for d in dead_deliveries(dead.t, dead.queue) if d.properties.message_id == "odd"]
    assert odd.body == b'{"x": "\\ud800"}'


def dead_deliveries(t: Transport, queue: str) -> list[Delivery]:
    taken = []
    while (delivery := t.get(queue)) is not None:
        taken.append(delivery)
    for delivery in reversed(taken):
        t.nack(delivery, requeue=True)
    return taken


@pytest.mark.broker
def test_dlq_replay_refuses_a_letter_with_no_origin(amqp_url: str, dead: Dead) -> None:
    """Issue 12 item 34: a message published straight to the dead-letter queue was sent back
    into it and reported as replayed."""
    publish_raw(amqp_url, dead.dead, b'{"job": 1}', message_id="stray")
    result = run("dlq", "replay", dead.dead, "--id", "stray", "--url", amqp_url)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        "not replayed stray: no record of where it was first published (no x-routing-* headers, "
        f"no x-death): replaying it would put it back into {dead.dead!r}"
    ]
    assert result.stdout.splitlines()[-1] == "0 replayed, 1 failed, 0 not found"
    assert dead.ids_in(dead.dead) == [*dead.ids, "stray"]  # kept, in its place
    assert dead.ids_in(dead.queue) == []


@pytest.mark.parametrize("command", [["worker"], ["dlq", "show"], ["dlq", "replay"]])
def test_commands_that_need_rabbitmq_do_not_offer_the_embedded_broker(command: list[str]) -> None:
    """Issue 12 item 35: their --url help offered memory://, which they refuse."""
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "memory://" not in result.output
    assert "amqp://" in result.output


@pytest.mark.broker
@pytest.mark.slow
def test_concurrent_workers_survive_a_forged_attempt_count_without_restarts(
    amqp_url: str, unique: str, tmp_path: Path
) -> None:
    """Issue 12 item 4: a forged x-routing-attempts of 2**63-1 on a failing message crashed
    the worker (struct.error) and the supervisor restarted workers again and again."""
    queue = f"{unique}.tasks"
    env = {**os.environ, "PYTHONPATH": str(TESTS), "ROUTING_TEST_WORK_LOG": str(tmp_path / "work.log")}
    command = [sys.executable, "-m", "routing", "worker", "worker_apps:app", "--queue", queue]
    command += ["--concurrency", "2", "--url", amqp_url]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t = open_transport(amqp_url)
    try:
        deadline = time.monotonic() + 30
        poison = Envelope.new("task.resize_image", {"input": "poison.jpg", "width": 1, "height": 1})
        props = to_properties(poison)
        props = replace(props, headers={**props.headers, "x-routing-attempts": 2**63 - 1})
        while True:  # once the worker has declared the queue
            t.publish("", queue, encode(poison), props, mandatory=True)
            if t.flush(timeout=10) == []:
                break
            assert time.monotonic() < deadline and process.poll() is None, "the worker did not declare"
            time.sleep(0.2)
        while (letter := t.get(f"{queue}.dead")) is None:
            assert time.monotonic() < deadline, "no dead letter"
            time.sleep(0.1)
        t.ack(letter)
        time.sleep(1.0)  # a crashed child would be restarted within this
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
        for q in worker_app().topology(queue).queues:
            t.delete_queue(q.name)
        t.close()
    assert process.returncode == 0, err
    assert letter.headers["x-routing-error-type"] == "ValueError"
    assert "restarting" not in err and "Traceback" not in err, err


@pytest.mark.broker
@pytest.mark.slow
def test_concurrent_workers_whose_queue_is_deleted_stop_and_are_not_restarted(
    amqp_url: str, unique: str, tmp_path: Path
) -> None:
    """Issue 12 item 5 under the supervisor: each worker stops with one line; restarting
    them would only fail again (404), so the command ends with exit 1."""
    queue = f"{unique}.tasks"
    log = tmp_path / "work.log"
    env = {**os.environ, "PYTHONPATH": str(TESTS), "ROUTING_TEST_WORK_LOG": str(log)}
    command = [sys.executable, "-m", "routing", "worker", "worker_apps:app", "--queue", queue]
    command += ["--concurrency", "2", "--url", amqp_url]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t = open_transport(amqp_url)
    try:
        deadline = time.monotonic() + 30
        job = Envelope.new("task.resize_image", {"input": "a.jpg", "width": 1, "height": 1})
        while not (log.exists() and log.read_text()):  # a worker is consuming once it handled one
            t.publish("", queue, encode(job), to_properties(job), mandatory=True)
            t.flush(timeout=10)
            assert time.monotonic() < deadline and process.poll() is None, "no worker consumed"
            time.sleep(0.3)
        time.sleep(0.5)  # both consume (each logged "worker consuming")
        t.delete_queue(queue)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        for q in worker_app().topology(queue).queues:
            t.delete_queue(q.name)
        t.close()
    assert process.returncode == 1, err
    assert "restarting in" not in err and "Traceback" not in err, err
    assert err.count("stopped on an error; not restarting it") == 2, err
    assert err.count(f"Error: queue {queue!r} was deleted: the broker cancelled the consumer") == 2, err
