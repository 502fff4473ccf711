"""A topology as one AsyncAPI 3.0 document: what is published where, and what it carries.

    asyncapi_document(topology, publishes=(Publishes("shop.events", "order.created", "order.created"),),
             consumes=(Consumes("orders.created", "order.created"),), registry=registry)

Every exchange and every queue is a channel with its AMQP channel binding (version 0.3.0:
exchange type, durability, auto-delete, vhost; `is: routingKey` for an exchange, `is: queue`
for a queue). Built-in exchanges (the default one, `amq.*`) get a channel only where something
uses them. What the binding cannot say is written as extensions: a queue's `x-arguments` (the
table RabbitMQ is sent, TTLs and limits included), `x-dead-letter` and an exchange's
`x-alternate-exchange` (each pointing at the channel of that exchange), `x-internal`, an
exchange's `x-arguments`, and on each exchange's channel `x-bindings`: the links to queues and
exchanges with their routing key and arguments (a headers binding's `x-match` rule included).

A `Publishes` is a send operation on an exchange's channel (its routing key in the binding's
`cc`; those that differ only in the key are one operation); a `Consumes` is a receive operation on a queue's channel (a worker `App`'s handlers on
its queue). Each event type is one message whose payload is the CloudEvents envelope schema
with the type's registered `data` schema in place of `data`. Schemas are embedded as the
registry holds them (JSON Schema 2020-12, read by AsyncAPI as its own schema format), with the
sibling documents they refer to; each `$ref` is rewritten to point inside the document.

Channel, operation and message ids are made from names (AsyncAPI allows only letters, digits,
`.`, `-` and `_` in them); the names themselves are in each channel's `address` and binding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from routing._asyncapi_schemas import Components
from routing._frozen import thaw
from routing.errors import TopologyError
from routing.operations import Consumes, Publishes
from routing.schemas import ENVELOPE, SchemaRegistry
from routing.topology import (
    DEFAULT_EXCHANGE,
    DestinationType,
    Exchange,
    ExchangeType,
    Queue,
    Topology,
)

__all__ = ["ASYNCAPI_VERSION", "BINDING_VERSION", "asyncapi_document"]

ASYNCAPI_VERSION = "3.0.0"
BINDING_VERSION = "0.3.0"  # the AMQP 0-9-1 bindings, https://github.com/asyncapi/bindings/tree/master/amqp
_CONTENT_TYPE = "application/cloudevents+json"  # what routing.envelope.to_properties sets
_NOT_ID = re.compile(r"[^A-Za-z0-9._-]+")


def asyncapi_document(
    topology: Topology,
    *,
    publishes: Iterable[Publishes] = (),
    consumes: Iterable[Consumes] = (),
    registry: SchemaRegistry | None = None,
    title: str = "routing topology",
    version: str = "1.0.0",
    vhost: str = "/",
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document (a JSON-ready dict) for `topology` and who publishes and
    consumes what on it. `registry` holds the schemas (the bundled ones by default); an event
    type it has no schema for gets the envelope with unchecked `data`."""
    publishes, consumes = tuple(publishes), tuple(consumes)
    for item in (*publishes, *consumes):
        if not isinstance(item, Publishes | Consumes):
            raise TopologyError(f"expected Publishes or Consumes values, got {type(item).__name__}")
    return _Builder(topology, registry or SchemaRegistry.bundled(allow_unknown=True), vhost).build(
        publishes, consumes, title, version
    )


