"""Failover on a 3-node cluster (scripts/cluster.sh) with a quorum queue: every confirmed
message is consumed while the node the publisher is connected to stops, and then the
queue's leader; the clients fail over, the consumer re-attaches, and both nodes rejoin.

The publisher sends persistent messages with confirms at a steady pace, at least 10,000 and
on until both faults are over, so the stops land while it publishes. Duplicates
are expected (at-least-once: a re-sent publish whose first confirm was lost, a delivery
whose ack was lost) and reported; losses are not. A second test runs a quorum `Worker`
while its node stops.

Both read the transport's `endpoint` (the node it is connected to) to know which node to stop.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from cluster_nodes import Cluster, cluster, node_of  # noqa: F401  (the fixture)

from routing import Envelope, encode, to_properties
from routing.errors import RoutingError
from routing.topology import Queue, QueueType, Topology
from routing.transport import Outcome, Properties, Publication
from routing.transport.rabbitmq import RabbitTransport
from routing.worker import App, RetryPolicy, Worker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

MESSAGES = 10_000
RATE = 250.0  # messages a second: ~40 s of publishing, time for two stops and restarts
FIRST_STOP_AT = 1_500  # confirmed messages before the first stop
SECOND_STOP_AT = 5_000  # ... before the leader is stopped
RECONNECT = 90.0  # the transports' reconnect_timeout
PERSISTENT = Properties(delivery_mode=2)


@dataclass
class Publishing:
    """What the publisher thread did, read by the test as it goes."""

    publications: list[Publication] = field(default_factory=list)
    confirm_times: list[float] = field(default_factory=list)  # each time more were confirmed
    confirmed: int = 0
    republished: int = 0  # nacked, then published again
    confirmed_ids: set[bytes] = field(default_factory=set)  # bodies whose publish was confirmed
    transport: RabbitTransport | None = None
    reconnects: int = 0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def __str__(self) -> str:
        pending = [i for i, p in enumerate(self.publications) if p.outcome is None]
        outcomes = Counter(str(p.outcome) for p in self.publications)
        endpoint = self.transport.endpoint.port if self.transport is not None else None
        return (
            f"publisher: {len(self.publications)} published, {self.confirmed} confirmed in order, "
            f"outcomes {dict(outcomes)}, first pending {pending[:3]}, on port {endpoint}, "
            f"reconnects {self.transport.reconnects if self.transport is not None else 0}"
        )


@dataclass
class Consuming:
    bodies: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    redelivered: int = 0
    transport: RabbitTransport | None = None
    reconnects: int = 0
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def __str__(self) -> str:
        endpoint = self.transport.endpoint.port if self.transport is not None else None
        reconnects = self.transport.reconnects if self.transport is not None else 0
        return f"consumer: {len(self.bodies)} received, on port {endpoint}, reconnects {reconnects}"


def _publish(state: Publishing, urls: list[str], queue: str, resume: threading.Event) -> None:
    try:
        with RabbitTransport(
            urls, resend=True, reconnect_timeout=RECONNECT, name="failover-publisher"
        ) as pub:
            state.transport = pub
            pubs = state.publications
            seen = 0

            def observe() -> None:
                nonlocal seen
                start = seen
                while seen < len(pubs) and pubs[seen].outcome is not None:
                    seen += 1
                new = sum(p.outcome is Outcome.CONFIRMED for p in pubs[start:seen])
                if new:
                    state.confirmed += new
                    state.confirm_times.append(time.monotonic())

            started = time.monotonic()
            i = 0
            # At least MESSAGES, and on until both faults are over: the stops always land
            # while it publishes, however long a node takes to stop on a loaded machine.
            while i < MESSAGES or not resume.is_set():
                if time.monotonic() - started > MESSAGES / RATE + 240:
                    raise AssertionError("the faults were not over within 240 s")
                pause = started + i / RATE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                pubs.append(pub.publish("", queue, b"%06d" % i, PERSISTENT))
                if i % 10 == 9:
                    pub.wait(0)  # take in the confirms that arrived
                observe()
                i += 1
            failures = pub.flush(timeout=RECONNECT)
            observe()
            # A nack is the broker's "not taken" (a quorum queue may nack while it has no
            # leader): publish those again, as an application would.
            bodies = {id(p): b"%06d" % i for i, p in enumerate(pubs)}
            state.confirmed_ids = {bodies[id(p)] for p in pubs if p.outcome is Outcome.CONFIRMED}
            for _ in range(5):
                if not failures:
                    break
                assert all(p.outcome is Outcome.NACKED for p in failures), [p.outcome for p in failures]
                again = [(bodies[id(p)], pub.publish("", queue, bodies[id(p)], PERSISTENT)) for p in failures]
                state.republished += len(again)
                failures = pub.flush(timeout=RECONNECT)
                for body, p in again:
                    bodies[id(p)] = body
                    if p.outcome is Outcome.CONFIRMED:
                        state.confirmed += 1
                        state.confirmed_ids.add(body)
            state.reconnects = pub.reconnects
    except BaseException as exc:
        state.error = exc
    finally:
        state.done.set()


def _consume(state: Consuming, urls: list[str], topology: Topology, ready: threading.Event) -> None:
    try:
        with RabbitTransport(urls, reconnect_timeout=RECONNECT, name="failover-consumer") as sub:
            state.transport = sub
            sub.declare(topology)
            consumer = sub.consume(topology.queues[0].name, prefetch=200)
            ready.set()
            while not state.stop.is_set():
                delivery = consumer.get(timeout=0.5)
                if delivery is None:
                    continue
                state.bodies.append(delivery.body)
                state.times.append(time.monotonic())
                state.redelivered += delivery.redelivered
                sub.ack(delivery)
            consumer.cancel()
            state.reconnects = sub.reconnects
    except BaseException as exc:
        state.error = exc
    finally:
        ready.set()


def _wait(check: Callable[[], bool], timeout: float, what: str, *threads: Any) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for state in threads:
            if state.error is not None:
                raise AssertionError(
                    f"{type(state).__name__} failed while waiting for {what}"
                ) from state.error
        if time.monotonic() > deadline:
            states = "; ".join(str(state) for state in threads)
            raise AssertionError(f"{what}: not within {timeout:g} s ({states})")
        time.sleep(0.05)


def _gaps(times: list[float], start: float, end: float) -> float:
    """The longest gap between consecutive `times` that overlaps [start, end]."""
    longest = 0.0
    for a, b in itertools.pairwise(times):
        if b >= start and a <= end:
            longest = max(longest, b - a)
    return round(longest, 2)


def test_confirmed_messages_survive_losing_the_connected_node_then_the_leader(
    cluster: Cluster,  # noqa: F811
    unique: str,
    report_figures: Callable[..., None],
) -> None:
    queue = f"{unique}.failover"
    topology = Topology.of(Queue(queue, type="quorum"))
    began = time.monotonic()
    publishing, consuming = Publishing(), Consuming()
    resume, ready = threading.Event(), threading.Event()
    # The consumer declares the queue from node 3, so node 3 leads it (client-local leader
    # placement); the publisher tries node 1 first. The first stop then moves only the
    # publisher's connection; the second (the leader) the consumer's, and the leadership.
    consumer_thread = threading.Thread(
        target=_consume, args=(consuming, cluster.urls(3, 1, 2), topology, ready), daemon=True
    )
    consumer_thread.start()
    assert ready.wait(60) and consuming.error is None, consuming.error
    publisher_thread = threading.Thread(
        target=_publish, args=(publishing, cluster.urls(1, 2, 3), queue, resume), daemon=True
    )
    faults: dict[str, dict[str, float]] = {}
    try:
        publisher_thread.start()

        def fault(label: str, node: int) -> None:
            """Stop `node`, wait for the publisher's next confirm, start the node again."""
            issued = time.monotonic()
            cluster.stop_node(node)
            stopped = time.monotonic()
            deliveries = len(consuming.times)
            _wait(
                lambda: bool(publishing.confirm_times) and publishing.confirm_times[-1] > stopped,
                RECONNECT,
                f"a confirm after stopping node {node}",
                publishing,
                consuming,
            )
            next_confirm = next(t for t in publishing.confirm_times if t > stopped)
            _wait(
                lambda: len(consuming.times) > deliveries, RECONNECT, "a delivery after the stop", consuming
            )
            next_delivery = consuming.times[deliveries]
            faults[label] = {
                "node": node,
                "stop_command_s": round(stopped - issued, 1),
                # The longest wait for a confirm (a delivery) from the stop command to the
                # first confirm (delivery) after it returned: the client's failover time.
                "publisher_stall_s": _gaps(publishing.confirm_times, issued, next_confirm),
                "consumer_stall_s": _gaps(consuming.times, issued, next_delivery),
            }
            restart = time.monotonic()
            cluster.start_node(node)
            cluster.wait_running({1, 2, 3}, ask=node)
            faults[label]["rejoin_s"] = round(time.monotonic() - restart, 1)

        _wait(lambda: publishing.confirmed >= FIRST_STOP_AT, 120, "the first confirms", publishing, consuming)
        # No public "which node am I on": the private current endpoint names the node to stop.
        assert publishing.transport is not None
        connected = node_of(publishing.transport.endpoint.port)
        fault("connected_node", connected)

        _wait(lambda: publishing.confirmed >= SECOND_STOP_AT, 120, "more confirms", publishing, consuming)
        leader, online = cluster.queue_info(queue)
        assert online == {1, 2, 3}, f"queue members online after the first restart: {online}"
        assert consuming.transport is not None
        consumer_node = node_of(consuming.transport.endpoint.port)
        fault("leader", leader)
        resume.set()

        publisher_thread.join(timeout=240)
        assert publishing.done.is_set(), "the publisher did not finish"
        if publishing.error is not None:
            raise publishing.error
        sent = {b"%06d" % i for i in range(len(publishing.publications))}
        _wait(lambda: sent <= set(consuming.bodies), 120, "every message consumed", consuming)
        time.sleep(2)  # late redeliveries count as duplicates
    finally:
        resume.set()
        consuming.stop.set()
        consumer_thread.join(timeout=30)
        cluster.heal()
        for label, figures in faults.items():
            print(label, figures)
    if consuming.error is not None:
        raise consuming.error
    _wait(lambda: cluster.queue_info(queue)[1] == {1, 2, 3}, 60, "all queue members online")
    running = cluster.running_nodes()

    consumed = set(consuming.bodies)
    lost = len(publishing.confirmed_ids - consumed)
    figures = {
        "sent": len(publishing.publications),
        "confirmed": publishing.confirmed,
        "nacked_republished": publishing.republished,
        "consumed": len(consumed),
        "deliveries": len(consuming.bodies),
        "lost": lost,
        "duplicates": len(consuming.bodies) - len(consumed),
        "redelivered": consuming.redelivered,
        "publisher_reconnects": publishing.reconnects,
        "consumer_reconnects": consuming.reconnects,
        "max_publisher_stall_s": _gaps(publishing.confirm_times, 0, float("inf")),
        "max_consumer_stall_s": _gaps(consuming.times, 0, float("inf")),
        **{f"{label}_{k}": v for label, f in faults.items() for k, v in f.items()},
        "cluster_up_s": cluster.up_seconds,
        "test_s": round(time.monotonic() - began, 1),
    }
    report_figures(**figures)
    queue_delete(cluster, queue)

    assert running == {1, 2, 3}, f"running nodes after the restarts: {running}"
    assert lost == 0, figures
    assert publishing.confirmed == len(publishing.publications), figures
    assert consumed == sent, figures
    assert publishing.reconnects >= 1, "the publisher never lost its node: the test did not test failover"
    if consumer_node == leader:
        assert consuming.reconnects >= 1, figures


