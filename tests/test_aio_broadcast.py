"""routing.aio.broadcast: the asyncio twins, on the embedded broker and on RabbitMQ (its
asyncio transport): events reach the listener task, a cut connection is a gap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from routing.aio import open_transport
from routing.aio.broadcast import Broadcaster, Listener
from routing.broadcast import Gap, GapCause
from routing.embedded.registry import broker_for
from routing.management import Management


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def test_events_and_a_gap_on_the_event_loop(
    either_url: str, unique: str, request: pytest.FixtureRequest
) -> None:
    url = either_url
    exchange = f"{unique}.inv"

    def cut(name: str) -> None:
        """The broker closes the listener's connection, as `rabbitmqctl close_connection` does."""
        if url.startswith("memory://"):
            broker_for(url).connections.close(name, "test: cut")
            return
        management = Management.for_broker(url, request.getfixturevalue("management_url"))
        deadline = time.monotonic() + 15  # the management API lists a connection within seconds
        while not (names := management.connection_names(name)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert names, f"no connection named {name!r}"
        for broker_name in names:
            management.close_connection(broker_name, "test: cut")

    async def scenario() -> tuple[dict[str, int], list[Gap], int]:
        cache = {"user:1": 1, "user:2": 2, "price:eur": 3}
        gaps: list[Gap] = []
        async with open_transport(url) as transport:
            broadcaster = Broadcaster(transport, exchange=exchange, source="urn:t")
            async with Listener(url, exchange=exchange, name=f"{unique}-l") as listener:
                listener.attach(cache)
                listener.on_gap(gaps.append)
                await broadcaster.invalidate("users", "user:1")
                await broadcaster.invalidate("prices", pattern="price:*")
                await until(lambda: listener.stats.applied == 2)
                after_events = dict(cache)
                await asyncio.to_thread(cut, listener.name)
                await until(lambda: bool(gaps), timeout=15)
                await broadcaster.invalidate("users", "user:9")
                await until(lambda: listener.stats.applied == 3, timeout=15)
                await transport.delete_exchange(exchange)
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
