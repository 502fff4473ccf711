"""The queues a work queue needs around it: one retry queue per delay, and a dead-letter queue.

    producer -> exchange -> NAME --(handler fails)--> NAME.retry.<delay>ms --(TTL)--> NAME
                             |                                      (via the default exchange)
                             +--(last attempt, invalid, no handler)--> NAME.dead

Retry queues have no consumer: each holds messages for its `x-message-ttl`, then RabbitMQ
dead-letters them through the default exchange back to NAME. The work queue dead-letters
to NAME.dead too, so a message the worker rejects outright (it could not publish the
annotated copy) still ends there. All are durable: a wait survives a broker restart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from routing.errors import BrokerError, DeclareConflicts
from routing.topology import DEFAULT_EXCHANGE, Overflow, Queue, QueueType, Topology
from routing.transport.base import DeclareReport

if TYPE_CHECKING:
    from routing.transport.base import Transport

__all__ = ["WorkQueues", "declare_work_queues"]


@dataclass(frozen=True, slots=True)
class WorkQueues:
    """The names and topology around work queue `name`. `quorum` makes every one of them a
    quorum queue (replicated on a cluster)."""

    name: str
    delays_ms: tuple[int, ...] = ()
    quorum: bool = False

    @classmethod
    def for_delays(cls, name: str, delays_ms: Iterable[int], *, quorum: bool = False) -> WorkQueues:
        return cls(name, tuple(sorted(set(delays_ms))), quorum)

    @property
    def dead(self) -> str:
        return f"{self.name}.dead"

    def retry(self, delay_ms: int) -> str:
        """The queue that holds a retry for `delay_ms` before it goes back to work."""
        return f"{self.name}.retry.{delay_ms}ms"

    @property
    def topology(self) -> Topology:
        kind = QueueType.QUORUM if self.quorum else QueueType.CLASSIC
        # A retry comes back by dead-lettering, which quorum queues do at most once unless
        # asked: a retried job vanished while a cluster node rejoined. At-least-once
        # dead-lettering needs overflow reject-publish (RabbitMQ 3.10+).
        safe: dict[str, Any] = (
            {"overflow": Overflow.REJECT_PUBLISH, "arguments": {"x-dead-letter-strategy": "at-least-once"}}
            if self.quorum
            else {}
        )
        work = Queue(
            self.name,
            type=kind,
            dead_letter_exchange=DEFAULT_EXCHANGE,
            dead_letter_routing_key=self.dead,
            **safe,
        )
        retries = (
            Queue(
                self.retry(delay),
                type=kind,
                message_ttl=delay,
                dead_letter_exchange=DEFAULT_EXCHANGE,
                dead_letter_routing_key=self.name,
                **safe,
            )
            for delay in self.delays_ms
        )
        return Topology.of(work, Queue(self.dead, type=kind), *retries)


def declare_work_queues(transport: Transport, queues: WorkQueues) -> DeclareReport:
    """Declare the work queue first, then its retry and dead-letter queues. When the broker
    has any of them with other settings, nothing this call created is left behind: an
    existing `tasks` queue of another kind must not gain a `tasks.dead` beside it."""
    every = queues.topology.queues
    work = next(q for q in every if q.name == queues.name)
    others = [q for q in every if q is not work]
    created: list[str] = []
    try:
        first = transport.declare(Topology.of(work))
        created += first.created
        rest = transport.declare(Topology.of(*others))
    except DeclareConflicts as exc:
        created += getattr(exc.report, "created", ())
        for queue in every:
            if f"queue {queue.name!r}" in created:
                with contextlib.suppress(BrokerError):
                    transport.delete_queue(queue.name)
        raise
    return DeclareReport(
        created=(*first.created, *rest.created),
        unchanged=(*first.unchanged, *rest.unchanged),
        unverified=(*first.unverified, *rest.unverified),
    )
