"""Reading and writing RabbitMQ's definitions format (routing.definitions).

The files in tests/data/definitions/ are real exports from RabbitMQ 3.10.8 of the topology in
examples/shop_topology.py, declared through the management API in a vhost renamed to `shop`
(password hashes removed): `GET /api/definitions`, `GET /api/definitions/{vhost}` and
`rabbitmqctl export_definitions -`. `transient_management.json` holds a non-durable exchange
and queue, an auto-delete queue and a binding from `amq.topic`.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import runpy
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pika
import pytest
import strategies
from broker_under_test import RABBITMQCTL, plain_amqp_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import topologies

from routing import DefinitionsError, Exchange, Queue, QueueType, Topology
from routing._frozen import thaw
from routing.definitions import dump_definitions, load_definitions, read_definitions, void_arguments

DATA = Path(__file__).parent / "data" / "definitions"
shop: Topology = runpy.run_path(str(Path(__file__).parents[1] / "examples" / "shop_topology.py"))["topology"]


def sample(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


# ------------------------------------------------------------ real exports


def test_management_export_loads_into_the_topology_that_was_declared() -> None:
    assert load_definitions(DATA / "shop_management.json", vhost="shop") == shop


def test_per_vhost_export_has_no_vhost_fields_and_loads_for_any_vhost_name() -> None:
    data = sample("shop_management_vhost.json")
    assert all("vhost" not in item for item in data["queues"] + data["exchanges"] + data["bindings"])
    assert load_definitions(data) == shop
    assert load_definitions(str(DATA / "shop_management_vhost.json"), vhost="shop") == shop


def test_rabbitmqctl_export_drops_internal_exchanges_and_the_error_says_so() -> None:
    data = sample("shop_rabbitmqctl.json")
    assert "shop.audit" not in {e["name"] for e in data["exchanges"]}  # the 3.10 quirk itself
    with pytest.raises(DefinitionsError) as caught:
        load_definitions(DATA / "shop_rabbitmqctl.json", vhost="shop")
    message = str(caught.value)
    assert "shop_rabbitmqctl.json" in message
    assert "'shop.audit'" in message
    assert "leaves internal exchanges out" in message


def test_rabbitmqctl_export_reads_the_queue_type_field() -> None:
    data = sample("shop_rabbitmqctl.json")
    data["bindings"] = [b for b in data["bindings"] if "shop.audit" not in (b["source"], b["destination"])]
    for q in data["queues"]:  # only the `type` field says what the queue is now
        q["arguments"].pop("x-queue-type", None)
    loaded = load_definitions(data, vhost="shop")
    assert loaded.queue("orders.created").type is QueueType.QUORUM  # type: ignore[union-attr]
    assert loaded.queue("billing").type is QueueType.CLASSIC  # type: ignore[union-attr]
    assert loaded.exchange("shop.events").internal is False  # type: ignore[union-attr]


def test_transient_auto_delete_and_builtin_source_binding() -> None:
    loaded = load_definitions(DATA / "transient_management.json", vhost="shop")
    assert loaded.exchange("transient.x") == Exchange("transient.x", "direct", durable=False)
    assert loaded.queue("transient.q") == Queue("transient.q", durable=False)
    assert loaded.queue("ad.q") == Queue("ad.q", auto_delete=True)
    assert [b.describe() for b in loaded.bindings] == [
        "amq.topic -> ad.q [k.#]",
        "transient.x -> transient.q [k]",
    ]


# ---------------------------------------------------------------- reading


def _two_vhosts() -> dict[str, Any]:
    data = sample("shop_management.json")
    data["queues"].append(
        {"name": "root-q", "vhost": "/", "durable": True, "auto_delete": False, "arguments": {}}
    )
    return data


def test_filters_to_the_vhost() -> None:
    data = _two_vhosts()
    assert load_definitions(data, vhost="/") == Topology.of(Queue("root-q"))
    assert load_definitions(data, vhost="shop") == shop


def test_a_vhost_the_file_does_not_have_is_an_error_naming_the_ones_it_has() -> None:
    with pytest.raises(DefinitionsError, match=r"nothing in vhost 'prod'.*'/', 'shop'"):
        load_definitions(_two_vhosts(), vhost="prod")


def test_an_empty_file_is_an_empty_topology() -> None:
    assert load_definitions({}) == Topology()
    assert load_definitions({"exchanges": [], "queues": [], "bindings": []}, vhost="other") == Topology()


def test_ignores_builtin_exchanges_default_bindings_and_everything_but_the_topology() -> None:
    data = {
        "users": [{"name": "guest"}],
        "policies": [{"name": "ha", "vhost": "/", "pattern": ".*", "definition": {}}],
        "exchanges": [
            {"name": "", "vhost": "/", "type": "direct"},
            {"name": "amq.topic", "vhost": "/", "type": "topic"},
            {"name": "logs", "vhost": "/", "type": "fanout"},
        ],
        "queues": [{"name": "q", "vhost": "/"}],
        "bindings": [
            {"source": "", "vhost": "/", "destination": "q", "destination_type": "queue", "routing_key": "q"},
            {
                "source": "logs",
                "vhost": "/",
                "destination": "q",
                "destination_type": "queue",
                "routing_key": "",
            },
        ],
    }
    logs, q = Exchange("logs", "fanout"), Queue("q")
    assert load_definitions(data) == Topology.of(logs, q, logs.bind(q))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", r"bad\.json: not valid JSON \(.* line 1 column 2\)"),
        ("[]", r"bad\.json: a definitions file is a JSON object .* not a list"),
        ('{"queues": {}}', r"bad\.json: 'queues' must be a list, not a dict"),
        ('{"queues": [1]}', r"bad\.json: queues\[0\] must be an object, not 1"),
        ('{"queues": [{"durable": true}]}', r"bad\.json: queues\[0\]: '\(no name\)': 'name' is missing"),
        (
            '{"queues": [{"name": "q", "durable": "yes"}]}',
            r"bad\.json: queues\[0\]: 'q': 'durable' must be a bool",
        ),
        (
            '{"queues": [{"name": "s", "arguments": {"x-queue-type": "stream"}}]}',
            r"bad\.json: queues\[0\]: queue 's' type: 'stream' is not one of classic, quorum",
        ),
        (
            '{"queues": [{"name": "qq", "durable": false, "arguments": {"x-queue-type": "quorum"}}]}',
            r"bad\.json: queues\[0\]: queue 'qq': quorum queues are always durable",
        ),
        (
            '{"queues": [{"name": "q", "type": "quorum", "arguments": {"x-queue-type": "classic"}}]}',
            r"bad\.json: queues\[0\]: queue 'q': type 'quorum' and x-queue-type 'classic' disagree",
        ),
        (
            '{"exchanges": [{"name": "d", "type": "x-delayed-message"}]}',
            r"bad\.json: exchanges\[0\]: exchange 'd' type: 'x-delayed-message' is not one of",
        ),
        (
            '{"bindings": [{"source": "nowhere", "destination": "q", "destination_type": "queue"}]}',
            r"bad\.json: binding 'nowhere' -> 'q': no exchange 'nowhere'",
        ),
        (
            '{"bindings": [{"source": "x", "destination": "q", "destination_type": "stream"}]}',
            r"bad\.json: bindings\[0\]: destination_type: 'stream' is not one of queue, exchange",
        ),
    ],
)
def test_bad_files_name_the_file_and_the_entity(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DefinitionsError, match=expected):
        load_definitions(path)


def test_missing_file_and_non_utf8_file(tmp_path: Path) -> None:
    with pytest.raises(DefinitionsError, match=r"nope\.json: no such file"):
        read_definitions(tmp_path / "nope.json")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"queues": [{"name": "caf\xe9"}]}')
    with pytest.raises(DefinitionsError, match=r"latin\.json: not UTF-8"):
        load_definitions(latin)


# ---------------------------------------------------------------- writing


def test_dump_is_the_minimal_management_shape() -> None:
    data = dump_definitions(shop)
    assert list(data) == ["exchanges", "queues", "bindings"]
    events = next(e for e in data["exchanges"] if e["name"] == "shop.events")
    assert events == {
        "name": "shop.events",
        "vhost": "/",
        "type": "topic",
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": {"alternate-exchange": "shop.unrouted"},
    }
    orders = next(q for q in data["queues"] if q["name"] == "orders.created")
    assert orders == {
        "name": "orders.created",
        "vhost": "/",
        "durable": True,
        "auto_delete": False,
        "arguments": {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": "shop.dlx",
            "x-dead-letter-routing-key": "orders.created",
            "x-delivery-limit": 5,
        },
    }
    audit = next(b for b in data["bindings"] if b["destination"] == "audit.eu")
    assert audit == {
        "source": "shop.audit",
        "vhost": "/",
        "destination": "audit.eu",
        "destination_type": "queue",
        "routing_key": "",
        "arguments": {"region": "eu", "x-match": "all"},
    }


def test_dump_matches_what_the_broker_exported_for_the_same_topology() -> None:
    def canonical(data: dict[str, Any]) -> dict[str, list[str]]:
        return {
            k: sorted(json.dumps(i, sort_keys=True) for i in data[k])
            for k in ("exchanges", "queues", "bindings")
        }

    assert canonical(dump_definitions(shop, vhost="shop")) == canonical(sample("shop_management.json"))


def test_dump_without_vhost_is_the_per_vhost_shape() -> None:
    data = dump_definitions(shop, vhost=None)
    assert all("vhost" not in item for section in data.values() for item in section)
    assert load_definitions(data, vhost="anything") == shop


def test_exclusive_queues_are_refused_or_skipped_with_their_bindings() -> None:
    fan, mine, shared = Exchange("fan", "fanout"), Queue("mine", exclusive=True), Queue("shared")
    topology = Topology.of(fan, mine, shared, fan.bind(mine), fan.bind(shared))
    with pytest.raises(DefinitionsError, match=r"queue 'mine' is exclusive: .* --skip-exclusive"):
        dump_definitions(topology)
    data = dump_definitions(topology, skip_exclusive=True)
    assert [q["name"] for q in data["queues"]] == ["shared"]
    assert [b["destination"] for b in data["bindings"]] == ["shared"]
    assert load_definitions(data) == Topology.of(fan, shared, fan.bind(shared))


# -------------------------------------------------------------- round trip


@settings(max_examples=300)
@given(topologies())
def test_round_trip_is_lossless(topology: Topology) -> None:
    assert load_definitions(dump_definitions(topology)) == topology


@given(topologies())
def test_round_trip_through_json_text_and_per_vhost_form(topology: Topology) -> None:
    text = json.dumps(dump_definitions(topology, vhost="prod"), ensure_ascii=False, allow_nan=False)
    assert load_definitions(json.loads(text), vhost="prod") == topology
    assert load_definitions(dump_definitions(topology, vhost=None)) == topology


@given(topologies(internal_exchanges=False))
def test_round_trip_in_rabbitmqctl_form(topology: Topology) -> None:
    data = copy.deepcopy(dump_definitions(topology))
    for e in data["exchanges"]:
        del e["internal"]  # rabbitmqctl 3.10 writes no `internal`
    for q in data["queues"]:
        q["type"] = q["arguments"].get("x-queue-type", "classic")
    assert load_definitions(data) == topology


@given(topologies(exclusive_queues=True))
def test_skipping_exclusive_queues_keeps_everything_else(topology: Topology) -> None:
    loaded = load_definitions(dump_definitions(topology, skip_exclusive=True))
    assert loaded.exchanges == topology.exchanges
    assert loaded.queues == tuple(q for q in topology.queues if not q.exclusive)
    kept = {q.name for q in loaded.queues}
    assert loaded.bindings == tuple(
        b for b in topology.bindings if b.destination_type == "exchange" or b.destination in kept
    )


# ----------------------------------------------------------------- broker


def _api(base: str, method: str, path: str, body: Any = None) -> Any:
    """One management API call (credentials from the URL, never shown)."""
    parts = urlsplit(base)
    request = urllib.request.Request(
        f"{parts.scheme}://{parts.hostname}:{parts.port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    token = base64.b64encode(f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode())
    request.add_header("authorization", f"Basic {token.decode()}")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else None


def _ours(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The part of a whole-vhost export that this test declared."""
    return {
        "exchanges": [e for e in data["exchanges"] if e["name"].startswith(prefix)],
        "queues": [q for q in data["queues"] if q["name"].startswith(prefix)],
        "bindings": [b for b in data["bindings"] if b["source"].startswith(prefix)],
    }


