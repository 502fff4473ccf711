"""Declaring a topology on RabbitMQ: what exists, what to create, and every conflict.

AMQP 0-9-1 can ask whether an exchange or queue exists (a passive declare) but not
whether a binding does, so bindings are looked up in the management API when it answers;
when it does not, re-declared bindings between entities that already existed are reported
as `unverified`, never as created. The transport supplies the channel operations (`Ops`);
everything here is free of pika.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from loguru import logger

from routing._frozen import thaw
from routing.diff import as_management_shows, diff_topology
from routing.errors import BrokerError, ChannelClosed
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport.base import DeclareReport
from routing.transport.rabbitmq._management import Management
from routing.transport.rabbitmq._url import Endpoint
from routing.urls import redact


class Ops(Protocol):
    """Channel operations; each raises `routing.errors.ChannelClosed` when the broker refuses."""

    def exchange_exists(self, name: str) -> bool: ...
    def declare_exchange(self, exchange: Exchange) -> None: ...
    def queue_exists(self, name: str) -> bool: ...
    def declare_queue(self, queue: Queue) -> None: ...
    def bind(self, binding: Binding) -> None: ...


def label(entity: Exchange | Queue | Binding) -> str:
    if isinstance(entity, Exchange):
        return f"exchange {entity.name!r}"
    if isinstance(entity, Queue):
        return f"queue {entity.name!r}"
    return f"binding {entity.describe()}"


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


def _binding_key(
    destination_type: str, destination: str, routing_key: str, arguments: Any
) -> tuple[str, ...]:
    args = as_management_shows(thaw(arguments or {}))
    return (destination_type, destination, routing_key, json.dumps(args, sort_keys=True))


class ManagementBindings:
    """Existing bindings by source exchange, read through the management API; None when it
    cannot be asked (plugin off, unreachable, no permission, no http(s) URL for it)."""

    def __init__(self, endpoint: Endpoint, timeout: float = 3.0) -> None:
        self._endpoint = endpoint
        self._timeout = timeout
        self._api: Management | None = None
        self._cache: dict[str, set[tuple[str, ...]]] = {}
        self._down = False

    def existing(self, source: str) -> set[tuple[str, ...]] | None:
        if self._down:
            return None
        if source not in self._cache:
            rows = self._ask(lambda api: api.bindings_from(source))
            if rows is None:
                return None
            self._cache[source] = {
                _binding_key(r["destination_type"], r["destination"], r["routing_key"], r.get("arguments"))
                for r in rows
            }
        return self._cache[source]

    @property
    def vhost(self) -> str:
        return self._endpoint.vhost

    def definitions(self) -> Any:
        """The vhost's definitions (`GET /api/definitions/{vhost}`), or None when not answered."""
        return self._ask(lambda api: api.definitions())

    def _ask(self, read: Callable[[Management], Any]) -> Any:
        """`read(api)`, or None from now on once the API has not answered."""
        if self._down:
            return None
        try:
            if self._api is None:
                self._api = Management.for_endpoint(self._endpoint, timeout=self._timeout)
            answer = read(self._api)
        except BrokerError as exc:
            answer, reason = None, str(exc)
        else:
            reason = "not found"
        if answer is None:
            logger.bind(url=redact(self._endpoint.management_url)).info(
                "management API not usable for declare: {}", reason
            )
            self._down = True
        return answer


def _known_differences(topology: Topology, bindings: ManagementBindings | None) -> dict[str, list[str]]:
    """Every setting the broker has otherwise, by entity label, as `routing diff` finds them.

    RabbitMQ's redeclare names one difference per refusal (the channel closes at the first)
    and lets some pass: a queue declared without `x-queue-type` is taken for the quorum queue
    the broker has (checked on 3.10.8 and 4.0.5). Where the management API answers, the
    comparison is diff's, so declare and diff agree.
    """
    definitions = bindings.definitions() if bindings is not None else None
    if not isinstance(definitions, dict):
        return {}
    found: dict[str, list[str]] = {}
    for d in diff_topology(topology, definitions, vhost=bindings.vhost if bindings else "/").differ:
        found.setdefault(d.entity, []).append(d.describe())
    return found


