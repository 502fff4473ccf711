"""What a RabbitMQ release will not take from a topology: warnings, or errors where it refuses.

`Topology.check(rabbitmq="4.0.5")` (or `check_topology`) looks at every queue against the
target's profile (`routing.profiles`): what the release deprecates is a warning, what it
refuses (by default) an error, each naming the entity, the release and what to use instead.
Pure: no broker needed; `routing declare` runs it for the version the broker announces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from routing._queue import Queue, QueueType
from routing.profiles import DEPRECATIONS, Profile, profile, release_of

__all__ = ["TargetWarning", "check_topology"]


@dataclass(frozen=True, slots=True)
class TargetWarning:
    """One thing the target release deprecates (`refused` False) or refuses (`refused` True)."""

    entity: str  # `queue 'jobs'`
    release: str  # the version checked against, as given: "4.0", "4.3.0"
    problem: str
    instead: str
    refused: bool = False
    verb: str = "deprecates"  # what the release does to it, when it does not refuse it

    def __str__(self) -> str:
        verdict = "refuses" if self.refused else self.verb
        return f"{self.entity}: RabbitMQ {self.release} {verdict} {self.problem}; use {self.instead}"


def _queue_findings(q: Queue) -> list[tuple[str, str]]:
    """(deprecation name, what the queue does) for each deprecated thing a queue uses."""
    found = []
    if not q.durable and not q.exclusive:
        found.append(("transient_nonexcl_queues", "a non-durable, non-exclusive queue"))
    if "x-queue-mode" in q.arguments:
        found.append(("queue_mode", f"x-queue-mode ({q.arguments['x-queue-mode']!r}; ignored since 3.12)"))
    if q.arguments.get("x-queue-version") == 1:
        found.append(("queue_version_1", "x-queue-version 1 (classic queue storage v1)"))
    if "x-queue-master-locator" in q.arguments:
        found.append(("queue_master_locator", "x-queue-master-locator"))
    return found


class _Queues(Protocol):
    """What is checked of a `Topology`: its queues (`Topology.check` calls in here)."""

    @property
    def queues(self) -> Sequence[Queue]: ...


def check_topology(topology: _Queues, *, rabbitmq: str | Profile | None = None) -> tuple[TargetWarning, ...]:
    """Every warning (and refusal) for `topology` on the release `rabbitmq` names."""
    target = profile(rabbitmq)
    shown = rabbitmq.name if isinstance(rabbitmq, Profile) else (rabbitmq or target.name)
    version = release_of(rabbitmq)
    out: list[TargetWarning] = []
    for q in topology.queues:
        entity = f"queue {q.name!r}"
        for name, what in _queue_findings(q):
            if name not in target.deprecations:
                continue
            d = DEPRECATIONS[name]
            refused = d.refused_in is not None and version >= release_of(d.refused_in)
            problem = what + ("" if refused else f" (refused from {d.refused_in} on)" if d.refused_in else "")
            out.append(TargetWarning(entity, str(shown), problem, d.instead, refused))
        limit = target.quorum_default_delivery_limit
        if q.type is QueueType.QUORUM and q.delivery_limit is None and limit is not None:
            out.append(
                TargetWarning(
                    entity,
                    str(shown),
                    f"a quorum queue without delivery_limit a limit of {limit} deliveries "
                    "(the next one is dead-lettered, or dropped)",
                    "an explicit delivery_limit (-1 for none)",
                    verb="gives",
                )
            )
        if q.delivery_limit == -1 and not target.quorum_delivery_limit_minus_one_is_none:
            out.append(
                TargetWarning(
                    entity,
                    str(shown),
                    "delivery_limit=-1 as 0: the first message given back is dead-lettered, or dropped",
                    "no delivery_limit on 3.10-3.12 (no limit there); -1 means none from 4.0 on",
                    verb="takes",
                )
            )
    return tuple(out)
