"""The proof of routing.broadcast on a private RabbitMQ node: 10 instances in processes of
their own serve reads from their caches (filled from a sqlite source of truth) while one
publisher sends 20,000 invalidations of random keys; meanwhile one instance's connection is
closed, the node is restarted once, and one instance is paused until its queue overflows.

At the end no instance holds an entry older than the truth (the staleness check), and every
stretch of events an instance did not get lies behind a gap it reported.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rabbit_node import RabbitNode, rabbit_node  # noqa: F401  (the fixture)

from routing.broadcast import Broadcaster
from routing.transport import Outcome, open_transport

pytestmark = [pytest.mark.broker, pytest.mark.slow]

INSTANCES = 10
EVENTS = 20_000
RATE = 1_000  # events per second
BATCH = 50
MAX_LENGTH = 500
KEYS = 400  # as tests/broadcast_instance.py reads them
CUT, PAUSED = 3, 7  # the instance whose connection is closed, the one paused
PAUSE_SECONDS = 1.0  # paused this long after its queue is full
PREFETCH = 100  # the Listener's default, which tests/broadcast_instance.py uses
EXCHANGE = "proof.invalidations"
INSTANCE = Path(__file__).with_name("broadcast_instance.py")


def connection_pids(node: RabbitNode, client_name: str) -> list[str]:
    """The node's pids of the connections a client opened as `client_name`."""
    out = node.ctl("list_connections", "pid", "client_properties", "--quiet", "--no-table-headers")
    return [line.split("\t", 1)[0] for line in out.splitlines() if f'"{client_name}"' in line]


def missed_stretches(log: list[list[Any]], last: int) -> list[tuple[int, int, bool]]:
    """Each run of sequence numbers 1..last the instance never applied, and whether a gap
    was reported between the event before it and the event after it."""
    position = {entry[1]: i for i, entry in enumerate(log) if entry[0] == "e"}
    gaps = [i for i, entry in enumerate(log) if entry[0] == "g"]
    runs: list[tuple[int, int, bool]] = []
    n = 1
    while n <= last:
        if n in position:
            n += 1
            continue
        start = n
        while n <= last and n not in position:
            n += 1
        before = position.get(start - 1, -1)
        after = position.get(n, len(log))
        runs.append((start, n - 1, any(before < g < after for g in gaps)))
    return runs


