"""`python -m bench [--quick] [--json] [--only NAME] [--web] [--url URL]...`: every benchmark, one table each, and the goals.

The broker benchmarks run against each RabbitMQ given, one after the other, each with every
peer in the same run, and the goals table is printed per broker: `--url` (repeatable), else
ROUTING_BENCH_URLS (amqp:// URLs separated by spaces), else ROUTING_URL (one broker: a
comma-separated list there is one cluster's nodes), else both brokers of the development machine, RabbitMQ 3.10.8 at amqp://guest:guest@127.0.0.1:5672/%2F and 4.0.5
at amqp://guest:guest@127.0.0.1:5674/%2F. A broker that does not answer is skipped (said
so); the rest runs. The peers (aio-pika, kombu) come from the `bench` extra: `pip install -e '.[bench]'`.
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
    frames_bench,
    goals,
    latency_bench,
    memory_bench,
    peers,
    route_bench,
    web_bench,
)
from bench.stats import load_average
from routing.schemas import SchemaRegistry

NAMES = ("route", "envelope", "frames", "embedded", "publish", "consume", "latency", "broadcast", "memory")
OPTIONAL = ("web",)  # run only when asked for (`--web` or `--only web`)
NEEDS_BROKER = frozenset({"publish", "consume", "latency", "broadcast", "memory"})
TITLES = {
    "route": "Topic route decisions per second by number of bindings",
    "envelope": "Envelope cost per message (microseconds)",
    "frames": "Reading deliveries off the wire: CPU us per delivery, pika's decoder vs routing's (best of the rounds)",
    "embedded": "Embedded broker: published, routed, delivered and acked in one process (msg/s)",
    "publish": "RabbitMQ: confirmed publishing, persistent ~540-byte envelopes, durable queue (msg/s)",
    "consume": "RabbitMQ: consuming with manual acks (msg/s)",
    "latency": "RabbitMQ: publish-to-consume latency through the toolkit",
    "broadcast": "RabbitMQ: cache invalidation, invalidate() to the last of 10 instances applying it",
    "memory": "RabbitMQ: client RSS over confirmed publishes through the toolkit",
    "web": "The web app: POST /jobs/resize with a 200-byte PNG, answered 202 once confirmed (uvicorn apart)",
}


DEFAULT_URLS = (broker_bench.DEFAULT_URL, "amqp://guest:guest@127.0.0.1:5674/%2F")


def broker_urls(given: list[str] | None = None) -> list[str]:
    """The brokers to measure: `given`, else ROUTING_BENCH_URLS, else ROUTING_URL, else `DEFAULT_URLS`."""
    if given:
        return given
    urls = [
        u for u in os.environ.get("ROUTING_BENCH_URLS", "").split() if u.startswith(("amqp://", "amqps://"))
    ]
    one = os.environ.get("ROUTING_URL", "")
    if not urls and one.startswith(("amqp://", "amqps://")):
        urls = [one]
    return urls or list(DEFAULT_URLS)


def _shown(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def environment() -> dict[str, Any]:
    """The machine and the client libraries' versions."""
    return {
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load_average": load_average(),
        "fast_validation": SchemaRegistry.bundled().fast,
        **peers.versions(),
    }


def broker(url: str) -> dict[str, Any]:
    """A broker's URL (no password) and version; `rabbitmq` is None when it did not answer."""
    env: dict[str, Any] = {"url": _shown(url)}
    try:
        admin = peers.Admin(url)
    except Exception as exc:  # any failure to connect means: skip the broker benchmarks
        env["rabbitmq"] = None
        env["rabbitmq_error"] = f"{type(exc).__name__}: {exc}"
    else:
        env["rabbitmq"] = admin.server_version
        admin.close()
    return env


def describe(env: dict[str, Any], brokers: list[dict[str, Any]]) -> str:
    def version(name: str) -> str:
        return env[name] or "not installed (pip install -e '.[bench]')"

    validation = "jsonschema-rs first" if env["fast_validation"] else "jsonschema alone (no jsonschema-rs)"
    return "\n".join(
        [
            f"machine: {env['cores']} cores ({env['machine']}), load average {env['load_average']}",
            f"python {env['python']}; pika {version('pika')}; aio-pika {version('aio-pika')}; "
            f"kombu {version('kombu')}; validation: {validation}",
            *(f"broker: {describe_broker(b)}" for b in brokers),
        ]
    )


