"""The shape of `routing.asyncapi_document` and `routing asyncapi`: a channel per exchange and queue,
AMQP bindings, operations, payloads, and the x- extensions for what the binding cannot say.
(tests/test_asyncapi_parser.py holds the documents to the official parser.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from examples import resize_worker, shop_topology
from routing import (
    Consumes,
    Exchange,
    Publishes,
    Queue,
    SchemaError,
    SchemaRegistry,
    Topology,
    TopologyError,
    asyncapi_document,
)
from routing.cli import main

SHOP = asyncapi_document(shop_topology.topology, publishes=shop_topology.publishes)


def amqp(doc: dict[str, Any], channel: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["channels"][channel]["bindings"]["amqp"]
    return found


def resolve(doc: dict[str, Any], ref: dict[str, str]) -> Any:
    node: Any = doc
    for part in ref["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_a_channel_per_exchange_and_per_queue() -> None:
    topo = shop_topology.topology
    expected = {f"exchange.{e.name}" for e in topo.exchanges} | {f"queue.{q.name}" for q in topo.queues}
    assert set(SHOP["channels"]) == expected
    assert SHOP["asyncapi"] == "3.0.0"


def test_exchange_binding_says_type_durability_auto_delete_vhost() -> None:
    doc = asyncapi_document(
        Topology.of(Exchange("t.x", "topic", durable=False, auto_delete=True)), vhost="shop"
    )
    assert amqp(doc, "exchange.t.x") == {
        "is": "routingKey",
        "exchange": {"name": "t.x", "type": "topic", "durable": False, "autoDelete": True, "vhost": "shop"},
        "bindingVersion": "0.3.0",
    }
    assert doc["channels"]["exchange.t.x"]["address"] == "t.x"


def test_queue_binding_and_its_arguments() -> None:
    binding = amqp(SHOP, "queue.orders.created")
    assert binding["is"] == "queue" and "exchange" not in binding
    assert binding["queue"] == {
        "name": "orders.created",
        "durable": True,
        "exclusive": False,
        "autoDelete": False,
        "vhost": "/",
    }
    assert binding["x-arguments"] == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "shop.dlx",
        "x-dead-letter-routing-key": "orders.created",
        "x-delivery-limit": 5,
    }
    billing = amqp(SHOP, "queue.billing")["x-arguments"]
    assert billing == {"x-message-ttl": 60_000, "x-max-length": 1_000, "x-overflow": "reject-publish"}
    assert "x-arguments" not in amqp(SHOP, "queue.unrouted")


def test_dead_letter_and_alternate_exchanges_point_at_their_channels() -> None:
    letter = amqp(SHOP, "queue.orders.created")["x-dead-letter"]
    assert letter == {
        "exchange": "shop.dlx",
        "channel": {"$ref": "#/channels/exchange.shop.dlx"},
        "routingKey": "orders.created",
    }
    alternate = amqp(SHOP, "exchange.shop.events")["x-alternate-exchange"]
    assert alternate["name"] == "shop.unrouted"
    assert resolve(SHOP, alternate["channel"])["bindings"]["amqp"]["exchange"]["type"] == "fanout"
    assert amqp(SHOP, "exchange.shop.audit")["x-internal"] is True


def test_work_queues_dead_letter_through_the_default_exchange() -> None:
    doc = asyncapi_document(resize_worker.topology)
    letter = amqp(doc, "queue.resize")["x-dead-letter"]
    assert letter["routingKey"] == "resize.dead"
    default = resolve(doc, letter["channel"])
    assert default["address"] is None  # "" is no address
    assert default["bindings"]["amqp"]["exchange"]["type"] == "default"
    assert "exchange.amq.topic" not in doc["channels"]  # built-ins only where used


def test_exchange_to_queue_links_with_headers_arguments() -> None:
    links = SHOP["channels"]["exchange.shop.audit"]["x-bindings"]
    assert links == [
        {
            "destination": "audit.big-orders",
            "destinationType": "queue",
            "routingKey": "",
            "channel": {"$ref": "#/channels/queue.audit.big-orders"},
            "arguments": {"x-match": "any", "big": True, "priority": 9},
        },
        {
            "destination": "audit.eu",
            "destinationType": "queue",
            "routingKey": "",
            "channel": {"$ref": "#/channels/queue.audit.eu"},
            "arguments": {"x-match": "all", "region": "eu"},
        },
    ]
    to_exchange = [
        b for b in SHOP["channels"]["exchange.shop.events"]["x-bindings"] if b["destination"] == "shop.audit"
    ]
    assert to_exchange == [
        {
            "destination": "shop.audit",
            "destinationType": "exchange",
            "routingKey": "order.#",
            "channel": {"$ref": "#/channels/exchange.shop.audit"},
        }
    ]


def test_publishes_is_a_send_operation_with_its_routing_key_and_headers() -> None:
    op = SHOP["operations"]["send.shop.events.order.created"]
    assert op["action"] == "send"
    assert op["channel"] == {"$ref": "#/channels/exchange.shop.events"}
    assert op["bindings"]["amqp"] == {
        "cc": ["order.created"],
        "deliveryMode": 2,
        "bindingVersion": "0.3.0",
        "x-headers": {"region": "eu", "big": True},
    }
    (message,) = op["messages"]
    assert resolve(SHOP, resolve(SHOP, message))["name"] == "order.created"


def test_a_workers_handlers_are_receive_operations_with_the_registered_schema() -> None:
    consumes, sends = resize_worker.app.operations("resize")
    assert consumes == (Consumes("resize", "task.resize_image", description="handled by resize"),)
    publishes = (*resize_worker.publishes, *sends)
    doc = asyncapi_document(resize_worker.topology, publishes=publishes, consumes=consumes)
    op = doc["operations"]["receive.resize.task.resize_image"]
    assert op["action"] == "receive" and op["bindings"]["amqp"]["ack"] is True
    retry, dead = (
        o for o in doc["operations"].values() if o["channel"]["$ref"] == "#/channels/exchange.default"
    )
    delays = resize_worker.app.retry.delays_ms
    assert retry["bindings"]["amqp"]["cc"] == [f"resize.retry.{d}ms" for d in delays] and len(delays) == 4
    assert dead["bindings"]["amqp"]["cc"] == ["resize.dead"] and "dead letter" in dead["description"]
    message = resolve(doc, resolve(doc, op["messages"][0]))
    assert message["contentType"] == "application/cloudevents+json"
    assert message["bindings"]["amqp"]["messageType"] == "task.resize_image"
    envelope, own = message["payload"]["allOf"]
    assert "specversion" in resolve(doc, envelope)["properties"]
    assert own["properties"]["type"] == {"const": "task.resize_image"}
    data = resolve(doc, own["properties"]["data"])
    bundled = SchemaRegistry.bundled().schema("task.resize_image")
    assert data["properties"] == bundled["properties"] and "$schema" not in data
    # the same message on the exchange it is published to: one component, two channels
    assert doc["channels"]["exchange.jobs"]["messages"] == doc["channels"]["queue.resize"]["messages"]


def test_an_event_type_without_schema_gets_the_envelope_with_unchecked_data() -> None:
    message = SHOP["components"]["messages"]["order.paid"]
    data = message["payload"]["allOf"][1]["properties"]["data"]
    assert "$ref" not in data


def test_ids_are_made_from_names_and_never_collide() -> None:
    topo = Topology.of(Exchange("a b"), Exchange("a_b"), Queue("a b"), Exchange("{x}"))
    doc = asyncapi_document(topo)
    assert set(doc["channels"]) == {"exchange.a_b", "exchange.a_b_2", "exchange.x", "queue.a_b"}
    assert doc["channels"]["exchange.x"]["address"] is None  # braces would be parameters
    assert [
        c["bindings"]["amqp"]["exchange"]["name"] for k, c in doc["channels"].items() if k != "queue.a_b"
    ] == [
        "a b",
        "a_b",
        "{x}",
    ]


def test_local_refs_of_a_schema_are_rewritten_to_where_it_sits(tmp_path: Path) -> None:
    schema = {
        "$defs": {"n": {"type": "integer"}},
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/n"}},
    }
    (tmp_path / "t.count.schema.json").write_text(json.dumps(schema))
    registry = SchemaRegistry.from_directory(tmp_path)
    doc = asyncapi_document(
        Topology.of(Exchange("c")), publishes=[Publishes("c", "k", "t.count")], registry=registry
    )
    embedded = doc["components"]["schemas"]["t.count.schema"]
    assert embedded["properties"]["n"] == {"$ref": "#/components/schemas/t.count.schema/$defs/n"}
    assert resolve(doc, embedded["properties"]["n"]) == {"type": "integer"}


def test_a_schema_and_the_sibling_files_it_refers_to_are_embedded_once(tmp_path: Path) -> None:
    shared = {"$ref": "common.json#/$defs/level"}
    for kind in ("a.one", "a.two"):
        schema = {"type": "object", "properties": {"level": shared}}
        (tmp_path / f"{kind}.schema.json").write_text(json.dumps(schema))
    common = {"$defs": {"level": {"enum": ["info", "error"]}, "loop": {"$ref": "a.one.schema.json"}}}
    (tmp_path / "common.json").write_text(json.dumps(common))
    registry = SchemaRegistry.from_directory(tmp_path)
    publishes = [Publishes("c", "k", "a.one"), Publishes("c", "k", "a.two")]
    doc = asyncapi_document(Topology.of(Exchange("c")), publishes=publishes, registry=registry)
    schemas = doc["components"]["schemas"]
    assert sorted(schemas) == ["a.one.schema", "a.two.schema", "common", "envelope.schema"]
    for kind in ("a.one", "a.two"):
        level = schemas[f"{kind}.schema"]["properties"]["level"]
        assert level == {"$ref": "#/components/schemas/common/$defs/level"}
    assert resolve(doc, level) == {"enum": ["info", "error"]}
    assert schemas["common"]["$defs"]["loop"] == {
        "$ref": "#/components/schemas/a.one.schema"
    }  # a cycle is fine
    assert "file:" not in json.dumps(doc)  # no local path in the document


def test_unknown_exchange_or_queue_is_refused() -> None:
    with pytest.raises(TopologyError, match="exchange 'nope' is not in the topology"):
        asyncapi_document(shop_topology.topology, publishes=[Publishes("nope", "k", "t")])
    with pytest.raises(TopologyError, match="queue 'nope' is not in the topology"):
        asyncapi_document(shop_topology.topology, consumes=[Consumes("nope", "t")])
    with pytest.raises(TopologyError, match="event_type must be a non-empty string"):
        Publishes("x", "k", "")
    with pytest.raises(TopologyError, match="expected Publishes or Consumes"):
        asyncapi_document(shop_topology.topology, publishes=["x"])  # type: ignore[list-item]


def test_publishes_is_a_frozen_hashable_value() -> None:
    p = Publishes("x", "k", "t", headers={"a": [1]})
    assert hash(p) == hash(Publishes("x", "k", "t", headers={"a": [1]}))
    with pytest.raises(AttributeError):
        p.exchange = "y"  # type: ignore[misc]


# ------------------------------------------------------------------ the command


def test_command_uses_the_modules_publishes_and_the_worker(tmp_path: Path) -> None:
    out = tmp_path / "doc.json"
    args = ["asyncapi", "examples.resize_worker:topology", "--worker", "examples.resize_worker:app", "resize"]
    result = CliRunner().invoke(main, [*args, "--title", "Resize", "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["info"]["title"] == "Resize"
    assert sorted(doc["operations"]) == [
        "receive.resize.task.resize_image",
        "send.default.task.resize_image",  # the retry copies
        "send.default.task.resize_image_2",  # the dead letters
        "send.jobs.task.resize_image",
    ]


def test_command_prints_yaml_and_json_alike() -> None:
    yaml = pytest.importorskip("yaml")
    ref = "examples.shop_topology:topology"
    as_json = CliRunner().invoke(main, ["asyncapi", ref])
    as_yaml = CliRunner().invoke(main, ["asyncapi", ref, "--format", "yaml"])
    assert as_json.exit_code == 0 and as_yaml.exit_code == 0, as_json.output + as_yaml.output
    assert (
        yaml.safe_load(as_yaml.output)
        == json.loads(as_json.output)
        == SHOP | {"info": json.loads(as_json.output)["info"]}
    )


def test_command_refuses_what_is_not_publishes() -> None:
    result = CliRunner().invoke(
        main,
        ["asyncapi", "examples.shop_topology:topology", "--publishes", "examples.shop_topology:topology"],
    )
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == "Error: examples.shop_topology:topology: is of type Topology, not a tuple of Publishes or a function that returns one"
    )


def test_publishes_differing_only_in_the_key_are_one_operation() -> None:
    topo = Topology.of(Exchange("logs", "topic"))
    same = [Publishes("logs", key, "log.record") for key in ("a.error", "b.info", "a.error")]
    doc = asyncapi_document(topo, publishes=[*same, Publishes("logs", "c", "log.record", headers={"h": 1})])
    first, second = doc["operations"].values()
    assert first["bindings"]["amqp"]["cc"] == ["a.error", "b.info"]
    assert second["bindings"]["amqp"]["cc"] == ["c"] and second["bindings"]["amqp"]["x-headers"] == {"h": 1}


def test_command_calls_a_demos_publishes_function() -> None:
    result = CliRunner().invoke(main, ["asyncapi", "routing.demos.topic_logs:TOPOLOGY"])
    assert result.exit_code == 0, result.output
    (op,) = json.loads(result.output)["operations"].values()
    assert op["bindings"]["amqp"]["cc"][:2] == ["billing.error", "billing.info"]


def test_a_reference_by_anchor_is_refused_by_name(tmp_path: Path) -> None:
    schema = {"$defs": {"n": {"$anchor": "n", "type": "integer"}}, "properties": {"n": {"$ref": "#n"}}}
    (tmp_path / "t.anchor.schema.json").write_text(json.dumps(schema))
    registry = SchemaRegistry.from_directory(tmp_path)
    with pytest.raises(SchemaError, match="names an anchor; use a JSON pointer"):
        asyncapi_document(
            Topology.of(Exchange("c")), publishes=[Publishes("c", "k", "t.anchor")], registry=registry
        )
    with pytest.raises(SchemaError, match="no schema document is known as 'file:///nope"):
        registry.contents("file:///nope.json")
