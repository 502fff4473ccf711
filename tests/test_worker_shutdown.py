"""Graceful shutdown of `routing worker` processes on RabbitMQ.

Each test starts `python -m routing worker worker_apps:app` (this folder on PYTHONPATH) on a
queue of its own, with a handler that sleeps ROUTING_TEST_WORK_SECONDS and then appends
"<id> <pid>" to a work log. Then it signals the process while a message is in progress and
checks three things: what the log says was done, what the queue still holds (a message that
was not acked is back in it once the worker's connection is gone), and how long the exit took.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from routing import Envelope, encode, to_properties
from routing.errors import BrokerError
from routing.transport import Delivery, Transport, open_transport

pytestmark = pytest.mark.broker

TESTS = Path(__file__).parent
WORK = {"input": "img1.jpg", "width": 10, "height": 10}
SETTLE = 0.2  # seconds for the broker to hand a consuming worker its next message


class WorkerRun:
    """Worker processes on one queue, their output in files, and the queue seen from outside."""

    def __init__(self, url: str, queue: str, folder: Path) -> None:
        self.url = url
        self.queue = queue
        self.log = folder / "work.log"
        self.stderr = folder / "stderr.log"
        self.stdout = folder / "stdout.log"
        self.t: Transport = open_transport(url)
        self.processes: list[subprocess.Popen[bytes]] = []
        sys.path.insert(0, str(TESTS))
        try:
            import worker_apps
        finally:
            sys.path.remove(str(TESTS))
        self.topology = worker_apps.app.topology(queue)
        self.t.declare(self.topology)

    def publish(self, count: int, *, warm_up: int = 1) -> list[str]:
        """`warm_up` invalid messages first (see `wait_in_progress`), then `count` valid ones."""
        for _ in range(warm_up):
            self.t.publish("", self.queue, b"warm-up: not JSON", mandatory=True)
        ids = []
        for _ in range(count):
            envelope = Envelope.new("task.resize_image", WORK)
            self.t.publish("", self.queue, encode(envelope), to_properties(envelope), mandatory=True)
            ids.append(envelope.id)
        assert self.t.flush(timeout=10) == []
        return ids

    def start(self, *args: str, seconds: float = 2.0) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "ROUTING_TEST_WORK_LOG": str(self.log),
            "ROUTING_TEST_WORK_SECONDS": str(seconds),
        }
        command = [sys.executable, "-m", "routing", "--log-level", "INFO", "worker", "worker_apps:app"]
        command += ["--queue", self.queue, "--url", self.url, *args]
        with self.stdout.open("ab") as out, self.stderr.open("ab") as err:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        self.processes.append(process)
        return process

    def wait_in_progress(self, workers: int = 1, timeout: float = 15.0) -> None:
        """Until `workers` processes consume and a handler has surely started. A worker loads
        the schemas when its first message comes, which takes a while on a busy machine; the
        warm-up messages take that hit and go straight to the dead-letter queue. Once they are
        there, the next message goes to a handler within milliseconds."""
        deadline = time.monotonic() + timeout
        dead = f"{self.queue}.dead"
        warmed = 0
        while self.output().count("worker consuming") < workers or warmed < workers:
            for process in self.processes:
                assert process.poll() is None, f"the worker exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"not in progress within {timeout}s:\n{self.output()}"
            if (junk := self.t.get(dead)) is not None:
                self.t.ack(junk)
                warmed += 1
            time.sleep(0.02)
        time.sleep(SETTLE)

    def output(self) -> str:
        return self.stderr.read_text() if self.stderr.exists() else ""

    def handled(self) -> list[tuple[str, int]]:
        """(id, pid) of every message a handler finished, in order."""
        if not self.log.exists():
            return []
        return [(i, int(pid)) for i, pid in (line.split() for line in self.log.read_text().splitlines())]

    def ready(self) -> list[Delivery]:
        """What the work queue holds, in order (acked: the test is done with it)."""
        taken = []
        while (delivery := self.t.get(self.queue)) is not None:
            self.t.ack(delivery)
            taken.append(delivery)
        return taken

    def child_pids(self) -> list[int]:
        return [int(pid) for pid in re.findall(r"worker \d+ started \(pid (\d+)\)", self.output())]

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        for pid in self.child_pids():  # a supervisor's children, if it died before them
            with contextlib.suppress(OSError):
                if b"worker_apps:app" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
        try:
            for queue in self.topology.queues:
                with contextlib.suppress(BrokerError):
                    self.t.delete_queue(queue.name)
        finally:
            self.t.close()


@pytest.fixture
def run(amqp_url: str, unique: str, tmp_path: Path) -> Iterator[WorkerRun]:
    worker_run = WorkerRun(amqp_url, f"{unique}.resize", tmp_path)
    try:
        yield worker_run
    finally:
        worker_run.close()


def _exit_within(process: subprocess.Popen[bytes], timeout: float, run: WorkerRun) -> float:
    """Seconds until `process` exited (failing after `timeout`)."""
    started = time.monotonic()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {timeout}s after the signal:\n{run.output()}")
    return time.monotonic() - started


def test_sigterm_finishes_the_message_in_progress_acks_it_and_exits_0(run: WorkerRun) -> None:
    first, *rest = run.publish(3)
    process = run.start(seconds=2.0)
    run.wait_in_progress()
    process.send_signal(signal.SIGTERM)
    seconds = _exit_within(process, 2.0 + 3.0, run)
    assert process.returncode == 0, run.output()
    # It waited for the rest of the 2 s handler, then exited (Python's own exit takes up to a
    # second on a busy machine).
    assert 1.0 < seconds < 2.0 + 1.5, seconds
    assert run.handled() == [(first, process.pid)]
    assert "SIGTERM: finishing the message in progress" in run.output()
    assert "stopped: 1 processed, 0 retried, 1 dead-lettered" in run.stdout.read_text()  # + the warm-up
    # Acked: not back in the queue now that the worker's connection is closed. The rest wait.
    assert [d.properties.message_id for d in run.ready()] == rest


def test_a_second_sigterm_stops_at_once_and_the_message_goes_back(run: WorkerRun) -> None:
    ids = run.publish(3)
    process = run.start(seconds=5.0)
    run.wait_in_progress()
    process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    seconds = _exit_within(process, 5.0, run)
    assert seconds < 2.5, seconds  # the handler had 4.6 s to go; exiting takes up to a second
    assert process.returncode == 0, run.output()
    assert "stopped at once" in run.stdout.read_text()
    assert run.handled() == []
    back = run.ready()
    assert [d.properties.message_id for d in back] == ids  # not lost, and in its place
    assert back[0].redelivered


def test_the_shutdown_timeout_stops_a_long_handler_and_requeues(run: WorkerRun) -> None:
    ids = run.publish(2)
    process = run.start("--shutdown-timeout", "0.5", seconds=5.0)
    run.wait_in_progress()
    process.send_signal(signal.SIGTERM)
    seconds = _exit_within(process, 5.0, run)
    assert 0.45 <= seconds < 2.5, seconds  # the handler had 4.8 s to go
    assert process.returncode == 0, run.output()
    assert "stopped at once" in run.stdout.read_text()
    assert run.handled() == []
    back = run.ready()
    assert [d.properties.message_id for d in back] == ids
    assert back[0].redelivered


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_supervisor_stops_both_workers_gracefully(run: WorkerRun, signum: signal.Signals) -> None:
    ids = run.publish(4, warm_up=2)
    supervisor = run.start("--concurrency", "2", seconds=2.0)
    run.wait_in_progress(workers=2)
    children = run.child_pids()
    assert len(children) == 2
    supervisor.send_signal(signum)
    seconds = _exit_within(supervisor, 2.0 + 3.0, run)
    assert supervisor.returncode == 0, run.output()
    # Both warm-up messages may have gone to one worker: the other one's handler started
    # after it had loaded the schemas, up to a second later; then both processes exit.
    assert 1.0 < seconds < 2.0 + 2.5, seconds
    handled = run.handled()
    # Each worker finished the message it held; none took another.
    assert sorted(pid for _, pid in handled) == sorted(children)
    assert sorted(i for i, _ in handled) == sorted(ids[:2])
    assert run.output().count(f"{signum.name}: finishing the message in progress") == 2
    for pid in children:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived its supervisor"
    assert [d.properties.message_id for d in run.ready()] == ids[2:]


def test_the_supervisor_stopped_while_its_workers_start_exits_0(run: WorkerRun) -> None:
    """SIGTERM as soon as the supervisor has started its children, while they are still
    importing: a child ended by it held nothing, so the stop is clean (exit 0, no traceback)
    and every message is still in the queue."""
    ids = run.publish(3, warm_up=0)
    supervisor = run.start("--concurrency", "2")
    deadline = time.monotonic() + 15
    while run.output().count("started (pid") < 2:
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.01)
    supervisor.send_signal(signal.SIGTERM)
    _exit_within(supervisor, 15.0, run)
    assert supervisor.returncode == 0, run.output()
    assert "Traceback" not in run.output()
    assert [d.properties.message_id for d in run.ready()] == ids
