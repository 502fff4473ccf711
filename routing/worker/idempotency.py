"""Skip messages already handled: the envelope `id` is the deduplication key.

Delivery is at least once: a worker that dies after the work but before the ack, or a
publisher that re-sends what a lost connection left unconfirmed, delivers a message again.
`idempotent` skips ids handled recently by this process. That narrows the window; it does
not close it (another process, or a restart, has not seen the id). Where a repeat would do
harm, pass a `seen` store shared by all workers (a database table with the id as key).
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from loguru import logger

from routing.envelope import Envelope
from routing.errors import RoutingError

__all__ = ["RecentIds", "SeenIds", "idempotent"]


class SeenIds(Protocol):
    """Where handled ids are remembered."""

    def __contains__(self, event_id: object) -> bool: ...
    def add(self, event_id: str) -> None: ...


class RecentIds:
    """The last `maxsize` ids, in memory; the oldest is forgotten first. Thread-safe."""

    def __init__(self, maxsize: int = 100_000) -> None:
        if maxsize < 1:
            raise RoutingError(f"RecentIds: maxsize must be >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, event_id: object) -> bool:
        with self._lock:
            return event_id in self._ids

    def add(self, event_id: str) -> None:
        with self._lock:
            self._ids[event_id] = None
            self._ids.move_to_end(event_id)
            if len(self._ids) > self.maxsize:
                self._ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self._ids)


F = TypeVar("F", bound=Callable[[Envelope], Any])


def idempotent(function: F | None = None, *, seen: SeenIds | None = None) -> Any:
    """Wrap a handler so an envelope whose `id` was handled before is acked unhandled.
    An id counts as handled once the handler returns; a failure does not record it.

        @app.handler("cache.invalidate")
        @idempotent
        def invalidate(event): ...
    """

    def wrap(handler: F) -> F:
        ids = seen if seen is not None else RecentIds()

        def duplicate(event: Envelope) -> bool:
            if event.id in ids:
                logger.bind(id=event.id, type=event.type).info("duplicate skipped")
                return True
            return False

        @functools.wraps(handler)
        def once(event: Envelope) -> Any:
            if duplicate(event):
                return None
            result = handler(event)
            ids.add(event.id)
            return result

        @functools.wraps(handler)
        async def once_async(event: Envelope) -> Any:  # an `async def` handler: done once awaited
            if duplicate(event):
                return None
            result = await handler(event)
            ids.add(event.id)
            return result

        wrapper: Any = once_async if inspect.iscoroutinefunction(handler) else once
        wrapper.seen = ids
        return wrapper  # type: ignore[no-any-return]

    return wrap(function) if function is not None else wrap
