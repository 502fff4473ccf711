"""The one place the toolkit calls its instrumentation: no-op until one is installed.

The publishers, the workers and `dlq replay` call the functions here; `routing.otel` (the
`otel` extra) installs an implementation with `install`. Nothing here imports OpenTelemetry,
and with nothing installed each call is one global lookup.

    created(document)             an envelope's JSON object, before it is validated and encoded:
                                  the instrumentation may add CloudEvents extensions to it
    publish(transport.publish, transport)(...)
                                  `transport.publish` itself, or a wrapper that observes it (and may
                                  add headers); `apublish` for an asyncio transport's
    with processing(...) as trace:
        trace.perform(fn, effect) around each of the worker's effects (`routing.worker.steps`)
        trace.settled(settled)    how the delivery ended
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol, TypeVar

__all__ = ["Instrumentation", "Trace", "apublish", "created", "install", "installed", "processing", "publish"]

E = TypeVar("E")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


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


class Instrumentation(Protocol):
    """What an implementation provides (`routing.otel` has the one the toolkit ships)."""

    def created(self, document: dict[str, Any]) -> None: ...
    def publish(self, send: F, transport: Any, *, replay: bool) -> F: ...
    def apublish(self, send: F, transport: Any) -> F: ...
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


def publish(send: F, transport: Any, *, replay: bool = False) -> F:
    """`send` (a blocking `transport.publish`), or what publishes through it, observed;
    `replay`: a dead letter published again (`dlq replay`)."""
    return send if _installed is None else _installed.publish(send, transport, replay=replay)


def apublish(send: F, transport: Any) -> F:
    """`publish` for an asyncio transport's `publish`."""
    return send if _installed is None else _installed.apublish(send, transport)


def processing(transport: Any, delivery: Any) -> Trace:
    """Around the worker's handling of one delivery (`routing.transport.base.Delivery`)."""
    if _installed is None:
        return _NOTHING
    return _installed.processing(transport, delivery)
