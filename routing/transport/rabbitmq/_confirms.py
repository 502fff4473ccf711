"""Publisher-confirm bookkeeping, free of I/O: which publications are in flight, and their fate.

The broker numbers a confirm-mode channel's publishes 1, 2, 3... and answers with
`basic.ack`/`basic.nack` carrying the highest number and `multiple`. A `basic.return`
carries no number: it comes before the ack of the message it returns (RabbitMQ's channel
sends the return, then the confirm), so returns wait in arrival order and are matched when
the ack that covers them arrives, by exchange, routing key and body.

Both transports track with it: the blocking one with plain `Publication`s, the asyncio one
with `AsyncPublication`s (`publication_type`), whose `settle()` is called whenever one
settles, so whoever awaits it wakes.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from routing.errors import BrokerError, ConnectionLost, Nacked, Unroutable
from routing.transport.base import Outcome, Publication


@dataclass(slots=True)
class Pending:
    """An unconfirmed publication and what is needed to match a return or send it again."""

    publication: Publication
    body: bytes
    properties: Any
    mandatory: bool


@dataclass(frozen=True, slots=True)
class Returned:
    exchange: str
    routing_key: str
    body: bytes
    reply_code: int
    reply_text: str


class ConfirmTracker:
    """Publications awaiting confirms on one channel, and those that failed since the last
    `take_failures()`. The window bounds how many may be in flight."""

    def __init__(self, window: int = 1000, publication_type: type[Publication] = Publication) -> None:
        if window < 1:
            raise ValueError("the confirm window must be at least 1")
        self.window = window
        self._type = publication_type
        # Called with each publication as it settles: a type's own `settle` (AsyncPublication's
        # wakes its waiter); None for plain publications, which nobody awaits.
        self._on_settle: Callable[[Any], None] | None = getattr(publication_type, "settle", None)
        self._next = 1
        self._pending: OrderedDict[int, Pending] = OrderedDict()
        self._returns: deque[Returned] = deque()
        self._failures: list[Publication] = []
        self.confirmed = 0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.window

    def restart(self) -> None:
        """A new channel numbers its publishes from 1 again."""
        self._next = 1
        self._returns.clear()

    def sent(
        self, exchange: str, routing_key: str, body: bytes, properties: Any, mandatory: bool
    ) -> Publication:
        """Record a publish just written to the channel, under the channel's next number."""
        publication = self._type(exchange, routing_key, self._next)
        self._pending[self._next] = Pending(publication, body, properties, mandatory)
        self._next += 1
        return publication

    def resent(self, pending: Pending) -> None:
        """Track a publication again under the new channel's next number."""
        pending.publication.sequence = self._next
        pending.publication.outcome = None
        self._pending[self._next] = pending
        self._next += 1

    def on_return(self, returned: Returned) -> None:
        self._returns.append(returned)

    def on_ack(self, tag: int, multiple: bool) -> None:
        for pending in self._covered(tag, multiple):
            self._settle(pending, Outcome.RETURNED if self._take_return(pending) else Outcome.CONFIRMED)

    def on_nack(self, tag: int, multiple: bool) -> None:
        for pending in self._covered(tag, multiple):
            self._take_return(pending)
            self._settle(pending, Outcome.NACKED)

    def lose_all(self, error: BrokerError | None = None) -> list[Pending]:
        """The channel or connection is gone: every unanswered publication is UNCONFIRMED.
        Returns them, in order, for a caller that wants to send them again instead."""
        lost = list(self._pending.values())
        self._pending.clear()
        self._returns.clear()
        self.lose(lost, error)
        return lost

    def lose(self, lost: list[Pending], error: BrokerError | None = None) -> None:
        """Settle publications that will never be sent again (nor confirmed) as UNCONFIRMED."""
        on_settle = self._on_settle
        for pending in lost:
            pending.publication.outcome = Outcome.UNCONFIRMED
            pending.publication.error = error or ConnectionLost("connection lost before the confirm")
            self._failures.append(pending.publication)
            if on_settle is not None:
                on_settle(pending.publication)

    def take_pending(self) -> list[Pending]:
        """Remove and return every unanswered publication, unsettled, to be sent again."""
        lost = list(self._pending.values())
        self._pending.clear()
        self._returns.clear()
        return lost

    def unsettled(self) -> list[Publication]:
        return [p.publication for p in self._pending.values()]

    def take_failures(self) -> list[Publication]:
        failures, self._failures = self._failures, []
        return failures

    def _covered(self, tag: int, multiple: bool) -> list[Pending]:
        pending = self._pending
        if not multiple:
            item = pending.pop(tag, None)
            return [item] if item is not None else []
        covered = []
        while pending:
            seq = next(iter(pending))
            if seq > tag:
                break
            covered.append(pending.popitem(last=False)[1])
        return covered

    def _take_return(self, pending: Pending) -> bool:
        if not self._returns or not pending.mandatory:
            return False
        p = pending.publication
        for i, r in enumerate(self._returns):
            if r.exchange == p.exchange and r.routing_key == p.routing_key and r.body == pending.body:
                del self._returns[i]
                return True
        return False

    def _settle(self, pending: Pending, outcome: Outcome) -> None:
        publication = pending.publication
        publication.outcome = outcome
        if outcome is Outcome.CONFIRMED:
            self.confirmed += 1
        else:
            if outcome is Outcome.RETURNED:
                publication.error = Unroutable(publication.exchange, publication.routing_key)
            else:
                shown = publication.exchange or "(default exchange)"
                publication.error = Nacked(
                    f"the broker nacked the message to exchange {shown!r} key {publication.routing_key!r}"
                )
            self._failures.append(publication)
        if self._on_settle is not None:
            self._on_settle(publication)
