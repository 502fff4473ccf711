"""`headers_match` against RabbitMQ's headers-exchange cases and each release's comparison rules.

`data/headers_types.json` is every pair of AMQP field types through a headers exchange on live
RabbitMQ 3.10.8 and 4.0.5 (made by `data/make_headers_types.py`); the pure tests hold
`headers_match(..., rabbitmq=X)` to it, and the broker test holds it to whichever broker runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from routing import Exchange, Queue, Topology, headers_match
from routing.embedded import forget
from routing.errors import TopologyError
from routing.matching import header_values_equal
from routing.profiles import ProfileError
from routing.transport.base import Properties, Transport
from routing.transport.memory import MemoryTransport
from routing.transport.rabbitmq import RabbitTransport

DATA = Path(__file__).parent / "data"
SUITE = json.loads((DATA / "headers_suite.json").read_text())["cases"]
TYPES = json.loads((DATA / "headers_types.json").read_text())
RELEASES = sorted(TYPES["measured_on"])  # ["3.10", "4.0"]

_INTS = {"byte", "unsignedbyte", "short", "unsignedshort", "signedint", "unsignedint", "long"}
_INT32 = range(-(2**31), 2**31)


def python(value: dict[str, Any]) -> Any:
    """A typed wire value as pika (and the toolkit's transport) decode it."""
    kind, v = value["type"], value["value"]
    if kind in _INTS or kind == "bool":
        return v
    if kind in ("float", "double"):
        return float(v)
    if kind == "decimal":
        return Decimal(v[1]).scaleb(-v[0])
    if kind == "longstr":
        return v
    if kind == "binary":
        return v.encode()
    if kind == "timestamp":
        return datetime.fromtimestamp(v, UTC)
    if kind == "void":
        return None
    if kind == "array":
        return [python(item) for item in v]
    return {k: python(item) for k, item in v}


def sent_as_typed(value: dict[str, Any]) -> bool:
    """Whether the toolkit's encoder sends `python(value)` with exactly this field type: ints as
    signedint (long beyond 32 bits), floats as double, decimals normalized."""
    kind, v = value["type"], value["value"]
    if kind == "signedint":
        return v in _INT32
    if kind == "long":
        return v not in _INT32
    if kind == "decimal":
        d = python(value)
        return d.normalize().as_tuple() == d.as_tuple()
    if kind == "array":
        return all(sent_as_typed(item) for item in v)
    if kind == "table":
        return all(sent_as_typed(item) for _, item in v)
    return kind in ("bool", "double", "longstr", "binary", "timestamp", "void")


def width_survives(value: dict[str, Any]) -> bool:
    """A value whose field width (or decimal scale) RabbitMQ compares but a Python value cannot
    carry: an int of another width inside an array or table, a decimal not normalized. A
    message from another client with such a value is routed by its wire types, which the
    decoded Python value no longer has."""
    return value["type"] in ("array", "table", "decimal") and not sent_as_typed(value)


def _label(case: dict[str, Any]) -> str:
    def show(v: dict[str, Any]) -> str:
        if v["type"] == "array":
            return "[" + ",".join(show(i) for i in v["value"]) + "]"
        if v["type"] == "table":
            return "{" + ",".join(f"{k}:{show(i)}" for k, i in v["value"]) + "}"
        return f"{v['type']}:{v['value']}"

    return f"{show(case['binding'])}~{show(case['header'])}"


COMPARABLE = [c for c in TYPES["cases"] if not (width_survives(c["binding"]) or width_survives(c["header"]))]


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("case", SUITE, ids=[c.get("note", str(i))[:60] for i, c in enumerate(SUITE)])
def test_rabbitmq_headers_cases(case: dict[str, Any], release: str) -> None:
    assert headers_match(case["binding"], case["headers"], rabbitmq=release) is case["match"]


@pytest.mark.parametrize("release", RELEASES)
def test_every_pair_of_field_types_as_the_live_broker_decided(release: str) -> None:
    """The whole measured table, pair by pair, for each release."""
    wrong = [
        f"{_label(c)}: live {c[release]}"
        for c in COMPARABLE
        if headers_match({"v": python(c["binding"])}, {"v": python(c["header"])}, rabbitmq=release)
        is not c[release]
    ]
    assert not wrong, f"{len(wrong)} of {len(COMPARABLE)} differ from RabbitMQ {release}:\n" + "\n".join(
        wrong
    )


def test_the_table_covers_every_field_type_and_leaves_out_only_what_python_cannot_carry() -> None:
    kinds = {c["binding"]["type"] for c in TYPES["cases"]}
    assert kinds == {*_INTS, "bool", "float", "double", "decimal", "longstr", "binary", "timestamp"} | {
        "void",
        "array",
        "table",
    }
    left_out = [c for c in TYPES["cases"] if c not in COMPARABLE]
    # Left out for a reason: the live broker tells apart values Python decodes alike.
    alike = [c for c in left_out if python(c["binding"]) == python(c["header"])]
    assert any(not c["3.10"] and not c["4.0"] for c in alike)
    assert len(COMPARABLE) > 0.8 * len(TYPES["cases"])


@pytest.mark.parametrize(
    ("binding", "header", "on_310", "on_40"),
    [
        ("pdf", b"pdf", True, True),  # longstr and binary of the same bytes (issue 12 item 11)
        (b"pdf", "pdf", True, True),
        (1577836800, datetime(2020, 1, 1, tzinfo=UTC), True, False),  # 3.10: a timestamp is its seconds
        (1577836800000, datetime(2020, 1, 1, tzinfo=UTC), False, True),  # 4.0: a timestamp header in ms
        (datetime(2020, 1, 1, tzinfo=UTC), 1577836800, True, True),  # a timestamp binding keeps seconds
        (datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC), True, False),
        (1, 1.0, True, False),  # Erlang == against =:=
        (2, 2.0, True, False),
        (0.0, -0.0, True, False),
        ([0.0], [-0.0], True, False),
        ([1], [1.0], False, False),  # element types count inside arrays on both
        (["a"], [b"a"], False, False),
        ([], {}, True, True),  # an empty array is an empty table
        (True, 1, False, False),
        (Decimal("1.5"), Decimal("1.50"), True, True),  # sent normalized
        (Decimal(1), 1, False, False),
        ({"k": 1, "j": 2}, {"j": 2, "k": 1}, False, False),  # tables compare in order
    ],
)
def test_values_per_release(binding: Any, header: Any, on_310: bool, on_40: bool) -> None:
    assert header_values_equal(binding, header, rabbitmq="3.10") is on_310
    assert header_values_equal(binding, header, rabbitmq="4.0") is on_40
    assert headers_match({"v": binding}, {"v": header}, rabbitmq="3.10.8") is on_310
    assert headers_match({"v": binding}, {"v": header}, rabbitmq="4.0.5") is on_40


