"""Declaring a topology, once for both transports: the walk, the labels and the conflict lines.

Exchanges, then queues, then bindings. A transport supplies the broker operations
(`DeclareOps`: the embedded broker's in process, RabbitMQ's over a channel and its
management API); everything here is pure of I/O and free of pika.

AMQP 0-9-1 can ask whether an exchange or queue exists (a passive declare) but not
whether a binding does: a transport that cannot tell answers None, and a binding declared
again between entities that already existed is then reported as `unverified`, never as
created.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from routing.diff import diff_topology
from routing.errors import ChannelClosed
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport.base import DeclareReport

__all__ = ["DeclareOps", "conflict_line", "declare_topology", "label", "redeclare"]


class DeclareOps(Protocol):
    """What a transport does for `declare_topology`. The declares and `bind` raise
    `routing.errors.ChannelClosed` when the broker refuses; so may the existence checks."""

    def exchange_exists(self, name: str) -> bool: ...
    def queue_exists(self, name: str) -> bool: ...
    def binding_exists(self, binding: Binding) -> bool | None:
        """Whether the broker has it; None when that cannot be known."""
        ...

    def definitions(self) -> Mapping[str, Any] | None:
        """The vhost's definitions as `GET /api/definitions/{vhost}` gives them (items without
        `vhost`), or None when there are none to read."""
        ...

    def declare_exchange(self, exchange: Exchange) -> None: ...
    def declare_queue(self, queue: Queue) -> None: ...
    def bind(self, binding: Binding) -> None: ...


def label(entity: Exchange | Queue | Binding) -> str:
    """`exchange 'logs'`, `queue 'jobs'`, `binding logs -> jobs [a.*]`: how reports name it."""
    if isinstance(entity, Exchange):
        return f"exchange {entity.name!r}"
    if isinstance(entity, Queue):
        return f"queue {entity.name!r}"
    return f"binding {entity.describe()}"


# RabbitMQ's 406 for a redeclare with other settings (the embedded broker words it the
# same); the RabbitMQ transport appends `(declare exchange 'logs' on host:port)`.
_INEQUIVALENT = re.compile(
    r"inequivalent arg '([^']*)' for \w+ '.*?' in vhost '[^']*': (received .*? but current is .*?)"
    r"(?: \(declare |$)"
)


def conflict_line(entity: Exchange | Queue | Binding, error: ChannelClosed) -> str:
    """`exchange 'logs': argument 'type' differs: received 'fanout' but current is 'topic'`."""
    text = error.text.split(" - ", 1)[-1]
    m = _INEQUIVALENT.search(text)
    if m:
        return f"{label(entity)}: argument {m.group(1)!r} differs: {m.group(2)}"
    return f"{label(entity)}: {error.code} {text}"


def _known_differences(topology: Topology, ops: DeclareOps) -> dict[str, list[str]]:
    """Every setting the broker has otherwise, by entity label, as `routing diff` finds them.

    RabbitMQ's redeclare names one difference per refusal (the channel closes at the first)
    and lets some pass: a queue declared without `x-queue-type` is taken for the quorum queue
    the broker has (checked on 3.10.8 and 4.0.5). Where definitions can be read, the
    comparison is diff's, so declare and diff agree.
    """
    definitions = ops.definitions()
    if not isinstance(definitions, Mapping):
        return {}
    found: dict[str, list[str]] = {}
    for d in diff_topology(topology, definitions).differ:
        found.setdefault(d.entity, []).append(d.describe())
    return found


def declare_topology(topology: Topology, ops: DeclareOps) -> DeclareReport:
    """Exchanges, then queues, then bindings; each conflict recorded and the rest carried on.

    An entity the broker has with other settings is left as it is, with one conflict line per
    setting; the bindings that touch it are skipped, and named. Returns the report; the
    caller raises `DeclareConflicts` when `conflicts` is not empty.
    """
    created: list[str] = []
    unchanged: list[str] = []
    unverified: list[str] = []
    conflicts: list[str] = []
    skipped: list[str] = []
    refused: set[tuple[str, str]] = set()
    fresh: set[tuple[str, str]] = set()
    differing = _known_differences(topology, ops)

    def entity(kind: str, item: Exchange | Queue) -> None:
        known = differing.get(label(item))
        if known:
            conflicts.extend(known)
            refused.add((kind, item.name))
            return
        try:
            existed = (ops.exchange_exists if isinstance(item, Exchange) else ops.queue_exists)(item.name)
            _declare(item, ops)
        except ChannelClosed as exc:
            conflicts.append(conflict_line(item, exc))
            refused.add((kind, item.name))
            return
        if existed:
            unchanged.append(label(item))
        else:
            created.append(label(item))
            fresh.add((kind, item.name))

    for ex in topology.exchanges:
        entity("exchange", ex)
    for q in topology.queues:
        entity("queue", q)
    for b in topology.bindings:
        ends = {("exchange", b.source), (str(b.destination_type), b.destination)}
        if ends & refused:
            # Bound to something the broker has with other settings: fix that first.
            blocked = ", ".join(f"{k} {n!r}" for k, n in sorted(ends & refused))
            skipped.append(f"{label(b)}: not declared, {blocked} differs from the broker's")
            continue
        # A binding to something just created is new; otherwise ask, before binding.
        existed = False if ends & fresh else ops.binding_exists(b)
        try:
            _declare(b, ops)
        except ChannelClosed as exc:
            conflicts.append(conflict_line(b, exc))
            continue
        if existed:
            unchanged.append(label(b))
        elif existed is None:
            unverified.append(label(b))
        else:
            created.append(label(b))
    return DeclareReport(
        created=tuple(created),
        unchanged=tuple(unchanged),
        unverified=tuple(unverified),
        conflicts=tuple(conflicts),
        skipped=tuple(skipped),
    )


def redeclare(
    exchanges: Iterable[Exchange], queues: Iterable[Queue], bindings: Iterable[Binding], ops: DeclareOps
) -> list[str]:
    """Declare again after a reconnect, without existence checks; returns conflict lines."""
    problems = []
    items: list[Exchange | Queue | Binding] = [*exchanges, *queues, *bindings]
    for item in items:
        try:
            _declare(item, ops)
        except ChannelClosed as exc:
            problems.append(conflict_line(item, exc))
    return problems


def _declare(item: Exchange | Queue | Binding, ops: DeclareOps) -> None:
    if isinstance(item, Exchange):
        ops.declare_exchange(item)
    elif isinstance(item, Queue):
        ops.declare_queue(item)
    else:
        ops.bind(item)
