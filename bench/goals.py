"""The goals of issues 7 and 17, each a ratio or figure from this run's results, its target, met or not.

`python -m bench` evaluates the broker goals once per broker (issue 17 asks for each on
RabbitMQ 3.10 and 4.0) and the others once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.stats import table

Results = dict[str, Any]


def _row(rows: list[dict[str, Any]] | None, key: str) -> dict[str, Any] | str:
    """A contender's results, or why there are none."""
    if rows is None:
        return "not run"
    row = next((r for r in rows if r["key"] == key), None)
    if row is None:
        return f"no {key} contender"
    return row if row["status"] == "ok" else str(row["status"])


def _ratio(results: Results, table_name: str, ours: str, theirs: str, at_least: float) -> dict[str, Any]:
    """Ratio of the medians; in brackets the range of the round-by-round ratios (the two
    ran one after the other in each round, so these show how steady the ratio was)."""
    rows = results.get(table_name)
    a, b = _row(rows, ours), _row(rows, theirs)
    if isinstance(a, str) or isinstance(b, str):
        why = a if isinstance(a, str) else b
        return {"measured": why, "value": None, "target": f">= {at_least:g}x", "met": None}
    value = a["median"] / b["median"]
    paired = [x / y for x, y in zip(a["rounds"], b["rounds"], strict=True)]
    return {
        "measured": f"{value:.2f}x (rounds {min(paired):.2f}-{max(paired):.2f})",
        "value": value,
        "rounds": paired,
        "target": f">= {at_least:g}x",
        "met": value >= at_least,
    }


def _embedded(results: Results) -> dict[str, Any]:
    rows = results.get("embedded")
    target = ">= 50,000 msg/s"
    if rows is None:
        return {"measured": "not run", "value": None, "target": target, "met": None}
    value = min(r["median"] for r in rows)  # the slower route: topic, through 10 bindings
    return {"measured": f"{value:,.0f} msg/s", "value": value, "target": target, "met": value >= 50_000}


def _routing(results: Results) -> dict[str, Any]:
    rows = results.get("route")
    if rows is None:
        return {"measured": "not run", "value": None, "target": "<= 2x", "met": None}
    slowdown = rows[0]["decisions_per_s"] / rows[-1]["decisions_per_s"]
    return {
        "measured": f"{slowdown:.2f}x slower at {rows[-1]['bindings']:,}",
        "value": slowdown,
        "target": "<= 2x",
        "met": slowdown <= 2,
    }


def _memory(results: Results) -> dict[str, Any]:
    from bench.memory_bench import FLAT_MIB_PER_100K

    r = results.get("memory")
    target = f"<= {FLAT_MIB_PER_100K:g} MiB/100k"
    if r is None:
        return {"measured": "not run", "value": None, "target": target, "met": None}
    slope = r["slope_mib_per_100k"]
    return {
        "measured": (
            f"{slope:+.2f} MiB/100k over {r['messages']:,} "
            f"({r['start_mib']:.0f}/{r['peak_mib']:.0f}/{r['end_mib']:.0f} MiB start/peak/end)"
        ),
        "value": slope,
        "target": target,
        "met": slope <= FLAT_MIB_PER_100K,
    }


def _latency(results: Results) -> dict[str, Any]:
    r = results.get("latency")
    if r is None:
        return {"measured": "not run", "value": None, "target": "-", "met": None}
    return {
        "measured": f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms at {r['achieved_rate']:,.0f} msg/s",
        "value": r["p99_ms"],
        "target": "(reported)",
        "met": None,
    }


def _web(results: Results) -> dict[str, Any]:
    rows = [r for r in results.get("web") or [] if r["status"] == "ok"]
    if not rows:
        return {"measured": "not run", "value": None, "target": "(reported)", "met": None}
    measured = "; ".join(
        f"{r['broker']}: {r['rps']['median']:,.0f} req/s, p99 {r['p99_ms']['median']:.0f} ms" for r in rows
    )
    return {"measured": measured, "value": None, "target": "(reported)", "met": None}


def _broadcast(results: Results) -> dict[str, Any]:
    r = results.get("broadcast")
    if r is None:
        return {"measured": "not run", "value": None, "target": "-", "met": None}
    return {
        "measured": f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms to the last of "
        f"{r['instances']} at {r['achieved_rate']:,.0f} events/s",
        "value": r["p99_ms"],
        "target": "(reported)",
        "met": None,
    }


