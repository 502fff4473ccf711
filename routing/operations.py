"""What a system does with a topology, as frozen values: who publishes what where (`Publishes`)
and who consumes what from which queue (`Consumes`). A topology module may export a tuple of
`Publishes` as `publishes` beside its `topology`: `routing lint` checks where those messages
go, `routing asyncapi` documents them as operations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

from routing._frozen import freeze
from routing.errors import TopologyError

__all__ = ["Consumes", "Publishes"]


@dataclass(frozen=True, slots=True)
class Publishes:
    """A producer sends events of `event_type` (None: any, or plain messages) to `exchange`
    with `routing_key` and, for a headers exchange, `headers`; each message with a per-message
    TTL of `expiration` ms (the AMQP `expiration` property), or none. `name` says who."""

    exchange: str
    routing_key: str = ""
    event_type: str | None = None
    _: KW_ONLY
    headers: Mapping[str, Any] | None = None
    expiration: int | None = None
    name: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for field in ("exchange", "routing_key"):
            if not isinstance(getattr(self, field), str):
                raise TopologyError(f"Publishes: {field} must be a string, got {getattr(self, field)!r}")
        if self.event_type is not None:
            _check_text("Publishes", "event_type", self.event_type)
        e = self.expiration
        if e is not None and (isinstance(e, bool) or not isinstance(e, int) or e < 0):
            raise TopologyError(f"Publishes: expiration must be milliseconds >= 0 or None, got {e!r}")
        object.__setattr__(self, "headers", None if self.headers is None else freeze(dict(self.headers)))

    @property
    def label(self) -> str:
        """How findings name it: its `name`, else where it publishes."""
        where = repr(self.exchange) if self.exchange else "the default exchange"
        return self.name or f"publisher to {where} with key {self.routing_key!r}"


@dataclass(frozen=True, slots=True)
class Consumes:
    """Something consumes events of `event_type` from `queue`: a worker `App`'s handler run on
    that queue (`App.operations(queue)`)."""

    queue: str
    event_type: str
    _: KW_ONLY
    description: str = ""

    def __post_init__(self) -> None:
        _check_text("Consumes", "queue", self.queue)
        _check_text("Consumes", "event_type", self.event_type)


def _check_text(kind: str, name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise TopologyError(f"{kind}: {name} must be a non-empty string, got {value!r}")
