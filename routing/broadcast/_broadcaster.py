"""`Broadcaster`: `cache.invalidate` and `config.changed` events onto a fanout exchange."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from routing.broadcast._core import CACHE_INVALIDATE, CONFIG_CHANGED, Numbering, invalidation
from routing.envelope import DEFAULT_SOURCE
from routing.publisher import Publisher
from routing.schemas import SchemaRegistry
from routing.topology import Exchange, ExchangeType, Overflow, Queue, Topology
from routing.transport.base import Publication, Transport

__all__ = ["Broadcaster", "BroadcasterBase", "broadcast_exchange", "listener_topology"]


def broadcast_exchange(name: str) -> Exchange:
    """The fanout exchange broadcasters and listeners declare alike (durable)."""
    return Exchange(name, ExchangeType.FANOUT)


class BroadcasterBase:
    """What the blocking and asyncio broadcasters share: the exchange, the publisher's id
    and sequence, and the events."""

    def __init__(self, exchange: str, publisher: str | None) -> None:
        self.exchange = exchange
        self.topology = Topology.of(broadcast_exchange(exchange))
        self.numbering = Numbering(publisher)

    @property
    def publisher(self) -> str:
        """This broadcaster's id, in every event it sends (with its sequence number)."""
        return self.numbering.publisher

    @staticmethod
    def _invalidation(
        cache: str,
        keys: Iterable[str] | str | None,
        pattern: str | None,
        reason: str | None,
        version: int | None,
    ) -> tuple[str, dict[str, Any]]:
        named = [keys] if isinstance(keys, str) else keys
        return CACHE_INVALIDATE, invalidation(cache, named, pattern, reason, version)

    @staticmethod
    def _config(service: str, keys: Iterable[str] | str, version: int | str) -> tuple[str, dict[str, Any]]:
        named = [keys] if isinstance(keys, str) else list(keys)
        return CONFIG_CHANGED, {"service": service, "keys": named, "version": version}


class Broadcaster(BroadcasterBase):
    """Publishes validated, confirmed broadcast events through `transport` to the fanout
    `exchange` (declared here). Each event carries this broadcaster's id and its sequence
    number (the CloudEvents extensions `publisherid` and `sequence`), which let listeners
    see a lost event. `wait=False` sends without waiting for the confirm: `flush()` then.
    `ValidationError` (nothing sent) for an event the bundled schemas refuse."""

    def __init__(
        self,
        transport: Transport,
        *,
        exchange: str,
        source: str = DEFAULT_SOURCE,
        publisher: str | None = None,
        registry: SchemaRegistry | None = None,
    ) -> None:
        super().__init__(exchange, publisher)
        self.transport = transport
        self._publisher = Publisher(transport, source=source, registry=registry, persistent=False)
        transport.declare(self.topology)

    def invalidate(
        self,
        cache: str,
        keys: Iterable[str] | str | None = None,
        *,
        pattern: str | None = None,
        reason: str | None = None,
        version: int | None = None,
        wait: bool = True,
    ) -> Publication:
        """Tell every listener to drop `keys` (or those matching the glob `pattern`) from `cache`."""
        return self._send(*self._invalidation(cache, keys, pattern, reason, version), wait)

    def config_changed(
        self, service: str, keys: Iterable[str] | str, version: int | str, *, wait: bool = True
    ) -> Publication:
        """Tell every listener that `service`'s config `keys` changed, now at `version`."""
        return self._send(*self._config(service, keys, version), wait)

    def flush(self, timeout: float | None = None) -> list[Publication]:
        """Wait for the confirms; the publications that were not confirmed."""
        return self._publisher.flush(timeout)

    def _send(self, event_type: str, data: dict[str, Any], wait: bool) -> Publication:
        publication = self._publisher.emit(
            self.exchange, "", event_type, data, extensions=self.numbering.extensions()
        )
        if wait:
            self._publisher.flush()
            publication.raise_for_outcome()
        return publication


def listener_topology(exchange: str, queue: str, max_length: int) -> Topology:
    """What a listener declares: the exchange; its own exclusive, auto-delete queue bound to
    it, at most `max_length` long, dropping its oldest into `<queue>.overflow` when full
    (RabbitMQ dead-letters what `drop-head` drops, reason `maxlen`), which holds the last one:
    a signal that the listener fell behind, read with the sequence jumps it explains."""
    ex = broadcast_exchange(exchange)
    overflow = Queue(f"{queue}.overflow", durable=False, exclusive=True, auto_delete=True, max_length=1)
    main = Queue(
        queue,
        durable=False,
        exclusive=True,
        auto_delete=True,
        max_length=max_length,
        overflow=Overflow.DROP_HEAD,
        dead_letter_exchange="",
        dead_letter_routing_key=overflow.name,
    )
    return Topology.of(ex, overflow, main, ex.bind(main))
