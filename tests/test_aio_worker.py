"""`routing.worker.async_runner.AsyncWorker`: `async def` handlers on one event loop, N in flight, with the
blocking worker's retries, dead letters and shutdown (the same `routing.worker.steps`).

Each scenario runs the worker as a task beside the test's own asyncio transport on the same
broker; messages are counted across the work, retry and dead-letter queues before and after,
so a message lost or acked twice shows."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import routing.aio
from routing import Envelope, encode, to_properties
from routing.errors import RoutingError
from routing.transport import open_transport
from routing.transport.aio import AsyncTransport
from routing.worker import (
    App,
    DeadLetterRecord,
    RetryPolicy,
    Worker,
    WorkerStats,
    dead_letter_queue,
    idempotent,
)
from routing.worker.async_runner import AsyncWorker

RESIZE = "task.resize_image"
VALID = {"input": "img1.jpg", "width": 10, "height": 10}
FAST = RetryPolicy(initial=0.05, multiplier=2, max_delay=0.1, max_attempts=3)
WAIT = 10.0
TESTS = Path(__file__).parent


@pytest.fixture
def url(either_url: str) -> str:
    """Each test runs on an embedded broker of its own, then on RabbitMQ (marker `broker`)."""
    return either_url


def job(n: int = 0, **data: Any) -> Envelope:
    return Envelope.new(RESIZE, {**VALID, "input": f"img{n}.jpg", **data})


async def send(t: AsyncTransport, queue: str, envelope: Envelope, body: bytes | None = None) -> None:
    publication = await t.publish(
        "", queue, encode(envelope) if body is None else body, to_properties(envelope), mandatory=True
    )
    assert (await publication).name == "CONFIRMED"


async def counts(t: AsyncTransport, app: App, queue: str) -> dict[str, int]:
    """Messages in each of the app's queues (work, retry, dead)."""
    return {q.name: await t.message_count(q.name) for q in app.topology(queue).queues}