class _Builder:
    """One document's ids and sections, filled in as the topology is walked."""

    def __init__(self, topology: Topology, registry: SchemaRegistry, vhost: str) -> None:
        self.topology, self.registry, self.vhost = topology, registry, vhost
        self.taken: set[str] = set()
        self.channel_ids: dict[tuple[str, str], str] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.message_ids: dict[str, str] = {}
        self.messages: dict[str, Any] = {}
        self.components = Components(registry, self.new_id)
        self.operations: dict[str, Any] = {}

    def build(
        self, publishes: tuple[Publishes, ...], consumes: tuple[Consumes, ...], title: str, version: str
    ) -> dict[str, Any]:
        for e in self.topology.exchanges:
            self.exchange_channel(e.name)
        for q in self.topology.queues:
            self.queue_channel(q)
        for b in self.topology.bindings:
            target = (
                self.exchange_channel(b.destination)
                if b.destination_type is DestinationType.EXCHANGE
                else self.channel_ids["queue", b.destination]
            )
            link: dict[str, Any] = {
                "destination": b.destination,
                "destinationType": str(b.destination_type),
                "routingKey": b.routing_key,
                "channel": _ref("channels", target),
            }
            if b.arguments:
                link["arguments"] = thaw(b.arguments)
            source = self.channels[self.exchange_channel(b.source)]
            source.setdefault("x-bindings", []).append(link)
        keys: dict[Publishes, list[str]] = {}  # one operation for the keys one kind of event goes with
        for p in publishes:
            if p.event_type is None:
                raise TopologyError(f"{p.label}: an AsyncAPI operation needs the event type it publishes")
            same = keys.setdefault(replace(p, routing_key="", name=None), [])
            if p.routing_key not in same:
                same.append(p.routing_key)
        for p, routing_keys in keys.items():
            self.publish_operation(p, routing_keys)
        for c in consumes:
            self.consume_operation(c)
        out: dict[str, Any] = {
            "asyncapi": ASYNCAPI_VERSION,
            "info": {
                "title": title,
                "version": version,
                "description": "Exchanges and queues as channels, generated by `routing asyncapi`.",
            },
            "defaultContentType": _CONTENT_TYPE,
            "channels": self.channels,
            "operations": self.operations,
            "components": {"messages": self.messages, "schemas": self.components.schemas},
        }
        return out

    # ---------------------------------------------------------------- ids

    def new_id(self, *parts: str) -> str:
        """An id of `parts` joined by dots, each part cleaned of what ids may not hold."""
        base = ".".join(_NOT_ID.sub("_", part).strip("_") or "_" for part in parts)
        found, n = base, 2
        while found in self.taken:
            found, n = f"{base}_{n}", n + 1
        self.taken.add(found)
        return found

    # ---------------------------------------------------------------- channels

    def exchange_channel(self, name: str) -> str:
        """The id of `name`'s channel, made on first use (so a built-in gets one only when used)."""
        found = self.channel_ids.get(("exchange", name))
        if found is not None:
            return found
        e = self.topology.exchange(name)
        if e is None:
            known = ", ".join(repr(x.name) for x in self.topology.exchanges) or "none of its own"
            raise TopologyError(f"exchange {name!r} is not in the topology (it has {known})")
        shown = name if name != DEFAULT_EXCHANGE else "default"
        cid = self.channel_ids["exchange", name] = self.new_id("exchange", shown)
        amqp: dict[str, Any] = {
            "is": "routingKey",
            "exchange": {
                "name": name,
                "type": "default" if name == DEFAULT_EXCHANGE else str(e.type),
                "durable": e.durable,
                "autoDelete": e.auto_delete,
                "vhost": self.vhost,
            },
            "bindingVersion": BINDING_VERSION,
        }
        if e.internal:
            amqp["x-internal"] = True
        arguments = thaw(e.arguments)
        if arguments:
            amqp["x-arguments"] = arguments
        self.channels[cid] = {
            "address": _address(name),
            "title": shown,
            "description": _exchange_text(e),
            "messages": {},
            "bindings": {"amqp": amqp},
        }
        if e.alternate_exchange is not None:  # after the entry: the alternate may point back here
            amqp["x-alternate-exchange"] = {
                "name": e.alternate_exchange,
                "channel": _ref("channels", self.exchange_channel(e.alternate_exchange)),
            }
        return cid

    def queue_channel(self, q: Queue) -> None:
        cid = self.channel_ids["queue", q.name] = self.new_id("queue", q.name)
        amqp: dict[str, Any] = {
            "is": "queue",
            "queue": {
                "name": q.name,
                "durable": q.durable,
                "exclusive": q.exclusive,
                "autoDelete": q.auto_delete,
                "vhost": self.vhost,
            },
            "bindingVersion": BINDING_VERSION,
        }
        arguments = q.declare_arguments
        if arguments:
            amqp["x-arguments"] = arguments
        self.channels[cid] = {
            "address": _address(q.name),
            "title": q.name,
            "description": f"{q.type} queue {q.name!r}",
            "messages": {},
            "bindings": {"amqp": amqp},
        }
        if q.dead_letter_exchange is not None:
            letter: dict[str, Any] = {
                "exchange": q.dead_letter_exchange,
                "channel": _ref("channels", self.exchange_channel(q.dead_letter_exchange)),
            }
            if q.dead_letter_routing_key is not None:
                letter["routingKey"] = q.dead_letter_routing_key
            amqp["x-dead-letter"] = letter

    # ---------------------------------------------------------------- operations and messages

    def publish_operation(self, p: Publishes, routing_keys: list[str]) -> None:
        assert p.event_type is not None  # checked by the caller
        event_type = p.event_type
        cid = self.exchange_channel(p.exchange)
        amqp: dict[str, Any] = {"cc": routing_keys, "deliveryMode": 2, "bindingVersion": BINDING_VERSION}
        shown = p.exchange or "default"
        keys = ", ".join(map(repr, routing_keys))
        where = "the default exchange" if p.exchange == DEFAULT_EXCHANGE else repr(p.exchange)
        summary = (
            f"Publish {event_type} to {where} with routing key{'s' if len(routing_keys) > 1 else ''} {keys}"
        )
        if p.headers:
            amqp["x-headers"] = thaw(p.headers)
            summary += " and headers " + ", ".join(f"{k}={v!r}" for k, v in amqp["x-headers"].items())
        self.operation("send", ("send", shown, event_type), cid, event_type, summary, p.description, amqp)

    def consume_operation(self, c: Consumes) -> None:
        found = self.channel_ids.get(("queue", c.queue))
        if found is None:
            known = ", ".join(repr(q.name) for q in self.topology.queues) or "none"
            raise TopologyError(f"queue {c.queue!r} is not in the topology (it has {known})")
        amqp = {"ack": True, "bindingVersion": BINDING_VERSION}
        summary = f"Handle {c.event_type} from queue {c.queue!r}"
        self.operation(
            "receive", ("receive", c.queue, c.event_type), found, c.event_type, summary, c.description, amqp
        )

    def operation(
        self,
        action: str,
        wanted: tuple[str, ...],
        cid: str,
        event_type: str,
        summary: str,
        text: str,
        amqp: dict[str, Any],
    ) -> None:
        mid = self.message(event_type)
        channel = self.channels[cid]
        channel["messages"][mid] = {"$ref": f"#/components/messages/{mid}"}
        op: dict[str, Any] = {
            "action": action,
            "channel": _ref("channels", cid),
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{cid}/messages/{mid}"}],
            "bindings": {"amqp": amqp},
        }
        if text:
            op["description"] = text
        self.operations[self.new_id(*wanted)] = op

    def message(self, event_type: str) -> str:
        """The id of `event_type`'s message, made with its payload schema on first use."""
        found = self.message_ids.get(event_type)
        if found is not None:
            return found
        mid = self.message_ids[event_type] = self.new_id(event_type)
        envelope = self.schema_id(ENVELOPE)
        data: dict[str, Any] = {"description": "No schema is registered for this event type."}
        if event_type in self.registry.types:
            data = _ref("schemas", self.schema_id(event_type))
        payload = {
            "allOf": [
                _ref("schemas", envelope),
                {"type": "object", "properties": {"type": {"const": event_type}, "data": data}},
            ]
        }
        self.messages[mid] = {
            "name": event_type,
            "title": event_type,
            "contentType": _CONTENT_TYPE,
            "payload": payload,
            "bindings": {"amqp": {"messageType": event_type, "bindingVersion": BINDING_VERSION}},
        }
        return mid

    def schema_id(self, name: str) -> str:
        return self.components.add(self.registry.schema(name))


def _ref(section: str, key: str) -> dict[str, str]:
    where = "components/schemas" if section == "schemas" else section
    return {"$ref": f"#/{where}/{key}"}


def _address(name: str) -> str | None:
    """A channel's address; None (unknown) for the default exchange's "" and for a name with
    braces, which AsyncAPI would read as parameters."""
    return None if not name or "{" in name or "}" in name else name


def _exchange_text(e: Exchange) -> str:
    if e.name == DEFAULT_EXCHANGE:
        return "the default exchange: routes a message to the queue its routing key names"
    kind = "internal " if e.internal else ""
    text = f"{e.type} exchange {e.name!r}"
    return kind + text + (" (routes by headers)" if e.type is ExchangeType.HEADERS else "")
