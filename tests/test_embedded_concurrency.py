"""The embedded broker under threads: a publisher and competing consumers in one process."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from routing import Exchange, Queue, Topology
from routing.embedded import forget
from routing.transport import Delivery
from routing.transport.memory import MemoryConsumer, MemoryTransport


@pytest.fixture
def t(unique: str) -> Iterator[MemoryTransport]:
    with MemoryTransport(f"memory://{unique}") as transport:
        transport.declare(Topology.of(Queue("q")))
        yield transport
    forget(f"memory://{unique}")


def run(target: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_two_consumer_threads_share_the_work_exactly_once(t: MemoryTransport) -> None:
    n = 2000
    seen: dict[str, list[bytes]] = {"a": [], "b": []}
    peak = Counter[str]()
    consumers = {name: t.consume("q", prefetch=1) for name in seen}

    def work(name: str, consumer: MemoryConsumer) -> None:
        for d in consumer:
            peak[name] = max(peak[name], consumer._sub.in_flight)
            seen[name].append(d.body)
            t.ack(d)

    threads = [run(work, name, c) for name, c in consumers.items()]
    for i in range(n):
        t.publish("", "q", b"%d" % i)
    deadline = time.monotonic() + 10
    while sum(len(v) for v in seen.values()) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    for c in consumers.values():
        c.cancel()
    for thread in threads:
        thread.join(timeout=5)
    everything = seen["a"] + seen["b"]
    assert sorted(everything) == sorted(b"%d" % i for i in range(n))
    assert seen["a"] and seen["b"]
    assert peak["a"] <= 1 and peak["b"] <= 1
    # Each consumer's share arrives in queue order.
    for share in seen.values():
        assert share == sorted(share, key=int)


def test_round_robin_between_waiting_threads(t: MemoryTransport) -> None:
    a, b = t.consume("q", prefetch=1), t.consume("q", prefetch=1)
    got: dict[str, Delivery | None] = {}
    threads = [run(lambda n, c: got.__setitem__(n, c.get(timeout=5)), n, c) for n, c in (("a", a), ("b", b))]
    time.sleep(0.05)
    t.publish("", "q", b"first")
    t.publish("", "q", b"second")
    for thread in threads:
        thread.join(timeout=5)
    assert {n: d.body for n, d in got.items() if d is not None} == {"a": b"first", "b": b"second"}


def test_a_consumer_that_never_acks_holds_only_its_prefetch(t: MemoryTransport) -> None:
    stuck, worker = t.consume("q", prefetch=3), t.consume("q", prefetch=1)
    done: list[bytes] = []

    def work() -> None:
        for d in worker:
            done.append(d.body)
            t.ack(d)

    thread = run(work)
    for i in range(20):
        t.publish("", "q", b"%d" % i)
    deadline = time.monotonic() + 5
    while len(done) < 17 and time.monotonic() < deadline:
        time.sleep(0.01)
    held = [stuck.get(timeout=0) for _ in range(4)]
    worker.cancel()
    thread.join(timeout=5)
    assert len(done) == 17 and sum(d is not None for d in held) == 3


def test_blocked_get_wakes_on_publish_and_on_cancel(t: MemoryTransport) -> None:
    consumer = t.consume("q")
    result: list[Delivery | None] = []
    thread = run(lambda: result.append(consumer.get(timeout=5)))
    time.sleep(0.05)
    t.publish("", "q", b"wake")
    thread.join(timeout=5)
    assert result[0] is not None and result[0].body == b"wake"
    t.ack(result[0])
    items: list[Delivery] = []
    thread = run(lambda: items.extend(consumer))
    time.sleep(0.05)
    consumer.cancel()
    thread.join(timeout=5)
    assert not thread.is_alive() and items == []


def test_get_times_out(t: MemoryTransport) -> None:
    consumer = t.consume("q")
    start = time.monotonic()
    assert consumer.get(timeout=0.05) is None
    assert 0.04 <= time.monotonic() - start < 2


def test_a_waiting_consumer_sees_ttl_expiry_without_any_other_call(unique: str) -> None:
    # A delay queue: nothing consumes it, its messages expire into the work queue. Only the
    # blocked consumer is left to notice the deadline; no timer thread does it.
    url = f"memory://{unique}-delay"
    with MemoryTransport(url) as t:
        work = Exchange("work-x", "fanout")
        t.declare(
            Topology.of(
                work, Queue("work"), work.bind("work"),
                Queue("delay", message_ttl=100, dead_letter_exchange="work-x"),
            )
        )  # fmt: skip
        consumer = t.consume("work")
        start = time.monotonic()
        t.publish("", "delay", b"later")
        d = consumer.get(timeout=5)
        elapsed = time.monotonic() - start
        assert d is not None and d.body == b"later" and d.headers["x-death"][0]["reason"] == "expired"
        assert 0.09 <= elapsed < 2
    forget(url)


def test_a_consumer_already_waiting_wakes_for_a_new_deadline(unique: str) -> None:
    url = f"memory://{unique}-late"
    with MemoryTransport(url) as t:
        work = Exchange("work-x", "fanout")
        t.declare(
            Topology.of(
                work, Queue("work"), work.bind("work"),
                Queue("delay", message_ttl=100, dead_letter_exchange="work-x"),
            )
        )  # fmt: skip
        consumer = t.consume("work")
        result: list[Delivery | None] = []
        thread = run(lambda: result.append(consumer.get(timeout=None)))
        time.sleep(0.05)  # it is asleep with no deadline to wake for
        t.publish("", "delay", b"later")
        thread.join(timeout=3)
        alive = thread.is_alive()
        consumer.cancel()
        thread.join(timeout=3)
        assert not alive and result and result[0] is not None and result[0].body == b"later"
    forget(url)


def test_publishers_and_consumers_with_requeues_lose_nothing(t: MemoryTransport) -> None:
    per_publisher, publishers = 1000, 2
    acked: Counter[bytes] = Counter()
    lock = threading.Lock()
    consumers = [t.consume("q", prefetch=5) for _ in range(3)]

    def publish(tag: str) -> None:
        for i in range(per_publisher):
            t.publish("", "q", f"{tag}-{i}".encode())

    def work(index: int, consumer: MemoryConsumer) -> None:
        for n, d in enumerate(consumer):
            if (n + index) % 7 == 0 and not d.redelivered:
                t.nack(d, requeue=True)  # comes back, redelivered, to someone
                continue
            with lock:
                acked[d.body] += 1
            t.ack(d)

    workers = [run(work, i, c) for i, c in enumerate(consumers)]
    senders = [run(publish, f"p{i}") for i in range(publishers)]
    for thread in senders:
        thread.join(timeout=10)
    deadline = time.monotonic() + 10
    while sum(acked.values()) < per_publisher * publishers and time.monotonic() < deadline:
        time.sleep(0.01)
    for c in consumers:
        c.cancel()
    for thread in workers:
        thread.join(timeout=5)
    assert len(acked) == per_publisher * publishers
    assert set(acked.values()) == {1}
    assert t.broker.message_count("q") == 0 and t.get("q") is None
