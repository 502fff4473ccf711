"""Retry policies: when a failed message is tried again, and when it is given up.

A retry waits in a queue of its own delay (`x-message-ttl`) that dead-letters back to the
work queue, so the wait survives worker crashes and broker restarts. Per-message TTL in a
shared queue would not do: RabbitMQ expires messages only at the head, so a long delay
would hold back every shorter one behind it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from routing.errors import RoutingError


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff: `initial` seconds after the first failure, times `multiplier`
    after each further one, at most `max_delay`; given up after `max_attempts` attempts
    (the first try included). Delays are whole milliseconds: each one is a queue."""

    initial: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    max_attempts: int = 5

    def __post_init__(self) -> None:
        if not self.initial > 0:
            raise RoutingError(f"retry policy: initial must be > 0 seconds, got {self.initial!r}")
        if not self.multiplier >= 1:
            raise RoutingError(f"retry policy: multiplier must be >= 1, got {self.multiplier!r}")
        if not self.max_delay >= self.initial:
            raise RoutingError(
                f"retry policy: max_delay ({self.max_delay!r}) must be >= initial ({self.initial!r})"
            )
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise RoutingError(
                f"retry policy: max_attempts must be an integer >= 1, got {self.max_attempts!r}"
            )

    def delay_ms(self, failures: int) -> int | None:
        """Milliseconds to wait after the `failures`-th failed attempt, or None: give up."""
        if failures >= self.max_attempts:
            return None
        growth = (failures - 1) * math.log(self.multiplier)
        capped = growth >= math.log(self.max_delay / self.initial)  # and no float overflow
        seconds = self.max_delay if capped else self.initial * self.multiplier ** (failures - 1)
        return max(1, round(seconds * 1000))

    @property
    def delays_ms(self) -> tuple[int, ...]:
        """Every distinct delay this policy uses, ascending: one retry queue each."""
        delays: set[int] = set()
        for failures in range(1, self.max_attempts):
            delay = self.delay_ms(failures)
            if delay is None or delay in delays:  # capped: every later delay is the same
                break
            delays.add(delay)
        return tuple(sorted(delays))


NO_RETRY = RetryPolicy(max_attempts=1)
