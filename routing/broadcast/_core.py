"""What the blocking and the asyncio broadcast share, with no I/O: the events a broadcaster
builds, the per-publisher sequence tracking that finds gaps, which cache keys an event makes
stale, the attached caches, and the listener's dispatch and tally (`ListenerCore`).

The drivers (`Listener`, `routing.aio.broadcast.Listener`) only move bytes: they hand each
delivery to `ListenerCore.receive`, report the gaps they see on the connection with
`ListenerCore.gap`, and ack.
"""

from __future__ import annotations

import fnmatch
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from loguru import logger

from routing._frozen import EMPTY, FrozenDict
from routing.envelope import Envelope, Rejection, decode_or_reject
from routing.properties import Properties
from routing.schemas import SchemaRegistry

__all__ = [
    "CACHE_INVALIDATE",
    "CONFIG_CHANGED",
    "PUBLISHER",
    "SEQUENCE",
    "Drop",
    "Gap",
    "GapCause",
    "ListenerCore",
    "ListenerStats",
    "Numbering",
    "Received",
    "Sequences",
    "drop_stale",
    "gap_cause",
    "invalidation",
    "stale_keys",
]

CACHE_INVALIDATE = "cache.invalidate"
CONFIG_CHANGED = "config.changed"
# CloudEvents extension attributes every broadcast event carries (lowercase letters only).
# `sequence` is the CloudEvents sequence extension's: a string (decimal digits here), which
# unlike an extension integer (32 bits) does not run out.
PUBLISHER = "publisherid"
SEQUENCE = "sequence"
_MISSING = object()


class GapCause(StrEnum):
    RECONNECT = "reconnect"  # the connection dropped: the exclusive queue went with it
    BROKER_RESTART = "broker-restart"  # the broker shut down: every queue of ours went
    SEQUENCE = "sequence"  # a publisher's sequence jumped: messages dropped on the way
    OVERFLOW = "overflow"  # our queue hit its max length and dropped its oldest


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap:
    """A stretch of events this listener may have missed, and why. `missed` when known."""

    cause: GapCause
    detail: str
    missed: int | None = None
    publisher: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Drop:
    """What a callable attached as a cache is told to drop: `keys`, or those matching
    `pattern`, or `everything` (after a gap)."""

    cache: str
    keys: tuple[str, ...] = ()
    pattern: str | None = None
    everything: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerStats:
    """What a listener saw: deliveries `received`; `applied` (valid events handed on);
    `rejected` (not a valid envelope); `ignored` (valid, but nothing handles its type);
    `handler_errors`; `gaps`, and by cause; `clears` of attached caches after gaps."""

    received: int = 0
    applied: int = 0
    rejected: int = 0
    ignored: int = 0
    handler_errors: int = 0
    gaps: int = 0
    gaps_by_cause: Mapping[str, int] = field(default=EMPTY)
    clears: int = 0


class Numbering:
    """A publisher's id and its next sequence number, thread-safe."""

    def __init__(self, publisher: str | None = None) -> None:
        self.publisher = publisher or uuid.uuid4().hex[:16]
        self._next = 0
        self._lock = threading.Lock()

    @property
    def last(self) -> int:
        """The sequence number of the last event numbered (0: none yet)."""
        return self._next

    def extensions(self) -> dict[str, str | int | bool]:
        """The next event's `publisherid` and `sequence`."""
        with self._lock:
            self._next += 1
            return {PUBLISHER: self.publisher, SEQUENCE: str(self._next)}


def invalidation(
    cache: str,
    keys: Iterable[str] | None,
    pattern: str | None,
    reason: str | None,
    version: int | None = None,
) -> dict[str, Any]:
    """The data of a `cache.invalidate` event (the schema checks it when it is published)."""
    data: dict[str, Any] = {"cache": cache, "reason": reason or "invalidated"}
    if keys is not None:
        data["keys"] = list(keys)
    if pattern is not None:
        data["pattern"] = pattern
    if version is not None:
        data["version"] = version
    return data


