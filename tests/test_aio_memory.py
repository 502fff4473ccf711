"""`routing.aio` on the embedded broker: the asyncio transport over `memory://`, shared with the
blocking transports of the same URL, and the asyncio Publisher."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

import routing.aio
from routing import Exchange, Queue, Topology
from routing.embedded import forget
from routing.errors import BrokerError, ChannelClosed, ConnectionFailed, ValidationError
from routing.transport import Outcome, open_transport
from routing.transport.aio.memory import AsyncMemoryTransport

EVENT = {"cache": "users", "keys": ["42"], "reason": "renamed"}


@pytest.fixture
def url(unique: str) -> Iterator[str]:
    yield f"memory://{unique}"
    forget(f"memory://{unique}")


def test_open_transport_is_awaitable_and_an_async_context_manager(url: str) -> None:
    async def main() -> tuple[bool, bool, str]:
        transport = await routing.aio.open_transport(url)
        await transport.close()
        async with routing.aio.open_transport(url) as other:
            inside = other.closed
        return transport.closed, inside or not other.closed, other.server_version

    closed, still_open_inside, version = asyncio.run(main())
    assert closed and not still_open_inside
    assert version in ("3.10", "4.0")


def test_unknown_scheme_is_one_clear_error_without_the_password() -> None:
    async def main() -> None:
        await routing.aio.open_transport("redis://user:s3cret@host/")

    with pytest.raises(ConnectionFailed, match="unknown scheme 'redis'") as caught:
        asyncio.run(main())
    assert "s3cret" not in str(caught.value)


def test_publisher_validates_before_sending_and_awaits_confirms(url: str) -> None:
    async def main() -> tuple[list[Outcome], int, int]:
        async with routing.aio.open_transport(url) as t:
            await t.declare(Topology.of(Queue("q")))
            publisher = routing.aio.Publisher(t)
            confirmed = await publisher.emit("", "q", "cache.invalidate", EVENT)
            outcomes = [await confirmed]
            with pytest.raises(ValidationError, match="keys"):
                await publisher.emit("", "q", "cache.invalidate", {"cache": "users", "reason": "x"})
            unroutable = await publisher.emit("", "nowhere", "cache.invalidate", EVENT, mandatory=True)
            outcomes.append(await unroutable)
            failures = await publisher.flush()
            return outcomes, len(failures), await t.message_count("q")

    outcomes, failures, depth = asyncio.run(main())
    assert outcomes == [Outcome.CONFIRMED, Outcome.RETURNED]
    assert failures == 1 and depth == 1


def test_a_blocking_publisher_in_a_thread_wakes_an_async_consumer(url: str) -> None:
    """The same broker for both: the thread's publish wakes the loop's reader at once."""

    def publish_later() -> None:
        time.sleep(0.2)
        with open_transport(url) as blocking:
            for n in range(3):
                blocking.publish("", "q", str(n).encode())

    async def main() -> tuple[list[bytes], float]:
        async with routing.aio.open_transport(url) as t:
            await t.declare(Topology.of(Queue("q")))
            threading.Thread(target=publish_later).start()
            started = time.monotonic()
            bodies = []
            async with t.consume("q", prefetch=10) as consumer:
                async for delivery in consumer:
                    bodies.append(delivery.body)
                    await t.ack(delivery)
                    if len(bodies) == 3:
                        break
            return bodies, time.monotonic() - started

    bodies, took = asyncio.run(main())
    assert bodies == [b"0", b"1", b"2"]
    assert took < 2.0  # woken, not found by a slow poll


def test_a_waiting_consumer_sees_a_dead_letter_when_a_ttl_runs_out(url: str) -> None:
    """No timer thread expires messages: the waiting reader looks again at the next deadline."""
    clock = [0.0]

    async def main() -> bytes | None:
        async with routing.aio.open_transport(url) as t:
            assert isinstance(t, AsyncMemoryTransport)
            t.blocking.broker.clock = lambda: clock[0]  # a hand-moved clock
            dlx = Exchange("dlx", "fanout")
            await t.declare(
                Topology.of(
                    dlx,
                    Queue("dead"),
                    Queue("short", message_ttl=1000, dead_letter_exchange="dlx"),
                    dlx.bind("dead"),
                )
            )
            await t.publish("", "short", b"expires")
            consumer = t.consume("dead")
            asyncio.get_running_loop().call_later(0.1, lambda: clock.__setitem__(0, 2.0))
            delivery = await consumer.get(timeout=2.0)
            await consumer.cancel()
            return None if delivery is None else delivery.body

    assert asyncio.run(main()) == b"expires"


def test_a_queue_deleted_under_a_consumer_is_one_broker_error(url: str) -> None:
    async def main() -> None:
        async with routing.aio.open_transport(url) as t:
            await t.declare(Topology.of(Queue("q")))
            consumer = t.consume("q")
            await consumer.start()
            asyncio.get_running_loop().call_later(0.05, lambda: open_transport(url).delete_queue("q"))
            await consumer.get(timeout=2.0)

    with pytest.raises(BrokerError, match="'q' was deleted"):
        asyncio.run(main())


def test_consuming_a_missing_queue_is_refused_at_start_and_cancel_needs_no_start(url: str) -> None:
    async def main() -> bool:
        async with routing.aio.open_transport(url) as t:
            idle = t.consume("never-started")
            await idle.cancel()
            assert await idle.get(timeout=0.01) is None
            with pytest.raises(ChannelClosed, match="404"):
                await t.consume("missing").start()
            return idle.cancelled

    assert asyncio.run(main())


def test_unacked_deliveries_go_back_when_the_transport_closes(url: str) -> None:
    async def main() -> tuple[int, bool]:
        t = AsyncMemoryTransport(url)
        await t.declare(Topology.of(Queue("q")))
        for n in range(4):
            await t.publish("", "q", bytes([n]))
        consumer = t.consume("q", prefetch=2)
        first = await consumer.get()
        assert first is not None
        await t.close()
        async with routing.aio.open_transport(url) as other:
            again = await other.get("q")
            return await other.message_count("q") + 1, again is not None and again.redelivered

    count, redelivered = asyncio.run(main())
    assert count == 4 and redelivered
