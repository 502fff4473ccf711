"""`Handlers`: what an `App` is without the means to run it: the handlers of a service, one
per event type, with their retry policies. Holds no connection; the runner reads it."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from routing._frozen import FrozenDict
from routing.envelope import MAX_BYTES, Envelope
from routing.errors import RoutingError
from routing.operations import Consumes, Publishes
from routing.schemas import SchemaRegistry
from routing.topology import Topology
from routing.worker.queues import WorkQueues
from routing.worker.retry import RetryPolicy

Handler = Callable[[Envelope], Any]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True, slots=True)
class Registration:
    """One handler registered with `App.handler`: the function an event type goes to, and its
    retry policy. (Where a message is routed is `routing.route()`; this is where it is handled.)"""

    event_type: str
    function: Handler
    retry: RetryPolicy


class Handlers:
    """Handlers by event type, and how their queues are declared and messages checked: the
    whole of an `App` but `run` (see `routing.worker.App` for the parameters)."""

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        registry: SchemaRegistry | None = None,
        quorum: bool = False,
        max_bytes: int = MAX_BYTES,
        event_type: str | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._registry = registry
        self.quorum = quorum
        self.max_bytes = max_bytes
        self.event_type = event_type  # for plain JSON bodies that name no type
        self._registrations: dict[str, Registration] = {}

    @property
    def registry(self) -> SchemaRegistry:
        if self._registry is None:
            self._registry = SchemaRegistry.bundled()
        return self._registry

    def handler(self, event_type: str, *, retry: RetryPolicy | None = None) -> Callable[[H], H]:
        """Register the decorated function for `event_type`; it gets the validated envelope.
        Returning means done (the message is acked); raising means try again later."""
        if not isinstance(event_type, str) or not event_type:
            raise RoutingError(f"handler: event type must be a non-empty string, got {event_type!r}")

        def register(function: H) -> H:
            if event_type in self._registrations:
                taken = self._registrations[event_type].function
                raise RoutingError(
                    f"handler for {event_type!r}: {_name(function)} would replace {_name(taken)}"
                )
            self._registrations[event_type] = Registration(event_type, function, retry or self.retry)
            return function

        return register

    @property
    def registrations(self) -> Mapping[str, Registration]:
        """The registered handlers, by event type."""
        return FrozenDict(self._registrations)

    @property
    def has_async_handlers(self) -> bool:
        """Whether any handler is an `async def` (the app then runs on an event loop)."""
        return any(inspect.iscoroutinefunction(r.function) for r in self._registrations.values())

    def registration_for(self, event_type: str) -> Registration | None:
        """The handler registered for `event_type`, or None."""
        return self._registrations.get(event_type)

    def queues(self, queue: str) -> WorkQueues:
        """The retry and dead-letter queues around `queue`: one retry queue per delay any
        handler's policy uses."""
        delays = {d for policy in self._policies() for d in policy.delays_ms}
        return WorkQueues.for_delays(queue, delays, quorum=self.quorum)

    def topology(self, queue: str) -> Topology:
        """Work queue, retry queues and dead-letter queue, to declare (with your exchanges
        and bindings to `queue`) before running."""
        return self.queues(queue).topology

    def operations(self, queue: str) -> tuple[tuple[Consumes, ...], tuple[Publishes, ...]]:
        """What a worker running these handlers on `queue` takes and sends, for
        `routing.asyncapi_document`: a `Consumes` per handler, and per event type its retry
        copies (through the default exchange to its policy's retry queues) and dead letters."""
        names = self.queues(queue)
        consumes, sends = [], []
        for event_type, registration in self._registrations.items():
            consumes.append(
                Consumes(queue, event_type, description=f"handled by {_name(registration.function)}")
            )
            retry = f"a copy after a failure, back to {queue!r} when its delay is over"
            sends += [
                Publishes("", names.retry(d), event_type, description=retry)
                for d in registration.retry.delays_ms
            ]
            dead = "a dead letter, after the last attempt, with the reason in its headers"
            sends.append(Publishes("", names.dead, event_type, description=dead))
        return tuple(consumes), tuple(sends)

    def _policies(self) -> list[RetryPolicy]:
        return [self.retry, *(registration.retry for registration in self._registrations.values())]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} handlers={sorted(self._registrations)}>"


def _name(function: Any) -> str:
    return getattr(function, "__qualname__", repr(function))
