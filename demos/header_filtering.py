"""header-filtering: a headers exchange routes on message attributes (`format`, `region`,
`priority` and the envelope's `ce-type`), with `x-match` `all` and `any` bindings. Each
message shows which bindings matched and, for near misses, which header made the difference.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from routing.demos._common import (
    DEFAULT_PREFIX,
    DeliveryRecord,
    DemoResult,
    Table,
    claim,
    drain,
    key_values,
    reset,
    script,
)
from routing.envelope import Envelope, encode, to_properties
from routing.operations import Publishes
from routing.pipeline import explain
from routing.schemas import SchemaRegistry
from routing.topology import Exchange, ExchangeType, Queue, Topology
from routing.transport import open_transport

NAME = "header-filtering"
# consumer -> (x-match, headers the binding compares)
BINDINGS: dict[str, tuple[str, dict[str, str]]] = {
    "eu-pdf": ("all", {"format": "pdf", "region": "eu"}),
    "us-csv": ("all", {"format": "csv", "region": "us"}),
    "urgent": ("any", {"priority": "high", "ce-type": "config.changed"}),
}
LOG = {"service": "reports", "level": "info", "message": "report ready", "time": "2026-01-01T12:00:00Z"}
CONFIG = {"service": "reports", "keys": ["renderer"], "version": 3}
# (label, event type, data, headers); near misses differ from a binding by one header
MESSAGES: tuple[tuple[str, str, dict[str, Any], dict[str, str]], ...] = (
    ("M1", "log.record", LOG, {"format": "pdf", "region": "eu", "priority": "low"}),
    ("M2", "log.record", LOG, {"format": "pdf", "region": "us", "priority": "low"}),
    ("M3", "log.record", LOG, {"format": "csv", "region": "us", "priority": "high"}),
    ("M4", "log.record", LOG, {"format": "csv", "priority": "normal"}),
    ("M5", "config.changed", CONFIG, {"format": "json", "region": "eu", "priority": "normal"}),
    ("M6", "log.record", LOG, {"format": "PDF", "region": "eu", "priority": "normal"}),
)


def topology(prefix: str = DEFAULT_PREFIX) -> Topology:
    ex = Exchange(f"{prefix}attributes", ExchangeType.HEADERS)
    queues = {c: Queue(f"{prefix}attributes.{c}") for c in BINDINGS}
    binds = (ex.bind(queues[c], match=m, headers=h) for c, (m, h) in BINDINGS.items())
    return Topology.of(ex, *queues.values(), *binds)


TOPOLOGY = topology()


def publishes(prefix: str = DEFAULT_PREFIX) -> tuple[Publishes, ...]:
    """What the demo publishes where: its operations in `routing asyncapi routing.demos.header_filtering:TOPOLOGY`."""
    return tuple(Publishes(f"{prefix}attributes", "", kind, headers=h) for _, kind, _, h in MESSAGES)


def run(url: str | None = None, *, prefix: str = DEFAULT_PREFIX, force: bool = False) -> DemoResult:
    """Filter on headers with x-match all and any: matches, and near misses with the reason."""
    topo = topology(prefix)
    ex = f"{prefix}attributes"
    registry = SchemaRegistry.bundled()
    sent: dict[str, tuple[str, dict[str, Any]]] = {}  # envelope id -> (label, headers)
    verdicts = []
    with open_transport(url) as transport:
        claim(transport, topo, demo="header-filtering", force=force)
        for label, kind, data, extra in MESSAGES:
            env = Envelope.new(kind, data, source="urn:demo:reports")
            props = to_properties(env, ce_headers=True)  # ce-type becomes a header
            headers = {**props.headers, **extra}
            props = replace(props, headers=headers)
            transport.publish(ex, "", encode(env, registry=registry), props)
            shown = {k: v for k, v in headers.items() if k in extra or k == "ce-type"}
            sent[env.id] = (label, shown)
            for step in explain(topo, ex, "", headers).trace:
                if step.binding is not None:
                    consumer = step.binding.destination.removeprefix(f"{ex}.")
                    verdict = "match" if step.matched else "miss"
                    verdicts.append((label, consumer, verdict, step.reason))
        failed = transport.flush(10)
        if failed:
            failed[0].raise_for_outcome()
        deliveries = []
        for consumer in BINDINGS:
            queue = f"{ex}.{consumer}"
            for d in drain(transport, queue):
                label, shown = sent[d.properties.message_id]
                reason = next(v[3] for v in verdicts if v[0] == label and v[1] == consumer)
                deliveries.append(
                    DeliveryRecord(consumer=consumer, queue=queue, message=label, headers=shown, why=reason)
                )
        reset(transport, topo)

    got = {d.message for d in deliveries}
    tables = (
        Table(
            title=f"1. bindings on headers exchange {ex!r}",
            columns=("consumer", "x-match", "headers"),
            rows=tuple((c, m, key_values(h)) for c, (m, h) in BINDINGS.items()),
        ),
        Table(
            title="2. messages published (with to_properties(..., ce_headers=True))",
            columns=("message", "headers"),
            rows=tuple((label, key_values(h)) for label, h in sent.values()),
        ),
        Table(
            title="3. every binding tried (routing.explain): matches and near misses",
            columns=("message", "consumer", "verdict", "why"),
            rows=tuple(verdicts),
        ),
        Table(
            title="4. deliveries",
            columns=("consumer", "message", "why"),
            rows=tuple((d.consumer, d.message, d.why) for d in deliveries),
        ),
    )
    unrouted = [label for label, _ in sent.values() if label not in got]
    summary = (
        f"{len(MESSAGES)} messages, {len(deliveries)} deliveries; routed by headers alone "
        f"(no routing key); {', '.join(unrouted) or 'none'} matched no binding and were dropped"
    )
    return DemoResult.routed(NAME, url, deliveries, tables, summary)


if __name__ == "__main__":
    script(run)
