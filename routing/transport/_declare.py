"""Declaring a topology, once for both transports: the walk, the labels and the conflict lines.

Exchanges, then queues, then bindings. A transport supplies the broker operations
(`DeclareOps`: the embedded broker's in process, RabbitMQ's over a channel and its
management API); everything here is pure of I/O and free of pika.

The walk is written once, as a generator: it yields each broker operation it needs
(`("queue_exists", ("jobs",))`) and is sent the answer, or has the `ChannelClosed` of a
refusal thrown in. `declare_topology` drives it over blocking `DeclareOps`;
`declare_topology_async` over `AsyncDeclareOps` (the asyncio transports'), so both families
give the same report for the same broker.

AMQP 0-9-1 can ask whether an exchange or queue exists (a passive declare) but not
whether a binding does: a transport that cannot tell answers None, and a binding declared
again between entities that already existed is then reported as `unverified`, never as
created.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from routing.diff import diff_topology
from routing.errors import ChannelClosed
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport.base import DeclareReport

__all__ = [
    "AsyncDeclareOps",
    "DeclareOps",
    "conflict_line",
    "declare_topology",
    "declare_topology_async",
    "label",
    "redeclare",
    "redeclare_async",
]


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


class AsyncDeclareOps(Protocol):
    """`DeclareOps` for an event loop: the same operations, awaitable."""

    async def exchange_exists(self, name: str) -> bool: ...
    async def queue_exists(self, name: str) -> bool: ...
    async def binding_exists(self, binding: Binding) -> bool | None: ...
    async def definitions(self) -> Mapping[str, Any] | None: ...
    async def declare_exchange(self, exchange: Exchange) -> None: ...
    async def declare_queue(self, queue: Queue) -> None: ...
    async def bind(self, binding: Binding) -> None: ...


# One operation the walk needs: a `DeclareOps` method's name and its arguments.
Step = tuple[str, tuple[Any, ...]]
T = TypeVar("T")
Walk = Generator[Step, Any, T]


def _drive(walk: Walk[T], ops: DeclareOps) -> T:
    """Run `walk` over blocking operations."""
    try:
        step = next(walk)
        while True:
            name, args = step
            try:
                answer = getattr(ops, name)(*args)
            except ChannelClosed as exc:
                step = walk.throw(exc)
            else:
                step = walk.send(answer)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def _drive_async(walk: Walk[T], ops: AsyncDeclareOps) -> T:
    """Run `walk` over awaitable operations."""
    try:
        step = next(walk)
        while True:
            name, args = step
            try:
                answer = await getattr(ops, name)(*args)
            except ChannelClosed as exc:
                step = walk.throw(exc)
            else:
                step = walk.send(answer)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


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


def _known_differences(topology: Topology, definitions: Any) -> dict[str, list[str]]:
    """Every setting the broker has otherwise, by entity label, as `routing diff` finds them.

    RabbitMQ's redeclare names one difference per refusal (the channel closes at the first)
    and lets some pass: a queue declared without `x-queue-type` is taken for the quorum queue
    the broker has (checked on 3.10.8 and 4.0.5). Where definitions can be read, the
    comparison is diff's, so declare and diff agree.
    """
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
    return _drive(_declare_walk(topology), ops)


async def declare_topology_async(topology: Topology, ops: AsyncDeclareOps) -> DeclareReport:
    """`declare_topology` over awaitable operations: the same walk, the same report."""
    return await _drive_async(_declare_walk(topology), ops)


def _declare_walk(topology: Topology) -> Walk[DeclareReport]:
    created: list[str] = []
    unchanged: list[str] = []
    unverified: list[str] = []
    conflicts: list[str] = []
    skipped: list[str] = []
    refused: set[tuple[str, str]] = set()
    fresh: set[tuple[str, str]] = set()
    differing = _known_differences(topology, (yield ("definitions", ())))

    items: list[tuple[str, Exchange | Queue]] = [("exchange", ex) for ex in topology.exchanges]
    items += [("queue", q) for q in topology.queues]
    for kind, item in items:
        known = differing.get(label(item))
        if known:
            conflicts.extend(known)
            refused.add((kind, item.name))
            continue
        try:
            existed = yield (f"{kind}_exists", (item.name,))
            yield _declare_step(item)
        except ChannelClosed as exc:
            conflicts.append(conflict_line(item, exc))
            refused.add((kind, item.name))
            continue
        if existed:
            unchanged.append(label(item))
        else:
            created.append(label(item))
            fresh.add((kind, item.name))

    for b in topology.bindings:
        ends = {("exchange", b.source), (str(b.destination_type), b.destination)}
        if ends & refused:
            # Bound to something the broker has with other settings: fix that first.
            blocked = ", ".join(f"{k} {n!r}" for k, n in sorted(ends & refused))
            skipped.append(f"{label(b)}: not declared, {blocked} differs from the broker's")
            continue
        # A binding to something just created is new; otherwise ask, before binding.
        bound_existed = False if ends & fresh else (yield ("binding_exists", (b,)))
        try:
            yield _declare_step(b)
        except ChannelClosed as exc:
            conflicts.append(conflict_line(b, exc))
            continue
        if bound_existed:
            unchanged.append(label(b))
        elif bound_existed is None:
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
    return _drive(_redeclare_walk([*exchanges, *queues, *bindings]), ops)


async def redeclare_async(
    exchanges: Iterable[Exchange], queues: Iterable[Queue], bindings: Iterable[Binding], ops: AsyncDeclareOps
) -> list[str]:
    """`redeclare` over awaitable operations."""
    return await _drive_async(_redeclare_walk([*exchanges, *queues, *bindings]), ops)


def _redeclare_walk(items: list[Exchange | Queue | Binding]) -> Walk[list[str]]:
    problems = []
    for item in items:
        try:
            yield _declare_step(item)
        except ChannelClosed as exc:
            problems.append(conflict_line(item, exc))
    return problems


def _declare_step(item: Exchange | Queue | Binding) -> Step:
    if isinstance(item, Exchange):
        return ("declare_exchange", (item,))
    if isinstance(item, Queue):
        return ("declare_queue", (item,))
    return ("bind", (item,))
