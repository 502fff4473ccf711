"""The channel methods that carry a field table (declare, bind, unbind), once for both
channel kinds: the arguments are encoded with our codec (`_encode`), and each kind sends
them its own way (`_send_rpc`: the blocking channel waits for the reply and returns it, the
asyncio one returns a future of it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pika import spec

from routing.topology import Binding
from routing.transport.rabbitmq import _encode


class ChannelMethods:
    """`exchange_declare`, `queue_declare`, the binds and unbinds, over `_send_rpc(like, payload,
    reply)`: send `like` (a pika method class) with the encoded `payload`, answer `reply`."""

    __slots__ = ()

    def _send_rpc(self, like: Any, payload: bytes, reply: Any) -> Any:
        raise NotImplementedError

    def exchange_declare(self, exchange: str, exchange_type: str = "direct", **options: Any) -> Any:
        payload = _encode.exchange_declare(exchange, exchange_type, **options)
        return self._send_rpc(spec.Exchange.Declare, payload, spec.Exchange.DeclareOk)

    def queue_declare(self, queue: str, **options: Any) -> Any:
        payload = _encode.queue_declare(queue, **options)
        return self._send_rpc(spec.Queue.Declare, payload, spec.Queue.DeclareOk)

    def queue_bind(
        self, queue: str, exchange: str, routing_key: str, arguments: Mapping[str, Any] | None = None
    ) -> Any:
        payload = _encode.bind(queue, exchange, routing_key, arguments)
        return self._send_rpc(spec.Queue.Bind, payload, spec.Queue.BindOk)

    def exchange_bind(
        self, destination: str, source: str, routing_key: str, arguments: Mapping[str, Any] | None = None
    ) -> Any:
        payload = _encode.bind(destination, source, routing_key, arguments)
        return self._send_rpc(spec.Exchange.Bind, payload, spec.Exchange.BindOk)

    def queue_unbind(
        self, queue: str, exchange: str, routing_key: str, arguments: Mapping[str, Any] | None = None
    ) -> Any:
        payload = _encode.bind(queue, exchange, routing_key, arguments, nowait_octet=False)
        return self._send_rpc(spec.Queue.Unbind, payload, spec.Queue.UnbindOk)

    def exchange_unbind(
        self, destination: str, source: str, routing_key: str, arguments: Mapping[str, Any] | None = None
    ) -> Any:
        payload = _encode.bind(destination, source, routing_key, arguments)
        return self._send_rpc(spec.Exchange.Unbind, payload, spec.Exchange.UnbindOk)

    def unbind(self, b: Binding) -> Any:
        """`queue.unbind` or `exchange.unbind`, as the binding's destination is."""
        if b.destination_type == "exchange":
            return self.exchange_unbind(b.destination, b.source, b.routing_key, b.arguments)
        return self.queue_unbind(b.destination, b.source, b.routing_key, b.arguments)
