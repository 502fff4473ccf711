"""What the worker does with one delivery, without doing it: `steps()` yields the effects
(call the handler, publish a copy and wait for its confirm, ack, nack, reject, declare a
queue again) and is sent their results. The blocking `Worker` and the asyncio worker
drive it with their own I/O, so every decision is made here once.

    plan = steps(delivery, app=app, queues=queues, dead_letters_to_queue=True)
    effect = next(plan)
    while True:
        result = perform(effect)          # the driver's I/O; see each effect for what to send
        effect = plan.send(result)        # StopIteration.value: the `Settled` for the stats

Nothing is lost on the way: an original is acked only after its handler returned or once
the broker confirmed its copy; a copy not taken leaves it in the queue (`CopyRefused`).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from loguru import logger

from routing.envelope import Envelope, Rejection, decode_or_reject
from routing.errors import BrokerError, ConnectionLost, RoutingError
from routing.properties import Properties
from routing.topology import Topology
from routing.transport.base import Delivery, Outcome, Publication
from routing.worker._handlers import Handlers, Registration
from routing.worker.failures import Failure, attempts, failure_copy, message_id
from routing.worker.queues import WorkQueues

__all__ = [
    "Ack",
    "CallHandler",
    "CopyRefused",
    "Effect",
    "Nack",
    "PublishCopy",
    "Redeclare",
    "Reject",
    "Settled",
    "Steps",
    "steps",
]


class CopyRefused(BrokerError):
    """The broker did not take a retry or dead-letter copy: the original stays in the queue
    and the worker stops, rather than lose it or take it again and again."""


class Settled(enum.Enum):
    """How one delivery ended, for the worker's stats."""

    PROCESSED = "processed"  # handler returned, acked
    RETRIED = "retried"  # a confirmed copy waits in a retry queue, original acked
    DEAD_LETTERED = "dead_lettered"  # a confirmed copy in QUEUE.dead (or rejected to it)
    AGAIN = "again"  # the connection went before the copy's confirm: it comes again


@dataclass(frozen=True, slots=True)
class CallHandler:
    """Run `registration.function(event)`; send back None when it returned, or the
    `Exception` it raised."""

    registration: Registration
    event: Envelope


@dataclass(frozen=True, slots=True)
class PublishCopy:
    """Publish to the default exchange, key `queue`, with `mandatory`, and wait for the
    broker's answer; send back the settled `Publication`, or the `RoutingError` publishing
    raised (it is then not confirmed, with the reason)."""

    queue: str
    body: bytes
    properties: Properties


@dataclass(frozen=True, slots=True)
class Ack:
    """Ack `delivery`; send back None. `handled`: its handler returned (the blocking worker
    may batch these into one `multiple` ack); otherwise its copy was confirmed, ack it now."""

    delivery: Delivery
    handled: bool = False


@dataclass(frozen=True, slots=True)
class Nack:
    """Nack `delivery` with requeue (it stays in the queue); send back None."""

    delivery: Delivery


@dataclass(frozen=True, slots=True)
class Reject:
    """Reject `delivery` without requeue (the work queue dead-letters it); send back None."""

    delivery: Delivery


@dataclass(frozen=True, slots=True)
class Redeclare:
    """Declare `topology` (one of the worker's own queues) again; send back None, or the
    `RoutingError` the broker answered."""

    topology: Topology


Effect = CallHandler | PublishCopy | Ack | Nack | Reject | Redeclare
Steps = Generator[Effect, Any, Settled]


def _refused(queue: str, exc: RoutingError) -> Publication:
    """The publication of a copy the transport would not send (it cannot encode it): not
    confirmed, with the reason."""
    error = exc if isinstance(exc, BrokerError) else BrokerError(f"refused before sending: {exc}")
    return Publication("", queue, 0, Outcome.UNCONFIRMED, error)


