"""work-queue: the seed tutorial's image-resize task queue, with the work SIMULATED by sleeps
(no image is resized, Pillow is not needed).

A durable queue of persistent `task.resize_image` messages; competing workers, each with its
own connection, consume with prefetch 1 (fair dispatch: a slow worker takes fewer jobs) and
ack by hand. One job fails once and is retried (nack with requeue: redelivered); one keeps
failing and, after `MAX_ATTEMPTS` tries counted by message id, is rejected without requeue,
so the queue dead-letters it. Counting in the worker works the same on both brokers, where a
quorum queue's delivery limit would need the queue type changed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from routing.demos._common import DEFAULT_PREFIX, DeliveryRecord, DemoResult, Table, claim, reset, script
from routing.envelope import Envelope, decode, encode, to_properties
from routing.errors import RoutingError
from routing.operations import Publishes
from routing.schemas import SchemaRegistry
from routing.topology import Exchange, ExchangeType, Queue, Topology
from routing.transport import open_transport
from routing.urls import redact, resolve

NAME = "work-queue"
JOBS = 8
FAILS_ONCE = 3  # job number: a transient error, fine on the second try
ALWAYS_FAILS = 6  # job number: a corrupt image, never works
MAX_ATTEMPTS = 3
WORKERS = {"worker-1": 0.02, "worker-2": 0.02, "worker-3 (slow)": 0.15}  # simulated seconds per job
DEADLINE = 30.0


def topology(prefix: str = DEFAULT_PREFIX) -> Topology:
    dlx = Exchange(f"{prefix}resize.dlx", ExchangeType.FANOUT)
    dead = Queue(f"{prefix}resize.dead")
    jobs = Queue(f"{prefix}resize", dead_letter_exchange=dlx.name)
    return Topology.of(dlx, dead, jobs, dlx.bind(dead))


TOPOLOGY = topology()


def publishes(prefix: str = DEFAULT_PREFIX) -> tuple[Publishes, ...]:
    """What the demo publishes where: its operations in `routing asyncapi routing.demos.work_queue:TOPOLOGY`."""
    return (Publishes("", f"{prefix}resize", "task.resize_image"),)  # the default exchange: to the queue


@dataclass
class _Board:
    """What the workers share: attempts per job, the settled jobs, the log of deliveries."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: Counter[str] = field(default_factory=Counter)
    settled: set[str] = field(default_factory=set)
    log: list[DeliveryRecord] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


def _work(url: str, queue: str, worker: str, seconds: float, board: _Board, registry: SchemaRegistry) -> None:
    try:
        with open_transport(url) as transport:
            consumer = transport.consume(queue, prefetch=1)
            while not board.done.is_set():
                d = consumer.get(timeout=0.05)
                if d is None:
                    continue
                job = f"job-{decode(d.body, d.properties, registry=registry).data['id']}"
                with board.lock:
                    board.attempts[job] += 1
                    attempt = board.attempts[job]
                time.sleep(seconds)  # the "resize"
                number = int(job.split("-")[1])
                fails = number == ALWAYS_FAILS or (number == FAILS_ONCE and attempt == 1)
                if not fails:
                    transport.ack(d)
                    outcome, why = "done", "acked"
                elif attempt < MAX_ATTEMPTS:
                    transport.nack(d, requeue=True)
                    outcome, why = "retried", f"failed (attempt {attempt}): nack, requeue"
                else:
                    transport.reject(d, requeue=False)
                    outcome, why = "dead-lettered", f"failed {attempt} times: reject, no requeue"
                redelivered = " (redelivered)" if d.redelivered else ""
                with board.lock:
                    board.log.append(
                        DeliveryRecord(
                            consumer=worker, queue=queue, message=job, why=why + redelivered, outcome=outcome
                        )
                    )
                    if outcome != "retried":
                        board.settled.add(job)
                        if len(board.settled) == JOBS:
                            board.done.set()
            consumer.cancel()
    except BaseException as exc:  # reported by run(), not lost in the thread
        with board.lock:
            board.errors.append(exc)
        board.done.set()


