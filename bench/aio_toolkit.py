"""The toolkit's asyncio side as a contender, through its public API only: `routing.aio.Publisher`
`emit` + `flush` to publish; `transport.consume` (`async for`) + `routing.decode` +
`transport.ack` to consume. Same shape as `bench.toolkit`: connecting is not timed, each
function returns its timed part's wall-clock and CPU
seconds (a `bench.stats.Timed`).
"""

from __future__ import annotations

import asyncio

import routing
import routing.aio
from bench.message import DATA, EVENT_TYPE, EXTENSIONS, SOURCE, SUBJECT
from bench.stats import Stopwatch, Timed
from bench.toolkit import registry
from routing import Properties


def publish(url: str, queue: str, _body: bytes, _props: Properties, n: int) -> Timed:
    """`n` x `await publisher.emit(...)` (build, validate, encode, publish; each returns once
    sent, waiting only for room in the confirm window), then `await flush()`."""

    async def run() -> Timed:
        async with routing.aio.open_transport(url) as transport:
            publisher = routing.aio.Publisher(transport, registry=registry(), source=SOURCE)
            emit = publisher.emit
            await emit("", queue, EVENT_TYPE, DATA, subject=SUBJECT, extensions=EXTENSIONS)
            await publisher.flush()  # the channel is open and in confirm mode, as the peers' are
            await transport.purge(queue)
            watch = Stopwatch()
            for _ in range(n):
                await emit("", queue, EVENT_TYPE, DATA, subject=SUBJECT, extensions=EXTENSIONS)
            failed = await publisher.flush()
            elapsed = watch.stop()
        if failed:
            raise RuntimeError(f"toolkit aio publish: {len(failed)} of {n} not confirmed: {failed[0]!r}")
        return elapsed

    return asyncio.run(run())


def consume(url: str, queue: str, n: int, *, prefetch: int) -> Timed:
    """Consume `n` with `async for`, decode and validate each, ack each."""
    reg = registry()

    async def run() -> Timed:
        async with routing.aio.open_transport(url) as transport:
            ack, decode = transport.ack, routing.decode
            async with transport.consume(queue, prefetch=prefetch) as consumer:
                watch = Stopwatch()
                seen = 0
                async for delivery in consumer:
                    decode(delivery.body, delivery.properties, registry=reg)
                    await ack(delivery)
                    seen += 1
                    if seen == n:
                        break
                return watch.stop()

    return asyncio.run(run())
