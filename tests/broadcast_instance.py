"""One service instance for tests/test_broadcast_proof.py, run as its own process:

    python tests/broadcast_instance.py URL EXCHANGE NAME DB OUT MAX_LENGTH

It serves reads of random keys from its cache, filling misses from the source of truth (a
sqlite table key -> version), while a `Listener` drops invalidated keys (and clears the
cache on a gap). When the publisher's final marker arrives it checks every cached entry
against the truth and writes its report (JSON) to OUT: stale entries, the sequence numbers
it applied and the gaps, in the order they happened, and the listener's stats.
"""

from __future__ import annotations

import faulthandler
import json
import random
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from routing.broadcast import SEQUENCE, Gap, Listener
from routing.envelope import Envelope

KEYS = 400
READ_PAUSE = 0.004  # seconds between reads: ~250 reads/s per instance


class LockedCache(MutableMapping[str, int]):
    """A dict behind a lock: a fill (read the truth, then store) holds it, so an
    invalidation applied meanwhile cannot be overtaken by the older value."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._data: dict[str, int] = {}

    def __getitem__(self, key: str) -> int:
        with self.lock:
            return self._data[key]

    def __setitem__(self, key: str, value: int) -> None:
        with self.lock:
            self._data[key] = value

    def __delitem__(self, key: str) -> None:
        with self.lock:
            del self._data[key]

    def pop(self, key: str, *default: object) -> object:  # type: ignore[override]
        with self.lock:
            return self._data.pop(key, *default)

    def clear(self) -> None:
        with self.lock:
            self._data.clear()

    def __iter__(self) -> Iterator[str]:
        with self.lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)


def truth(db: sqlite3.Connection, key: str) -> int:
    row = db.execute("SELECT version FROM truth WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def main(url: str, exchange: str, name: str, db_path: str, out: str, max_length: int) -> None:
    # The test sends SIGUSR1 to an instance that did not finish: every thread's stack to stderr.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    db = sqlite3.connect(db_path, timeout=30)
    cache = LockedCache()
    log: list[list[object]] = []  # ["e", sequence] and ["g", cause, detail], in order
    done = threading.Event()
    listener = Listener(url, exchange=exchange, service="proof", name=name, max_length=max_length)
    listener.attach(cache, name="kv")

    @listener.on_invalidate
    def applied(env: Envelope) -> None:
        log.append(["e", int(env.extensions[SEQUENCE])])
        if env.data["cache"] == "done":
            done.set()

    @listener.on_gap
    def gap(found: Gap) -> None:
        log.append(["g", str(found.cause), found.detail])

    reads = misses = 0
    with listener:
        Path(out + ".ready").write_text("ready")
        while not done.is_set():
            key = f"k{random.randrange(KEYS)}"
            reads += 1
            with cache.lock:
                if key not in cache:
                    misses += 1
                    cache[key] = truth(db, key)
            time.sleep(READ_PAUSE)
        with cache.lock:
            held = dict(cache.items())
        stale = {k: [v, truth(db, k)] for k, v in held.items() if v < truth(db, k)}
        stats = listener.stats
    report = {
        "name": name,
        "stale": stale,
        "held": len(held),
        "reads": reads,
        "misses": misses,
        "log": log,
        "stats": {
            "received": stats.received,
            "applied": stats.applied,
            "rejected": stats.rejected,
            "gaps": stats.gaps,
            "gaps_by_cause": dict(stats.gaps_by_cause),
            "clears": stats.clears,
        },
    }
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    url, exchange, name, db_path, out, max_length = sys.argv[1:7]
    main(url, exchange, name, db_path, out, int(max_length))
