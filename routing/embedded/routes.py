"""Remembered routes: `walk()` decides once per (exchange, routing key).

Only routes that depend on nothing but the key are kept: no `CC`/`BCC` (the caller skips
those) and no headers exchange reachable from the start exchange, through exchange-to-exchange
bindings or alternate exchanges. Any change to exchanges, queues or bindings forgets all.
"""

from __future__ import annotations

from collections.abc import Collection

from routing.pipeline import RoutingState
from routing.topology import DestinationType, ExchangeType

__all__ = ["MAX_ROUTES", "RouteCache"]

MAX_ROUTES = 10_000  # keys can be unbounded (ids in keys): start over past this


class RouteCache:
    __slots__ = ("_broker", "_plain", "_routes")

    def __init__(self, broker: RoutingState) -> None:
        self._broker = broker
        self._routes: dict[tuple[str, str], Collection[str]] = {}
        self._plain: dict[str, bool] = {}

    def get(self, exchange: str, routing_key: str) -> Collection[str] | None:
        return self._routes.get((exchange, routing_key))

    def put(self, exchange: str, routing_key: str, queues: Collection[str]) -> None:
        if not self._headers_free(exchange):
            return
        if len(self._routes) >= MAX_ROUTES:
            self._routes.clear()
        self._routes[(exchange, routing_key)] = queues

    def clear(self) -> None:
        self._routes.clear()
        self._plain.clear()

    def _headers_free(self, start: str) -> bool:
        """Whether no headers exchange can be reached from `start`."""
        plain = self._plain.get(start)
        if plain is None:
            broker = self._broker
            seen, todo, plain = {start}, [start], True
            while todo and plain:
                x = broker.exchange(todo.pop())
                if x is None:
                    continue
                plain = x.type is not ExchangeType.HEADERS
                nexts = [
                    b.destination
                    for b in broker.table(x.name)
                    if b.destination_type is DestinationType.EXCHANGE
                ]
                if x.alternate_exchange is not None:
                    nexts.append(x.alternate_exchange)
                todo += [n for n in nexts if n not in seen]
                seen.update(nexts)
            self._plain[start] = plain
        return plain
