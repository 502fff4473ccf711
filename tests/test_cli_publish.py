"""`routing publish`: plain bodies for plain consumers (item 27), Ctrl-C (item 34), through
the library's Publisher (item 35). Messages are counted on the live broker."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pika
import pytest
from broker_under_test import plain_amqp_url, queue_depth
from click.testing import CliRunner

from routing.cli import main

JOB = {"id": 1, "action": "resize_image", "path": "/uploads/img_1.jpg"}
LOG = {"level": "error", "service": "billing", "message": "boom", "time": "2026-01-01T00:00:00Z"}


@pytest.mark.broker
def test_a_plain_body_reaches_the_tutorials_plain_consumer(amqp_url: str, task_queue: str) -> None:
    """As the pika tutorial's worker.py reads: basic_consume, json.loads(body), ack."""
    args = ["publish", "--exchange", "", "--routing-key", task_queue, "--body", json.dumps(JOB)]
    sent = CliRunner().invoke(main, [*args, "--count", "2", "--url", amqp_url])
    assert sent.exit_code == 0, sent.output
    assert "published 2: 2 confirmed" in sent.stdout
    assert queue_depth(amqp_url, task_queue) == 2

    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
    received: list[tuple[dict[str, object], pika.BasicProperties]] = []
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)

        def callback(ch: object, method: object, properties: pika.BasicProperties, body: bytes) -> None:
            received.append((json.loads(body), properties))
            channel.basic_ack(delivery_tag=method.delivery_tag)  # type: ignore[attr-defined]
            if len(received) == 2:
                channel.stop_consuming()

        channel.basic_consume(queue=task_queue, on_message_callback=callback)
        connection.call_later(10, channel.stop_consuming)
        channel.start_consuming()
    finally:
        connection.close()
    assert [body for body, _ in received] == [JOB, JOB]  # the body itself, no envelope
    assert {p.content_type for _, p in received} == {"application/json"}
    assert {p.delivery_mode for _, p in received} == {2}
    assert len({p.message_id for _, p in received}) == 2  # two identical jobs, two ids
    assert queue_depth(amqp_url, task_queue) == 0


@pytest.mark.broker
def test_a_typed_plain_body_is_checked_and_read_back_by_consume(amqp_url: str, task_queue: str) -> None:
    args = ["publish", "--exchange", "", "--routing-key", task_queue, "--type", "task.resize_image"]
    bad = CliRunner().invoke(main, [*args, "--body", json.dumps({**JOB, "extra": 1}), "--url", amqp_url])
    assert bad.exit_code == 1 and "data.extra: not allowed here" in bad.stderr
    assert "nothing was sent" in bad.stderr
    good = CliRunner().invoke(main, [*args, "--body", json.dumps(JOB), "--url", amqp_url])
    assert good.exit_code == 0, good.output
    got = CliRunner().invoke(
        main, ["consume", task_queue, "--limit", "1", "--timeout", "5", "--json", "--url", amqp_url]
    )
    assert got.exit_code == 0, got.output
    [record] = [json.loads(line) for line in got.stdout.splitlines()]
    assert record["envelope"]["type"] == "task.resize_image" and record["envelope"]["data"] == JOB
    assert queue_depth(amqp_url, task_queue) == 0


def test_publish_needs_a_type_or_a_body() -> None:
    result = CliRunner().invoke(main, ["publish", "--exchange", "x", "--data", "{}"])
    assert result.exit_code == 2 and "give --type for an envelope, or --body" in result.stderr


@pytest.mark.broker
def test_ctrl_c_during_a_bulk_publish_reports_what_was_confirmed(amqp_url: str, task_queue: str) -> None:
    routing = Path(sys.executable).with_name("routing")
    argv = [str(routing), "publish", "--exchange", "", "--routing-key", task_queue, "--type", "log.record",
            "--data", json.dumps(LOG), "--count", "200000", "--url", amqp_url]  # fmt: skip
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "80"}
    )
    try:
        deadline = time.monotonic() + 30
        while queue_depth(amqp_url, task_queue) < 500 and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    text = out.decode()
    assert process.returncode == 1, (text, err)
    match = re.search(
        r"published (\d+) of 200000 \(interrupted\): (\d+) confirmed, 0 returned, 0 nacked, 0 unconfirmed",
        text,
    )
    assert match, (text, err)
    sent, confirmed = int(match[1]), int(match[2])
    assert 0 < sent < 200000 and confirmed == sent
    assert queue_depth(amqp_url, task_queue) == confirmed  # every confirmed message is there
    last = err.decode().strip().splitlines()[-1]
    assert last == f"Error: interrupted: {sent} of 200000 sent, {confirmed} confirmed"
    assert "Aborted!" not in err.decode() and "Traceback" not in err.decode()
