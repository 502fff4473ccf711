"""The one place the toolkit calls its instrumentation: no-op until one is installed.

The publishers, the workers and `dlq replay` call the four functions here; `routing.otel`
(the `otel` extra) installs an implementation with `install`. Nothing here imports
OpenTelemetry, and with nothing installed each call is one global lookup.

    created(document)             an envelope's JSON object, before it is validated and encoded:
                                  the instrumentation may add CloudEvents extensions to it
    with sending(...) as props:   around one `transport.publish`; `props` are the properties to
                                  send (the instrumentation may add headers)
    with processing(...) as trace:
        trace.perform(fn, effect) around each of the worker's effects (`routing.worker.steps`)
        trace.settled(settled)    how the delivery ended
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol, TypeVar

from routing.properties import Properties

__all__ = [
    "Instrumentation",
    "Sending",
    "Trace",
    "Unchanged",
    "created",
    "install",
    "installed",
    "processing",
    "sending",
]

E = TypeVar("E")
R = TypeVar("R")


class Trace:
    """What the worker tells the instrumentation about one delivery. This base does nothing:
    it is what `processing` gives when nothing is installed."""

    def __enter__(self) -> Trace:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def perform(self, perform: Callable[[E], R], effect: E) -> R:
        """`perform(effect)`, observed (the effect may come back changed: a copy's headers)."""
        return perform(effect)

    async def aperform(self, perform: Callable[[E], Awaitable[R]], effect: E) -> R:
        """`perform` for the asyncio worker."""
        return await perform(effect)

    def settled(self, settled: E) -> E:
        """How the delivery ended (a `routing.worker.steps.Settled`); returns it."""
        return settled


class Unchanged:
    """`sending` with nothing installed: the properties as they are."""

    __slots__ = ("properties",)

    def __init__(self, properties: Properties) -> None:
        self.properties = properties

    def __enter__(self) -> Properties:
        return self.properties

    def __exit__(self, *exc: object) -> None:
        return None


class Sending(Protocol):
    def __enter__(self) -> Properties: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class Instrumentation(Protocol):
    """What an implementation provides (`routing.otel` has the one the toolkit ships)."""

    def created(self, document: dict[str, Any]) -> None: ...
    def sending(
        self, transport: Any, exchange: str, routing_key: str, properties: Properties, *, replay: bool
    ) -> Sending: ...
    def processing(self, transport: Any, delivery: Any) -> Trace: ...


_NOTHING = Trace()
_installed: Instrumentation | None = None


def install(instrumentation: Instrumentation | None) -> Instrumentation | None:
    """Make `instrumentation` the one the toolkit calls (None: none); returns the previous one."""
    global _installed
    previous, _installed = _installed, instrumentation
    return previous


def installed() -> Instrumentation | None:
    return _installed


def created(document: dict[str, Any]) -> None:
    """A new envelope's JSON object is about to be validated and encoded (see the module)."""
    if _installed is not None:
        _installed.created(document)


def sending(
    transport: Any, exchange: str, routing_key: str, properties: Properties, *, replay: bool = False
) -> Sending:
    """Around one publish; `replay`: a dead letter published again (`dlq replay`)."""
    if _installed is None:
        return Unchanged(properties)
    return _installed.sending(transport, exchange, routing_key, properties, replay=replay)


def processing(transport: Any, delivery: Any) -> Trace:
    """Around the worker's handling of one delivery (`routing.transport.base.Delivery`)."""
    if _installed is None:
        return _NOTHING
    return _installed.processing(transport, delivery)
