"""Worker processes under faults, on a private RabbitMQ node: kill -9 while messages flow (and
a supervisor that restarts a killed child), a broker restart, and every connection closed
while a publisher and the workers run. Nothing confirmed is lost; the duplicates that
at-least-once delivery allows are counted and reported, not hidden.

The queues are durable and the messages persistent (`to_properties`), so a restart keeps
them. The private node (not the shared one) lets `rabbitmqctl list_queues` count ready plus
unacked messages exactly, where the management API's figures lag by seconds. rabbitmqctl
starts an Erlang VM per call (about a second of CPU), so it is asked only at the end; whether
a worker consumes is read from its log line instead.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rabbit_node import RabbitNode, rabbit_node  # noqa: F401  (the fixture)
from worker_apps import app

from routing import Envelope, Outcome, Publication, encode, to_properties
from routing.transport.rabbitmq import RabbitTransport

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TESTS = Path(__file__).resolve().parent
DATA = {"input": "img1.jpg", "width": 10, "height": 10}
WAIT = 120.0  # generous: the machine is small and shared; a passing run never waits this long
CONSUMING = "worker consuming"  # logged once the worker's basic.consume is answered
RECONNECTED = "reconnected; restoring topology and consumers"


def wait_for(
    condition: Callable[[], bool],
    what: str,
    *,
    timeout: float = WAIT,
    every: float = 0.05,
    unless: Callable[[], str | None] | None = None,
) -> None:
    """Poll `condition`; fail after `timeout`, or at once when `unless()` says why it never will."""
    deadline = time.monotonic() + timeout
    while not condition():
        why = unless() if unless is not None else None
        if why:
            raise AssertionError(f"{why}\n(while waiting for {what})")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def wait_drained(node: RabbitNode, queue: str, unless: Callable[[], str | None]) -> dict[str, int]:
    """Wait until `queue` holds nothing, ready or unacked; then every queue's count of both."""
    counts: dict[str, int] = {}

    def drained() -> bool:
        counts.update(node.list_queues())  # `messages`: ready plus unacked
        return counts[queue] == 0

    wait_for(drained, f"{queue!r} to be empty", every=0.5, unless=unless)
    return counts


def consumers(node: RabbitNode, queue: str) -> int:
    out = node.ctl("list_queues", "name", "consumers", "--quiet", "--no-table-headers")
    return int(dict(line.split("\t") for line in out.splitlines())[queue])


def wait_processed(ids: set[str], workers: Workers, node: RabbitNode, queue: str) -> None:
    """Wait until every id is in the work log. Fail at once when a worker died, or when the
    log has not grown for 3 s and the queue holds nothing, ready or unacked: the ids still
    missing then are lost (a handler logs before its ack, so none is merely in flight)."""
    last_growth = [workers.size(), time.monotonic()]

    def lost() -> str | None:
        if died := workers.died():
            return died
        size = workers.size()
        if size != last_growth[0]:
            last_growth[:] = [size, time.monotonic()]
        elif time.monotonic() - last_growth[1] > 3:
            last_growth[1] = time.monotonic()
            if node.list_queues()[queue] == 0 and (missing := ids - workers.handled_ids()):
                return f"{len(missing)} messages lost: never handled, and {queue!r} is empty"
        return None

    wait_for(lambda: ids <= workers.handled_ids(), f"{len(ids)} ids processed", every=0.1, unless=lost)


def duplicates(handled: list[tuple[str, int]]) -> int:
    return sum(n - 1 for n in Counter(id_ for id_, _pid in handled).values())


