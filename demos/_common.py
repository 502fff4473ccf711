"""What every demo returns, how it is printed, and the bits of plumbing they share.

A demo is a function `run(url, *, prefix=..., force=False) -> DemoResult`. It declares its own topology
(names start with `prefix`, so tests can use unique names on a shared RabbitMQ), deletes it
again at the end, and reports every delivery it saw. Rendering is separate from running, so
the CLI, the plain scripts and the tests share the same result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from routing.errors import BrokerError, DeclareConflicts, RoutingError
from routing.pipeline import explain
from routing.topology import Topology
from routing.transport import Transport
from routing.transport.base import DeclareReport
from routing.urls import describe, redact, resolve

DEFAULT_PREFIX = "demo."


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRecord:
    """One message one consumer received, and why it got it."""

    consumer: str
    queue: str
    message: str  # a stable label, e.g. "#3 billing.error"; envelope ids are random
    routing_key: str = ""
    headers: dict[str, Any] | None = None
    why: str = ""
    outcome: str = "received"  # work-queue: done, retried, dead-lettered

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "consumer": self.consumer,
            "queue": self.queue,
            "message": self.message,
            "routing_key": self.routing_key,
            "why": self.why,
            "outcome": self.outcome,
        }
        if self.headers is not None:
            out["headers"] = self.headers
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """One step of a demo as a titled table of plain strings."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoResult:
    """A demo's account: every delivery, the tables a person reads, one summary line.

    `facts` is what must be the same on every broker (which consumer got which message; for
    the work queue which jobs were done and which dead-lettered, not which worker did them).
    """

    name: str
    broker: str
    deliveries: tuple[DeliveryRecord, ...]
    tables: tuple[Table, ...]
    summary: str
    facts: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "demo": self.name,
            "broker": self.broker,
            "summary": self.summary,
            "facts": list(self.facts),
            "deliveries": [d.as_dict() for d in self.deliveries],
        }

    @classmethod
    def routed(
        cls,
        name: str,
        url: str | None,
        deliveries: list[DeliveryRecord],
        tables: tuple[Table, ...],
        summary: str,
    ) -> DemoResult:
        """The result of a routing demo, whose facts are which consumer got which message."""
        return cls(
            name=name,
            broker=redact(resolve(url)),
            deliveries=tuple(deliveries),
            tables=tables,
            summary=summary,
            facts=tuple(sorted(f"{d.consumer} <- {d.message}" for d in deliveries)),
        )


def key_values(mapping: Mapping[str, Any]) -> str:
    """`format=pdf region=eu`: a mapping on one line of a table."""
    return " ".join(f"{k}={v}" for k, v in mapping.items())


def why(topology: Topology, exchange: str, queue: str, routing_key: str, headers: Any = None) -> str:
    """The binding that routed a message to `queue`, as `routing.explain` words it."""
    for step in explain(topology, exchange, routing_key, headers).matched:
        if step.binding is not None and step.binding.destination == queue:
            return step.reason
    return "no binding matched"


def claim(transport: Transport, topology: Topology, *, demo: str, force: bool = False) -> None:
    """Declare a demo's topology, which the demo deletes again when it ends, messages and all.

    Entities of those names that the broker already has (another application's, or the
    leftovers of a crashed run) are not the demo's to delete: unless `force`, the demo undoes
    what it just created and refuses, naming them. With `force` they are deleted first."""
    if force:
        reset(transport, topology)
        transport.declare(topology)
        return
    try:
        report = transport.declare(topology)
        conflicts: tuple[str, ...] = ()
    except DeclareConflicts as exc:
        if not isinstance(exc.report, DeclareReport):
            raise
        report, conflicts = exc.report, tuple(exc.conflicts)
    entities = [
        *(("queue", q.name) for q in topology.queues),
        *(("exchange", e.name) for e in topology.exchanges),
    ]
    there = [f"{kind} {name!r}" for kind, name in entities if f"{kind} {name!r}" not in report.created]
    if not there:
        return
    _delete(
        transport,
        [q.name for q in topology.queues if f"queue {q.name!r}" in report.created],
        [e.name for e in topology.exchanges if f"exchange {e.name!r}" in report.created],
    )
    raise BrokerError(
        f"demo {demo}: the broker already has {', '.join(there)}"
        + (f" (and {len(conflicts)} differ from the demo's)" if conflicts else "")
        + "; the demo deletes its entities, messages included, when it ends, so it left these alone."
        " Use another vhost, or pass --force to delete and replace them"
    )


def reset(transport: Transport, topology: Topology) -> None:
    """Delete the topology's queues and exchanges (their bindings go with them)."""
    _delete(transport, [q.name for q in topology.queues], [e.name for e in topology.exchanges])


def _delete(transport: Transport, queues: Sequence[str], exchanges: Sequence[str]) -> None:
    for name in queues:
        with contextlib.suppress(RoutingError):
            transport.delete_queue(name)
    for name in exchanges:
        with contextlib.suppress(RoutingError):
            transport.delete_exchange(name)


def drain(transport: Transport, queue: str) -> list[Any]:
    """Every message waiting in `queue`, taken with `basic.get` and acked."""
    out = []
    while (d := transport.get(queue)) is not None:
        transport.ack(d)
        out.append(d)
    return out


# ------------------------------------------------------------------ rendering


def render_table(table: Table) -> str:
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    out = [click.style(table.title, bold=True)]
    out.append(click.style(line(table.columns), fg="cyan"))
    out.append("  ".join("-" * w for w in widths))
    out += [line(row) for row in table.rows] or ["(nothing)"]
    if table.note:
        out.append(click.style(table.note, dim=True))
    return "\n".join(out)


def render(result: DemoResult) -> str:
    """The demo as a person reads it: a table per step, then the summary line."""
    parts = [click.style(f"== demo {result.name} ==", fg="magenta", bold=True)]
    parts += [render_table(t) for t in result.tables]
    parts.append(click.style(f"summary: {result.summary}", fg="green", bold=True))
    return "\n\n".join(parts)


def as_json(results: Sequence[DemoResult]) -> str:
    return json.dumps([r.as_dict() for r in results], indent=2, sort_keys=True)


def script(run: Callable[..., DemoResult]) -> None:
    """`python demos/<name>.py [--url URL] [--json]`: the same output as `routing demo NAME`."""
    parser = argparse.ArgumentParser(description=(run.__doc__ or "").splitlines()[0])
    parser.add_argument("--url", help="broker URL (default: $ROUTING_URL, else the embedded broker)")
    parser.add_argument("--json", action="store_true", help="a machine-readable account")
    parser.add_argument("--force", action="store_true", help="delete entities of the demo's names first")
    args = parser.parse_args()
    url = resolve(args.url)
    click.echo(describe(url))
    try:
        result = run(url, force=args.force)
    except RoutingError as exc:
        sys.exit(f"error: {exc}")
    click.echo(as_json([result]) if args.json else render(result))
