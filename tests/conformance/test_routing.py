"""Routing on both brokers: the four exchange types, exchange-to-exchange bindings, the
alternate exchange, CC/BCC, mandatory returns and publishing to an unknown exchange."""

from __future__ import annotations

from typing import Any

import pytest

from routing.errors import ChannelClosed, Unroutable
from routing.profiles import profile
from routing.topology import Binding, DestinationType, Exchange, Queue
from routing.transport import Outcome, Properties

from .conftest import WAIT, Harness, plain

# (routing key, body, headers) per exchange type, and the bodies each queue must hold.
MESSAGES: dict[str, list[tuple[str, bytes, dict[str, Any]]]] = {
    "direct": [("a", b"m1", {}), ("b", b"m2", {}), ("c", b"m3", {})],
    "fanout": [("a", b"m1", {}), ("", b"m2", {})],
    "topic": [("a", b"m1", {}), ("a.b", b"m2", {}), ("a.b.c", b"m3", {}), ("c", b"m4", {}), ("", b"m5", {})],
    "headers": [
        ("", b"m1", {"h1": 1, "h2": "b"}),
        ("", b"m2", {"h1": 1.0}),  # 3.10 compares with Erlang ==: 1 equals 1.0
        ("", b"m3", {"h3": "anything"}),
        ("", b"m4", {}),
    ],
}
# queue suffix -> binding keys (or headers arguments, for the headers exchange)
BINDINGS: dict[str, dict[str, list[Any]]] = {
    "direct": {"qa": ["a"], "qb": ["b"], "qab": ["a", "b"]},
    "fanout": {"q1": [""], "q2": ["ignored"]},
    "topic": {"one": ["a.*"], "many": ["a.#"], "tail": ["#.c"], "word": ["*"]},
    "headers": {
        "all": [{"x-match": "all", "h1": 1, "h2": "b"}],
        "any": [{"x-match": "any", "h1": 1, "h2": "z"}],
        "void": [{"h3": None}],
    },
}
EXPECTED: dict[str, dict[str, set[bytes]]] = {
    "direct": {"qa": {b"m1"}, "qb": {b"m2"}, "qab": {b"m1", b"m2"}},
    "fanout": {"q1": {b"m1", b"m2"}, "q2": {b"m1", b"m2"}},
    "topic": {"one": {b"m2"}, "many": {b"m1", b"m2", b"m3"}, "tail": {b"m3", b"m4"}, "word": {b"m1", b"m4"}},
    "headers": {"all": {b"m1"}, "any": {b"m1", b"m2"}, "void": {b"m3"}},
}


def run_exchange(harness: Harness, kind: str) -> dict[str, set[bytes]]:
    """Declare one exchange of `kind` with its bindings, publish, and read every queue."""
    x = Exchange(harness.name(kind), kind, durable=False)
    entities: list[Any] = [x]
    for suffix, keys in BINDINGS[kind].items():
        q = Queue(harness.name(suffix))
        entities.append(q)
        for key in keys:
            if kind == "headers":
                entities.append(Binding(x.name, q.name, arguments=key))
            else:
                entities.append(x.bind(q, key))
    harness.declare(*entities)
    for key, body, headers in MESSAGES[kind]:
        harness.t.publish(x.name, key, body, Properties(headers=headers))
    assert harness.t.flush(timeout=WAIT) == []
    return {suffix: set(harness.drain(harness.name(suffix))) for suffix in BINDINGS[kind]}


def check_exchange(harness: Harness, kind: str, expected: dict[str, set[bytes]]) -> None:
    assert run_exchange(harness, kind) == expected


def expected_for(harness: Harness, kind: str) -> dict[str, set[bytes]]:
    """EXPECTED, as the release of the broker under test has it."""
    expected = EXPECTED[kind]
    if kind == "headers" and not profile(harness.t.server_version).headers_numeric_coercion:
        expected = {**expected, "any": {b"m1"}}  # 4.0 compares with =:=: 1.0 is not 1
    return expected


@pytest.mark.parametrize("kind", ["direct", "fanout", "topic", "headers"])
def test_exchange_types(harness: Harness, kind: str) -> None:
    check_exchange(harness, kind, expected_for(harness, kind))