class Sequences:
    """The last sequence number seen from each publisher."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def observe(self, publisher: str, sequence: int) -> int:
        """How many of `publisher`'s events were skipped before this one (0: none, or the
        first seen from it; a repeat or an older one is no gap)."""
        last = self._last.get(publisher)
        if last is None or sequence > last:
            self._last[publisher] = sequence
        return 0 if last is None else max(0, sequence - last - 1)

    def reset(self) -> None:
        """Forget every publisher: after a gap already reported, their next event is a new start."""
        self._last.clear()


def gap_cause(reason: str) -> GapCause:
    """What a connection's drop means, from the reason RabbitMQ gave when it closed it:
    a node shutting down says "broker forced connection closure with reason 'shutdown'"
    (`rabbit_networking:close_connections`); a forced close of one connection does not."""
    return GapCause.BROKER_RESTART if "shutdown" in reason else GapCause.RECONNECT


def stale_keys(event_type: str, data: Mapping[str, Any], keys: Iterable[Any]) -> list[Any]:
    """Those of `keys` an event makes stale: `cache.invalidate` names keys or a glob
    pattern (`fnmatch`, case-sensitive, string keys only); `config.changed` names config
    keys, cached as `config:<key>`."""
    if event_type == CONFIG_CHANGED:
        names = {f"config:{k}" for k in data["keys"]}
        return [k for k in keys if k in names]
    if "keys" in data:
        wanted = set(data["keys"])
        return [k for k in keys if k in wanted]
    pattern = data["pattern"]
    return [k for k in keys if isinstance(k, str) and fnmatch.fnmatchcase(k, pattern)]


def drop_stale(cache: MutableMapping[Any, Any], event_type: str, data: Mapping[str, Any]) -> list[Any]:
    """Drop from `cache` what the event makes stale; the keys dropped."""
    named = data.get("keys") if event_type == CACHE_INVALIDATE else None
    candidates = list(named) if named is not None else list(cache)
    return [k for k in stale_keys(event_type, data, candidates) if cache.pop(k, _MISSING) is not _MISSING]


class _Attached:
    """One attached cache under a name (a glob: "*" gets every cache's events)."""

    def __init__(self, target: Any, name: str, clear_on_gap: bool) -> None:
        if not (isinstance(target, MutableMapping) or hasattr(target, "cache_clear") or callable(target)):
            raise TypeError(
                f"cannot attach {type(target).__name__}: give a MutableMapping, an lru_cache'd function"
                " or a callable"
            )
        self.target = target
        self.name = name
        self.clear_on_gap = clear_on_gap

    def wants(self, event_type: str, data: Mapping[str, Any]) -> bool:
        cache = data["cache"] if event_type == CACHE_INVALIDATE else "config"
        return fnmatch.fnmatchcase(cache, self.name)

    def apply(self, event_type: str, data: Mapping[str, Any]) -> None:
        target = self.target
        if isinstance(target, MutableMapping):
            drop_stale(target, event_type, data)
        elif hasattr(target, "cache_clear"):
            target.cache_clear()  # an lru_cache cannot drop one key
        elif event_type == CONFIG_CHANGED:
            target(Drop(cache="config", keys=tuple(f"config:{k}" for k in data["keys"])))
        else:
            target(Drop(cache=data["cache"], keys=tuple(data.get("keys", ())), pattern=data.get("pattern")))

    def clear(self) -> None:
        target = self.target
        if isinstance(target, MutableMapping):
            target.clear()
        elif hasattr(target, "cache_clear"):
            target.cache_clear()
        else:
            target(Drop(cache=self.name, everything=True))


@dataclass(frozen=True, slots=True)
class Received:
    """A delivery as the core read it: the envelope (None when rejected) and, when the
    publisher's sequence jumped, how many were skipped."""

    envelope: Envelope | None
    skipped: int = 0
    publisher: str | None = None


Handler = Callable[[Envelope], object]
GapHandler = Callable[[Gap], object]


class ListenerCore:
    """Handlers, attached caches, sequence tracking and the tally of one listener."""

    def __init__(self, *, exchange: str, registry: SchemaRegistry | None = None) -> None:
        # Unknown types are let through to be counted as ignored: foreign, but not malformed.
        self.registry = registry if registry is not None else SchemaRegistry.bundled(allow_unknown=True)
        self.log = logger.bind(exchange=exchange)
        self.sequences = Sequences()
        self._handlers: dict[str, list[Handler]] = {CACHE_INVALIDATE: [], CONFIG_CHANGED: []}
        self._gap_handlers: list[GapHandler] = []
        self._attached: list[_Attached] = []
        self._counts = dict.fromkeys(("received", "applied", "rejected", "ignored", "handler_errors"), 0)
        self._gaps: dict[str, int] = {}
        self._clears = 0
        self._logged: set[str] = set()

    def on(self, event_type: str, handler: Handler) -> None:
        self._handlers[event_type].append(handler)

    def on_gap(self, handler: GapHandler) -> None:
        self._gap_handlers.append(handler)

    def attach(self, cache: Any, name: str = "*", *, clear_on_gap: bool = True) -> None:
        self._attached.append(_Attached(cache, name, clear_on_gap))

    @property
    def stats(self) -> ListenerStats:
        return ListenerStats(
            **self._counts,
            gaps=sum(self._gaps.values()),
            gaps_by_cause=FrozenDict(self._gaps),
            clears=self._clears,
        )

    def _once(self, kind: str, message: str, *args: object) -> None:
        """Log the first of each kind of bad input; the rest are only counted."""
        if kind not in self._logged:
            self._logged.add(kind)
            self.log.warning(message + " (logged once; counted in stats)", *args)

    def receive(self, body: bytes, properties: Properties | None) -> Received:
        """Decode a delivery and track its publisher's sequence; never raises."""
        self._counts["received"] += 1
        result = decode_or_reject(body, properties, registry=self.registry)
        if isinstance(result, Rejection):
            self._counts["rejected"] += 1
            self._once(f"rejected:{result.path}", "rejected a message: {}", result.reason)
            return Received(None)
        if result.type not in self._handlers:
            self._counts["ignored"] += 1
            self._once(
                f"type:{result.type}", "ignored an event of type {!r}: nothing handles it", result.type
            )
            return Received(None)
        publisher, sequence = result.extensions.get(PUBLISHER), result.extensions.get(SEQUENCE)
        if isinstance(publisher, str) and isinstance(sequence, str) and sequence.isdigit():
            return Received(result, self.sequences.observe(publisher, int(sequence)), publisher)
        return Received(result)

    def apply(self, received: Received) -> None:
        """Drop what the event makes stale from the attached caches, then call the handlers;
        a handler (or cache) that raises is logged and counted, and the rest still run."""
        env = received.envelope
        if env is None:
            return
        self._counts["applied"] += 1
        for attached in self._attached:
            if attached.wants(env.type, env.data):
                self._guarded(f"cache {attached.name!r}", attached.apply, env.type, env.data)
        for handler in self._handlers[env.type]:
            self._guarded("handler", handler, env)

    def gap(
        self,
        cause: GapCause,
        detail: str,
        *,
        missed: int | None = None,
        publisher: str | None = None,
        resync: bool = False,
    ) -> Gap:
        """Report a gap: clear the attached caches (unless told not to), call the gap
        handlers. After a lost queue (or with `resync`) sequence tracking starts afresh:
        the jumps still to come are part of the gap already reported."""
        found = Gap(cause=cause, detail=detail, missed=missed, publisher=publisher)
        self._gaps[cause] = self._gaps.get(cause, 0) + 1
        if resync or cause in (GapCause.RECONNECT, GapCause.BROKER_RESTART):
            self.sequences.reset()
        self.log.warning("gap ({}): {}", cause, detail)
        for attached in self._attached:
            if attached.clear_on_gap:
                self._clears += 1
                self._guarded(f"cache {attached.name!r}", attached.clear)
        for handler in self._gap_handlers:
            self._guarded("gap handler", handler, found)
        return found

    def jumped(self, received: Received, *, overflowed: bool) -> None:
        """A publisher's sequence jumped: a gap, from overflow when the queue's overflow
        signal was there (the drivers look), else from a loss on the way."""
        self.gap(
            GapCause.OVERFLOW if overflowed else GapCause.SEQUENCE,
            f"publisher {received.publisher} skipped {received.skipped} event(s)",
            missed=received.skipped,
            publisher=received.publisher,
        )

    def overflowed(self, queue: str) -> None:
        """The overflow signal was found with the queue drained: the events dropped may be
        from publishers not heard from since, so tracking starts afresh."""
        self.gap(GapCause.OVERFLOW, f"queue {queue!r} was full and dropped its oldest events", resync=True)

    def _guarded(self, what: str, action: Callable[..., object], *args: Any) -> None:
        try:
            action(*args)
        except Exception:
            self._counts["handler_errors"] += 1
            self.log.opt(exception=True).error("{} raised; later events are still handled", what)
