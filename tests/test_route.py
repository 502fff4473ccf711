"""`route()` and `explain()`: RabbitMQ's routing pipeline over a static topology."""

from __future__ import annotations

import dataclasses
import gc
import weakref

import pytest

from routing import Binding, Exchange, Queue, Topology, UnknownExchange, explain, pipeline, route
from routing.errors import InternalExchange, RoutingError
from routing.matching import header_routes, routing_keys
from routing.profiles import ProfileError

logs = Exchange("logs", "topic")
pager, billing, archive, security = (Queue(n) for n in ("pager", "billing", "archive", "security"))
LOGS = Topology.of(
    logs,
    pager,
    billing,
    archive,
    security,
    logs.bind(pager, "*.error"),
    logs.bind(billing, "billing.#"),
    logs.bind(archive, "#"),
    logs.bind(security, "auth.*"),
)


@pytest.mark.parametrize(
    ("key", "queues"),
    [
        ("billing.error", {"pager", "billing", "archive"}),
        ("auth.info", {"security", "archive"}),
        ("auth.error", {"security", "archive", "pager"}),
        ("billing", {"billing", "archive"}),
        ("", {"archive"}),
    ],
)
def test_topic_logs(key: str, queues: set[str]) -> None:
    assert route(LOGS, "logs", key) == queues


def test_one_copy_per_queue_however_many_bindings_match() -> None:
    t = Topology.of(logs, pager, logs.bind(pager, "#"), logs.bind(pager, "a.*"), logs.bind(pager, "a.b"))
    assert route(t, "logs", "a.b") == {"pager"}
    assert len(explain(t, "logs", "a.b").matched) == 3


def test_direct_and_fanout() -> None:
    direct, fan = Exchange("d"), Exchange("f", "fanout")
    a, b = Queue("a"), Queue("b")
    t = Topology.of(
        direct, fan, a, b, direct.bind(a, "x"), direct.bind(b, "y"), fan.bind(a, "ignored"), fan.bind(b)
    )
    assert route(t, "d", "x") == {"a"}
    assert route(t, "d", "z") == frozenset()
    assert route(t, "f", "anything") == {"a", "b"}


def test_default_exchange_routes_by_queue_name() -> None:
    t = Topology.of(Queue("jobs"))
    assert route(t, "", "jobs") == {"jobs"}
    assert route(t, "", "nope") == frozenset()


def test_exchange_to_exchange_with_a_cycle() -> None:
    a, b = Exchange("a", "fanout"), Exchange("b", "topic")
    q = Queue("q")
    t = Topology.of(a, b, q, a.bind(b), b.bind(a, "#"), b.bind(q, "k.*"))
    assert route(t, "a", "k.1") == {"q"}
    assert route(t, "b", "k.1") == {"q"}
    assert route(t, "a", "other") == frozenset()
    assert any("cycle" in s.reason for s in explain(t, "a", "k.1").trace)


def test_alternate_exchange_applies_per_exchange_on_the_path() -> None:
    unrouted = Queue("unrouted")
    ae = Exchange("ae", "fanout")
    inner = Exchange("inner", "direct", alternate_exchange="ae")
    outer = Exchange("outer", "fanout")
    q = Queue("q")
    t = Topology.of(ae, inner, outer, q, unrouted, ae.bind(unrouted), outer.bind(inner), inner.bind(q, "k"))
    assert route(t, "outer", "k") == {"q"}
    # `inner` is reached through `outer`, matches nothing, and so uses its own AE.
    assert route(t, "outer", "other") == {"unrouted"}
    assert route(t, "inner", "other") == {"unrouted"}


def test_alternate_exchange_not_used_when_the_exchange_routes_to_an_exchange() -> None:
    empty = Exchange("empty", "fanout")
    ae = Exchange("ae2", "fanout")
    x = Exchange("x", "fanout", alternate_exchange="ae2")
    q = Queue("q")
    t = Topology.of(empty, ae, x, q, x.bind(empty), ae.bind(q))
    # x routes to `empty` (which routes nowhere): x's own result is not empty, so no AE.
    assert route(t, "x") == frozenset()


def test_cc_and_bcc_add_routing_keys() -> None:
    d = Exchange("d")
    a, b, c = Queue("a"), Queue("b"), Queue("c")
    t = Topology.of(d, a, b, c, d.bind(a, "ka"), d.bind(b, "kb"), d.bind(c, "kc"))
    assert route(t, "d", "ka", {"CC": ["kb"], "BCC": ["kc"]}) == {"a", "b", "c"}
    assert route(t, "", "a", {"CC": ["b"]}) == {"a", "b"}
    with pytest.raises(RoutingError, match="CC must be an array"):
        route(t, "d", "ka", {"CC": "kb"})


def test_headers_exchange_routes_on_headers_not_keys() -> None:
    h = Exchange("h", "headers")
    pdf, eu = Queue("pdf"), Queue("eu")
    t = Topology.of(
        h, pdf, eu,
        h.bind(pdf, headers={"format": "pdf", "type": "report"}, match="all"),
        h.bind(eu, headers={"region": "eu", "format": "zip"}, match="any"),
    )  # fmt: skip
    assert route(t, "h", "ignored", {"format": "pdf", "type": "report"}) == {"pdf"}
    assert route(t, "h", "", {"format": "pdf"}) == frozenset()
    assert route(t, "h", "", {"format": "zip"}) == {"eu"}
    assert route(t, "h", "", None) == frozenset()
    lines = [s.reason for s in explain(t, "h", "", {"format": "pdf"}).trace]
    assert "x-match all: format equal, type missing" in lines