@contextmanager
def _declared(amqp_url: str, topology: Topology) -> Iterator[None]:
    """`topology` declared over AMQP with pika (not through our transport), deleted afterwards."""
    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
    try:
        channel = connection.channel()
        for e in topology.exchanges:
            channel.exchange_declare(
                e.name,
                str(e.type),
                durable=e.durable,
                auto_delete=e.auto_delete,
                internal=e.internal,
                arguments=e.declare_arguments,
            )
        for q in topology.queues:
            channel.queue_declare(
                q.name, durable=q.durable, auto_delete=q.auto_delete, arguments=q.declare_arguments
            )
        for b in topology.bindings:
            arguments = thaw(b.arguments)
            if b.destination_type == "queue":
                channel.queue_bind(b.destination, b.source, b.routing_key, arguments=arguments)
            else:
                channel.exchange_bind(b.destination, b.source, b.routing_key, arguments=arguments)
        yield
    finally:
        if connection.is_open:
            channel = connection.channel()
            for q in topology.queues:
                channel.queue_delete(q.name)
            for e in topology.exchanges:
                channel.exchange_delete(e.name)
            connection.close()


@contextmanager
def _imported(base: str, topology: Topology) -> Iterator[None]:
    """`topology` imported with `POST /api/definitions`, deleted afterwards."""
    try:
        _api(base, "POST", "/api/definitions", dump_definitions(topology))
        yield
    finally:
        for kind, items in (("queues", topology.queues), ("exchanges", topology.exchanges)):
            for item in items:
                try:
                    _api(base, "DELETE", f"/api/{kind}/%2F/{quote(item.name, safe='')}")
                except urllib.error.HTTPError as exc:
                    if exc.code != 404:
                        raise


