"""What the assertions of `Broker` match, how their failures list things (functions over
published messages and deliveries, no I/O), and the one loop that waits for the broker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from routing.testing._recording import Published
from routing.transport import Delivery

__all__ = ["POLL", "Select", "holders", "listed", "shown", "until"]

POLL = 0.02
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Select:
    """Which published messages an assertion is about: each given field must match."""

    exchange: str | None = None
    routing_key: str | None = None
    type: str | None = None
    id: str | None = None

    def __call__(self, published: Published) -> bool:
        return all(
            wanted is None or wanted == got
            for wanted, got in (
                (self.exchange, published.exchange),
                (self.routing_key, published.routing_key),
                (self.type, published.type),
                (self.id, published.id),
            )
        )

    def describe(self) -> str:
        """`with key 'order.paid', type 'order.paid'`: what the failure message names."""
        named = zip(("exchange", "key", "type", "id"), self._values(), strict=True)
        fields = [f"{k} {v!r}" for k, v in named if v is not None]
        return "with " + ", ".join(fields) if fields else "of any kind"

    def _values(self) -> tuple[str | None, ...]:
        return self.exchange, self.routing_key, self.type, self.id


def shown(delivery: Delivery) -> str:
    """A message in a queue as a failure message lists it: its type (or body) and id."""
    what = delivery.properties.type or f"body {delivery.body[:60]!r}"
    return f"{what} (id {delivery.properties.message_id})" if delivery.properties.message_id else what


def listed(lines: Iterable[str], empty: str = "(none)") -> str:
    text = "\n".join(f"    - {line}" for line in lines)
    return text or f"    {empty}"


def holders(published: Published, snapshot: dict[str, list[Delivery]]) -> list[str]:
    return sorted(q for q, messages in snapshot.items() if any(_same(published, d) for d in messages))


def _same(published: Published, delivery: Delivery) -> bool:
    """The same message: its message id (an envelope's), else its body and routing key."""
    if published.id:
        return delivery.properties.message_id == published.id
    return (delivery.body, delivery.routing_key) == (published.body, published.routing_key)


def until(check: Callable[[], T | None], timeout: float) -> T | None:
    """`check()` until it gives something, for up to `timeout` seconds (at least once)."""
    deadline = time.monotonic() + timeout
    while (found := check()) is None and time.monotonic() < deadline:
        time.sleep(POLL)
    return found