class Workers:
    """`routing worker worker_apps:app` processes on one queue. Each appends `<id> <pid>` to
    one shared work log per message it handled; their output goes to files beside it."""

    def __init__(self, url: str, queue: str, folder: Path, work_seconds: float) -> None:
        self.folder = folder
        self.log = folder / "work.log"
        self.log.touch()
        path = [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(path),
            "ROUTING_TEST_WORK_LOG": str(self.log),
            "ROUTING_TEST_WORK_SECONDS": str(work_seconds),
        }
        self.command = [sys.executable, "-m", "routing", "--log-level", "INFO", "worker", "worker_apps:app"]
        self.command += ["--queue", queue, "--url", url, "--no-declare"]  # the test declares
        self.processes: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()  # pids the test killed on purpose

    def start(self, *options: str) -> subprocess.Popen[bytes]:
        with open(self.folder / f"worker-{len(self.processes)}.out", "wb") as out:
            process = subprocess.Popen(
                [*self.command, *options], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.processes if p.poll() is None]

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        self.killed.add(process.pid)
        process.kill()  # SIGKILL
        process.wait(30)

    def died(self) -> str | None:
        """Why waiting is pointless: a worker exited that the test did not kill."""
        for process in self.processes:
            if process.poll() is not None and process.pid not in self.killed:
                return f"worker {process.pid} exited with {process.returncode}:\n{self.output()}"
        return None

    def all_consuming(self) -> bool:
        return all(CONSUMING in self.output_of(p) for p in self.alive())

    def handled(self) -> list[tuple[str, int]]:
        """(id, pid) per line of the work log, in order."""
        text = self.log.read_text()
        lines = text[: text.rfind("\n") + 1].splitlines()  # not a line still being written
        return [(id_, int(pid)) for id_, pid in (line.split() for line in lines)]

    def handled_ids(self) -> set[str]:
        return {id_ for id_, _pid in self.handled()}

    def size(self) -> int:
        return self.log.stat().st_size

    def stop(self, timeout: float = 60.0) -> list[int | None]:
        """SIGTERM every live worker (finish the message in hand, ack, exit 0); exit codes."""
        live = self.alive()
        for process in live:
            process.send_signal(signal.SIGTERM)
        for process in live:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout)
        return [p.returncode for p in live]

    def kill_all(self) -> None:
        for process in self.alive():
            process.kill()
            process.wait(30)

    def output_of(self, process: subprocess.Popen[bytes]) -> str:
        n = self.processes.index(process)
        return (self.folder / f"worker-{n}.out").read_text(errors="replace")

    def output(self, last: int = 3000) -> str:
        """The tail of every worker's output, for a failure message."""
        return "\n".join(
            f"--- worker {n} (pid {p.pid}, exit {p.returncode}):\n{self.output_of(p)[-last:]}"
            for n, p in enumerate(self.processes)
        )


class LogWatch(threading.Thread):
    """Notes when the work log grows (checked every 5 ms), to time the pause a fault causes."""

    def __init__(self, workers: Workers) -> None:
        super().__init__(daemon=True)
        self._workers = workers
        self._done = threading.Event()
        self.growth: list[float] = []  # monotonic times at which new lines were seen

    def run(self) -> None:
        size = self._workers.size()
        while not self._done.wait(0.005):
            now = self._workers.size()
            if now != size:
                size = now
                self.growth.append(time.monotonic())

    def stop(self) -> None:
        self._done.set()
        self.join(5)

    def first_after(self, moment: float) -> float | None:
        return next((t for t in list(self.growth) if t > moment), None)

    def resumed_after(self, moment: float) -> bool:
        return self.first_after(moment) is not None

    def longest_pause_after(self, moment: float) -> float:
        """The longest time without a processed message, of the pauses ending after `moment`."""
        pairs = itertools.pairwise(list(self.growth))
        return max((b - a for a, b in pairs if b > moment), default=0.0)


class Publisher(threading.Thread):
    """Publishes envelopes at about `rate` a second with `resend=True`, waiting for the
    confirms every `batch`, until told how many to send in all (`finish_at`): so it is still
    publishing whenever a fault ends. Keeps every publication to check its outcome."""

    def __init__(self, url: str, queue: str, rate: float, batch: int = 50) -> None:
        super().__init__(daemon=True)
        self.url, self.queue, self.rate, self.batch = url, queue, rate, batch
        self.sent: list[tuple[str, Publication]] = []
        self.failures: list[Publication] = []
        self.finish_at: int | None = None
        self.reconnects = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with RabbitTransport(self.url, resend=True, reconnect_timeout=60) as transport:
                start = time.monotonic()
                n = 0
                while self.finish_at is None or n < self.finish_at:
                    event = Envelope.new("task.resize_image", DATA)
                    publication = transport.publish("", self.queue, encode(event), to_properties(event))
                    self.sent.append((event.id, publication))
                    n += 1
                    if n % self.batch == 0:
                        self.failures += transport.flush(timeout=WAIT)
                        ahead = start + n / self.rate - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)  # pacing, so that the fault lands mid-stream
                self.failures += transport.flush(timeout=WAIT)
                self.reconnects = transport.reconnects
        except BaseException as exc:  # re-raised by the test
            self.error = exc

    def confirmed(self) -> set[str]:
        return {id_ for id_, p in self.sent if p.outcome is Outcome.CONFIRMED}