def _lasting(topology: Topology) -> Topology:
    """The topology with `x-expires` long enough that the broker keeps its queues for the test."""
    queues = [
        q if q.expires is None else replace(q, expires=max(q.expires, 3_600_000)) for q in topology.queues
    ]
    return Topology(exchanges=topology.exchanges, queues=tuple(queues), bindings=topology.bindings)


def _map_values(value: Any, change: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {change(k): _map_values(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_values(v, change) for v in value]
    return change(value)


def _floats_as_text(value: Any) -> Any:
    return repr(value) if isinstance(value, float) else value


def _no_control_characters(value: Any) -> Any:
    return "".join(c if c.isprintable() else "?" for c in value) if isinstance(value, str) else value


def _pika_can_send(topology: Topology) -> Topology:
    """pika 1.x cannot encode a float in an AMQP table (UnsupportedAMQPFieldException): use text."""
    return _map_arguments(topology, _floats_as_text)


def _map_arguments(topology: Topology, change: Callable[[Any], Any]) -> Topology:
    def fix(entity: Any) -> Any:
        return replace(entity, arguments=_map_values(thaw(entity.arguments), change))

    return Topology.of(
        [fix(e) for e in topology.exchanges],
        [fix(q) for q in topology.queues],
        [fix(b) for b in topology.bindings],
    )


def _no_tilde(topology: Topology) -> Topology:
    """3.10.8's management API answers 500 for every binding listing of a vhost holding a
    binding with arguments and a `~` inside its key (`a~b`): never create one on a shared broker."""
    bindings = [replace(b, routing_key=b.routing_key.replace("~", "-")) for b in topology.bindings]
    return Topology(exchanges=topology.exchanges, queues=topology.queues, bindings=tuple(bindings))


def _prefixed(unique: str) -> st.SearchStrategy[Topology]:
    """Generated topologies whose every name starts with `unique`, without `amq.*` bindings."""
    counter = itertools.count()
    names = strategies.names().map(lambda n: f"{unique}-{next(counter)}.{n}")
    generated = topologies(entity_names=names, builtins=False, max_exchanges=4, max_queues=4)
    return generated.map(_lasting).map(_no_tilde)


@pytest.mark.broker
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_broker_declared_topology_exports_and_loads_back_equal(
    amqp_url: str, management_url: str, unique: str, data: st.DataObject
) -> None:
    topology = data.draw(_prefixed(unique).map(_pika_can_send))
    with _declared(amqp_url, topology):
        exported = _api(management_url, "GET", "/api/definitions/%2F")
        assert load_definitions(_ours(exported, unique)) == topology


@pytest.mark.broker
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_broker_imports_what_dump_writes(management_url: str, unique: str, data: st.DataObject) -> None:
    topology = data.draw(_prefixed(unique).filter(lambda t: not void_arguments(t)))
    with _imported(management_url, topology):
        exported = _api(management_url, "GET", "/api/definitions/%2F")
        assert load_definitions(_ours(exported, unique)) == topology


def test_void_values_are_named_and_read_back_from_null_or_undefined() -> None:
    h, q = Exchange("h", "headers"), Queue("q")
    topology = Topology.of(h, q, h.bind(q, match="any", headers={"region": None, "n": [1, None]}))
    assert void_arguments(topology) == [
        "binding 'h' -> 'q' argument 'region'",
        "binding 'h' -> 'q' argument 'n'",
    ]
    data = dump_definitions(topology)
    assert data["bindings"][0]["arguments"]["region"] is None
    assert load_definitions(data) == topology
    as_exported = json.loads(json.dumps(data).replace("null", '"undefined"'))  # how RabbitMQ 3.10 writes void
    assert load_definitions(as_exported) == topology
    literal = load_definitions(as_exported, undefined_is_void=False)
    assert literal.bindings[0].arguments["region"] == "undefined"


def _rabbitmqctl_export(rabbitmqctl: list[str], version: str) -> dict[str, Any]:
    """`rabbitmqctl export_definitions -` of the broker under test (RabbitMQ `version`)."""
    for _ in range(3):  # an entity deleted mid-export by a concurrent test can spoil one run
        done = subprocess.run(
            [*rabbitmqctl, "export_definitions", "-"], capture_output=True, timeout=60, check=False
        )
        if done.returncode != 0:
            pytest.skip(f"rabbitmqctl cannot reach the node here: {done.stderr.decode()[:200]}")
        try:
            exported: dict[str, Any] = json.loads(done.stdout)
        except json.JSONDecodeError:
            text = done.stdout.decode(errors="replace")[:200]
            continue
        # Another node's export would pass or fail for the wrong reason.
        assert exported.get("rabbitmq_version") == version, (
            f"{' '.join(rabbitmqctl)} exports RabbitMQ {exported.get('rabbitmq_version')}, not the broker "
            f"under test ({version}): set ROUTING_TEST_RABBITMQCTL"
        )
        return exported
    pytest.fail(f"rabbitmqctl export_definitions printed no JSON three times: {text}")


@pytest.mark.broker
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_broker_rabbitmqctl_export_loads_back_into_an_equal_topology(
    amqp_url: str, rabbitmq_version: str, unique: str, data: st.DataObject
) -> None:
    if shutil.which(RABBITMQCTL[0]) is None:
        pytest.skip(f"{RABBITMQCTL[0]} is not installed here")
    # rabbitmqctl 3.10.8 writes control characters with a byte-swapped escape (U+0001 as
    # "\\u1000"), so argument strings here are printable.
    topology = data.draw(
        _prefixed(unique)
        .map(_pika_can_send)
        .map(lambda t: _map_arguments(t, _no_control_characters))
        .filter(lambda t: not any(e.internal for e in t.exchanges))
    )
    with _declared(amqp_url, topology):
        exported = _rabbitmqctl_export(RABBITMQCTL, rabbitmq_version)
        exported = {
            k: [i for i in v if i.get("vhost") == "/"] for k, v in exported.items() if isinstance(v, list)
        }
        assert load_definitions(_ours(exported, unique)) == topology