def declare_topology(topology: Topology, ops: Ops, bindings: ManagementBindings | None) -> DeclareReport:
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
    differing = _known_differences(topology, bindings)

    def entity(kind: str, item: Exchange | Queue, exists: Any, declare: Any) -> None:
        known = differing.get(label(item))
        if known:
            conflicts.extend(known)
            refused.add((kind, item.name))
            return
        try:
            existed = exists(item.name)
            declare(item)
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
        entity("exchange", ex, ops.exchange_exists, ops.declare_exchange)
    for q in topology.queues:
        entity("queue", q, ops.queue_exists, ops.declare_queue)
    for b in topology.bindings:
        ends = {("exchange", b.source), (str(b.destination_type), b.destination)}
        if ends & refused:
            # Bound to something the broker has with other settings: fix that first.
            blocked = ", ".join(f"{k} {n!r}" for k, n in sorted(ends & refused))
            skipped.append(f"{label(b)}: not declared, {blocked} differs from the broker's")
            continue
        known = None if ends & fresh or bindings is None else bindings.existing(b.source)
        existed = (
            known is not None
            and _binding_key(str(b.destination_type), b.destination, b.routing_key, b.arguments) in known
        )
        try:
            ops.bind(b)
        except ChannelClosed as exc:
            conflicts.append(conflict_line(b, exc))
            continue
        if existed:
            unchanged.append(label(b))
        elif known is None and not ends & fresh:
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
    exchanges: Iterable[Exchange], queues: Iterable[Queue], bindings: Iterable[Binding], ops: Ops
) -> list[str]:
    """Declare again after a reconnect, without existence checks; returns conflict lines."""
    problems = []
    items: list[Exchange | Queue | Binding] = [*exchanges, *queues, *bindings]
    for item in items:
        try:
            if isinstance(item, Exchange):
                ops.declare_exchange(item)
            elif isinstance(item, Queue):
                ops.declare_queue(item)
            else:
                ops.bind(item)
        except ChannelClosed as exc:
            problems.append(conflict_line(item, exc))
    return problems


class ChannelOps:
    """`Ops` over a pika-like channel. `run(what, call)` calls `call(channel)` on a live
    channel and turns a refusal into `ChannelClosed` (the transport reopens the channel)."""

    def __init__(self, run: Callable[[str, Callable[[Any], Any]], Any]) -> None:
        self._run = run

    def _exists(self, what: str, call: Callable[[Any], Any]) -> bool:
        try:
            self._run(what, call)
        except ChannelClosed as exc:
            if exc.code == 404:  # a passive declare of something missing
                return False
            raise
        return True

    def exchange_exists(self, name: str) -> bool:
        return self._exists(f"check exchange {name!r}", lambda ch: ch.exchange_declare(name, passive=True))

    def queue_exists(self, name: str) -> bool:
        return self._exists(f"check queue {name!r}", lambda ch: ch.queue_declare(name, passive=True))

    def declare_exchange(self, e: Exchange) -> None:
        self._run(
            f"declare exchange {e.name!r}",
            lambda ch: ch.exchange_declare(
                e.name,
                str(e.type),
                durable=e.durable,
                auto_delete=e.auto_delete,
                internal=e.internal,
                arguments=e.declare_arguments or None,
            ),
        )

    def declare_queue(self, q: Queue) -> None:
        self._run(
            f"declare queue {q.name!r}",
            lambda ch: ch.queue_declare(
                q.name,
                durable=q.durable,
                exclusive=q.exclusive,
                auto_delete=q.auto_delete,
                arguments=q.declare_arguments or None,
            ),
        )

    def bind(self, b: Binding) -> None:
        args = thaw(b.arguments) or None
        if b.destination_type == "exchange":
            call = lambda ch: ch.exchange_bind(b.destination, b.source, b.routing_key, arguments=args)  # noqa: E731
        else:
            call = lambda ch: ch.queue_bind(b.destination, b.source, b.routing_key, arguments=args)  # noqa: E731
        self._run(f"bind {b.describe()}", call)
