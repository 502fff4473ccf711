"""Small helpers shared by the benchmarks: summaries, RSS, and plain-text tables."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timed:
    """A timed window: its wall-clock seconds, and the CPU seconds this process (all its
    threads, user and system) spent in it: the client's cost, whatever the broker's."""

    seconds: float
    cpu: float


class Stopwatch:
    """Started when made; `stop()` gives the `Timed` window since."""

    __slots__ = ("_cpu", "_wall")

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def stop(self) -> Timed:
        return Timed(time.perf_counter() - self._wall, time.process_time() - self._cpu)


def summary(rates: Sequence[float]) -> dict[str, Any]:
    """Median and min-max of per-round rates."""
    return {
        "median": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "rounds": [round(r, 1) for r in rates],
    }


def percentile(values: Sequence[float], p: float) -> float:
    """The `p`th percentile (0-100), nearest rank on the sorted values."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))
    return ordered[rank]


def rss_mib() -> float:
    """This process's resident set size (VmRSS in /proc/self/status), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[bool] | None = None) -> str:
    """Columns padded to their widest cell; numbers right-aligned unless `right` says."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    align = right or [i > 0 for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [c.rjust(w) if a else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)]
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
