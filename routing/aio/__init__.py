"""The toolkit for asyncio services: transports, the publisher and workers, on one event loop.

    import routing.aio

    async with routing.aio.open_transport("amqp://guest:guest@localhost/") as transport:
        publisher = routing.aio.Publisher(transport)
        publication = await publisher.emit("jobs", "resize", "task.resize_image", job)
        outcome = await publication          # Outcome.CONFIRMED once the broker took it

`memory://` is the embedded broker (shared with the blocking transports of this process
and URL), `amqp://`/`amqps://` RabbitMQ over pika's asyncio adapter.
"""

from routing.aio.publisher import Publisher
from routing.transport.aio import (
    AsyncConsumer,
    AsyncPublication,
    AsyncTransport,
    Opening,
    open_transport,
)
from routing.worker.async_runner import AsyncWorker

__all__ = [
    "AsyncConsumer",
    "AsyncPublication",
    "AsyncTransport",
    "AsyncWorker",
    "Opening",
    "Publisher",
    "open_transport",
]
