"""The RabbitMQ side of declaring (`routing.transport._declare` walks the topology): the
channel operations, and what exists read from the management HTTP API.

AMQP 0-9-1 can ask whether an exchange or queue exists (a passive declare) but not
whether a binding does, so bindings are looked up in the management API when it answers;
when it does not, `binding_exists` answers None. Free of pika: the transport supplies a
function that runs a call on a live channel.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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


class ChannelOps:
    """`routing.transport._declare.DeclareOps` over a pika-like channel. `run(what, call)`
    calls `call(channel)` on a live channel and turns a refusal into `ChannelClosed` (the
    transport reopens the channel). What exists beyond exchanges and queues is read through
    `existing`; without it, nothing is known."""

    def __init__(
        self, run: Callable[[str, Callable[[Any], Any]], Any], existing: ManagementBindings | None = None
    ) -> None:
        self._run = run
        self._existing = existing

    def reading(self, existing: ManagementBindings) -> ChannelOps:
        """The same operations, reading what exists through `existing`."""
        return ChannelOps(self._run, existing)

    def binding_exists(self, binding: Binding) -> bool | None:
        known = None if self._existing is None else self._existing.existing(binding.source)
        if known is None:
            return None
        b = binding
        return _binding_key(str(b.destination_type), b.destination, b.routing_key, b.arguments) in known

    def definitions(self) -> Any:
        return None if self._existing is None else self._existing.definitions()

    def _exists(self, what: str, call: Callable[[Any], Any]) -> bool:
        try:
            self._run(what, call)
        except ChannelClosed as exc:
            if exc.code == 404:  # a passive declare of something missing
                return False
            raise
        return True

    def exchange_exists(self, name: str) -> bool:
        return self._exists(f"check exchange {name!r}", lambda ch: ch.exchange_declare(name, passive=True))

    def queue_exists(self, name: str) -> bool:
        return self._exists(f"check queue {name!r}", lambda ch: ch.queue_declare(name, passive=True))

    def declare_exchange(self, e: Exchange) -> None:
        self._run(
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

    def declare_queue(self, q: Queue) -> None:
        self._run(
            f"declare queue {q.name!r}",
            lambda ch: ch.queue_declare(
                q.name,
                durable=q.durable,
                exclusive=q.exclusive,
                auto_delete=q.auto_delete,
                arguments=q.declare_arguments or None,
            ),
        )

    def bind(self, b: Binding) -> None:
        args = thaw(b.arguments) or None
        if b.destination_type == "exchange":
            call = lambda ch: ch.exchange_bind(b.destination, b.source, b.routing_key, arguments=args)  # noqa: E731
        else:
            call = lambda ch: ch.queue_bind(b.destination, b.source, b.routing_key, arguments=args)  # noqa: E731
        self._run(f"bind {b.describe()}", call)
