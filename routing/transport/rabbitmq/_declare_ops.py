"""The RabbitMQ side of declaring (`routing.transport._declare` walks the topology): the
channel operations, and what exists read from the management HTTP API.

AMQP 0-9-1 can ask whether an exchange or queue exists (a passive declare) but not
whether a binding does, so bindings are looked up in the management API when it answers;
when it does not, `binding_exists` answers None. Free of pika: the transport supplies a
function that runs a call on a live channel. Each operation is built once (`_declare_queue`...)
and run by the blocking ops (`ChannelOps`) or awaited by the asyncio ones (`AsyncChannelOps`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from routing._frozen import thaw
from routing.diff import as_management_shows
from routing.errors import BrokerError, ChannelClosed
from routing.topology import Binding, Exchange, Queue
from routing.transport.rabbitmq._management import Management
from routing.transport.rabbitmq._url import Endpoint
from routing.urls import redact


def _binding_key(
    destination_type: str, destination: str, routing_key: str, arguments: Any
) -> tuple[str, ...]:
    args = as_management_shows(thaw(arguments or {}))
    return (destination_type, destination, routing_key, json.dumps(args, sort_keys=True))


class ManagementBindings:
    """Existing bindings by source exchange, read through the management API; None when it
    cannot be asked (plugin off, unreachable, no permission, no http(s) URL for it)."""

    def __init__(self, endpoint: Endpoint, timeout: float = 3.0) -> None:
        self._endpoint = endpoint
        self._timeout = timeout
        self._api: Management | None = None
        self._cache: dict[str, set[tuple[str, ...]]] = {}
        self._down = False

    def existing(self, source: str) -> set[tuple[str, ...]] | None:
        if self._down:
            return None
        if source not in self._cache:
            rows = self._ask(lambda api: api.bindings_from(source))
            if rows is None:
                return None
            self._cache[source] = {
                _binding_key(r["destination_type"], r["destination"], r["routing_key"], r.get("arguments"))
                for r in rows
            }
        return self._cache[source]

    @property
    def vhost(self) -> str:
        return self._endpoint.vhost

    def definitions(self) -> Any:
        """The vhost's definitions (`GET /api/definitions/{vhost}`), or None when not answered."""
        return self._ask(lambda api: api.definitions())

    def _ask(self, read: Callable[[Management], Any]) -> Any:
        """`read(api)`, or None from now on once the API has not answered."""
        if self._down:
            return None
        try:
            if self._api is None:
                self._api = Management.for_endpoint(self._endpoint, timeout=self._timeout)
            answer = read(self._api)
        except BrokerError as exc:
            answer, reason = None, str(exc)
        else:
            reason = "not found"
        if answer is None:
            logger.bind(url=redact(self._endpoint.management_url)).info(
                "management API not usable for declare: {}", reason
            )
            self._down = True
        return answer


# One channel operation of the declare walk: what it is (for errors) and the call on a channel.
Call = tuple[str, Callable[[Any], Any]]


def _check_exchange(name: str) -> Call:
    return f"check exchange {name!r}", lambda ch: ch.exchange_declare(name, passive=True)


def _check_queue(name: str) -> Call:
    return f"check queue {name!r}", lambda ch: ch.queue_declare(name, passive=True)


def _declare_exchange(e: Exchange) -> Call:
    return (
        f"declare exchange {e.name!r}",
        lambda ch: ch.exchange_declare(
            e.name,
            str(e.type),
            durable=e.durable,
            auto_delete=e.auto_delete,
            internal=e.internal,
            arguments=e.declare_arguments or None,
        ),
    )


def _declare_queue(q: Queue) -> Call:
    return (
        f"declare queue {q.name!r}",
        lambda ch: ch.queue_declare(
            q.name,
            durable=q.durable,
            exclusive=q.exclusive,
            auto_delete=q.auto_delete,
            arguments=q.declare_arguments or None,
        ),
    )