def steps(delivery: Delivery, *, app: Handlers, queues: WorkQueues, dead_letters_to_queue: bool) -> Steps:
    """One message: validate, dispatch, then ack, retry or dead-letter it.
    `dead_letters_to_queue`: the work queue is known to dead-letter to QUEUE.dead (it was
    declared from `app.topology(queue)`), so a reject cannot lose a message."""
    log = logger.bind(queue=queues.name)
    event = decode_or_reject(
        delivery.body,
        delivery.properties,
        registry=app.registry,
        event_type=app.event_type,
        max_bytes=app.max_bytes,
    )
    if isinstance(event, Rejection):
        failure = Failure("InvalidMessage", event.reason, path=event.path, permanent=True)
        return (yield from _dead_letter(delivery, failure, queues, dead_letters_to_queue))
    registration = app.registration_for(event.type)
    if registration is None:
        known = ", ".join(sorted(app.registrations)) or "none"
        reason = f"no handler for event type {event.type!r} (handled: {known})"
        failure = Failure("NoHandler", reason, permanent=True)
        return (yield from _dead_letter(delivery, failure, queues, dead_letters_to_queue))
    log = log.bind(id=event.id, type=event.type)
    started = time.monotonic()
    error = yield CallHandler(registration, event)
    if error is not None:  # the handler's failure is the message's, not the worker's
        failure = Failure.from_exception(error)
        delay = None if failure.permanent else registration.retry.delay_ms(attempts(delivery.properties) + 1)
        log.warning(
            "message {} ({}): handler failed ({}); {}",
            event.id,
            event.type,
            failure.reason,
            "giving up" if delay is None else f"retry in {delay} ms",
        )
        if delay is None:
            return (yield from _dead_letter(delivery, failure, queues, dead_letters_to_queue))
        settled = yield from _forward(delivery, failure, queues.retry(delay), queues, dead_letters_to_queue)
        return Settled.RETRIED if settled is Settled.PROCESSED else settled
    log.info(
        "message {} ({}) handled in {:.0f} ms", event.id, event.type, (time.monotonic() - started) * 1000
    )
    yield Ack(delivery, handled=True)
    return Settled.PROCESSED


def _dead_letter(
    delivery: Delivery, failure: Failure, queues: WorkQueues, dead_letters_to_queue: bool
) -> Steps:
    if failure.permanent:
        logger.bind(queue=queues.name, id=message_id(delivery)).warning(
            "message {}: dead-lettering it: {}", message_id(delivery), failure.reason
        )
    settled = yield from _forward(delivery, failure, queues.dead, queues, dead_letters_to_queue)
    return Settled.DEAD_LETTERED if settled is Settled.PROCESSED else settled


def _forward(
    delivery: Delivery, failure: Failure, queue: str, queues: WorkQueues, dead_letters_to_queue: bool
) -> Steps:
    """Publish the annotated copy to `queue` and ack the original once the broker confirmed
    the copy (PROCESSED here: the caller names it). A copy the broker did not take leaves
    the original where it is (requeued), never rejected to a queue that may not be there."""
    log = logger.bind(queue=queues.name, id=message_id(delivery))
    copy = failure_copy(delivery, failure)
    if copy.trimmed:
        log.warning("message {}: {}", message_id(delivery), copy.trimmed)
    if copy.properties is None and not dead_letters_to_queue:
        yield Nack(delivery)
        raise CopyRefused(
            f"message {message_id(delivery)}: {copy.why}, and {queues.name!r} was not declared "
            "by this worker (--no-declare), so a reject may lose it; the message stays in the queue; "
            "stopping the worker: declare the queue with the worker's topology, then start it again"
        )
    if copy.properties is None:
        # No copy can carry the failure (its own headers fill the frame). The work queue
        # dead-letters a rejected message to QUEUE.dead: make sure that queue is there.
        yield from _redeclare(queues.dead, queues)
        log.error(
            "message {}: {}; rejecting it: RabbitMQ dead-letters it to {!r} (reason 'rejected')",
            message_id(delivery),
            copy.why,
            queues.dead,
        )
        yield Reject(delivery)
        return Settled.DEAD_LETTERED  # meant for a retry or not, it is dead-lettered
    publication = yield from _publish(queue, delivery.body, copy.properties)
    if publication.outcome is Outcome.RETURNED and (yield from _redeclare(queue, queues)):
        log.warning("{!r} was missing (the copy came back); declared it again", queue)
        publication = yield from _publish(queue, delivery.body, copy.properties)
    if publication.outcome is Outcome.CONFIRMED:
        yield Ack(delivery)
        return Settled.PROCESSED
    if isinstance(publication.error, ConnectionLost):
        # The connection went: RabbitMQ has put the original back; it comes again.
        log.warning(
            "message {}: copy to {!r} not confirmed ({}); it will come again",
            message_id(delivery),
            queue,
            publication.error,
        )
        return Settled.AGAIN
    yield Nack(delivery)
    raise CopyRefused(
        f"message {message_id(delivery)}: the broker did not take its copy to {queue!r} "
        f"({publication.error or publication.outcome}); the message stays in {queues.name!r}; "
        "stopping the worker: fix the queue, then start it again"
    )


def _publish(queue: str, body: bytes, properties: Properties) -> Generator[Effect, Any, Publication]:
    answer = yield PublishCopy(queue, body, properties)
    return _refused(queue, answer) if isinstance(answer, RoutingError) else answer


def _redeclare(queue: str, queues: WorkQueues) -> Generator[Effect, Any, bool]:
    """Declare one of the worker's own queues again (an operator deleted it); False when
    `queue` is not one of them or the broker refused."""
    wanted = [q for q in queues.topology.queues if q.name == queue]
    if not wanted:
        return False
    error = yield Redeclare(Topology.of(*wanted))
    if error is not None:
        logger.bind(queue=queues.name).error("cannot declare {!r} again: {}", queue, error)
        return False
    return True
