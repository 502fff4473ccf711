"""A handler that runs longer than the heartbeat timeout keeps its connection, so its ack
counts and the message is handled once (pika's blocking connection does no I/O by itself)."""

from __future__ import annotations

import threading
import time

import pytest
from broker_under_test import with_options

from routing import Envelope, encode, open_transport, to_properties
from routing.worker import App, Worker
from routing.worker.runner import KEEPALIVE_AFTER

pytestmark = pytest.mark.broker


def _run_long_handler(
    url: str, queue: str, seconds: float, keepalive_after: float = KEEPALIVE_AFTER
) -> tuple[int, int, int]:
    """(handler calls, reconnects, messages left in the queue) for one message."""
    app = App()
    calls: list[str] = []

    @app.handler("task.resize_image")
    def slow(event: Envelope) -> None:
        calls.append(event.id)
        time.sleep(seconds)

    with open_transport(with_options(url, heartbeat="1")) as transport:
        transport.declare(app.topology(queue))
        event = Envelope.new("task.resize_image", {"input": "big.tiff", "width": 10, "height": 10})
        transport.publish("", queue, encode(event), to_properties(event))
        assert transport.flush() == []
        worker = Worker(app, transport, queue, keepalive_after=keepalive_after)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + seconds + 10
        while worker.stats.processed < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a redelivery, if the ack was lost, would come now
        worker.stop()
        thread.join(timeout=10)
        left = transport.purge(queue)
        for q in app.topology(queue).queues:
            transport.delete_queue(q.name)
        return len(calls), transport.reconnects, left  # type: ignore[attr-defined]


def test_long_handler_keeps_the_connection(amqp_url: str, unique: str) -> None:
    calls, reconnects, left = _run_long_handler(amqp_url, f"{unique}.long", seconds=4.0)
    assert (calls, reconnects, left) == (1, 0, 0)


def test_without_the_keeper_the_connection_is_lost(amqp_url: str, unique: str) -> None:
    """The control: the same run with the keep-alive disabled loses the connection, which
    is what the keeper is for (if this passes with the keeper off, the test above proves nothing)."""
    calls, reconnects, _left = _run_long_handler(
        amqp_url, f"{unique}.long", seconds=4.0, keepalive_after=3600.0
    )
    assert reconnects >= 1 or calls > 1