async def eventually(
    counted: Callable[[], Awaitable[dict[str, int]]], expected: dict[str, int]
) -> dict[str, int]:
    """The counts once they are `expected` (RabbitMQ requeues a cancelled consumer's messages
    a moment later), or as they are after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while (found := await counted()) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return found


@contextlib.asynccontextmanager
async def transports(url: str, app: App, queue: str) -> AsyncIterator[tuple[AsyncTransport, AsyncTransport]]:
    """The test's transport (with `app`'s queues declared) and the worker's; the queues are
    deleted at the end."""
    async with routing.aio.open_transport(url) as t, routing.aio.open_transport(url) as own:
        await t.declare(app.topology(queue))
        try:
            yield t, own
        finally:
            for q in app.topology(queue).queues:
                with contextlib.suppress(RoutingError):
                    await t.delete_queue(q.name)


async def until(check: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.005)


Scenario = Callable[[AsyncTransport, AsyncWorker], Coroutine[Any, Any, None]]


def run(
    url: str,
    app: App,
    queue: str,
    scenario: Scenario,
    setup: Callable[[AsyncTransport], Awaitable[None]] | None = None,
    **options: Any,
) -> WorkerStats:
    """Declare `app`'s queues, `setup(transport)`, run an AsyncWorker on a connection of its
    own as a task, `scenario(transport, worker)`, then stop the worker and wait for it."""

    async def main() -> WorkerStats:
        async with transports(url, app, queue) as (t, own):
            if setup is not None:
                await setup(t)
            worker = AsyncWorker(app, own, queue, poll=0.02, **options)
            task = asyncio.create_task(worker.run())
            steps = asyncio.create_task(scenario(t, worker))
            await asyncio.wait({task, steps}, return_when=asyncio.FIRST_COMPLETED)
            if not steps.done():  # the worker stopped by itself: show why
                steps.cancel()
                pytest.fail(f"the worker stopped during the scenario: {task.exception() or task.result()}")
            await steps
            worker.stop()
            return await asyncio.wait_for(task, WAIT)

    return asyncio.run(main())


def test_async_handlers_are_awaited_and_acked(url: str, unique: str) -> None:
    app = App(retry=FAST)
    handled: list[str] = []

    @app.handler(RESIZE)
    async def resize(event: Envelope) -> None:
        await asyncio.sleep(0)
        handled.append(event.id)

    sent = [job(n) for n in range(5)]

    async def scenario(t: AsyncTransport, worker: AsyncWorker) -> None:
        for envelope in sent:
            await send(t, unique, envelope)
        await until(lambda: worker.stats.processed == 5, "5 processed")
        assert set((await counts(t, app, unique)).values()) == {0}

    stats = run(url, app, unique, scenario)
    assert sorted(handled) == sorted(e.id for e in sent)
    assert (stats.processed, stats.retried, stats.dead_lettered, stats.interrupted) == (5, 0, 0, False)


def test_failures_are_retried_through_the_retry_queues_then_dead_lettered_with_the_reason(
    url: str, unique: str
) -> None:
    app = App(retry=FAST)  # 3 attempts: retry after 50 ms, 100 ms, then the dead-letter queue
    attempts: dict[str, int] = {}

    @app.handler(RESIZE)
    async def resize(event: Envelope) -> None:
        attempts[event.id] = attempts.get(event.id, 0) + 1
        await asyncio.sleep(0)
        decode(event)

    def decode(event: Envelope) -> None:
        if event.data["input"] == "img0.jpg" or attempts[event.id] == 1:
            raise ValueError(f"cannot decode {event.data['input']}")

    hopeless, flaky = job(0), job(1)
    retry_queues = [q.name for q in app.topology(unique).queues if ".retry." in q.name]
    assert len(retry_queues) == 2
    letters: list[DeadLetterRecord] = []

    async def scenario(t: AsyncTransport, worker: AsyncWorker) -> None:
        await send(t, unique, hopeless)
        await send(t, unique, flaky)
        await until(lambda: worker.stats.dead_lettered == 1 and worker.stats.processed == 1, "settled")
        with open_transport(url) as blocking:  # the same embedded broker, read with the blocking API
            letters.extend(dead_letter_queue.peek(blocking, f"{unique}.dead"))

    stats = run(url, app, unique, scenario)
    assert attempts == {hopeless.id: 3, flaky.id: 2}
    assert (stats.processed, stats.retried, stats.dead_lettered) == (1, 3, 1)
    [letter] = letters
    assert (letter.id, letter.attempts, letter.error_type) == (hopeless.id, 3, "ValueError")
    assert letter.reason == "ValueError: cannot decode img0.jpg"
    assert [frame.rsplit(" in ", 1)[1] for frame in letter.traceback.split("; ")] == ["resize", "decode"]


def test_a_plain_handlers_traceback_starts_in_the_handler_not_in_the_thread_machinery(
    url: str, unique: str
) -> None:
    app = App(retry=RetryPolicy(max_attempts=1))

    @app.handler(RESIZE)
    def resize(event: Envelope) -> None:
        raise ValueError("corrupt")

    letters: list[DeadLetterRecord] = []

    async def scenario(t: AsyncTransport, worker: AsyncWorker) -> None:
        await send(t, unique, job())
        await until(lambda: worker.stats.dead_lettered == 1, "dead-lettered")
        with open_transport(url) as blocking:
            letters.extend(dead_letter_queue.peek(blocking, f"{unique}.dead"))

    run(url, app, unique, scenario)
    [letter] = letters
    assert letter.traceback.startswith(f"{__file__}:") and letter.traceback.endswith(" in resize")
    assert ";" not in letter.traceback  # the handler's frame alone


def test_invalid_and_unhandled_messages_are_dead_lettered_at_once(url: str, unique: str) -> None:
    app = App(retry=FAST)
    calls: list[str] = []

    @app.handler(RESIZE)
    async def resize(event: Envelope) -> None:
        calls.append(event.id)

    letters: list[DeadLetterRecord] = []

    async def scenario(t: AsyncTransport, worker: AsyncWorker) -> None:
        await send(t, unique, job(), body=b"{not json")
        await send(t, unique, job(width=-1))
        await send(t, unique, Envelope.new("cache.invalidate", {"cache": "u", "keys": ["1"], "reason": "r"}))
        await until(lambda: worker.stats.dead_lettered == 3, "3 dead letters")
        with open_transport(url) as blocking:
            letters.extend(dead_letter_queue.peek(blocking, f"{unique}.dead"))

    stats = run(url, app, unique, scenario)
    assert calls == [] and (stats.processed, stats.retried, stats.dead_lettered) == (0, 0, 3)
    assert [letter.error_type for letter in letters] == ["InvalidMessage", "InvalidMessage", "NoHandler"]
    assert "width" in letters[1].reason and all(letter.attempts == 1 for letter in letters)


@pytest.mark.parametrize("concurrency", [5, 4])
def test_n_handlers_are_in_flight_at_once_and_never_more(url: str, unique: str, concurrency: int) -> None:
    """Five handlers that each wait until five are running: they finish only when the worker
    runs five at once (with 4 none can finish; so this test can fail)."""
    app = App(retry=FAST)
    running, most = 0, 0
    five = asyncio.Event()

    @app.handler(RESIZE)
    async def resize(event: Envelope) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        if running == 5:
            five.set()
        try:
            await five.wait()
        finally:
            running -= 1

    async def scenario(t: AsyncTransport, worker: AsyncWorker) -> None:
        for n in range(8):
            await send(t, unique, job(n))
        if concurrency >= 5:
            await until(lambda: worker.stats.processed == 8, "8 processed")
        else:
            await asyncio.sleep(0.5)
            assert worker.stats.processed == 0 and running == concurrency
            worker.stop(now=True)

    stats = run(url, app, unique, scenario, concurrency=concurrency, shutdown_timeout=0)
    assert most == concurrency
    assert stats.processed == (8 if concurrency >= 5 else 0)


def test_out_of_order_completion_loses_nothing_and_acks_nothing_twice(url: str, unique: str) -> None:
    """40 jobs, 8 in flight, each taking a random time; a quarter fail once, a tenth always.
    Every message ends exactly once: processed, or in the dead-letter queue; none stays."""
    app = App(retry=RetryPolicy(initial=0.01, multiplier=1, max_delay=0.01, max_attempts=2))
    rng = random.Random(15)
    sent = [job(n) for n in range(40)]
    plan = {e.id: rng.choice(["ok", "ok", "ok", "once", "never"]) for e in sent}
    done: list[str] = []
    tries: dict[str, int] = {}

    @app.handler(RESIZE)
    async def resize(event: Envelope) -> None:
        tries[event.id] = tries.get(event.id, 0) + 1
        await asyncio.sleep(rng.random() * 0.02)
        if plan[event.id] == "never" or (plan[event.id] == "once" and tries[event.id] == 1):
            raise RuntimeError("no")
        done.append(event.id)

    before: dict[str, int] = {}
    after: dict[str, int] = {}

    async def setup(t: AsyncTransport) -> None:
        for envelope in sent:
            await send(t, unique, envelope)
        before.update(await counts(t, app, unique))

    async def scenario(t: AsyncTransport, worker: AsyncWorker) -> None:
        never = sum(1 for p in plan.values() if p == "never")
        await until(lambda: len(done) + worker.stats.dead_lettered == 40, "all settled")
        assert worker.stats.dead_lettered == never
        after.update(await counts(t, app, unique))

    stats = run(url, app, unique, scenario, setup, concurrency=8)
    assert before[unique] == sum(before.values()) == 40
    assert after[f"{unique}.dead"] == sum(after.values()) == stats.dead_lettered  # none left elsewhere
    assert sorted(done) == sorted(i for i, p in plan.items() if p != "never")  # each once
    assert stats.retried == sum(1 for p in plan.values() if p != "ok")
    assert stats.processed == len(done)


def test_stop_lets_the_handlers_in_flight_finish(url: str, unique: str) -> None:
    app = App(retry=FAST)
    started: list[str] = []
    finished: list[str] = []

    @app.handler(RESIZE)
    async def resize(event: Envelope) -> None:
        started.append(event.id)
        await asyncio.sleep(0.3)
        finished.append(event.id)

    left: dict[str, int] = {}

    async def scenario(t: AsyncTransport, worker: AsyncWorker) -> None:
        for n in range(6):
            await send(t, unique, job(n))
        await until(lambda: len(started) == 3, "3 started")
        worker.stop()
        await until(lambda: worker.stats.processed == 3, "the 3 in flight finished", timeout=2)
        await asyncio.sleep(0.1)
        assert len(started) == 3  # took no more

    async def main() -> WorkerStats:
        async with transports(url, app, unique) as (t, own):
            worker = AsyncWorker(app, own, unique, concurrency=3, prefetch=6, poll=0.02)
            task = asyncio.create_task(worker.run())
            await scenario(t, worker)
            stats = await asyncio.wait_for(task, WAIT)
            expected = {**dict.fromkeys(await counts(t, app, unique), 0), unique: 3}
            left.update(await eventually(lambda: counts(t, app, unique), expected))
            return stats

    stats = asyncio.run(main())
    assert (stats.processed, stats.interrupted) == (3, False)
    assert sorted(finished) == sorted(started)
    assert left[unique] == sum(left.values()) == 3  # the 3 prefetched, never started, are back


def test_the_shutdown_timeout_cancels_handlers_and_their_messages_go_back(url: str, unique: str) -> None:
    app = App(retry=FAST)
    started: list[str] = []
    cancelled: list[str] = []

    @app.handler(RESIZE)
    async def resize(event: Envelope) -> None:
        started.append(event.id)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(event.id)
            raise

    left: dict[str, int] = {}

    async def main() -> tuple[WorkerStats, float]:
        async with transports(url, app, unique) as (t, own):
            worker = AsyncWorker(app, own, unique, concurrency=4, shutdown_timeout=0.2, poll=0.02)
            task = asyncio.create_task(worker.run())
            for n in range(4):
                await send(t, unique, job(n))
            await until(lambda: len(started) == 4, "4 started")
            began = time.monotonic()
            worker.stop()
            stats = await asyncio.wait_for(task, WAIT)
            took = time.monotonic() - began
            expected = {**dict.fromkeys(await counts(t, app, unique), 0), unique: 4}
            left.update(await eventually(lambda: counts(t, app, unique), expected))
            return stats, took

    stats, took = asyncio.run(main())
    assert stats.interrupted and stats.processed == 0
    assert 0.2 <= took < 2
    assert sorted(cancelled) == sorted(started)
    assert left[unique] == sum(left.values()) == 4  # all 4 back in the work queue, nothing else


def test_plain_handlers_run_in_threads_and_do_not_block_the_loop(url: str, unique: str) -> None:
    app = App(retry=FAST)
    threads: set[str] = set()

    @app.handler(RESIZE)
    def resize(event: Envelope) -> None:
        threads.add(threading.current_thread().name)
        time.sleep(0.3)

    ticks: list[float] = []

    async def scenario(t: AsyncTransport, worker: AsyncWorker) -> None:
        for n in range(4):
            await send(t, unique, job(n))
        began = time.monotonic()
        while worker.stats.processed < 4:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)
            assert time.monotonic() - began < WAIT
        assert time.monotonic() - began < 1.0  # four 0.3 s jobs side by side, not one after another

    stats = run(url, app, unique, scenario, concurrency=4)
    assert stats.processed == 4
    assert threading.main_thread().name not in threads
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.1  # the loop kept turning


def test_idempotent_async_handler_counts_an_id_only_once_it_finished(url: str, unique: str) -> None:
    app = App(retry=FAST)
    runs: list[str] = []

    @app.handler(RESIZE)
    @idempotent
    async def resize(event: Envelope) -> None:
        runs.append(event.id)
        if len(runs) == 1:
            raise ValueError("first try fails")

    assert app.has_async_handlers
    envelope = job()

    async def scenario(t: AsyncTransport, worker: AsyncWorker) -> None:
        await send(t, unique, envelope)
        await send(t, unique, envelope)  # a duplicate
        await until(lambda: worker.stats.processed == 2, "both settled")

    stats = run(url, app, unique, scenario)
    assert runs == [envelope.id, envelope.id] and stats.retried == 1  # failed, tried again, then skipped


def test_the_blocking_worker_refuses_an_app_with_async_handlers_and_app_run_serves_it(
    url: str, unique: str
) -> None:
    """`Worker` takes blocking handlers only; `App.run` serves an async app on an event loop,
    two handlers in flight, until SIGTERM."""
    app = App()
    running: list[str] = []
    both = threading.Event()

    @app.handler(RESIZE)
    async def resize(event: Envelope) -> None:
        running.append(event.id)
        if len(running) == 2:
            both.set()
        while not both.is_set():  # only two at once get past here
            await asyncio.sleep(0.01)

    with open_transport(url) as t, pytest.raises(RoutingError, match="AsyncWorker"):
        Worker(app, t, "jobs")
    with pytest.raises(RoutingError, match="concurrency 2 needs `async def` handlers"):
        App().run(url, queue=unique, concurrency=2)

    from routing.worker.queues import declare_work_queues

    with open_transport(url) as t:
        declare_work_queues(t, app.queues(unique))
        for n in range(2):
            event = job(n)
            t.publish("", unique, encode(event), to_properties(event))
        assert t.flush() == []

    def stop_when_done() -> None:
        both.wait(10)
        time.sleep(0.3)  # the acks
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_done, daemon=True).start()
    stats = app.run(url, queue=unique, concurrency=2)
    assert both.is_set() and stats.processed == 2
    with open_transport(url) as t:
        assert t.message_count(unique) == 0
        for q in app.queues(unique).topology.queues:
            t.delete_queue(q.name)


@pytest.mark.broker
def test_routing_worker_serves_an_async_app_with_n_in_flight_and_stops_on_sigterm(
    amqp_url: str, unique: str, tmp_path: Path
) -> None:
    """`routing worker` with an async app: `--concurrency 4` is four handlers in flight in one
    process; SIGTERM lets those four finish and leaves the rest in the queue."""
    log = tmp_path / "work.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS),
        "ROUTING_TEST_WORK_LOG": str(log),
        "ROUTING_TEST_WORK_SECONDS": "1.0",
    }
    command = [sys.executable, "-m", "routing", "worker", "aio_worker_apps:app", "--queue", unique]
    command += ["--concurrency", "4", "--shutdown-timeout", "10", "--url", amqp_url]
    import aio_worker_apps

    app = aio_worker_apps.app
    with open_transport(amqp_url) as t:
        t.declare(app.topology(unique))  # as the worker will (the same queues)
        sent = [job(n) for n in range(10)]
        for envelope in sent:
            t.publish("", unique, encode(envelope), to_properties(envelope), mandatory=True)
        assert t.flush(timeout=WAIT) == []
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 30
            while not (log.exists() and log.read_text().count("start") >= 4):
                if process.poll() is not None:
                    pytest.fail(
                        f"routing worker exited {process.returncode}: {process.communicate()[1][-2000:]}"
                    )
                assert time.monotonic() < deadline, "4 handlers did not start"
                time.sleep(0.02)
            began = time.monotonic()
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
            took = time.monotonic() - began
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
            left = t.message_count(unique)
            for q in app.topology(unique).queues:
                t.delete_queue(q.name)
    assert process.returncode == 0, err
    lines = log.read_text().splitlines()
    started = [line.split()[1] for line in lines if line.startswith("start")]
    done = [line.split()[1] for line in lines if line.startswith("done")]
    assert len(started) == 4 and sorted(done) == sorted(started)  # the four in flight finished
    assert took < 2.5  # side by side (one after another would take 4 s)
    assert left == 6  # the others were never taken, or went back
    assert out.splitlines()[0].endswith(f"up to 4 handler(s) in flight on {unique!r}, prefetch 4")
    assert out.splitlines()[-1] == "stopped: 4 processed, 0 retried, 0 dead-lettered"


def test_a_handler_whose_own_await_is_cancelled_has_failed_and_is_retried(url: str, unique: str) -> None:
    """A CancelledError that is not the worker's own stop is the handler's failure: the
    message is retried, not left unacked for good."""
    app = App(retry=FAST)
    tries: list[str] = []

    @app.handler(RESIZE)
    async def resize(event: Envelope) -> None:
        tries.append(event.id)
        if len(tries) == 1:
            inner = asyncio.create_task(asyncio.sleep(10))
            inner.cancel()
            await inner  # raises CancelledError into the handler

    async def scenario(t: AsyncTransport, worker: AsyncWorker) -> None:
        await send(t, unique, job())
        await until(lambda: worker.stats.processed == 1, "retried, then processed")

    stats = run(url, app, unique, scenario)
    assert (stats.processed, stats.retried, len(tries)) == (1, 1, 2)


@pytest.mark.parametrize("signals", [1, 2])
def test_serve_stops_on_sigterm_after_the_handlers_in_flight_or_at_once_on_a_second(
    unique: str, tmp_path: Path, signals: int
) -> None:
    """`AsyncWorker.serve` (what `routing worker` runs for an async app) in a process of its
    own: one SIGTERM lets the four in flight finish; a second cancels them, and they go back."""
    log = tmp_path / "work.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS),
        "ROUTING_TEST_WORK_LOG": str(log),
        "ROUTING_TEST_WORK_SECONDS": "1.0",
    }
    command = [sys.executable, str(TESTS / "aio_worker_apps.py"), unique, "10", "4"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and log.read_text().count("start") >= 4):
            if process.poll() is not None:
                pytest.fail(f"the worker exited {process.returncode}: {process.communicate()[1][-2000:]}")
            assert time.monotonic() < deadline, "4 handlers did not start"
            time.sleep(0.02)
        began = time.monotonic()
        for _ in range(signals):
            process.send_signal(signal.SIGTERM)
            time.sleep(0.1)
        out, err = process.communicate(timeout=30)
        took = time.monotonic() - began
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    lines = log.read_text().splitlines()
    started = [line.split()[1] for line in lines if line.startswith("start")]
    done = [line.split()[1] for line in lines if line.startswith("done")]
    assert len(started) == 4
    if signals == 1:
        assert sorted(done) == sorted(started) and 0.5 < took < 2.5
        assert out.split() == ["4", "0", "0", "False", "6"]  # 6 never taken, still queued
    else:
        assert done == [] and took < 0.9
        assert out.split() == ["0", "0", "0", "True", "10"]  # the 4 cancelled went back
