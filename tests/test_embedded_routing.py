"""The embedded broker's routing, declaring and entity management (no RabbitMQ needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from routing import Binding, Exchange, Queue, Topology
from routing.embedded import broker_for, forget
from routing.errors import ChannelClosed, DeclareConflicts, PreconditionFailed, Unroutable
from routing.transport import Consumer, Outcome, Properties, Transport, open_transport
from routing.transport.memory import MemoryTransport


@pytest.fixture
def url(unique: str) -> Iterator[str]:
    yield f"memory://{unique}"
    forget(f"memory://{unique}")


@pytest.fixture
def t(url: str) -> Iterator[MemoryTransport]:
    with MemoryTransport(url) as transport:
        yield transport


def bodies(t: MemoryTransport, queue: str) -> list[bytes]:
    out = []
    while (d := t.get(queue)) is not None:
        t.ack(d)
        out.append(d.body)
    return out


def test_it_implements_the_transport_protocol(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    assert isinstance(t, Transport)
    assert isinstance(t.consume("q"), Consumer)


def test_open_transport_picks_the_embedded_broker(url: str) -> None:
    with open_transport(url) as transport:
        assert isinstance(transport, MemoryTransport)
        assert transport.url == url


def test_transports_on_one_url_share_a_broker_and_other_urls_do_not(url: str) -> None:
    with MemoryTransport(url) as a, MemoryTransport(url) as b, MemoryTransport(url + "-2") as c:
        a.declare(Topology.of(Queue("shared")))
        a.publish("", "shared", b"hi")
        assert bodies(b, "shared") == [b"hi"]
        with pytest.raises(ChannelClosed) as err:
            c.get("shared")
        assert err.value.code == 404
    forget(url + "-2")
    assert broker_for(url) is broker_for(url)


@pytest.mark.parametrize("release", ["3.10", "4.0"])
def test_direct_fanout_topic_and_headers(url: str, release: str) -> None:
    t = MemoryTransport(f"{url}?rabbitmq={release}")
    d, f, tp, h = (Exchange(n, n) for n in ("direct", "fanout", "topic", "headers"))
    qs = [Queue(f"q{i}") for i in range(6)]
    t.declare(
        Topology.of(
            d, f, tp, h, *qs,
            d.bind(qs[0], "k"),
            f.bind(qs[1], "ignored"),
            tp.bind(qs[2], "a.#"),
            tp.bind(qs[3], "*.b"),
            h.bind(qs[4], headers={"x": 1, "y": "z"}, match="all"),
            h.bind(qs[5], headers={"x": 1, "y": "z"}, match="any"),
        )
    )  # fmt: skip
    t.publish("direct", "k", b"d")
    t.publish("direct", "other", b"nothing")
    t.publish("fanout", "whatever", b"f")
    t.publish("topic", "a", b"t1")  # a.# matches zero words after a
    t.publish("topic", "x.b", b"t2")
    t.publish("headers", "", b"h1", Properties(headers={"x": 1.0, "y": "z"}))  # 1 == 1.0 in 3.10
    t.publish("headers", "", b"h2", Properties(headers={"x": 1}))
    # The embedded broker routes headers by its profile: 4.0 compares 1 and 1.0 with =:=.
    h1 = [[b"h1"], [b"h1", b"h2"]] if release == "3.10" else [[], [b"h1", b"h2"]]
    assert [bodies(t, q.name) for q in qs] == [[b"d"], [b"f"], [b"t1"], [b"t2"], *h1]
    t.close()


def test_default_exchange_routes_by_queue_name(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("jobs")))
    assert t.publish("", "jobs", b"1").outcome is Outcome.CONFIRMED
    assert t.publish("", "nobody", b"2", mandatory=True).outcome is Outcome.RETURNED
    assert bodies(t, "jobs") == [b"1"]


def test_exchange_to_exchange_bindings_and_one_copy_per_queue(t: MemoryTransport) -> None:
    up, down = Exchange("up", "fanout"), Exchange("down", "topic")
    q = Queue("q")
    t.declare(Topology.of(up, down, q, up.bind(down), down.bind(q, "a.*"), down.bind(q, "#"), up.bind(q)))
    t.publish("up", "a.b", b"once")
    assert bodies(t, "q") == [b"once"]


def test_alternate_exchange_catches_what_routes_nowhere(t: MemoryTransport) -> None:
    ae = Exchange("ae", "fanout")
    main = Exchange("main", "direct", alternate_exchange="ae")
    t.declare(Topology.of(ae, main, Queue("hit"), Queue("lost"), main.bind("hit", "k"), ae.bind("lost")))
    t.publish("main", "k", b"routed")
    t.publish("main", "other", b"unrouted", mandatory=True)
    assert t.flush() == []  # the AE took it: not returned
    assert bodies(t, "hit") == [b"routed"]
    assert bodies(t, "lost") == [b"unrouted"]


def test_cc_and_bcc_route_and_bcc_is_stripped(t: MemoryTransport) -> None:
    x = Exchange("x", "direct")
    t.declare(
        Topology.of(
            x, Queue("a"), Queue("b"), Queue("c"), x.bind("a", "a"), x.bind("b", "b"), x.bind("c", "c")
        )
    )
    headers = {"CC": ["b"], "BCC": ["c"], "keep": 1}
    t.publish("x", "a", b"m", Properties(headers=headers))
    got = {q: t.get(q) for q in "abc"}
    assert all(d is not None and d.body == b"m" for d in got.values())
    # Headers come back frozen, arrays as tuples, as from the RabbitMQ transport.
    assert all(d is not None and d.headers == {"CC": ("b",), "keep": 1} for d in got.values())
    assert all(d is not None and d.routing_key == "a" for d in got.values())
    assert headers == {"CC": ["b"], "BCC": ["c"], "keep": 1}  # the caller's dict is untouched


def test_unroutable_is_dropped_or_returned_with_mandatory(t: MemoryTransport) -> None:
    t.declare(Topology.of(Exchange("x", "direct")))
    dropped = t.publish("x", "k", b"1")
    returned = t.publish("x", "k", b"2", mandatory=True)
    assert (dropped.outcome, returned.outcome) == (Outcome.CONFIRMED, Outcome.RETURNED)
    assert (dropped.sequence, returned.sequence) == (1, 2)
    assert t.flush() == [returned]
    assert t.flush() == []
    with pytest.raises(Unroutable, match="'x'"):
        returned.raise_for_outcome()


def test_publishing_to_a_missing_or_internal_exchange_is_refused(t: MemoryTransport) -> None:
    # As on RabbitMQ: the publication settles UNCONFIRMED with the channel error, no raise.
    missing = t.publish("nope", "k", b"")
    assert missing.outcome is Outcome.UNCONFIRMED
    with pytest.raises(ChannelClosed) as err:
        missing.raise_for_outcome()
    assert (err.value.code, err.value.text) == (404, "NOT_FOUND - no exchange 'nope' in vhost '/'")
    t.declare(Topology.of(Exchange("inner", "fanout", internal=True)))
    internal = t.publish("inner", "", b"")
    assert t.flush() == [missing, internal]
    with pytest.raises(ChannelClosed) as err:
        internal.raise_for_outcome()
    assert err.value.code == 403
    assert "cannot publish to internal exchange 'inner'" in err.value.text


def test_declare_reports_created_then_unchanged(t: MemoryTransport) -> None:
    x, q = Exchange("x", "topic"), Queue("q")
    topo = Topology.of(x, q, x.bind(q, "a.*"))
    first = t.declare(topo)
    assert first.created == ("exchange 'x'", "queue 'q'", "binding x -> q [a.*]")
    assert first.changed
    second = t.declare(topo)
    assert second.created == () and len(second.unchanged) == 3 and not second.changed


def test_redeclaring_differently_raises_every_conflict(t: MemoryTransport) -> None:
    t.declare(Topology.of(Exchange("x", "topic"), Queue("q", message_ttl=1000)))
    with pytest.raises(DeclareConflicts) as err:
        t.declare(Topology.of(Exchange("x", "direct"), Queue("q", message_ttl=2000), Queue("fresh")))
    assert err.value.conflicts == (
        "exchange 'x': argument 'type' differs: received 'direct' but current is 'topic'",
        "queue 'q': argument 'x-message-ttl' differs: received '2000' but current is '1000'",
    )
    assert t.get("fresh") is None  # the rest was still declared


@pytest.mark.parametrize(
    ("old", "new", "text"),
    [
        (Queue("q", message_ttl=1000), Queue("q"), "received none but current is the value '1000' of type 'signedint'"),
        (Queue("q"), Queue("q", max_length=5), "received the value '5' of type 'signedint' but current is none"),
        (Queue("q"), Queue("q", durable=False), "arg 'durable' for queue 'q' in vhost '/': received 'false' but current is 'true'"),
        (Queue("q", dead_letter_exchange="a"), Queue("q", dead_letter_exchange="b"), "received 'b' but current is 'a'"),
        (Queue("q", type="quorum"), Queue("q"), "received none but current is the value 'quorum' of type 'longstr'"),
        (Queue("q", single_active_consumer=False), Queue("q", single_active_consumer=True), "received 'true' but current is 'false'"),
    ],
)  # fmt: skip
def test_inequivalent_queue_texts_are_rabbitmqs(url: str, old: Queue, new: Queue, text: str) -> None:
    broker = broker_for(url)
    owner = object()
    broker.declare_queue(old, owner)
    with pytest.raises(PreconditionFailed) as err:
        broker.declare_queue(new, owner)
    assert err.value.code == 406
    assert err.value.text.startswith("PRECONDITION_FAILED - inequivalent arg '")
    assert err.value.text.endswith(text)


def test_unknown_arguments_are_not_compared(url: str) -> None:
    broker = broker_for(url)
    broker.declare_queue(Queue("q", arguments={"x-custom": 1}), None)
    assert broker.declare_queue(Queue("q", arguments={"x-custom": 2}), None) is False
    broker.declare_exchange(Exchange("x", arguments={"x-custom": 1}))
    assert broker.declare_exchange(Exchange("x")) is False
    with pytest.raises(PreconditionFailed, match="'alternate-exchange' for exchange 'x'"):
        broker.declare_exchange(Exchange("x", alternate_exchange="ae"))


def test_delete_queue_drops_its_bindings_and_auto_delete_exchanges(t: MemoryTransport) -> None:
    keep, gone = Exchange("keep", "fanout"), Exchange("gone", "fanout", auto_delete=True)
    t.declare(Topology.of(keep, gone, Queue("q"), keep.bind("q"), gone.bind("q")))
    t.delete_queue("q")
    t.delete_queue("q")  # missing is fine, as on RabbitMQ
    assert t.broker.exchange("keep") is not None
    assert t.broker.exchange("gone") is None
    t.declare(Topology.of(Queue("q")))
    assert t.publish("keep", "", b"", mandatory=True).outcome is Outcome.RETURNED


def test_delete_exchange_and_unbind(t: MemoryTransport) -> None:
    a, b = Exchange("a", "fanout"), Exchange("b", "fanout")
    t.declare(Topology.of(a, b, Queue("q"), a.bind(b), b.bind("q")))
    t.publish("a", "", b"1")
    t.delete_exchange("b")
    t.delete_exchange("b")
    assert t.publish("a", "", b"2", mandatory=True).outcome is Outcome.RETURNED
    t.declare(Topology.of(a, Queue("q"), a.bind("q")))
    t.unbind(Binding("a", "q"))
    t.unbind(Binding("a", "q"))
    assert t.publish("a", "", b"3", mandatory=True).outcome is Outcome.RETURNED
    assert bodies(t, "q") == [b"1"]
    with pytest.raises(ChannelClosed) as err:
        t.delete_exchange("amq.direct")
    assert err.value.code == 403


def test_missing_queue_operations_are_404(t: MemoryTransport) -> None:
    for op in (t.get, t.purge, t.consume):
        with pytest.raises(ChannelClosed) as err:
            op("nope")
        assert err.value.text == "NOT_FOUND - no queue 'nope' in vhost '/'"


def test_purge_counts_ready_messages(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    for i in range(3):
        t.publish("", "q", b"%d" % i)
    held = t.get("q")
    assert t.purge("q") == 2
    assert held is not None and t.get("q") is None
    t.nack(held)  # unacked messages survive a purge
    assert bodies(t, "q") == [b"0"]


def test_routes_follow_every_change_to_bindings_and_queues(t: MemoryTransport) -> None:
    x = Exchange("x", "topic")
    t.declare(Topology.of(x, Queue("a"), x.bind("a", "k.*")))
    t.publish("x", "k.1", b"1")  # the route is remembered...
    t.declare(Topology.of(x, Queue("b"), x.bind("b", "#")))
    t.publish("x", "k.1", b"2")  # ...and forgotten when a binding is added
    t.unbind(Binding("x", "a", "k.*"))
    t.publish("x", "k.1", b"3")
    t.delete_queue("b")
    assert t.publish("x", "k.1", b"4", mandatory=True).outcome is Outcome.RETURNED
    t.publish("", "c", b"5")
    t.declare(Topology.of(Queue("c")))
    t.publish("", "c", b"6")
    assert (bodies(t, "a"), bodies(t, "c")) == ([b"1", b"2"], [b"6"])


def test_headers_routes_are_never_reused_across_messages(t: MemoryTransport) -> None:
    front, h = Exchange("front", "fanout"), Exchange("h", "headers")
    t.declare(Topology.of(front, h, Queue("q"), front.bind(h), h.bind("q", headers={"kind": "a"})))
    t.publish("front", "", b"yes", Properties(headers={"kind": "a"}))
    t.publish("front", "", b"no", Properties(headers={"kind": "b"}))
    t.publish("front", "", b"yes again", Properties(headers={"kind": "a"}))
    assert bodies(t, "q") == [b"yes", b"yes again"]


@pytest.mark.parametrize("release", ["3.10", "4.0"])
def test_headers_values_across_amqp_types_as_the_release_compares_them(url: str, release: str) -> None:
    """Issue 12 item 11 on the embedded broker: binary equals longstr on both releases; an int
    binding matches a timestamp header of its seconds on 3.10, of its milliseconds on 4.0."""
    from datetime import UTC, datetime

    new_year = datetime(2020, 1, 1, tzinfo=UTC)
    h = Exchange("h", "headers")
    pdf, seconds, millis = Queue("pdf"), Queue("seconds"), Queue("millis")
    with MemoryTransport(f"{url}?rabbitmq={release}") as t:
        t.declare(
            Topology.of(
                h, pdf, seconds, millis,
                h.bind(pdf, headers={"format": "pdf"}),
                h.bind(seconds, headers={"at": 1577836800}),
                h.bind(millis, headers={"at": 1577836800000}),
            )
        )  # fmt: skip
        t.publish("h", "", b"binary", Properties(headers={"format": b"pdf"}))
        t.publish("h", "", b"timestamp", Properties(headers={"at": new_year}))
        got = {q: bodies(t, q) for q in ("pdf", "seconds", "millis")}
    on_310 = release == "3.10"
    assert got == {
        "pdf": [b"binary"],
        "seconds": [b"timestamp"] if on_310 else [],
        "millis": [] if on_310 else [b"timestamp"],
    }


def test_the_url_names_the_release_and_one_broker_is_one_release(url: str) -> None:
    from routing.profiles import ProfileError

    with MemoryTransport(f"{url}?rabbitmq=3.10.8") as first:
        assert first.server_version == "3.10" and first.broker.profile.name == "3.10"
        with MemoryTransport(url) as same:  # no release named: the broker as it is
            assert same.broker is first.broker
        with pytest.raises(ProfileError, match=r"already an embedded RabbitMQ 3\.10.*asks for RabbitMQ 4\.0"):
            MemoryTransport(f"{url}?rabbitmq=4.0")
    with pytest.raises(ProfileError, match=r"supported: 3\.10"):
        MemoryTransport(f"{url}-other?rabbitmq=2.8")
    with pytest.raises(ProfileError, match="unknown parameter 'rabbit'"):
        MemoryTransport(f"{url}-other?rabbit=4.0")
    assert MemoryTransport(f"{url}-new").server_version == "4.0"  # the newest verified
    forget(f"{url}-new")