def test_unknown_exchange() -> None:
    with pytest.raises(UnknownExchange, match="'nope'"):
        route(LOGS, "nope", "a")


def test_implicit_amq_exchanges_route() -> None:
    q = Queue("q")
    t = Topology.of(q, Binding("amq.topic", "q", "a.#"))
    assert route(t, "amq.topic", "a.b") == {"q"}
    assert route(t, "amq.direct", "q") == frozenset()


def test_explain_says_why_each_binding_did_or_did_not_match() -> None:
    e = explain(LOGS, "logs", "auth.info")
    assert e.queues == {"security", "archive"}
    by_dest = {s.binding.destination: s for s in e.trace if s.binding}
    assert by_dest["pager"].matched is False
    assert by_dest["pager"].reason == "'*.error' does not match 'auth.info'"
    assert by_dest["security"].reason == "'auth.*' matches 'auth.info'"
    assert by_dest["archive"].as_dict()["binding_key"] == "#"


def test_route_is_fast_path_and_cached() -> None:
    # The per-exchange index is built once per topology, not once per message.
    route(LOGS, "logs", "a.error")
    first = pipeline._state(LOGS)
    route(LOGS, "logs", "b.error")
    assert pipeline._state(LOGS) is first


def test_the_routing_index_is_kept_beside_a_topology_not_in_it() -> None:
    # The frozen value carries no cache, and the index does not keep its topology alive.
    q = Queue("gone")
    t = Topology.of(Exchange("x", "fanout"), q, Binding("x", "gone"))
    assert route(t, "x") == {"gone"}
    assert not any(f.name == "_cache" for f in dataclasses.fields(Topology))
    ref = weakref.ref(t)
    del t
    gc.collect()
    assert ref() is None
    assert all(r() is not None for r, _ in pipeline._STATES.values())


@pytest.mark.parametrize("name", ["CC", "BCC"])
def test_cc_and_bcc_are_read_by_one_parser_strict_on_publish_lenient_on_dead_letters(name: str) -> None:
    # rabbit_basic:header_routes: the longstr elements of each array, CC first; a CC or BCC
    # of another type refuses the publish (unacceptable_type_in_header). What dead-lettering
    # reads back from a message already taken adds no keys for it instead.
    assert header_routes({"CC": ["a", 1, "b"], "BCC": ("c", None)}, strict=True) == ["a", "b", "c"]
    assert header_routes({"BCC": ["c"], "CC": ["a"]}, strict=False) == ["a", "c"]
    assert header_routes(None, strict=True) == header_routes({}, strict=True) == []
    assert header_routes({name: None}, strict=True) == []
    with pytest.raises(RoutingError, match=f"header {name} must be an array of strings, got str"):
        header_routes({name: "k", "CC" if name == "BCC" else "BCC": ["x"]}, strict=True)
    assert header_routes({name: "k", "CC" if name == "BCC" else "BCC": ["x"]}, strict=False) == ["x"]
    with pytest.raises(RoutingError, match=f"header {name} must be an array"):
        routing_keys("k", {name: 5})
    assert routing_keys("k", {"CC": ["k", "b", "b"], "BCC": ["b", "c"]}) == ["k", "b", "c"]


def test_a_publish_to_an_internal_exchange_is_refused_as_rabbitmq_refuses_it() -> None:
    # Issue 12 item 33: RabbitMQ answers 403 ACCESS_REFUSED; route() and explain() once
    # reported deliveries. Reached through another exchange, it routes as before.
    front, inner = Exchange("front", "fanout"), Exchange("inner", "fanout", internal=True)
    q = Queue("q")
    t = Topology.of(front, inner, q, front.bind(inner), inner.bind(q))
    with pytest.raises(InternalExchange, match=r"'inner' is internal.*403 ACCESS_REFUSED"):
        route(t, "inner", "k")
    with pytest.raises(InternalExchange):
        explain(t, "inner", "k")
    assert route(t, "front", "k") == {"q"}


def test_route_and_explain_take_the_release() -> None:
    h = Exchange("h", "headers")
    q = Queue("q")
    t = Topology.of(h, q, h.bind(q, headers={"n": 1}))
    assert route(t, "h", headers={"n": 1.0}, rabbitmq="3.10") == {"q"}  # Erlang ==
    assert route(t, "h", headers={"n": 1.0}, rabbitmq="4.0.5") == frozenset()  # =:=
    assert route(t, "h", headers={"n": 1.0}) == frozenset()  # the default: the newest verified
    assert explain(t, "h", headers={"n": 1.0}, rabbitmq="3.10.8").queues == {"q"}
    assert "n differs" in explain(t, "h", headers={"n": 1.0}, rabbitmq="4.0").trace[0].reason
    with pytest.raises(ProfileError, match=r"supported: 3\.10"):
        route(t, "h", rabbitmq="2.8")