class Faults:
    """The disturbances, each at its point of the run, on a thread beside the publisher."""

    def __init__(self, node: RabbitNode, instances: list[subprocess.Popen[bytes]], names: list[str]) -> None:
        self.node, self.instances, self.names = node, instances, names
        self.sent = 0
        self.finished = False  # set when the publisher is done (or failed)
        # Looked up before the run: rabbitmqctl takes seconds on a loaded machine.
        self.pids = connection_pids(node, names[CUT])
        assert self.pids, f"no connection of {names[CUT]} listed"
        self.done: list[str] = []
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _at(self, count: int) -> None:
        while self.sent < count:
            if self.finished:
                raise AssertionError(f"the publisher stopped at {self.sent} events, before {count}")
            time.sleep(0.05)

    def _run(self) -> None:
        try:
            self._at(EVENTS * 2 // 10)
            for pid in self.pids:
                self.node.ctl("close_connection", pid, "proof: close one instance's connection")
            self.done.append(f"closed {self.names[CUT]}'s connection at ~{self.sent}")
            self._at(EVENTS * 45 // 100)
            self.node.restart_app()
            self.done.append(f"restarted the node at ~{self.sent}")
            self._at(EVENTS * 7 // 10)
            self.instances[PAUSED].send_signal(signal.SIGSTOP)
            paused, stopped_at = time.monotonic(), self.sent
            try:
                # Its queue is full, and drops its oldest, once more events were confirmed (so
                # enqueued) than it holds and its listener has unacknowledged: counted, not
                # polled with rabbitmqctl, which takes seconds a call on a loaded machine.
                self._at(stopped_at + MAX_LENGTH + PREFETCH + BATCH)
                time.sleep(PAUSE_SECONDS)
            finally:  # never left stopped, whatever failed
                self.instances[PAUSED].send_signal(signal.SIGCONT)
            held = time.monotonic() - paused
            self.done.append(f"paused {self.names[PAUSED]} {held:.1f}s at ~{stopped_at} (its queue full)")
        except BaseException as exc:
            self.errors.append(exc)

    def join(self) -> None:
        self._thread.join(120)


def publish_all(broadcaster: Broadcaster, db: sqlite3.Connection, faults: Faults) -> int:
    """EVENTS invalidations of random keys, each after its truth was bumped; what a dropped
    connection left unconfirmed is sent again. How many were sent, resends included."""
    rng = random.Random(16)
    started = time.monotonic()
    sent = 0
    while faults.sent < EVENTS:
        keys = [f"k{rng.randrange(KEYS)}" for _ in range(BATCH)]
        with db:
            db.executemany(
                "INSERT INTO truth VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET version = version + 1",
                [(k,) for k in keys],
            )
        pending = keys
        while pending:
            publications = [broadcaster.invalidate("kv", k, reason="proof", wait=False) for k in pending]
            sent += len(pending)
            broadcaster.flush(60)
            pending = [
                k for k, p in zip(pending, publications, strict=True) if p.outcome is not Outcome.CONFIRMED
            ]
        faults.sent += BATCH
        ahead = faults.sent / RATE - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    return sent


def test_no_instance_serves_a_stale_entry(
    rabbit_node: RabbitNode,  # noqa: F811
    tmp_path: Path,
    report_figures: Any,
) -> None:
    db_path = tmp_path / "truth.sqlite"
    db = sqlite3.connect(db_path, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE truth (key TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    db.commit()
    exchange = EXCHANGE
    names = [f"inst-{i}" for i in range(INSTANCES)]
    outs = [tmp_path / f"{n}.json" for n in names]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    instances = [
        subprocess.Popen(
            [
                sys.executable,
                str(INSTANCE),
                rabbit_node.url,
                exchange,
                n,
                str(db_path),
                str(o),
                str(MAX_LENGTH),
            ],
            env=env,
        )
        for n, o in zip(names, outs, strict=True)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(Path(f"{o}.ready").exists() for o in outs):
            assert time.monotonic() < deadline, "instances did not start"
            assert all(p.poll() is None for p in instances), "an instance died while starting"
            time.sleep(0.1)
        started = time.monotonic()
        with open_transport(rabbit_node.url) as transport:
            broadcaster = Broadcaster(transport, exchange=exchange, source="urn:proof")
            faults = Faults(rabbit_node, instances, names)
            try:
                sent = publish_all(broadcaster, db, faults)
            finally:
                faults.finished = True
            faults.join()
            assert not faults.errors, faults.errors
            time.sleep(2)
            broadcaster.invalidate("done", "end", reason="the last event")
            last = broadcaster.numbering.last
        for p in instances:
            p.wait(120)
        elapsed = time.monotonic() - started
    finally:
        for p in instances:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGUSR1)  # its threads' stacks, to the test's stderr
                time.sleep(1)
                p.kill()
                p.wait(10)  # reaped here: a Popen left running warns in whichever test comes next
    reports = [json.loads(o.read_text()) for o in outs]

    causes: Counter[str] = Counter()
    for r in reports:
        causes.update(r["stats"]["gaps_by_cause"])
    stretches = {r["name"]: missed_stretches(r["log"], last) for r in reports}
    figures = {
        "events": EVENTS,
        "sent": sent,
        "seconds": round(elapsed, 1),
        "applied": sum(r["stats"]["applied"] for r in reports),
        "gaps": dict(sorted(causes.items())),
        "clears": sum(r["stats"]["clears"] for r in reports),
        "missed_stretches": sum(len(s) for s in stretches.values()),
        "missed_events": sum(b - a + 1 for s in stretches.values() for a, b, _ in s),
        "stale": sum(len(r["stale"]) for r in reports),
        "faults": "; ".join(faults.done),
    }
    print("broadcast proof:", json.dumps(figures))
    for r in reports:
        missed = sum(b - a + 1 for a, b, _ in stretches[r["name"]])
        print(
            f"  {r['name']}: applied {r['stats']['applied']}, missed {missed}, gaps {r['stats']['gaps_by_cause']}"
        )
    report_figures(**figures)

    assert figures["stale"] == 0, {r["name"]: r["stale"] for r in reports if r["stale"]}
    silent = {n: [(a, b) for a, b, reported in s if not reported] for n, s in stretches.items()}
    assert not any(silent.values()), f"missed events with no gap reported: {silent}"
    by_name = {r["name"]: r["stats"]["gaps_by_cause"] for r in reports}
    assert by_name[names[CUT]].get("reconnect", 0) >= 1
    assert by_name[names[PAUSED]].get("overflow", 0) >= 1
    # The restart: every instance declared its queue again.
    assert all(sum(g.get(c, 0) for c in ("reconnect", "broker-restart")) >= 1 for g in by_name.values())
    assert len(faults.done) == 3
