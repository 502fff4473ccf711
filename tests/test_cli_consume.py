"""`routing consume` never destroys a message it cannot accept (issue 12, items 1 and 35).

The producer is the pika tutorial's (plain JSON, `application/json`, persistent), written
with pika itself; messages are counted on the live broker before and after each run.
"""

from __future__ import annotations

import json

import pika
import pytest
from broker_under_test import naming_management as with_management
from broker_under_test import plain_amqp_url, queue_depth, tutorial_publish
from click.testing import CliRunner, Result

from routing.cli import main
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport import open_transport

JOB = {"id": 1, "action": "resize_image", "path": "/uploads/img_1.jpg"}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.mark.broker
def test_a_plain_job_on_a_queue_without_dead_letter_exchange_stays(amqp_url: str, task_queue: str) -> None:
    tutorial_publish(amqp_url, task_queue, [json.dumps(JOB).encode()])
    assert queue_depth(amqp_url, task_queue) == 1
    got = run("consume", task_queue, "--limit", "1", "--timeout", "5", "--url", amqp_url)
    assert got.exit_code == 1, got.output
    assert "REJECTED" in got.stdout and "no event type" in got.stdout
    assert got.stderr.strip().splitlines()[-1] == (
        "Error: 1 message(s) not accepted: 1 left on the queue (it has no dead-letter exchange)"
    )
    assert "Traceback" not in got.output
    assert queue_depth(amqp_url, task_queue) == 1  # nothing lost
    # Typed by the command line, the same job is accepted and acked.
    typed = run(
        "consume", task_queue, "--type", "task.resize_image", "--limit", "1", "--timeout", "5",
        "--url", amqp_url,
    )  # fmt: skip
    assert typed.exit_code == 0, typed.output
    assert "task.resize_image" in typed.stdout and "(redelivered)" in typed.stdout
    assert queue_depth(amqp_url, task_queue) == 0


@pytest.mark.broker
def test_a_message_that_cannot_be_accepted_goes_to_the_queues_dead_letter_exchange(
    amqp_url: str, management_url: str, unique: str
) -> None:
    work, dlx, dead = f"{unique}.work", f"{unique}.dlx", f"{unique}.dead"
    topology = Topology.of(
        Exchange(dlx, "fanout"), Queue(dead), Queue(work, dead_letter_exchange=dlx), Binding(dlx, dead)
    )
    with open_transport(amqp_url) as t:
        t.declare(topology)
    try:
        tutorial_publish(amqp_url, work, [b"{not json", json.dumps(JOB).encode()])
        got = run(
            "consume",
            work,
            "--limit",
            "2",
            "--timeout",
            "5",
            "--url",
            with_management(amqp_url, management_url),
        )
        assert got.exit_code == 1, got.output
        assert f"2 message(s) not accepted: 2 dead-lettered to exchange '{dlx}'" in got.stderr
        assert (queue_depth(amqp_url, work), queue_depth(amqp_url, dead)) == (0, 2)
    finally:
        with open_transport(amqp_url) as t:
            t.delete_queue(work)
            t.delete_queue(dead)
            t.delete_exchange(dlx)


@pytest.mark.broker
def test_limit_caps_the_prefetch_so_nothing_comes_back_redelivered(amqp_url: str, task_queue: str) -> None:
    tutorial_publish(amqp_url, task_queue, [json.dumps({**JOB, "id": n}).encode() for n in range(5)])
    got = run(
        "consume", task_queue, "--type", "task.resize_image", "--limit", "2", "--timeout", "5",
        "--url", amqp_url,
    )  # fmt: skip
    assert got.exit_code == 0, got.output
    assert queue_depth(amqp_url, task_queue) == 3
    rest = run(
        "consume", task_queue, "--type", "task.resize_image", "--limit", "3", "--timeout", "5",
        "--json", "--url", amqp_url,
    )  # fmt: skip
    records = [json.loads(line) for line in rest.stdout.splitlines()]
    assert [r["redelivered"] for r in records] == [False, False, False]
    assert [r["envelope"]["data"]["id"] for r in records] == [2, 3, 4]
    assert queue_depth(amqp_url, task_queue) == 0


@pytest.mark.broker
@pytest.mark.parametrize("exists", [False, True], ids=["missing-dlx", "dlx-with-no-binding"])
def test_a_dead_letter_exchange_that_would_drop_the_message_is_not_trusted(
    amqp_url: str, management_url: str, unique: str, exists: bool
) -> None:
    # RabbitMQ drops, without a word, a message dead-lettered to an exchange that does not
    # exist or routes nowhere (review of issue 12: consume said "dead-lettered" and it was gone).
    work, dlx = f"{unique}.work", f"{unique}.dlx"
    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
    channel = connection.channel()
    if exists:
        channel.exchange_declare(dlx, "fanout")
    channel.queue_declare(
        work, durable=True, arguments={"x-dead-letter-exchange": dlx}
    )  # as a careless app would
    connection.close()
    try:
        tutorial_publish(amqp_url, work, [json.dumps(JOB).encode()])
        got = run(
            "consume",
            work,
            "--limit",
            "1",
            "--timeout",
            "5",
            "--url",
            with_management(amqp_url, management_url),
        )
        assert got.exit_code == 1, got.output
        assert "dead-lettered" not in got.stderr and "left on the queue" in got.stderr, got.stderr
        assert queue_depth(amqp_url, work) == 1  # nothing lost
    finally:
        with open_transport(amqp_url) as t:
            t.delete_queue(work)
            if exists:
                t.delete_exchange(dlx)