def _bind(b: Binding) -> Call:
    args = thaw(b.arguments) or None
    if b.destination_type == "exchange":
        call = lambda ch: ch.exchange_bind(b.destination, b.source, b.routing_key, arguments=args)  # noqa: E731
    else:
        call = lambda ch: ch.queue_bind(b.destination, b.source, b.routing_key, arguments=args)  # noqa: E731
    return f"bind {b.describe()}", call


def _absent(exc: ChannelClosed) -> bool:
    """False for the 404 of a passive declare of something missing; else raises `exc`."""
    if exc.code == 404:
        return False
    raise exc


class _Existing:
    """What exists beyond exchanges and queues, read through `existing` (the management API);
    without it, nothing is known."""

    def __init__(self, existing: ManagementBindings | None) -> None:
        self._existing = existing

    def _binding_exists(self, binding: Binding) -> bool | None:
        known = None if self._existing is None else self._existing.existing(binding.source)
        if known is None:
            return None
        b = binding
        return _binding_key(str(b.destination_type), b.destination, b.routing_key, b.arguments) in known

    def _definitions(self) -> Any:
        return None if self._existing is None else self._existing.definitions()


class ChannelOps(_Existing):
    """`routing.transport._declare.DeclareOps` over a pika-like channel. `run(what, call)`
    calls `call(channel)` on a live channel and turns a refusal into `ChannelClosed` (the
    transport reopens the channel)."""

    def __init__(
        self, run: Callable[[str, Callable[[Any], Any]], Any], existing: ManagementBindings | None = None
    ) -> None:
        super().__init__(existing)
        self._run = run

    def reading(self, existing: ManagementBindings) -> ChannelOps:
        """The same operations, reading what exists through `existing`."""
        return ChannelOps(self._run, existing)

    def binding_exists(self, binding: Binding) -> bool | None:
        return self._binding_exists(binding)

    def definitions(self) -> Any:
        return self._definitions()

    def _exists(self, call: Call) -> bool:
        try:
            self._run(*call)
        except ChannelClosed as exc:
            return _absent(exc)
        return True

    def exchange_exists(self, name: str) -> bool:
        return self._exists(_check_exchange(name))

    def queue_exists(self, name: str) -> bool:
        return self._exists(_check_queue(name))

    def declare_exchange(self, e: Exchange) -> None:
        self._run(*_declare_exchange(e))

    def declare_queue(self, q: Queue) -> None:
        self._run(*_declare_queue(q))

    def bind(self, b: Binding) -> None:
        self._run(*_bind(b))


class AsyncChannelOps(_Existing):
    """`routing.transport._declare.AsyncDeclareOps` over an asyncio channel: `run(what,
    call)` awaits `call(channel)` (which returns an awaitable). The management API is read
    in a worker thread, so the event loop goes on meanwhile."""

    def __init__(
        self,
        run: Callable[[str, Callable[[Any], Any]], Awaitable[Any]],
        existing: ManagementBindings | None = None,
    ) -> None:
        super().__init__(existing)
        self._run = run

    def reading(self, existing: ManagementBindings) -> AsyncChannelOps:
        return AsyncChannelOps(self._run, existing)

    async def binding_exists(self, binding: Binding) -> bool | None:
        if self._existing is None:
            return None
        return await asyncio.to_thread(self._binding_exists, binding)

    async def definitions(self) -> Any:
        if self._existing is None:
            return None
        return await asyncio.to_thread(self._definitions)

    async def _exists(self, call: Call) -> bool:
        try:
            await self._run(*call)
        except ChannelClosed as exc:
            return _absent(exc)
        return True

    async def exchange_exists(self, name: str) -> bool:
        return await self._exists(_check_exchange(name))

    async def queue_exists(self, name: str) -> bool:
        return await self._exists(_check_queue(name))

    async def declare_exchange(self, e: Exchange) -> None:
        await self._run(*_declare_exchange(e))

    async def declare_queue(self, q: Queue) -> None:
        await self._run(*_declare_queue(q))

    async def bind(self, b: Binding) -> None:
        await self._run(*_bind(b))
