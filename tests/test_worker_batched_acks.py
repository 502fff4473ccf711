"""With a larger prefetch the worker acks handled messages together (one `multiple` ack),
never before their handler finished, and failures in between still settle one by one."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from routing import Envelope, encode, open_transport, to_properties
from routing.transport import Transport
from routing.worker import App, RetryPolicy, Worker


class CountingAcks:
    """The real transport, with its acks counted, and a check that a `multiple` ack comes
    after the handler of the message it names finished."""

    def __init__(self, transport: Transport, finished: set[str]) -> None:
        self._t = transport
        self._finished = finished
        self.acks: list[bool] = []

    def ack(self, delivery: Any, *, multiple: bool = False) -> None:
        if multiple:  # covers handled messages only; a failure's own ack comes after its copy
            assert delivery.properties.message_id in self._finished
        self.acks.append(multiple)
        self._t.ack(delivery, multiple=multiple)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


@pytest.fixture
def url(either_url: str) -> str:
    return either_url


def test_batched_acks(url: str, unique: str) -> None:
    queue = f"{unique}.batched"
    app = App(retry=RetryPolicy(initial=0.01, max_delay=0.01, max_attempts=1))
    finished: set[str] = set()

    @app.handler("task.resize_image")
    def handle(event: Envelope) -> None:
        if event.data["input"].startswith("bad"):
            raise ValueError("corrupt")
        finished.add(event.id)

    with open_transport(url) as transport:
        transport.declare(app.topology(queue))
        events = [
            Envelope.new(
                "task.resize_image",
                {"input": f"{'bad' if n % 50 == 7 else 'ok'}{n}.jpg", "width": 1, "height": 1},
            )
            for n in range(400)
        ]
        for event in events:
            transport.publish("", queue, encode(event), to_properties(event))
        assert transport.flush() == []
        counting = CountingAcks(transport, finished)
        worker = Worker(app, counting, queue, prefetch=40)  # type: ignore[arg-type]
        assert worker.ack_batch == 10
        thread = threading.Thread(target=worker.run)
        thread.start()
        deadline = time.monotonic() + 30
        while worker.stats.processed + worker.stats.dead_lettered < 400 and time.monotonic() < deadline:
            time.sleep(0.02)
        worker.stop()
        thread.join(timeout=10)
        dead = [transport.get(f"{queue}.dead") for _ in range(8)]
        leftover = transport.purge(queue)
        for q in app.topology(queue).queues:
            transport.delete_queue(q.name)
    assert (worker.stats.processed, worker.stats.dead_lettered, leftover) == (392, 8, 0)
    assert all(d is not None for d in dead)
    multiple = counting.acks.count(True)
    assert multiple < 392 / 2, f"{multiple} multiple acks for 392 messages: not batched"
    assert counting.acks.count(False) == 8  # each failure's copy confirmed, then its ack
