"""The client's memory over many confirmed publishes: RSS must stay flat.

`Publisher.emit` N envelopes (1,000,000 by default) through one transport without ever
calling `flush` until the end, as a long-running producer would, sampling this process's
VmRSS every `N / 20` messages (at most every 50,000). Reported: start, peak, end and the
slope (least squares over the samples after the first tenth, MiB per 100,000 messages).
The queue keeps only its newest 10,000 messages (`x-max-length`, drop-head), so the broker
does not fill up. Run: `python -m bench.memory_bench [--n N] [--url URL]`.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import uuid
from typing import Any

import routing
from bench import peers, toolkit
from bench.broker_bench import DEFAULT_URL
from bench.message import DATA, EVENT_TYPE, EXTENSIONS, SOURCE, SUBJECT
from bench.stats import rss_mib, table
from routing import Publisher

FULL_N = 1_000_000
QUICK_N = 20_000
FLAT_MIB_PER_100K = 1.0  # the goal: under 10 MiB per million messages


def _slope(samples: list[tuple[int, float]]) -> float:
    """MiB per 100,000 messages, least squares, ignoring the warm-up (first tenth)."""
    steady = [s for s in samples if s[0] >= samples[-1][0] // 10] or samples
    if len(steady) < 2:
        return 0.0
    mean_x = sum(x for x, _ in steady) / len(steady)
    mean_y = sum(y for _, y in steady) / len(steady)
    sxx = sum((x - mean_x) ** 2 for x, _ in steady)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in steady)
    return sxy / sxx * 100_000 if sxx else 0.0


def measure(url: str, n: int) -> dict[str, Any]:
    every = min(50_000, max(1, n // 20))
    queue = f"bench.memory.{uuid.uuid4().hex[:8]}"
    peers.declare_queue(url, queue, {"x-max-length": 10_000, "x-overflow": "drop-head"})
    try:
        with routing.open_transport(url) as transport:
            publisher = Publisher(transport, registry=toolkit.registry(), source=SOURCE)
            emit = publisher.emit
            gc.collect()
            samples = [(0, rss_mib())]
            start = time.perf_counter()
            for i in range(1, n + 1):
                emit("", queue, EVENT_TYPE, DATA, subject=SUBJECT, extensions=EXTENSIONS)
                if i % every == 0:
                    samples.append((i, rss_mib()))
            failed = publisher.flush()
            seconds = time.perf_counter() - start
            samples.append((n, rss_mib()))
    finally:
        peers.delete_queue(url, queue)
    if failed:
        raise RuntimeError(f"memory: {len(failed)} of {n} publications not confirmed")
    rss = [mib for _, mib in samples]
    return {
        "messages": n,
        "msg_per_s": n / seconds,
        "sample_every": every,
        "start_mib": rss[0],
        "peak_mib": max(rss),
        "end_mib": rss[-1],
        "slope_mib_per_100k": _slope(samples),
        "samples": [{"messages": i, "rss_mib": round(mib, 2)} for i, mib in samples],
    }


def run(quick: bool = False, url: str = DEFAULT_URL, n: int | None = None) -> dict[str, Any]:
    return measure(url, n or (QUICK_N if quick else FULL_N))


def report(r: dict[str, Any]) -> str:
    return table(
        ["messages", "msg/s", "RSS start MiB", "peak", "end", "slope MiB/100k msgs"],
        [
            [
                f"{r['messages']:,}",
                f"{r['msg_per_s']:,.0f}",
                f"{r['start_mib']:.1f}",
                f"{r['peak_mib']:.1f}",
                f"{r['end_mib']:.1f}",
                f"{r['slope_mib_per_100k']:+.3f}",
            ]
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--n", type=int, default=None, help=f"messages (default {FULL_N:,})")
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args()
    result = run(args.quick, args.url, args.n)
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()