def test_the_default_is_the_newest_verified_release() -> None:
    assert headers_match({"a": 1}, {"a": 1.0}) is headers_match({"a": 1}, {"a": 1.0}, rabbitmq="4.0")


def test_an_unknown_release_is_a_clear_error() -> None:
    with pytest.raises(ProfileError, match=r"'3\.8'.*supported: 3\.10 \(3\.10-3\.12\), 4\.0"):
        headers_match({"a": 1}, {"a": 1}, rabbitmq="3.8")


@pytest.mark.parametrize(
    ("binding", "headers", "expected"),
    [
        ({}, None, True),  # nothing to compare: `all` matches everything
        ({"x-match": "all"}, {"a": 1}, True),
        ({"x-match": "any"}, {"a": 1}, False),  # ...and `any` matches nothing
        ({"a": 1}, {"a": 1, "b": 2}, True),  # extra message headers do not matter
        ({"a": 1, "b": 2}, {"a": 1}, False),
        ({"x-match": "any", "a": 1, "b": 2}, {"b": 2}, True),
        ({"a": None}, {"a": "anything"}, True),  # void: "present, any value"
        ({"a": None}, {}, False),
        ({"x-match": "any", "a": None}, {"b": 1}, False),
        ({"a": 1}, {"a": 1.0}, True),  # Erlang ==: 1 == 1.0
        ({"a": True}, {"a": 1}, False),  # but a boolean is not a number
        ({"a": 0}, {"a": False}, False),
        ({"a": "1"}, {"a": 1}, False),
        ({"a": [1, 2]}, {"a": [1, 2]}, True),
        ({"a": [1, 2]}, {"a": [2, 1]}, False),  # arrays compare in order
        ({"a": [1]}, {"a": [1.0]}, False),  # and with their element types
        ({"a": {"k": 1, "j": 2}}, {"a": {"k": 1, "j": 2}}, True),
        ({"a": {"k": 1, "j": 2}}, {"a": {"j": 2, "k": 1}}, False),  # nested tables keep their order
        ({"x-foo": "1"}, {}, True),  # x- keys are skipped under all/any...
        ({"x-match": "any", "x-foo": "1", "a": 1}, {"x-foo": "1"}, False),
        ({"X-Foo": "1"}, {}, False),  # ...case-sensitively
        ({"x-match": "all-with-x", "x-foo": "1"}, {"x-foo": "1"}, True),  # compared under *-with-x
        ({"x-match": "all-with-x", "x-foo": "1"}, {}, False),
        ({"x-match": "any-with-x", "x-foo": "1", "a": 1}, {"x-foo": "1"}, True),
        ({"x-match": "any-with-x"}, {"x-match": "any-with-x"}, False),  # x-match itself never compares
    ],
)
def test_rabbitmq_310_rules(binding: dict[str, Any], headers: dict[str, Any] | None, expected: bool) -> None:
    # These are 3.10's rules (1 == 1.0 among them): asked of the 3.10 profile explicitly.
    assert headers_match(binding, headers, rabbitmq="3.10") is expected


