"""topic-logs: services publish `log.record` events keyed `<service>.<level>`; four consumers
bind patterns on a topic exchange and each gets what its pattern matches."""

from __future__ import annotations

from routing.demos._common import (
    DEFAULT_PREFIX,
    DeliveryRecord,
    DemoResult,
    Table,
    claim,
    drain,
    reset,
    script,
    why,
)
from routing.envelope import Envelope, encode, to_properties
from routing.operations import Publishes
from routing.schemas import SchemaRegistry
from routing.topology import Exchange, ExchangeType, Queue, Topology
from routing.transport import open_transport

NAME = "topic-logs"
# consumer -> binding key
CONSUMERS = {"pager": "*.error", "billing-team": "billing.#", "archive": "#", "security": "auth.*"}
# (service, level, message); the routing key is `<service>.<level>`
RECORDS = (
    ("billing", "error", "card declined for invoice 1042"),
    ("billing", "info", "invoice 1043 paid"),
    ("auth", "warning", "5 failed logins for alice"),
    ("auth", "error", "token signing key missing"),
    ("search", "info", "index rebuilt in 4.2 s"),
    ("search", "debug", "cache hit ratio 0.93"),
)


def topology(prefix: str = DEFAULT_PREFIX) -> Topology:
    logs = Exchange(f"{prefix}logs", ExchangeType.TOPIC)
    queues = {c: Queue(f"{prefix}logs.{c}") for c in CONSUMERS}
    return Topology.of(logs, *queues.values(), *(logs.bind(queues[c], key) for c, key in CONSUMERS.items()))


TOPOLOGY = topology()


def publishes(prefix: str = DEFAULT_PREFIX) -> tuple[Publishes, ...]:
    """What the demo publishes where: its operations in `routing asyncapi routing.demos.topic_logs:TOPOLOGY`."""
    return tuple(
        Publishes(f"{prefix}logs", f"{service}.{level}", "log.record") for service, level, _ in RECORDS
    )


def run(url: str | None = None, *, prefix: str = DEFAULT_PREFIX, force: bool = False) -> DemoResult:
    """Route log records by topic: which consumer got which record, and the binding that matched."""
    topo = topology(prefix)
    exchange = f"{prefix}logs"
    registry = SchemaRegistry.bundled()
    labels: dict[str, tuple[str, str]] = {}  # envelope id -> (label, routing key)
    with open_transport(url) as transport:
        claim(transport, topo, demo="topic-logs", force=force)
        published = []
        for n, (service, level, text) in enumerate(RECORDS, 1):
            key = f"{service}.{level}"
            data = {"service": service, "level": level, "message": text, "time": "2026-01-01T12:00:00Z"}
            env = Envelope.new("log.record", data, source=f"urn:demo:{service}")
            labels[env.id] = (f"#{n} {key}", key)
            transport.publish(exchange, key, encode(env, registry=registry), to_properties(env))
            published.append((f"#{n}", key, text))
        failed = transport.flush(10)
        if failed:
            failed[0].raise_for_outcome()
        deliveries = []
        for consumer in CONSUMERS:
            queue = f"{prefix}logs.{consumer}"
            for d in drain(transport, queue):
                label, key = labels[d.properties.message_id]
                reason = why(topo, exchange, queue, key)
                deliveries.append(
                    DeliveryRecord(consumer=consumer, queue=queue, message=label, routing_key=key, why=reason)
                )
        reset(transport, topo)

    by_record = {
        label: [d.consumer for d in deliveries if d.message == label] for label, _ in labels.values()
    }
    tables = (
        Table(
            title=f"1. publish {len(RECORDS)} log.record events to topic exchange {exchange!r}",
            columns=("record", "routing key", "message"),
            rows=tuple(published),
        ),
        Table(
            title="2. bindings",
            columns=("consumer", "binding key"),
            rows=tuple(CONSUMERS.items()),
        ),
        Table(
            title="3. deliveries: who got what, and why",
            columns=("consumer", "record", "why (routing.explain)"),
            rows=tuple((d.consumer, d.message, d.why) for d in deliveries),
        ),
        Table(
            title="4. per record",
            columns=("record", "consumers"),
            rows=tuple((label, ", ".join(c) or "(nobody)") for label, c in by_record.items()),
        ),
    )
    pager = sum(d.consumer == "pager" for d in deliveries)
    summary = (
        f"{len(RECORDS)} records, {len(deliveries)} deliveries: archive got all {len(RECORDS)}, "
        f"pager {pager} errors; one record can reach several consumers, one copy each"
    )
    return DemoResult.routed(NAME, url, deliveries, tables, summary)


if __name__ == "__main__":
    script(run)
