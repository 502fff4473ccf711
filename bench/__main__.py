"""`python -m bench [--quick] [--json] [--only NAME] [--web]`: every benchmark, one table each, and the goals.

The broker benchmarks use RabbitMQ at ROUTING_URL (an amqp:// URL), else at
amqp://guest:guest@127.0.0.1:5672/%2F; when it does not answer they are skipped and the
rest runs. The peers (aio-pika, kombu) come from the `bench` extra: `pip install -e '.[bench]'`.
`--web` adds the web app's endpoint (bench/web_bench.py, the `webapp` extra; about a minute),
on the embedded broker and on that RabbitMQ; it is not part of a plain or `--quick` run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import (
    broadcast_bench,
    broker_bench,
    embedded_bench,
    envelope_bench,
    goals,
    latency_bench,
    memory_bench,
    peers,
    route_bench,
    web_bench,
)
from bench.stats import load_average

NAMES = ("route", "envelope", "embedded", "publish", "consume", "latency", "broadcast", "memory")
OPTIONAL = ("web",)  # run only when asked for (`--web` or `--only web`)
NEEDS_BROKER = frozenset({"publish", "consume", "latency", "broadcast", "memory"})
TITLES = {
    "route": "Topic route decisions per second by number of bindings",
    "envelope": "Envelope cost per message (microseconds)",
    "embedded": "Embedded broker: published, routed, delivered and acked in one process (msg/s)",
    "publish": "RabbitMQ: confirmed publishing, persistent ~540-byte envelopes, durable queue (msg/s)",
    "consume": "RabbitMQ: consuming with manual acks (msg/s)",
    "latency": "RabbitMQ: publish-to-consume latency through the toolkit",
    "broadcast": "RabbitMQ: cache invalidation, invalidate() to the last of 10 instances applying it",
    "memory": "RabbitMQ: client RSS over confirmed publishes through the toolkit",
    "web": "The web app: POST /jobs/resize with a 200-byte PNG, answered 202 once confirmed (uvicorn apart)",
}


def broker_url() -> str:
    url = os.environ.get("ROUTING_URL", "")
    return url if url.startswith(("amqp://", "amqps://")) else broker_bench.DEFAULT_URL


def _shown(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def environment(url: str) -> dict[str, Any]:
    """The machine and the versions; `rabbitmq` is None when the broker did not answer."""
    env: dict[str, Any] = {
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load_average": load_average(),
        "url": _shown(url),
        **peers.versions(),
    }
    try:
        admin = peers.Admin(url)
    except Exception as exc:  # any failure to connect means: skip the broker benchmarks
        env["rabbitmq"] = None
        env["rabbitmq_error"] = f"{type(exc).__name__}: {exc}"
    else:
        env["rabbitmq"] = admin.server_version
        admin.close()
    return env


def describe(env: dict[str, Any]) -> str:
    def version(name: str) -> str:
        return env[name] or "not installed (pip install -e '.[bench]')"

    rabbit = env["rabbitmq"] or f"not reachable at {env['url']} ({env['rabbitmq_error']})"
    return "\n".join(
        [
            f"machine: {env['cores']} cores ({env['machine']}), load average {env['load_average']}",
            f"python {env['python']}; pika {version('pika')}; aio-pika {version('aio-pika')}; "
            f"kombu {version('kombu')}",
            f"RabbitMQ {rabbit}",
        ]
    )


def runners(quick: bool, url: str, memory_n: int | None, broker: bool) -> dict[str, Callable[[], Any]]:
    return {
        "route": lambda: route_bench.run(quick),
        "envelope": lambda: envelope_bench.run(quick),
        "embedded": lambda: embedded_bench.run(quick),
        "publish": lambda: broker_bench.run(quick, url, "publish")["publish"],
        "consume": lambda: broker_bench.run(quick, url, "consume")["consume"],
        "latency": lambda: latency_bench.run(quick, url),
        "broadcast": lambda: broadcast_bench.run(quick, url),
        "memory": lambda: memory_bench.run(quick, url, memory_n),
        "web": lambda: web_bench.run(quick, url if broker else None),
    }


def render(name: str, result: Any) -> str:
    if name == "route":
        return route_bench.report(result)
    if name == "envelope":
        return envelope_bench.report(result)
    if name == "embedded":
        return embedded_bench.report(result)
    if name in ("publish", "consume"):
        return broker_bench.report(result)
    if name == "latency":
        return latency_bench.report(result)
    if name == "web":
        return web_bench.report(result)
    if name == "broadcast":
        return broadcast_bench.report(result)
    return memory_bench.report(result)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N: only proves the benchmarks still run")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument(
        "--only",
        action="append",
        choices=NAMES + OPTIONAL,
        metavar="NAME",
        help=f"run only this one (repeatable): {', '.join(NAMES + OPTIONAL)}",
    )
    parser.add_argument(
        "--web",
        action="store_true",
        help="also measure the web app's endpoint (needs the webapp extra; about a minute)",
    )
    parser.add_argument(
        "--memory-n",
        type=int,
        default=None,
        help="messages for the memory benchmark (default 1,000,000; quick 20,000)",
    )
    args = parser.parse_args(argv)
    url = broker_url()
    env = environment(url)
    if not args.json:
        print(describe(env), flush=True)
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    run = runners(args.quick, url, args.memory_n, env["rabbitmq"] is not None)
    chosen = [n for n in NAMES if not args.only or n in args.only]
    chosen += [n for n in OPTIONAL if (args.web and not args.only) or n in (args.only or ())]
    for name in chosen:
        if name in NEEDS_BROKER and env["rabbitmq"] is None:
            skipped[name] = "skipped: RabbitMQ is not reachable"
            if not args.json:
                print(f"\n{TITLES[name]}\n{skipped[name]}", flush=True)
            continue
        start = time.perf_counter()
        results[name] = run[name]()
        seconds[name] = round(time.perf_counter() - start, 1)
        if not args.json:
            print(f"\n{TITLES[name]}\n{render(name, results[name])}", flush=True)
    verdicts = goals.evaluate(results, skipped)
    if args.json:
        json.dump(
            {
                "environment": env,
                "seconds": seconds,
                "skipped": skipped,
                "results": results,
                "goals": verdicts,
            },
            sys.stdout,
            indent=2,
        )
        print()
        return
    print(f"\nGoals (ratios measured side by side in this run)\n{goals.report(verdicts)}")
    print("\ntook: " + ", ".join(f"{k} {v:g}s" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
