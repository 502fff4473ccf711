"""Static checks of a topology before it is deployed: what RabbitMQ would lose, refuse or do
unexpectedly, each a `Finding` with the entity, the problem and the fix.

    lint(topology, profile="4.0", publishers=[Publishes("shop.events", "order.created")], apps=[app])

What the topology cannot say by itself comes from what is sent into it: `Publishes` values
(an exchange, a routing key, headers, a per-message TTL) and the `App`s whose workers run on
its queues (a worker sends its retry and dead-letter copies through the default exchange, to
the queues `App.topology(queue)` declares). A queue bound by a key that a direct or topic
binding fixes gets that key whoever sends it, and its dead letters keep it. An `error` is a message RabbitMQ loses without a
word, or a declaration the release refuses; a `warning` is what may be meant but often is not.

Routing is `routing.pipeline.route()`; whether a dead-letter cycle drops a message is the
embedded broker's rule (`dead_lettering.dropped_as_cycle`), applied to the `x-death` the
release would write (`dead_letter_properties`). Pure: no broker, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from routing._lint_flow import Arrival, Flow, effective_delivery_limit
from routing.errors import InternalExchange, TopologyError, UnknownExchange
from routing.operations import Publishes
from routing.pipeline import route
from routing.profiles import Profile
from routing.profiles import profile as _profile
from routing.targets import check_topology
from routing.topology import Overflow, QueueType, Topology
from routing.worker._handlers import Handlers

__all__ = ["AppQueue", "Finding", "Severity", "effective_delivery_limit", "lint"]


class Severity(StrEnum):
    ERROR = "error"  # `routing lint` exits 1
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: `error: queue 'jobs': <problem>; fix: <fix>` on one line."""

    severity: Severity
    entity: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.entity}: {self.problem}; fix: {self.fix}"


AppQueue = tuple[Handlers, str]
"""An App (or its `Handlers`) and the queue its worker runs on."""


def lint(
    topology: Topology,
    *,
    profile: str | Profile | None = None,
    publishers: Iterable[Publishes] = (),
    apps: Iterable[Handlers | AppQueue] = (),
    consumer_timeout_ms: int | None = None,
) -> tuple[Finding, ...]:
    """Every finding for `topology` on `profile`'s release, errors first. An app given with
    its queue adds `app.topology(queue)`; one given alone runs on each queue of the topology
    that has its retry and dead-letter queues. `consumer_timeout_ms` is the broker's
    `consumer_timeout` (default the release's)."""
    target = _profile(profile)
    workers = _workers(topology, apps)
    out: list[Finding] = []
    for app, queue in list(workers):
        try:
            topology = topology + app.topology(queue)
        except TopologyError as exc:
            workers.remove((app, queue))
            out.append(
                _error(
                    f"queue {queue!r}",
                    f"its worker declares its queues otherwise, and RabbitMQ refuses that (406): {exc}",
                    "put app.topology(queue) in the topology instead of declaring these queues by hand",
                )
            )
    publishers = tuple(publishers)
    flow = Flow(topology, target)
    out += _publisher_findings(topology, target, publishers, flow)
    _worker_arrivals(topology, target, workers, flow)
    flow.settle()
    out += [_error(*found) for found in (*flow.dropping_cycles(), *flow.unroutable_dead_letters())]
    out += _unreached_queues(topology, flow)
    out += _exchanges_without_bindings(topology)
    out += _delivery_limits_without_dead_letters(topology, target)
    timeout = target.consumer_timeout_ms if consumer_timeout_ms is None else consumer_timeout_ms
    out += _retries_past_consumer_timeout(workers, timeout)
    out += _mixed_ttls(topology, flow)
    out += _at_least_once_without_reject_publish(topology, flow)
    out += _release_findings(topology, profile if profile is not None else target)
    return tuple(sorted(out, key=lambda f: f.severity is not Severity.ERROR))


def _workers(topology: Topology, apps: Iterable[Handlers | AppQueue]) -> list[AppQueue]:
    workers: list[AppQueue] = []
    names = {q.name for q in topology.queues}
    for item in apps:
        if isinstance(item, tuple):
            workers.append(item)
            continue
        for q in topology.queues:
            if all(x.name in names for x in item.topology(q.name).queues):
                workers.append((item, q.name))
    return workers


def _publisher_findings(
    topology: Topology, target: Profile, publishers: tuple[Publishes, ...], flow: Flow
) -> list[Finding]:
    out = []
    for p in publishers:
        fix_exchange = "declare the exchange in the topology, or publish to one it has"
        try:
            reached = route(topology, p.exchange, p.routing_key, p.headers, rabbitmq=target)
        except UnknownExchange:
            out.append(_error(p.label, f"exchange {p.exchange!r} is not in the topology", fix_exchange))
            continue
        except InternalExchange:
            out.append(
                _error(
                    p.label,
                    f"exchange {p.exchange!r} is internal: RabbitMQ refuses a client's publish (403)",
                    "publish to an exchange bound to it",
                )
            )
            continue
        if not reached:
            out.append(
                _error(
                    p.label,
                    "its messages reach no queue: RabbitMQ drops them (returns them if mandatory)",
                    "bind a queue for this key, or give the exchange an alternate_exchange",
                )
            )
        for name in reached:
            flow.arrive(name, Arrival(p.routing_key, p.headers, p.expiration))
    return out


