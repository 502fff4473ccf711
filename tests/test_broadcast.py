"""routing.broadcast: invalidations reach every listener, attached caches drop what they
name, and every way of missing events is reported as a gap (on both brokers)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from routing.broadcast import Broadcaster, Drop, Gap, GapCause, Listener, stale_keys
from routing.broadcast._core import ListenerCore, Numbering, Sequences, gap_cause
from routing.embedded.registry import broker_for
from routing.errors import ValidationError
from routing.management import Management
from routing.transport import Transport, open_transport


def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def publisher(either_url: str) -> Iterator[Transport]:
    with open_transport(either_url) as transport:
        yield transport


def test_sequences_report_only_forward_jumps() -> None:
    seq = Sequences()
    assert [seq.observe("a", n) for n in (5, 6, 9, 8, 10)] == [0, 0, 2, 0, 0]
    assert seq.observe("b", 1) == 0
    seq.reset()
    assert seq.observe("a", 40) == 0
    numbering = Numbering("p")
    assert [numbering.extensions() for _ in range(2)] == [
        {"publisherid": "p", "sequence": "1"},  # strings, as CloudEvents' sequence extension has it
        {"publisherid": "p", "sequence": "2"},
    ]


def test_glob_patterns_match_as_the_demo_did() -> None:
    keys = ["price:eur", "price:gbp", "Price:usd", "user:1", "config:timeout"]
    assert stale_keys("cache.invalidate", {"pattern": "price:*"}, keys) == ["price:eur", "price:gbp"]
    assert stale_keys("cache.invalidate", {"keys": ["user:1", "x"]}, keys) == ["user:1"]
    assert stale_keys("config.changed", {"keys": ["timeout"]}, keys) == ["config:timeout"]


def test_invalid_event_is_refused_before_sending(memory: Transport) -> None:
    broadcaster = Broadcaster(memory, exchange="inv")
    with pytest.raises(ValidationError):
        broadcaster.invalidate("users", [])  # minItems 1
    with pytest.raises(ValidationError):
        broadcaster.invalidate("users", ["a"], pattern="b*")  # keys or pattern, not both


def test_every_listener_drops_what_events_name(either_url: str, publisher: Transport, unique: str) -> None:
    exchange = f"{unique}.inv"
    broadcaster = Broadcaster(publisher, exchange=exchange, source="urn:test")
    caches = [{"user:1": 1, "user:2": 2, "price:eur": 3, "config:timeout": 4} for _ in range(3)]
    seen: list[str] = []

    @functools.lru_cache
    def lookup(key: str) -> str:
        return key

    drops: list[Drop] = []
    listeners = [Listener(either_url, exchange=exchange, service=f"api{i}") for i in range(3)]
    for listener, cache in zip(listeners, caches, strict=True):
        listener.attach(cache, name="*")
        listener.on_config(lambda env: seen.append(env.type))
    listeners[0].attach(lookup, name="users")
    listeners[0].attach(drops.append, name="prices")
    for listener in listeners:
        listener.start()
    try:
        lookup("x")
        broadcaster.invalidate("users", "user:1", reason="renamed")
        broadcaster.invalidate("prices", pattern="price:*")
        broadcaster.config_changed("api", ["timeout"], 8)
        until(lambda: all(ls.stats.applied == 3 for ls in listeners))
    finally:
        for listener in listeners:
            listener.stop()
    assert caches == [{"user:2": 2}] * 3
    assert lookup.cache_info().currsize == 0
    assert drops == [Drop(cache="prices", pattern="price:*")]
    assert seen == ["config.changed"] * 3
    assert all(ls.stats.gaps == 0 for ls in listeners)


def test_bad_input_and_raising_handlers_do_not_stop_the_listener(
    either_url: str, publisher: Transport, unique: str
) -> None:
    exchange = f"{unique}.inv"
    broadcaster = Broadcaster(publisher, exchange=exchange)
    got: list[Any] = []

    def boom(env: Any) -> None:
        raise RuntimeError("handler bug")

    with Listener(either_url, exchange=exchange) as listener:
        listener.on_invalidate(boom)
        listener.on_invalidate(lambda env: got.append(env.data["keys"]))
        publisher.publish(exchange, "", b"not json")
        publisher.publish(exchange, "", b'{"specversion": "1.0", "id": "1", "source": "s", "type": "x.y"}')
        publisher.publish(
            exchange, "", b'{"specversion":"1.0","id":"2","source":"s","type":"cache.invalidate"}'
        )
        broadcaster.invalidate("users", "user:1")
        until(lambda: listener.stats.applied == 1)
        stats = listener.stats
    assert got == [("user:1",)]
    assert (stats.received, stats.rejected, stats.ignored, stats.handler_errors) == (4, 2, 1, 1)


def test_cut_connection_is_a_gap_and_clears_the_cache(
    either_url: str, publisher: Transport, unique: str, request: pytest.FixtureRequest
) -> None:
    exchange = f"{unique}.inv"
    broadcaster = Broadcaster(publisher, exchange=exchange)
    cache = {"user:1": 1}
    gaps: list[Gap] = []
    with Listener(either_url, exchange=exchange, name=f"{unique}-cut") as listener:
        listener.attach(cache)
        listener.on_gap(gaps.append)
        if either_url.startswith("memory"):
            broker_for(either_url).connections.close(listener.name, "test: cut")
        else:
            management = Management.for_broker(either_url, request.getfixturevalue("management_url"))
            until(lambda: bool(management.connection_names(listener.name)), timeout=15)
            for name in management.connection_names(listener.name):
                management.close_connection(name, "test: cut")
        until(lambda: bool(gaps))
        broadcaster.invalidate("users", "user:2")
        until(lambda: listener.stats.applied == 1)
    assert [g.cause for g in gaps] == [GapCause.RECONNECT]
    assert cache == {}
    assert listener.connects == 2


def test_overflow_is_reported_never_silent(either_url: str, publisher: Transport, unique: str) -> None:
    exchange = f"{unique}.inv"
    broadcaster = Broadcaster(publisher, exchange=exchange)
    gate = threading.Event()
    gaps: list[Gap] = []
    with Listener(either_url, exchange=exchange, max_length=5, prefetch=1) as listener:
        listener.on_invalidate(lambda env: gate.wait(10))
        listener.on_gap(gaps.append)
        for n in range(30):
            broadcaster.invalidate("users", f"user:{n}")
        gate.set()
        until(lambda: listener.stats.gaps >= 1 and listener.stats.received >= 5)
        time.sleep(0.5)
        stats = listener.stats
    # Overflow, told by the signal the dropped events leave; a jump seen before RabbitMQ's
    # dead-lettering delivered that signal is a sequence gap, and still a gap.
    causes = {g.cause for g in gaps}
    assert GapCause.OVERFLOW in causes and causes <= {GapCause.OVERFLOW, GapCause.SEQUENCE}
    assert stats.applied < 30


def test_a_gap_clears_every_kind_of_attached_cache() -> None:
    core = ListenerCore(exchange="inv")
    mapping = {"a": 1}
    kept = {"b": 2}
    drops: list[Drop] = []

    @functools.lru_cache
    def lookup(key: str) -> str:
        return key

    def broken(drop: Drop) -> None:
        raise RuntimeError("cache bug")

    lookup("x")
    core.attach(mapping)
    core.attach(kept, clear_on_gap=False)
    core.attach(lookup, name="users")
    core.attach(drops.append, name="prices")
    core.attach(broken)
    gap = core.gap(GapCause.BROKER_RESTART, "test")
    assert (mapping, kept, lookup.cache_info().currsize) == ({}, {"b": 2}, 0)
    assert drops == [Drop(cache="prices", everything=True)]
    stats = core.stats
    assert (stats.gaps, dict(stats.gaps_by_cause), stats.clears, stats.handler_errors) == (
        1,
        {"broker-restart": 1},
        4,
        1,
    )
    assert gap.cause is GapCause.BROKER_RESTART
    with pytest.raises(TypeError, match="cannot attach int"):
        core.attach(3)


def test_drop_reasons_name_the_cause() -> None:
    shutdown = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
    assert gap_cause(f"ConnectionClosedByBroker(320, {shutdown!r})") is GapCause.BROKER_RESTART
    assert gap_cause("CONNECTION_FORCED - Closed via management plugin") is GapCause.RECONNECT
