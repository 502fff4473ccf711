"""Read a dead-letter queue, and put dead letters back to work once the cause is fixed.

Both take messages with `basic.get` and hold them unacked while they work, so each message
is seen once; what is not taken (or not confirmed) goes back to the queue in its place.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from loguru import logger

from routing import _telemetry
from routing.transport import Delivery, Outcome, Transport
from routing.worker.failures import DeadLetterRecord, for_replay

__all__ = ["Replayed", "peek", "peek_counted", "replay"]


def peek(transport: Transport, queue: str, *, limit: int | None = None) -> list[DeadLetterRecord]:
    """Up to `limit` dead letters from `queue`, oldest first; the queue keeps them all. Prints
    nothing: `routing dlq show` prints what this returns."""
    return peek_counted(transport, queue, limit=limit)[0]


def peek_counted(
    transport: Transport, queue: str, *, limit: int | None = None
) -> tuple[list[DeadLetterRecord], int]:
    """`peek`, and how many dead letters `queue` holds in all (ready ones)."""
    taken = _take(transport, queue, limit)
    try:
        letters = [DeadLetterRecord.from_delivery(d) for d in taken]
        total = len(taken)
        if limit is not None and len(taken) == limit:
            # What is taken is unacked: the queue's ready count is the rest.
            total += transport.message_count(queue)
        return letters, total
    finally:
        _put_back(transport, taken)


@dataclass(frozen=True, slots=True)
class Replayed:
    replayed: tuple[DeadLetterRecord, ...]  # published to their original exchange, confirmed, removed
    failed: tuple[tuple[DeadLetterRecord, str], ...]  # not confirmed there: still in the queue, and why
    missing: tuple[str, ...]  # ids asked for that the queue does not have


def replay(transport: Transport, queue: str, *, ids: Collection[str] | None = None) -> Replayed:
    """Publish dead letters (all, or those with the given `ids`) to the exchange and routing
    key they were first published with, as new messages (attempt count reset). Each is
    removed from `queue` only once the broker confirmed its copy."""
    taken = _take(transport, queue, None)
    chosen: list[tuple[Delivery, DeadLetterRecord]] = []
    keep: list[Delivery] = []
    failed: list[tuple[DeadLetterRecord, str]] = []
    found: set[str] = set()
    for delivery in taken:
        letter = DeadLetterRecord.from_delivery(delivery)
        if ids is not None and letter.id not in ids:
            keep.append(delivery)
            continue
        found.add(letter.id)
        if _into_itself(letter, queue):
            keep.append(delivery)
            failed.append((letter, _NO_ORIGIN.format(queue=queue)))  # the caller says so
        else:
            chosen.append((delivery, letter))
    try:
        send = _telemetry.publish(transport.publish, transport, replay=True)
        publications = [
            send(letter.exchange, letter.routing_key, d.body, for_replay(d.properties), mandatory=True)
            for d, letter in chosen
        ]
        transport.flush()
    except BaseException:
        _put_back(transport, taken)
        raise
    done = []
    for (delivery, letter), publication in zip(chosen, publications, strict=True):
        if publication.outcome is Outcome.CONFIRMED:
            transport.ack(delivery)
            done.append(letter)
        else:
            keep.append(delivery)
            failed.append((letter, str(publication.error or publication.outcome)))
            logger.bind(queue=queue, id=letter.id).error("replay not confirmed: {}", publication.error)
    _put_back(transport, keep)
    missing = tuple(i for i in ids or () if i not in found)
    return Replayed(tuple(done), tuple(failed), missing)


_NO_ORIGIN = (
    "no record of where it was first published (no x-routing-* headers, no x-death): "
    "replaying it would put it back into {queue!r}"
)


def _into_itself(letter: DeadLetterRecord, queue: str) -> bool:
    """Would the replay go straight back into the dead-letter queue it is read from? A
    message published to it directly carries no origin but that queue."""
    return letter.queue == queue or (letter.exchange == "" and letter.routing_key == queue)


def _take(transport: Transport, queue: str, limit: int | None) -> list[Delivery]:
    taken: list[Delivery] = []
    while limit is None or len(taken) < limit:
        delivery = transport.get(queue)
        if delivery is None:
            break
        taken.append(delivery)
    return taken


def _put_back(transport: Transport, deliveries: list[Delivery]) -> None:
    # Requeued messages keep their place in the queue (RabbitMQ, and the embedded broker).
    for delivery in reversed(deliveries):
        transport.nack(delivery, requeue=True)