def run(url: str | None = None, *, prefix: str = DEFAULT_PREFIX, force: bool = False) -> DemoResult:
    """Competing workers with prefetch 1, manual acks, a retry and a dead-lettered job."""
    url = resolve(url)
    topo = topology(prefix)
    queue, dead_queue = f"{prefix}resize", f"{prefix}resize.dead"
    registry = SchemaRegistry.bundled()
    board = _Board()
    published = []
    with open_transport(url) as transport:
        claim(transport, topo, demo="work-queue", force=force)
        threads = [
            threading.Thread(target=_work, args=(url, queue, w, s, board, registry), daemon=True)
            for w, s in WORKERS.items()
        ]
        for t in threads:
            t.start()
        for n in range(1, JOBS + 1):
            data = {
                "id": n,
                "action": "resize_image",
                "input": f"photos/{n}.jpg",
                "width": 640,
                "height": 480,
            }
            env = Envelope.new("task.resize_image", data, source="urn:demo:uploader")
            transport.publish("", queue, encode(env, registry=registry), to_properties(env, persistent=True))
            published.append((f"job-{n}", f"photos/{n}.jpg -> 640x480", _plan(n)))
        failed = transport.flush(10)
        if failed:
            failed[0].raise_for_outcome()
        board.done.wait(DEADLINE)
        for t in threads:
            t.join(5)
        if board.errors:
            raise board.errors[0]
        if len(board.settled) != JOBS:
            raise RoutingError(
                f"work-queue: only {len(board.settled)} of {JOBS} jobs settled in {DEADLINE:.0f} s"
            )
        dead: list[DeliveryRecord] = []
        end = time.monotonic() + 5  # dead-lettering is asynchronous on RabbitMQ
        while len(dead) < 1 and time.monotonic() < end:
            d = transport.get(dead_queue)
            if d is None:
                time.sleep(0.02)
                continue
            transport.ack(d)
            job = f"job-{decode(d.body, d.properties, registry=registry).data['id']}"
            dead.append(
                DeliveryRecord(
                    consumer="dead-letter queue",
                    queue=dead_queue,
                    message=job,
                    why="x-dead-letter-exchange",
                    outcome="dead-letter queue",
                )
            )
        reset(transport, topo)

    log = board.log + dead
    per_worker = Counter(d.consumer for d in board.log)
    done = sorted((d.message for d in log if d.outcome == "done"), key=_number)
    retries = Counter(d.message for d in log if d.outcome == "retried")
    tables = (
        Table(
            title=f"1. publish {JOBS} persistent task.resize_image jobs to durable queue {queue!r}",
            columns=("job", "task", "simulated outcome"),
            rows=tuple(published),
        ),
        Table(
            title="2. deliveries, in the order the workers finished them",
            columns=("worker", "job", "outcome", "why"),
            rows=tuple((d.consumer, d.message, d.outcome, d.why) for d in log),
            note="work simulated with sleeps: " + ", ".join(f"{w} {s:.2f} s/job" for w, s in WORKERS.items()),
        ),
        Table(
            title="3. fair dispatch (prefetch 1): deliveries per worker",
            columns=("worker", "deliveries"),
            rows=tuple((w, str(per_worker[w])) for w in WORKERS),
        ),
    )
    summary = (
        f"{len(done)} of {JOBS} jobs done, {sum(retries.values())} retries, "
        f"{', '.join(d.message for d in dead) or 'nothing'} dead-lettered after {MAX_ATTEMPTS} attempts; "
        f"slow worker took {per_worker['worker-3 (slow)']} deliveries"
    )
    facts = tuple(
        sorted(
            [f"done <- {j}" for j in done]
            + [f"retried x{n} <- {j}" for j, n in retries.items()]
            + [f"dead-letter queue <- {d.message}" for d in dead]
        )
    )
    return DemoResult(
        name=NAME, broker=redact(url), deliveries=tuple(log), tables=tables, summary=summary, facts=facts
    )


def _plan(n: int) -> str:
    if n == FAILS_ONCE:
        return "fails once, then works"
    if n == ALWAYS_FAILS:
        return f"always fails: dead-lettered after {MAX_ATTEMPTS} attempts"
    return "works"


def _number(job: str) -> int:
    return int(job.split("-")[1])


if __name__ == "__main__":
    script(run)
