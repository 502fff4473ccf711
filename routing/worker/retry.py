"""Retry policies: when a failed message is tried again, and when it is given up.

A retry waits in a queue of its own delay (`x-message-ttl`) that dead-letters back to the
work queue, so the wait survives worker crashes and broker restarts. Per-message TTL in a
shared queue would not do: RabbitMQ expires messages only at the head, so a long delay
would hold back every shorter one behind it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from routing.errors import RoutingError

__all__ = ["MAX_DELAY_MS", "MAX_STEPS", "NO_RETRY", "RetryPolicy"]


MAX_DELAY_MS = 2**32 - 1  # a retry queue's x-message-ttl; ~49.7 days
MAX_STEPS = 10_000  # failures before the delay reaches max_delay: more is a mistake


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff: `initial` seconds after the first failure, times `multiplier`
    after each further one, at most `max_delay`; given up after `max_attempts` attempts
    (the first try included). Delays are whole milliseconds: each one is a queue."""

    initial: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    max_attempts: int = 5
    _delays: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.initial > 0:
            raise RoutingError(f"retry policy: initial must be > 0 seconds, got {self.initial!r}")
        if not self.multiplier >= 1:
            raise RoutingError(f"retry policy: multiplier must be >= 1, got {self.multiplier!r}")
        if not self.max_delay >= self.initial:
            raise RoutingError(
                f"retry policy: max_delay ({self.max_delay!r}) must be >= initial ({self.initial!r})"
            )
        if not self.max_delay * 1000 <= MAX_DELAY_MS:
            raise RoutingError(
                f"retry policy: max_delay must be at most {MAX_DELAY_MS / 1000:g} s (RabbitMQ's "
                f"longest message TTL), got {self.max_delay!r}"
            )
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise RoutingError(f"retry policy: max_attempts must be an integer >= 1, got {attempts!r}")
        object.__setattr__(self, "_delays", self._distinct_delays())

    def delay_ms(self, failures: int) -> int | None:
        """Milliseconds to wait after the `failures`-th failed attempt, or None: give up."""
        if failures >= self.max_attempts:
            return None
        steps = self._steps
        capped = 0 < steps < failures
        seconds = self.max_delay if capped else self.initial * self.multiplier ** (failures - 1)
        return max(1, round(min(seconds, self.max_delay) * 1000))

    @property
    def delays_ms(self) -> tuple[int, ...]:
        """Every distinct delay this policy uses, ascending: one retry queue each."""
        return self._delays

    @property
    def _steps(self) -> int:
        """How many failures it takes for the delay to reach `max_delay`, computed without
        float overflow; 0 when it never grows (multiplier 1)."""
        if self.max_delay == self.initial:
            return 1
        if self.multiplier == 1:
            return 0
        growth = math.log(self.max_delay / self.initial) / math.log(self.multiplier)
        return 1 + math.ceil(growth) if math.isfinite(growth) else 1

    def _distinct_delays(self) -> tuple[int, ...]:
        steps = self._steps or 1  # no growth: every delay is the first
        last = min(self.max_attempts - 1, steps + 1)  # later failures wait max_delay
        if last > MAX_STEPS:
            raise RoutingError(
                f"retry policy: the delay takes {last} failures to grow from {self.initial:g} s to "
                f"{self.max_delay:g} s, one retry queue per distinct delay; use a larger multiplier"
            )
        return tuple(sorted({d for n in range(1, last + 1) if (d := self.delay_ms(n)) is not None}))


NO_RETRY = RetryPolicy(max_attempts=1)