def _cpu(results: Results, table_name: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Client CPU microseconds per message (median over the rounds), ours next to theirs."""
    rows = results.get(table_name)
    parts = []
    for ours, theirs in pairs:
        a, b = _row(rows, ours), _row(rows, theirs)
        if isinstance(a, str) or isinstance(b, str):
            parts.append(a if isinstance(a, str) else b)
            continue
        mine, peer = a["cpu_us"]["median"], b["cpu_us"]["median"]
        parts.append(f"{ours} {mine:.1f} vs {theirs} {peer:.1f} us/msg")
    return {"measured": "; ".join(parts), "value": None, "target": "(reported)", "met": None}


def _fast(results: Results) -> dict[str, Any]:
    fast = results["fast_validation"]
    return {
        "measured": "jsonschema-rs first" if fast else "jsonschema alone",
        "value": fast,
        "target": "jsonschema-rs",
        "met": bool(fast),
    }


GOALS: list[tuple[str, str, str, Callable[[Results], dict[str, Any]]]] = [
    ("1a", "publish", "publish: toolkit emit vs pika pipelined (pre-built)", lambda r: _ratio(r, "publish", "toolkit", "pika_pipelined", 0.8)),
    ("1b", "publish", "publish: toolkit emit vs aio-pika confirms", lambda r: _ratio(r, "publish", "toolkit", "aio_pika", 3)),
    ("1c", "publish", "publish: toolkit emit vs kombu confirm_publish", lambda r: _ratio(r, "publish", "toolkit", "kombu", 10)),
    ("2a", "consume", "consume: toolkit validate+ack vs pika ack, prefetch 100", lambda r: _ratio(r, "consume", "toolkit_p100", "pika_p100", 0.8)),
    ("2b", "consume", "consume: toolkit multiple-ack/100 vs pika ack each, prefetch 1000", lambda r: _ratio(r, "consume", "toolkit_p1000_batch", "pika_p1000", 1.5)),
    ("2b'", "consume", "  same, vs pika ack each at prefetch 100 (other reading of 2b)", lambda r: _ratio(r, "consume", "toolkit_p1000_batch", "pika_p100", 1.5)),
    ("6a", "publish", "asyncio publish: routing.aio emit vs aio-pika confirms", lambda r: _ratio(r, "publish", "toolkit_aio", "aio_pika", 3)),
    ("6b", "publish", "asyncio publish: routing.aio emit vs the blocking toolkit", lambda r: _ratio(r, "publish", "toolkit_aio", "toolkit", 0.9)),
    ("7", "publish", "publish with routing.otel.instrument(), no tracer provider, vs without", lambda r: _ratio(r, "publish", "toolkit_otel", "toolkit", 0.95)),
    ("6c", "consume", "asyncio consume: routing.aio validate+ack vs aio-pika iterator, prefetch 100", lambda r: _ratio(r, "consume", "toolkit_aio_p100", "aio_pika_p100", 2)),
    ("17.1a", "publish", "issue 17: publish: toolkit emit vs pika pipelined (pre-built), 4.0", lambda r: _ratio(r, "publish", "toolkit", "pika_pipelined", 1.0)),
    ("17.1b", "publish", "issue 17: publish: toolkit emit vs the raw-socket limit, 4.0", lambda r: _ratio(r, "publish", "toolkit", "raw_socket", 0.8)),
    ("17.1c", "publish", "issue 17: publish: toolkit emit in publisher.batch() vs pika pipelined, 4.0", lambda r: _ratio(r, "publish", "toolkit_batch", "pika_pipelined", 1.0)),
    ("17.1d", "publish", "issue 17: publish: toolkit emit in publisher.batch() vs the raw-socket limit, 4.0", lambda r: _ratio(r, "publish", "toolkit_batch", "raw_socket", 0.8)),
    ("17.2a", "consume", "issue 17: consume: toolkit vs pika, ack each, prefetch 100", lambda r: _ratio(r, "consume", "toolkit_p100", "pika_p100", 1.0)),
    ("17.2b", "consume", "issue 17: consume: toolkit vs pika, multiple-ack/100, prefetch 1000", lambda r: _ratio(r, "consume", "toolkit_p1000_batch", "pika_p1000_batch", 1.0)),
    ("17.4", "publish", "issue 17: client CPU per published message", lambda r: _cpu(r, "publish", [("toolkit", "pika_pipelined"), ("toolkit_aio", "aio_pika")])),
    ("17.4", "consume", "issue 17: client CPU per consumed message", lambda r: _cpu(r, "consume", [("toolkit_p100", "pika_p100"), ("toolkit_p1000_batch", "pika_p1000_batch")])),
    ("17.3", "fast_validation", "issue 17: the default install validates with jsonschema-rs", _fast),
    ("4a", "embedded", "embedded broker: publish+route+deliver+ack", _embedded),
    ("4b", "route", "topic routing: 100,000 bindings vs 10 (also issue 17)", _routing),
    ("5", "memory", "memory: client RSS over confirmed publishes", _memory),
    ("-", "latency", "latency: publish-to-consume at 1,000 msg/s", _latency),
    ("-", "web", "web: POST /jobs/resize req/s (16 in flight); p99 at 200 req/s", _web),
    ("-", "broadcast", "cache invalidation: invalidate() to the last of 10 instances, 500 events/s", _broadcast),
]  # fmt: skip


def evaluate(results: Results, skipped: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per goal whose benchmark ran, or was skipped (`skipped`: name -> why)."""
    skipped = skipped or {}
    rows = []
    for gid, bench, what, measure in GOALS:
        if bench in results:
            rows.append({"goal": gid, "what": what, **measure(results)})
        elif bench in skipped:
            rows.append(
                {
                    "goal": gid,
                    "what": what,
                    "measured": skipped[bench],
                    "value": None,
                    "target": "-",
                    "met": None,
                }
            )
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    def verdict(met: bool | None) -> str:
        return "-" if met is None else ("met" if met else "NOT MET")

    return table(
        ["goal", "what", "measured", "target", "met"],
        [[r["goal"], r["what"], r["measured"], r["target"], verdict(r["met"])] for r in rows],
        right=[False, False, False, False, False],
    )