def publish_confirmed(url: str, queue: str, count: int) -> set[str]:
    """Publish `count` persistent envelopes and wait for every confirm; their ids."""
    ids = set()
    with RabbitTransport(url) as transport:
        for _ in range(count):
            event = Envelope.new("task.resize_image", DATA)
            transport.publish("", queue, encode(event), to_properties(event))
            ids.add(event.id)
        assert transport.flush(timeout=WAIT) == []
    return ids


@pytest.fixture
def work_queue(rabbit_node: RabbitNode, unique: str) -> Iterator[str]:  # noqa: F811
    """A work queue with its retry and dead-letter queues on the private node; deleted after."""
    queue = f"{unique}.resize"
    topology = app.topology(queue)
    with RabbitTransport(rabbit_node.url) as admin:
        admin.declare(topology)
    yield queue
    with RabbitTransport(rabbit_node.url) as admin:
        for q in topology.queues:
            admin.delete_queue(q.name)


# ------------------------------------------------------------------------------ kill -9


def test_kill_9_workers_while_messages_flow(
    rabbit_node: RabbitNode,  # noqa: F811
    work_queue: str,
    tmp_path: Path,
    report_figures: Callable[..., None],
) -> None:
    """3 workers, 5,000 messages; 10 times, every 0.3-0.45 s, a worker that has handled
    messages is killed with -9 and a new one started. Nothing is lost; with prefetch 1 a
    worker holds one unacked message, so each kill causes at most one duplicate. 3 ms of work
    per message makes the run last over 5 s, so the kills land while messages wait."""
    total, planned_kills = 5000, 10
    workers = Workers(rabbit_node.url, work_queue, tmp_path, work_seconds=0.003)
    figures: dict[str, object] = {"sent": total, "kills": 0}
    kills = 0
    try:
        for _ in range(3):
            workers.start()
        wait_for(workers.all_consuming, "3 workers to consume", unless=workers.died)
        sent = publish_confirmed(rabbit_node.url, work_queue, total)
        started = time.monotonic()
        rng = random.Random()
        while kills < planned_kills:
            time.sleep(rng.uniform(0.3, 0.45))
            handled = workers.handled()
            left = len(sent - {id_ for id_, _pid in handled})
            if left == 0:
                break
            busy = {pid for _id, pid in handled}
            live = workers.alive()
            workers.kill(rng.choice([p for p in live if p.pid in busy] or live))
            kills += 1
            figures.update(kills=kills, unprocessed_at_last_kill=left)
            workers.start()
        wait_processed(sent, workers, rabbit_node, work_queue)
        figures["seconds"] = round(time.monotonic() - started, 1)
        # Copies requeued by the last kills are handled by the survivors; the last worker
        # started consumes (and so handles SIGTERM) before the stop.
        wait_for(workers.all_consuming, "every worker to consume", unless=workers.died)
        counts = wait_drained(rabbit_node, work_queue, workers.died)
        handled = workers.handled()
        unique = {id_ for id_, _pid in handled}
        figures.update(
            processed=len(handled),
            unique=len(unique),
            duplicates=duplicates(handled),
            lost=len(sent - unique),
        )
        alive = len(workers.alive())
        codes = workers.stop()
    finally:
        workers.kill_all()
        report_figures(**figures)
    assert kills >= 8, f"only {kills} kills while messages waited"  # each one with messages left
    assert unique == sent  # lost = 0, and nothing handled that was not sent
    assert duplicates(handled) <= kills  # a worker holds one unacked message (prefetch 1)
    assert all(counts[q.name] == 0 for q in app.topology(work_queue).queues), counts  # none in .dead
    assert alive == 3 and codes == [0, 0, 0], workers.output()


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is `pid`, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def _kill_if_ours(pid: int, queue: str) -> None:
    """SIGKILL a worker child left behind, once its command line shows it is this test's."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"worker_apps:app" in command and queue.encode() in command:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_supervisor_restarts_a_child_killed_with_9(
    rabbit_node: RabbitNode,  # noqa: F811
    work_queue: str,
    tmp_path: Path,
    report_figures: Callable[..., None],
) -> None:
    """`--concurrency 3`: kill -9 one child; the supervisor starts another, which consumes
    and handles messages; nothing is lost, and SIGTERM still stops them all with exit 0."""
    workers = Workers(rabbit_node.url, work_queue, tmp_path, work_seconds=0.003)
    supervisor = workers.start("--concurrency", "3")
    figures: dict[str, object] = {"kills": 1}
    seen: set[int] = set()

    def consumers_started() -> int:  # the children write to the supervisor's output
        return workers.output_of(supervisor).count(CONSUMING)

    try:
        wait_for(lambda: consumers_started() == 3, "3 children to consume", unless=workers.died)
        before = _children(supervisor.pid)
        seen |= before
        first = publish_confirmed(rabbit_node.url, work_queue, 600)
        wait_processed(first, workers, rabbit_node, work_queue)
        victim = random.choice(sorted(before & {pid for _, pid in workers.handled()} or before))
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(_children(supervisor.pid) - before) == 1, "a new child", unless=workers.died)
        figures["restart_seconds_kill_to_new_child"] = round(time.monotonic() - killed_at, 2)
        after = _children(supervisor.pid)
        seen |= after
        newcomer = (after - before).pop()
        wait_for(lambda: consumers_started() == 4, "the new child to consume", unless=workers.died)
        figures["restart_seconds_kill_to_consuming"] = round(time.monotonic() - killed_at, 2)
        second = publish_confirmed(rabbit_node.url, work_queue, 600)
        wait_processed(second, workers, rabbit_node, work_queue)
        counts = wait_drained(rabbit_node, work_queue, workers.died)
        handled = workers.handled()
        sent = first | second
        unique = {id_ for id_, _ in handled}
        figures.update(
            sent=len(sent),
            processed=len(handled),
            unique=len(unique),
            duplicates=duplicates(handled),
            lost=len(sent - unique),
        )
        children = _children(supervisor.pid)
        by_newcomer = sum(1 for id_, pid in handled if pid == newcomer and id_ in second)
        figures["handled_by_new_child"] = by_newcomer
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(60)
    finally:
        workers.kill_all()
        for pid in seen:
            _kill_if_ours(pid, work_queue)
        report_figures(**figures)
    assert children == after and victim not in children and len(children) == 3
    assert by_newcomer > 0, "the restarted child handled nothing"
    assert unique == sent and duplicates(handled) <= 1  # the killed child's one unacked message
    assert all(counts[q.name] == 0 for q in app.topology(work_queue).queues), counts
    assert code == 0, workers.output()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in after), "the children to exit")


# --------------------------------------------------- broker restart, connections closed


def _fault_while_publishing_and_consuming(
    node: RabbitNode,
    queue: str,
    folder: Path,
    fault: Callable[[], dict[str, float]],
    figures: dict[str, object],
) -> None:
    """2 workers consume while a publisher (resend=True) sends ~600 messages a second;
    `fault()` runs once 600 are sent, and the publisher goes on until 3,000, or 300 past the
    fault. Every confirmed message must be processed, and the same 2 workers must reconnect
    by themselves, both handle messages again (a probe of 300 more, after the run) and stop
    cleanly. `fault()` returns moments to time the recovery from; `figures` fills as it goes."""
    workers = Workers(node.url, queue, folder, work_seconds=0.002)
    watch = LogWatch(workers)
    publisher = Publisher(node.url, queue, rate=600)
    try:
        for _ in range(2):
            workers.start()
        wait_for(workers.all_consuming, "2 workers to consume", unless=workers.died)
        watch.start()
        publisher.start()
        wait_for(lambda: len(publisher.sent) >= 600 and workers.size() > 0, "a flow", unless=workers.died)
        figures["sent_before_fault"] = len(publisher.sent)
        fault_started = time.monotonic()
        moments = fault()
        figures["fault_command_seconds"] = round(time.monotonic() - fault_started, 2)
        publisher.finish_at = max(3000, len(publisher.sent) + 300)
        for name, moment in moments.items():
            wait_for(
                functools.partial(watch.resumed_after, moment), f"work after {name}", unless=workers.died
            )
            first = watch.first_after(moment)
            assert first is not None
            figures[f"recovery_seconds_after_{name}"] = round(first - moment, 2)
        publisher.join(WAIT)
        assert not publisher.is_alive(), "the publisher did not finish"
        if publisher.error is not None:
            raise publisher.error
        confirmed = publisher.confirmed()
        figures.update(
            sent=len(publisher.sent), confirmed=len(confirmed), publisher_reconnects=publisher.reconnects
        )
        wait_processed(confirmed, workers, node, queue)
        figures["longest_processing_pause_seconds"] = round(watch.longest_pause_after(fault_started), 2)

        # Both workers are back: each reconnected, the broker counts 2 consumers again, and a
        # probe of 300 more messages is shared between them (round robin, prefetch 1).
        def reconnected() -> bool:
            return all(RECONNECTED in workers.output_of(p) for p in workers.processes)

        wait_for(reconnected, "both workers to reconnect", unless=workers.died)
        wait_for(lambda: consumers(node, queue) == 2, "2 consumers", every=0.5, unless=workers.died)
        probe = publish_confirmed(node.url, queue, 300)
        wait_processed(probe, workers, node, queue)
        counts = wait_drained(node, queue, workers.died)
        everything = workers.handled()
        handled = [(id_, pid) for id_, pid in everything if id_ not in probe]
        unique = {id_ for id_, _ in handled}
        figures.update(
            processed=len(handled),
            processed_unique=len(unique),
            lost=len(confirmed - unique),
            duplicates=duplicates(everything),
            probe=len(probe),
        )
        probe_pids = {pid for id_, pid in everything if id_ in probe}
        alive = workers.alive()
        codes = workers.stop()
    finally:
        publisher.finish_at = 0  # if the test failed early
        watch.stop()
        workers.kill_all()
    sent = {id_ for id_, _ in publisher.sent}
    assert publisher.reconnects >= 1, "the fault did not reach the publisher"
    assert publisher.failures == [], f"{len(publisher.failures)} publications not confirmed despite resend"
    unsettled = sent - confirmed  # resend=True: every one confirmed in the end
    assert not unsettled, f"{len(unsettled)} publications never settled, yet flush() reported none"
    assert unique == sent  # lost = 0, nothing handled that was not sent
    assert all(counts[q.name] == 0 for q in app.topology(queue).queues), counts  # none in .dead
    assert len(alive) == 2, "a worker died:\n" + workers.output()
    assert probe_pids == {p.pid for p in alive}, "a worker handled nothing after the fault"
    assert codes == [0, 0], workers.output()


def test_broker_restart_while_publishing_and_consuming(
    rabbit_node: RabbitNode,  # noqa: F811
    work_queue: str,
    tmp_path: Path,
    report_figures: Callable[..., None],
) -> None:
    def restart() -> dict[str, float]:
        rabbit_node.stop_app()
        stopped = time.monotonic()
        rabbit_node.start_app()
        started = time.monotonic()
        figures["outage_seconds_stop_app_to_start_app_returned"] = round(started - stopped, 2)
        return {"start_app_returned": started}

    figures: dict[str, object] = {}
    try:
        _fault_while_publishing_and_consuming(rabbit_node, work_queue, tmp_path, restart, figures)
    finally:
        report_figures(**figures)


def test_close_all_connections_while_publishing_and_consuming(
    rabbit_node: RabbitNode,  # noqa: F811
    work_queue: str,
    tmp_path: Path,
    report_figures: Callable[..., None],
) -> None:
    def close_all() -> dict[str, float]:
        rabbit_node.close_all_connections()
        return {"close_all_connections_returned": time.monotonic()}

    figures: dict[str, object] = {}
    try:
        _fault_while_publishing_and_consuming(rabbit_node, work_queue, tmp_path, close_all, figures)
    finally:
        report_figures(**figures)