def describe_broker(b: dict[str, Any]) -> str:
    if b["rabbitmq"] is None:
        return f"RabbitMQ not reachable at {b['url']} ({b['rabbitmq_error']})"
    return f"RabbitMQ {b['rabbitmq']} at {b['url']}"


def runners(quick: bool, url: str, memory_n: int | None, broker: bool) -> dict[str, Callable[[], Any]]:
    return {
        "route": lambda: route_bench.run(quick),
        "envelope": lambda: envelope_bench.run(quick),
        "frames": lambda: frames_bench.run(1000, 2) if quick else frames_bench.run(),
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
    if name == "frames":
        return frames_bench.report(result)
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
    parser.add_argument(
        "--url",
        action="append",
        metavar="URL",
        help="a RabbitMQ to measure (repeatable; default ROUTING_BENCH_URLS, ROUTING_URL, else :5672 and :5674)",
    )
    args = parser.parse_args(argv)
    env = environment()
    brokers = [{**broker(url), "amqp": url} for url in broker_urls(args.url)]
    if not args.json:
        print(describe(env, brokers), flush=True)
    chosen = [n for n in NAMES if not args.only or n in args.only]
    chosen += [n for n in OPTIONAL if (args.web and not args.only) or n in (args.only or ())]
    reachable = [b for b in brokers if b["rabbitmq"] is not None]
    first = reachable[0]["amqp"] if reachable else brokers[0]["amqp"]
    # The benchmarks without a broker run once; the web app's uses the first broker that answers.
    local = _run_all(
        [n for n in chosen if n not in NEEDS_BROKER], args, first, bool(reachable), None, args.json
    )
    per_broker = []
    for b in brokers:
        names = [n for n in chosen if n in NEEDS_BROKER]
        if not names:
            break
        if not args.json:
            print(f"\n=== {describe_broker(b)} ===", flush=True)
        done = _run_all(names, args, b["amqp"], b["rabbitmq"] is not None, b, args.json)
        per_broker.append({k: v for k, v in b.items() if k != "amqp"} | done)
    if args.json:
        json.dump({"environment": env, **local, "brokers": per_broker}, sys.stdout, indent=2)
        print()
        return
    if local["goals"]:
        print(f"\nGoals (ratios measured side by side in this run)\n{goals.report(local['goals'])}")
    for b in per_broker:
        print(f"\nGoals on {describe_broker(b)}\n{goals.report(b['goals'])}")
    took = {
        **local["seconds"],
        **{f"{k} ({b['rabbitmq']})": v for b in per_broker for k, v in b["seconds"].items()},
    }
    print("\ntook: " + ", ".join(f"{k} {v:g}s" for k, v in took.items()))


def _run_all(
    names: list[str],
    args: argparse.Namespace,
    url: str,
    reachable: bool,
    on_broker: dict[str, Any] | None,
    quiet: bool,
) -> dict[str, Any]:
    """Run `names` (against `url` for those that need a broker): results, seconds, what was
    skipped, and the goals these results decide."""
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    run = runners(args.quick, url, args.memory_n, reachable)
    for name in names:
        if name in NEEDS_BROKER and not reachable:
            skipped[name] = "skipped: RabbitMQ is not reachable"
            if not quiet:
                print(f"\n{TITLES[name]}\n{skipped[name]}", flush=True)
            continue
        start = time.perf_counter()
        results[name] = run[name]()
        seconds[name] = round(time.perf_counter() - start, 1)
        if not quiet:
            title = TITLES[name] + (f" [RabbitMQ {on_broker['rabbitmq']}]" if on_broker else "")
            print(f"\n{title}\n{render(name, results[name])}", flush=True)
    extra = {"fast_validation": SchemaRegistry.bundled().fast} if on_broker is None else {}
    verdicts = goals.evaluate({**results, **extra}, skipped)
    return {"seconds": seconds, "skipped": skipped, "results": results, "goals": verdicts}


if __name__ == "__main__":
    main()
