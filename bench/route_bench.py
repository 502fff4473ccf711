"""Route decisions per second against the number of topic bindings (10 / 1,000 / 100,000).

RabbitMQ walks a trie, so should we: the cost should follow the words in the key, not the
number of bindings. Run: `python -m bench.route_bench [--quick] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

from routing import Exchange, Queue, Topology, route


def _words(n: int) -> list[str]:
    # The vocabulary grows with the bindings, so that a key matches a handful of bindings at
    # every size: the benchmark then measures the lookup, not the size of the answer.
    return [f"w{i}" for i in range(max(20, n // 50))]


def _key(rng: random.Random, words: list[str]) -> list[str]:
    return [rng.choice(words) for _ in range(rng.randint(2, 4))]


def _topology(n: int, rng: random.Random) -> Topology:
    """`n` topic bindings over 100 queues: keys of 2-4 words, 10% with `*`, 5% ending in `#`."""
    ex = Exchange("bench", "topic")
    queues = [Queue(f"q{i}") for i in range(100)]
    words = _words(n)
    bindings = []
    for i in range(n):
        key = _key(rng, words)
        roll = rng.random()
        if roll < 0.1:
            key[rng.randrange(len(key))] = "*"
        elif roll < 0.15:
            key[-1] = "#"
        bindings.append(ex.bind(queues[i % 100], ".".join(key)))
    return Topology.of(ex, queues, bindings)


def _routed_key(rng: random.Random, binding_key: str, words: list[str]) -> str:
    """A routing key that binding matches: its wildcards filled with words."""
    out: list[str] = []
    for word in binding_key.split("."):
        if word == "*":
            out.append(rng.choice(words))
        elif word == "#":
            out += [rng.choice(words) for _ in range(rng.randint(0, 2))]
        else:
            out.append(word)
    return ".".join(out)


def _setup(n: int, keys: int, seed: int) -> tuple[Topology, list[str]]:
    rng = random.Random(seed)
    topology = _topology(n, rng)
    words = _words(n)
    # Every key is routed somewhere (it is made from a binding), so each size does the same
    # kind of work: a lookup that finds its queues, not a miss at 10 and hits at 100,000.
    bound = [b.routing_key for b in topology.bindings]
    sample = [_routed_key(rng, rng.choice(bound), words) for _ in range(keys)]
    route(topology, "bench", sample[0])  # builds the per-exchange index once
    return topology, sample


def _rate(topology: Topology, sample: list[str]) -> float:
    start = time.perf_counter()
    for key in sample:
        route(topology, "bench", key)
    return len(sample) / (time.perf_counter() - start)


def measure_sizes(
    sizes: tuple[int, ...], *, keys: int = 2000, rounds: int = 5, seed: int = 7
) -> list[dict[str, Any]]:
    """Every size is built first, then each round times every size, one after the other:
    the ratios between sizes are measured under the same load (a busy machine slows a round
    of each alike), not minutes apart."""
    setups = {n: _setup(n, keys, seed) for n in sizes}
    rates: dict[int, list[float]] = {n: [] for n in sizes}
    for r in range(rounds):
        order = sizes[r % len(sizes) :] + sizes[: r % len(sizes)]
        for n in order:
            rates[n].append(_rate(*setups[n]))
    rows = []
    for n in sizes:
        topology, sample = setups[n]
        matched = sum(len(route(topology, "bench", k)) for k in sample) / len(sample)
        rows.append(
            {
                "bindings": n,
                "decisions_per_s": statistics.median(rates[n]),
                "min": min(rates[n]),
                "max": max(rates[n]),
                "rounds": [round(x) for x in rates[n]],
                "queues_per_decision": matched,
            }
        )
    return rows


def measure(n: int, *, keys: int = 2000, rounds: int = 5, seed: int = 7) -> dict[str, Any]:
    """One size alone."""
    return measure_sizes((n,), keys=keys, rounds=rounds, seed=seed)[0]


def run(quick: bool = False) -> list[dict[str, Any]]:
    sizes = (10, 1_000, 10_000) if quick else (10, 1_000, 100_000)
    return measure_sizes(sizes, keys=300 if quick else 2000, rounds=2 if quick else 7)


def report(rows: list[dict[str, Any]]) -> str:
    base = rows[0]["decisions_per_s"]
    lines = [
        f"{'bindings':>9}  {'decisions/s (median)':>21}  {'min-max':>17}  {'vs 10':>6}  "
        f"{'slowdown by round':>17}  queues/key"
    ]
    for r in rows:
        paired = [b / x for b, x in zip(rows[0]["rounds"], r["rounds"], strict=True)]
        lines.append(
            f"{r['bindings']:>9,}  {r['decisions_per_s']:>21,.0f}  "
            f"{r['min']:>8,.0f}-{r['max']:<8,.0f}  {r['decisions_per_s'] / base:>5.2f}x  "
            f"{min(paired):>7.2f}-{max(paired):<9.2f}  {r['queues_per_decision']:.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, to prove the bench still runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(args.quick)
    print(json.dumps(rows, indent=2) if args.json else report(rows))


if __name__ == "__main__":
    main()