# ------------------------------------------------------------------ live


@pytest.fixture(scope="module")
def rabbit(amqp_url: str) -> Iterator[RabbitTransport]:
    with RabbitTransport(amqp_url, name="routing-headers-types") as transport:
        yield transport


def _through(transport: Transport, prefix: str) -> tuple[list[Any], list[Any], list[set[int]]]:
    """Every value the toolkit can send, as header, through a headers exchange bound with every
    bindable one: (header values, binding values, which header numbers reached each binding)."""
    values = [python(v) for v in _typed_values() if sent_as_typed(v)]
    bound = [v for v in values if _bindable(v)]  # Topology takes JSON-like argument values only
    x = Exchange(f"{prefix}-h", "headers", durable=False, auto_delete=True)
    queues = [Queue(f"{prefix}-{i}", durable=False, exclusive=True) for i in range(len(bound))]
    binds = [x.bind(q, headers={"v": v}) for q, v in zip(queues, bound, strict=True)]
    transport.declare(Topology.of(x, *queues, *binds))
    for n, v in enumerate(values):
        transport.publish(x.name, "", b"", Properties(message_id=str(n), headers={"v": v}))
    assert transport.flush(timeout=30) == []
    arrived: list[set[int]] = []
    for q in queues:
        arrived.append(set())
        while (d := transport.get(q.name)) is not None:
            arrived[-1].add(int(d.properties.message_id or -1))
            transport.ack(d)
    assert len(bound) > 30 and len(values) > 45
    return values, bound, arrived


@pytest.mark.broker
def test_headers_match_agrees_with_the_live_broker(
    rabbit: RabbitTransport, unique: str, rabbitmq_profile: str
) -> None:
    values, bound, arrived = _through(rabbit, unique)
    wrong = []
    for expected, got in zip(bound, arrived, strict=True):
        for h, sent in enumerate(values):
            predicted = headers_match({"v": expected}, {"v": sent}, rabbitmq=rabbitmq_profile)
            if predicted is not (h in got):
                wrong.append(f"binding {expected!r} header {sent!r}: predicted {predicted}, live {h in got}")
    assert not wrong, f"RabbitMQ {rabbitmq_profile}: {len(wrong)} pairs differ:\n" + "\n".join(wrong)


@pytest.mark.broker
def test_the_embedded_broker_of_the_same_release_delivers_the_same(
    rabbit: RabbitTransport, unique: str, rabbitmq_profile: str
) -> None:
    url = f"memory://{unique}?rabbitmq={rabbitmq_profile}"
    try:
        with MemoryTransport(url) as embedded:
            assert _through(embedded, unique) == _through(rabbit, unique)
    finally:
        forget(url)


def _typed_values() -> list[dict[str, Any]]:
    return list({json.dumps(c["binding"]): c["binding"] for c in TYPES["cases"]}.values())


def _bindable(value: Any) -> bool:
    try:
        Exchange("x", "headers").bind(Queue("q"), headers={"v": value})
    except TopologyError:
        return False
    return True


@pytest.mark.broker
def test_rabbitmq_headers_cases_on_the_live_broker(
    rabbit: RabbitTransport, unique: str, rabbitmq_profile: str
) -> None:
    """RabbitMQ's own headers cases, each (binding, headers) through a live headers exchange."""
    x = Exchange(f"{unique}-suite", "headers", durable=False, auto_delete=True)
    queues = [Queue(f"{unique}-s{i}", durable=False, exclusive=True) for i in range(len(SUITE))]
    binds = [x.bind(q, arguments=c["binding"]) for q, c in zip(queues, SUITE, strict=True)]
    rabbit.declare(Topology.of(x, *queues, *binds))
    for n, case in enumerate(SUITE):
        rabbit.publish(x.name, "", b"", Properties(message_id=str(n), headers=case["headers"]))
    assert rabbit.flush(timeout=30) == []
    for n, (q, case) in enumerate(zip(queues, SUITE, strict=True)):
        arrived = set()
        while (d := rabbit.get(q.name)) is not None:
            arrived.add(int(d.properties.message_id or -1))
            rabbit.ack(d)
        assert (
            (n in arrived)
            is case["match"]
            is headers_match(case["binding"], case["headers"], rabbitmq=rabbitmq_profile)
        ), case["note"]