def _worker_arrivals(topology: Topology, target: Profile, workers: list[AppQueue], flow: Flow) -> None:
    """A worker sends each retry and dead-letter copy to the default exchange, keyed by the
    queue's name, with no per-message TTL (`failure_copy`)."""
    for app, queue in workers:
        queues = app.queues(queue)
        for name in (*(queues.retry(d) for d in queues.delays_ms), queues.dead):
            for reached in route(topology, "", name, rabbitmq=target):
                flow.arrive(reached, Arrival(name, None, None))


def _unreached_queues(topology: Topology, flow: Flow) -> list[Finding]:
    bound = {b.destination for b in topology.bindings if b.destination_type == "queue"}
    return [
        _warning(
            f"queue {q.name!r}",
            "nothing routes to it: no binding, and no known publisher, worker or dead-letter "
            "exchange sends to it by name",
            "bind it to an exchange, declare the publisher that sends to it (Publishes), or remove it",
        )
        for q in topology.queues
        if q.name not in bound and not flow.arrivals(q.name)
    ]


def _exchanges_without_bindings(topology: Topology) -> list[Finding]:
    return [
        _warning(
            f"exchange {e.name!r}",
            "has no bindings and no alternate exchange: every message published to it is dropped",
            "bind a queue (or an exchange) to it, or set alternate_exchange",
        )
        for e in topology.exchanges
        if e.alternate_exchange is None and not topology.bindings_from(e.name)
    ]


def _delivery_limits_without_dead_letters(topology: Topology, target: Profile) -> list[Finding]:
    out = []
    for q in topology.queues:
        limit = effective_delivery_limit(q, target)
        if limit is None or q.dead_letter_exchange is not None:
            continue
        given = f"delivery_limit={q.delivery_limit}" if q.delivery_limit is not None else "none given"
        out.append(
            _warning(
                f"queue {q.name!r}",
                f"a quorum queue with a delivery limit of {limit} on RabbitMQ {target.name} ({given}) "
                f"and no dead_letter_exchange: a message given back {limit + 1} times is dropped",
                "set dead_letter_exchange (and a queue to keep them), or delivery_limit=-1 on 4.0 for no limit",
            )
        )
    return out


def _retries_past_consumer_timeout(workers: list[AppQueue], timeout_ms: int) -> list[Finding]:
    out = []
    for app, queue in workers:
        queues = app.queues(queue)
        for delay in queues.delays_ms:
            if delay > timeout_ms:
                out.append(
                    _warning(
                        f"queue {queues.retry(delay)!r}",
                        f"a retry delay of {delay} ms is longer than consumer_timeout ({timeout_ms} ms): "
                        "harmless while it waits in this retry queue, which has no consumer, but a "
                        "consumer that holds a message that long unacked has its channel closed",
                        "keep the delay in the retry queue (never sleep in a handler), or raise "
                        "consumer_timeout (rabbitmq.conf) above it and pass --consumer-timeout",
                    )
                )
    return out


def _mixed_ttls(topology: Topology, flow: Flow) -> list[Finding]:
    out = []
    for q in topology.queues:
        arrivals = flow.arrivals(q.name)
        if not any(a.expiration is not None for a in arrivals):
            continue
        ttls = {_min_ttl(q.message_ttl, a.expiration) for a in arrivals}
        if len(ttls) < 2:
            continue
        shown = ", ".join("none" if t is None else f"{t} ms" for t in sorted(ttls, key=_ttl_order))
        out.append(
            _warning(
                f"queue {q.name!r}",
                f"gets messages that expire after {shown}: RabbitMQ expires a message only at the "
                "head of the queue, so a shorter TTL waits behind a longer one",
                "one TTL per queue: a queue per delay (message_ttl), as the worker's retry queues do",
            )
        )
    return out


def _min_ttl(queue_ttl: int | None, expiration: int | None) -> int | None:
    given = [t for t in (queue_ttl, expiration) if t is not None]
    return min(given) if given else None


def _ttl_order(ttl: int | None) -> float:
    return float("inf") if ttl is None else ttl


def _at_least_once_without_reject_publish(topology: Topology, flow: Flow) -> list[Finding]:
    out = []
    for q in topology.queues:
        if q.type is not QueueType.QUORUM or q.dead_letter_exchange is None:
            continue
        if (
            q.arguments.get("x-dead-letter-strategy") != "at-least-once"
            or q.overflow is Overflow.REJECT_PUBLISH
        ):
            continue
        ttl = q.message_ttl is not None or any(a.expiration is not None for a in flow.arrivals(q.name))
        what = "expired messages are" if ttl else "dead letters are"
        out.append(
            _error(
                f"queue {q.name!r}",
                f"x-dead-letter-strategy at-least-once without overflow reject-publish "
                f"({q.overflow or 'drop-head'}): RabbitMQ falls back to at-most-once, so {what} "
                "lost when the dead-letter target is not there to confirm them",
                "overflow=Overflow.REJECT_PUBLISH (as WorkQueues(quorum=True) declares)",
            )
        )
    return out


def _release_findings(topology: Topology, target: str | Profile) -> list[Finding]:
    return [
        Finding(
            Severity.ERROR if w.refused else Severity.WARNING,
            w.entity,
            f"RabbitMQ {w.release} {'refuses' if w.refused else w.verb} {w.problem}",
            f"use {w.instead}",
        )
        for w in check_topology(topology, rabbitmq=target)
    ]


def _error(entity: str, problem: str, fix: str) -> Finding:
    return Finding(Severity.ERROR, entity, problem, fix)


def _warning(entity: str, problem: str, fix: str) -> Finding:
    return Finding(Severity.WARNING, entity, problem, fix)