def test_exchange_to_exchange_bindings(harness: Harness) -> None:
    front = Exchange(harness.name("front"), "topic", durable=False)
    back = Exchange(harness.name("back"), "direct", durable=False)
    q, direct_q = Queue(harness.name("q")), Queue(harness.name("direct"))
    harness.declare(
        front,
        back,
        q,
        direct_q,
        Binding(front.name, back.name, "orders.#", destination_type=DestinationType.EXCHANGE),
        back.bind(q, "orders.eu"),
        front.bind(direct_q, "orders.eu"),  # reached directly and through `back`: still one copy
    )
    harness.publish_all(front.name, [("orders.eu", b"eu"), ("orders.us", b"us"), ("other", b"x")])
    assert harness.drain(q.name) == [b"eu"]
    assert harness.drain(direct_q.name) == [b"eu"]


def test_alternate_exchange_takes_what_nothing_else_routes(harness: Harness) -> None:
    ae = Exchange(harness.name("ae"), "fanout", durable=False)
    x = Exchange(harness.name("x"), "direct", durable=False, alternate_exchange=ae.name)
    q, lost = Queue(harness.name("q")), Queue(harness.name("lost"))
    harness.declare(ae, x, q, lost, x.bind(q, "known"), ae.bind(lost))
    harness.publish_all(x.name, [("known", b"routed"), ("unknown", b"stray")])
    assert harness.drain(q.name) == [b"routed"]
    assert harness.drain(lost.name) == [b"stray"]
    # Mandatory is satisfied by the alternate exchange: nothing comes back.
    caught = harness.t.publish(x.name, "unknown", b"m", mandatory=True)
    assert harness.t.flush(timeout=WAIT) == [] and caught.outcome is Outcome.CONFIRMED
    assert harness.drain(lost.name) == [b"m"]


def test_cc_and_bcc_add_routing_keys_and_bcc_is_removed(harness: Harness) -> None:
    x = Exchange(harness.name("x"), "direct", durable=False)
    qa, qb, qc = (Queue(harness.name(s)) for s in ("a", "b", "c"))
    harness.declare(x, qa, qb, qc, x.bind(qa, "a"), x.bind(qb, "b"), x.bind(qc, "c"))
    harness.t.publish(x.name, "a", b"m", Properties(headers={"CC": ["b"], "BCC": ["c"], "n": 1}))
    assert harness.t.flush(timeout=WAIT) == []
    got = [harness.take(q.name) for q in (qa, qb, qc)]
    for delivery in got:
        assert delivery.body == b"m" and delivery.routing_key == "a"
        assert plain(delivery.headers) == {"CC": ["b"], "n": 1}


def test_mandatory_unroutable_is_returned(harness: Harness) -> None:
    x = Exchange(harness.name("x"), "direct", durable=False)
    q = Queue(harness.name("q"))
    harness.declare(x, q, x.bind(q, "k"))
    dropped = harness.t.publish(x.name, "nobody", b"1")
    returned = harness.t.publish(x.name, "nobody", b"2", mandatory=True)
    delivered = harness.t.publish(x.name, "k", b"3", mandatory=True)
    assert harness.t.flush(timeout=WAIT) == [returned]
    assert (dropped.outcome, returned.outcome, delivered.outcome) == (
        Outcome.CONFIRMED,
        Outcome.RETURNED,
        Outcome.CONFIRMED,
    )
    with pytest.raises(Unroutable, match=f"'{x.name}'.*'nobody'"):
        returned.raise_for_outcome()
    assert harness.drain(q.name) == [b"3"]


def test_publish_to_unknown_exchange_settles_unconfirmed_with_404(harness: Harness) -> None:
    q = Queue(harness.name("q"))
    harness.declare(q)
    missing = harness.name("missing")
    bad = harness.t.publish(missing, "k", b"x")
    assert harness.t.flush(timeout=WAIT) == [bad]
    assert bad.outcome is Outcome.UNCONFIRMED
    with pytest.raises(ChannelClosed, match=f"NOT_FOUND - no exchange '{missing}'") as info:
        bad.raise_for_outcome()
    assert info.value.code == 404
    # The transport carries on.
    good = harness.t.publish("", q.name, b"y")
    assert harness.t.flush(timeout=WAIT) == [] and good.outcome is Outcome.CONFIRMED
    assert harness.drain(q.name) == [b"y"]
