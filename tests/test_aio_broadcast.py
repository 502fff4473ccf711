"""routing.aio.broadcast: the asyncio twins, on the embedded broker (the RabbitMQ asyncio
transport is not there yet): events reach the listener task, a cut connection is a gap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from routing.aio import open_transport
from routing.aio.broadcast import Broadcaster, Listener
from routing.broadcast import Gap, GapCause
from routing.embedded.registry import broker_for


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def test_events_and_a_gap_on_the_event_loop(unique: str) -> None:
    url = f"memory://{unique}"

    async def scenario() -> tuple[dict[str, int], list[Gap], int]:
        cache = {"user:1": 1, "user:2": 2, "price:eur": 3}
        gaps: list[Gap] = []
        async with open_transport(url) as transport:
            broadcaster = Broadcaster(transport, exchange="inv", source="urn:t")
            async with Listener(url, exchange="inv", name=f"{unique}-l") as listener:
                listener.attach(cache)
                listener.on_gap(gaps.append)
                await broadcaster.invalidate("users", "user:1")
                await broadcaster.invalidate("prices", pattern="price:*")
                await until(lambda: listener.stats.applied == 2)
                after_events = dict(cache)
                broker_for(url).connections.close(listener.name, "test: cut")
                await until(lambda: bool(gaps))
                await broadcaster.invalidate("users", "user:9")
                await until(lambda: listener.stats.applied == 3)
                return after_events, gaps, listener.connects

    after_events, gaps, connects = asyncio.run(scenario())
    assert after_events == {"user:2": 2}
    assert [g.cause for g in gaps] == [GapCause.RECONNECT]
    assert connects == 2


def test_a_publisher_sequence_jump_is_a_gap(unique: str) -> None:
    url = f"memory://{unique}"

    async def scenario() -> list[Gap]:
        gaps: list[Gap] = []
        async with open_transport(url) as transport:
            broadcaster = Broadcaster(transport, exchange="inv")
            async with Listener(url, exchange="inv") as listener:
                listener.on_gap(gaps.append)
                await broadcaster.invalidate("users", "a")
                broadcaster.numbering.extensions()  # a number used and never sent: a loss on the way
                await broadcaster.invalidate("users", "b")
                await until(lambda: listener.stats.applied == 2)
        return gaps

    gaps = asyncio.run(scenario())
    assert [(g.cause, g.missed) for g in gaps] == [(GapCause.SEQUENCE, 1)]