def queue_delete(nodes: Cluster, queue: str) -> None:
    with RabbitTransport(nodes.urls(), reconnect_timeout=30) as t:
        t.delete_queue(queue)


WORK = 3_000  # jobs for the worker test
WORK_RATE = 150.0  # jobs a second: 20 s, so jobs still come after the worker reconnected
WORK_HOLD_AT = 2_800  # the producer waits here until the worker has reconnected
RESIZE = "task.resize_image"


def test_a_quorum_worker_keeps_processing_across_a_node_stop(
    cluster: Cluster,  # noqa: F811
    unique: str,
    report_figures: Callable[..., None],
) -> None:
    """`App(quorum=True)`: work, retry and dead-letter queues replicated. The worker's node
    stops while jobs flow (some of them failing once, so they go through a retry queue):
    the worker reconnects and every job is handled; none is dead-lettered."""
    app = App(quorum=True, retry=RetryPolicy(initial=0.2, multiplier=1, max_delay=0.2, max_attempts=5))
    handled: list[str] = []
    handled_at: list[float] = []
    failed_once: set[str] = set()

    @app.handler(RESIZE)
    def resize(event: Envelope) -> None:
        if event.data["input"].startswith("flaky") and event.id not in failed_once:
            failed_once.add(event.id)
            raise RuntimeError("the first attempt of a flaky job fails")
        handled.append(event.id)
        handled_at.append(time.monotonic())

    queue = f"{unique}.resize"
    topology = app.topology(queue)
    assert {q.type for q in topology.queues} == {QueueType.QUORUM}
    began = time.monotonic()
    worker_transport = RabbitTransport(cluster.urls(1, 2, 3), reconnect_timeout=RECONNECT, name="worker")
    worker_transport.declare(topology)
    worker = Worker(app, worker_transport, queue, prefetch=20)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # shown by the test, not lost in the thread
            errors.append(exc)

    sent: list[str] = []
    inputs: dict[str, str] = {}  # job id -> its input, to say which job went missing
    published, resume = threading.Event(), threading.Event()

    def produce() -> None:
        try:
            with RabbitTransport(cluster.urls(2, 3, 1), resend=True, reconnect_timeout=RECONNECT) as pub:
                for i in range(WORK):
                    if i == WORK_HOLD_AT:
                        resume.wait(240)
                    pause = began + i / WORK_RATE - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    job = {"input": f"{'flaky' if i % 25 == 0 else 'img'}{i}.jpg", "width": 10, "height": 10}
                    envelope = Envelope.new(RESIZE, job)
                    props = replace(to_properties(envelope), delivery_mode=2)
                    pub.publish("", queue, encode(envelope), props)
                    sent.append(envelope.id)
                    inputs[envelope.id] = job["input"]
                assert pub.flush(timeout=RECONNECT) == []
        except BaseException as exc:
            errors.append(exc)
        finally:
            published.set()

    thread = threading.Thread(target=run, name="cluster-worker", daemon=True)
    producer = threading.Thread(target=produce, name="cluster-producer", daemon=True)
    stall = rejoin = 0.0
    dead = -1
    try:
        thread.start()
        producer.start()
        node = node_of(worker_transport.endpoint.port)
        _wait(lambda: len(handled) >= 300 or bool(errors), 120, "the first jobs handled")
        try:
            issued = time.monotonic()
            cluster.stop_node(node)
            _wait(
                lambda: worker_transport.reconnects >= 1 or bool(errors), RECONNECT, "the worker reconnected"
            )
            reconnected = time.monotonic()
            assert not errors, errors
            resume.set()
            _wait(
                lambda: handled_at[-1] > reconnected or bool(errors), RECONNECT, "a job after the reconnect"
            )
            assert not errors, errors
            stall = _gaps(handled_at, issued, next(t for t in handled_at if t > reconnected))
            restart = time.monotonic()
            cluster.start_node(node)
            cluster.wait_running({1, 2, 3}, ask=node)
            rejoin = round(time.monotonic() - restart, 1)
        finally:
            resume.set()
            cluster.heal()
        assert published.wait(120), "the producer did not finish"
        count, progressed = -1, time.monotonic()
        while not set(sent) <= set(handled) and not errors:  # until 20 s without progress
            if len(handled) != count:
                count, progressed = len(handled), time.monotonic()
            elif time.monotonic() - progressed > 20:
                break
            time.sleep(0.2)
        finished = time.monotonic()
    finally:
        worker.stop()
        thread.join(timeout=60)
        with contextlib.suppress(RoutingError):
            dead = worker_transport.purge(f"{queue}.dead")
            for q in topology.queues:
                worker_transport.delete_queue(q.name)
        worker_transport.close()
    lost = set(sent) - set(handled)
    lost_after_retry = {i for i in lost if i in failed_once}
    figures = {
        "jobs": WORK,
        "handled": len(set(handled)),
        "lost": len(lost),
        "lost_in_retry_hop": len(lost_after_retry),
        "duplicates": len(handled) - len(set(handled)),
        "retried": worker.stats.retried,
        "dead_lettered": worker.stats.dead_lettered,
        "dead_letter_queue": dead,
        "worker_reconnects": worker_transport.reconnects,
        "stopped_node": node,
        "worker_stall_s": stall,  # longest wait between two handled jobs around the stop
        "rejoin_s": rejoin,
        "test_s": round(finished - began, 1),
    }
    report_figures(**figures)
    assert errors == [], errors
    assert not thread.is_alive(), "the worker did not stop"
    missing = sorted(inputs[i] + (" (failed once)" if i in failed_once else "") for i in lost)
    assert not lost - lost_after_retry, f"{figures}; never handled: {missing}"
    # A job that failed once waits in a quorum retry queue and comes back by dead-lettering,
    # which RabbitMQ 3.10 does at most once unless the queue asks for at-least-once (the
    # worker's quorum queues do): without it one such job in ~5 runs vanished here.
    assert not lost_after_retry, f"{figures}; never handled: {missing}"
    assert worker.stats.dead_lettered == 0 and dead == 0, figures
    # Every flaky job failed once and went through a retry queue, but for at most one a lost
    # connection: the one whose retry copy was in flight when the node went (its copy was not
    # confirmed, so the original came back and its second attempt succeeded) (CI, 4.0.5: 119).
    assert len(failed_once) == WORK // 25, figures
    assert worker.stats.retried >= WORK // 25 - worker_transport.reconnects, figures
    assert worker_transport.reconnects >= 1, "the worker never lost its node: nothing was tested"
