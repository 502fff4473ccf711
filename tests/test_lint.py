"""`routing lint`: each check fires on a topology that has the problem and stays quiet on one that
does not; the command's exit codes; every demo and example lints without errors; and where a finding
claims what RabbitMQ does (a cycle dropped, a dead letter keeping its key, a TTL expiring only at the
head), the broker under test does it (`broker` tests; run them on 3.10.8 and on 4.0.5)."""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from demos import cache_invalidation, header_filtering, topic_logs, work_queue
from examples import resize_worker, shop_topology
from routing.cli import main
from routing.definitions import dump_definitions
from routing.lint import Finding, Severity, lint
from routing.operations import Publishes
from routing.properties import Properties
from routing.topology import Binding, Exchange, Overflow, Queue, Topology
from routing.transport import Delivery, Transport, open_transport
from routing.worker import App, RetryPolicy

ERROR, WARNING = Severity.ERROR, Severity.WARNING
README = Path(__file__).parents[1] / "README.md"


def about(findings: tuple[Finding, ...], words: str) -> list[Finding]:
    return [f for f in findings if words in f.problem]


def only(findings: tuple[Finding, ...], words: str) -> Finding:
    found = about(findings, words)
    assert len(found) == 1, findings
    return found[0]


# ---------------------------------------------------------------- dead-letter cycles


def ttl_loop(a: str = "a", b: str = "b", *, ttl_a: int | None = 10, ttl_b: int | None = 10) -> Topology:
    """a dead-letters to b and b back to a, both through the default exchange."""
    qa = Queue(a, message_ttl=ttl_a, dead_letter_exchange="", dead_letter_routing_key=b)
    qb = Queue(b, message_ttl=ttl_b, dead_letter_exchange="", dead_letter_routing_key=a)
    return Topology.of(qa, qb)


def test_a_cycle_with_no_reject_in_it_is_an_error() -> None:
    found = only(lint(ttl_loop()), "is dropped as it comes back")
    assert found.severity is ERROR
    assert found.entity == "dead-letter cycle a -> b -> a"
    assert "expires in 'a', then expires in 'b'" in found.problem


def test_a_cycle_a_reject_must_break_is_allowed() -> None:
    # a loses messages only to a consumer's reject: a message goes round only through a reject
    assert not about(lint(ttl_loop(ttl_a=None)), "comes back")
    assert not about(lint(ttl_loop(ttl_a=None, ttl_b=None)), "comes back")


def test_a_quorum_queue_dies_at_its_delivery_limit_only_where_the_release_has_one() -> None:
    qa = Queue("a", type="quorum", dead_letter_exchange="", dead_letter_routing_key="b")
    topology = Topology.of(
        qa, Queue("b", message_ttl=10, dead_letter_exchange="", dead_letter_routing_key="a")
    )
    found = only(lint(topology, profile="4.0"), "comes back")  # 4.0: a limit of 20 by default
    assert "hits the delivery limit in 'a'" in found.problem
    assert not about(lint(topology, profile="3.10"), "comes back")  # 3.10: no limit unless given


def test_a_publishers_per_message_ttl_can_start_a_dropping_cycle() -> None:
    topology = ttl_loop(ttl_a=None)
    sends = [Publishes("", "a", expiration=100)]
    found = only(lint(topology, publishers=sends), "comes back")
    assert found.entity == "dead-letter cycle a -> b -> a"


def test_a_cycle_through_a_dead_letter_exchange_follows_the_keys() -> None:
    dlx = Exchange("dlx", "direct")
    q = Queue("q", message_ttl=10, dead_letter_exchange="dlx")  # a dead letter keeps its own key
    topology = Topology.of(dlx, q, dlx.bind(q, "again"))
    found = only(lint(topology, publishers=[Publishes("dlx", "again")]), "comes back")
    assert found.entity == "dead-letter cycle q -> q"
    assert not about(lint(topology, publishers=[Publishes("", "q")]), "comes back")  # key 'q' goes nowhere


# ---------------------------------------------------------------- what reaches what


def test_a_queue_nothing_routes_to_is_a_warning() -> None:
    logs = Exchange("logs", "fanout")
    lonely = only(
        lint(Topology.of(logs, Queue("lonely"), Queue("bound"), logs.bind("bound"))), "nothing routes"
    )
    assert (lonely.severity, lonely.entity) == (WARNING, "queue 'lonely'")
    assert not about(
        lint(Topology.of(Queue("lonely")), publishers=[Publishes("", "lonely")]), "nothing routes"
    )


def test_a_dead_letter_target_and_a_workers_queues_are_reached() -> None:
    app = App(retry=RetryPolicy(initial=1, max_delay=2, max_attempts=3))
    jobs = Exchange("jobs", "direct")
    topology = Topology.of(jobs, app.topology("work"), jobs.bind("work", "work"))
    assert [f.entity for f in about(lint(topology), "nothing routes")] == [
        "queue 'work.retry.1000ms'",
        "queue 'work.retry.2000ms'",
    ]  # work.dead is the work queue's dead-letter target
    assert lint(topology, apps=[app]) == ()
    # given with its queue, an app adds its retry and dead-letter queues to the topology...
    assert (
        lint(Topology.of(jobs, jobs.bind("work", "work"), app.queues("work").topology), apps=[(app, "work")])
        == ()
    )
    # ...and a queue declared otherwise by hand is one the worker cannot declare
    conflict = only(
        lint(Topology.of(jobs, Queue("work"), jobs.bind("work", "work")), apps=[(app, "work")]), "406"
    )
    assert (conflict.severity, conflict.entity) == (ERROR, "queue 'work'")


def test_a_publisher_whose_messages_reach_no_queue_is_an_error() -> None:
    events = Exchange("events", "topic")
    topology = Topology.of(events, Queue("orders"), events.bind("orders", "order.*"))
    found = only(
        lint(topology, publishers=[Publishes("events", "refund.1", name="refunds")]), "reach no queue"
    )
    assert (found.severity, found.entity) == (ERROR, "refunds")
    assert lint(topology, publishers=[Publishes("events", "order.1")]) == ()
    assert (
        only(lint(topology, publishers=[Publishes("nowhere", "x")]), "not in the topology").severity is ERROR
    )
    audit = Exchange("audit", "fanout", internal=True)
    internal = Topology.of(audit, Queue("q"), audit.bind("q"))
    assert only(lint(internal, publishers=[Publishes("audit")]), "is internal").severity is ERROR


def test_an_exchange_with_no_bindings_is_a_warning() -> None:
    found = only(lint(Topology.of(Exchange("void", "topic"))), "has no bindings")
    assert (found.severity, found.entity) == (WARNING, "exchange 'void'")
    spare = Exchange("spare", "fanout")
    with_ae = Topology.of(
        Exchange("x", "topic", alternate_exchange="spare"), spare, Queue("q"), spare.bind("q")
    )
    assert lint(with_ae) == ()


def test_dead_letters_that_reach_no_queue_are_an_error() -> None:
    typo = Queue("work", dead_letter_exchange="", dead_letter_routing_key="work.daed")
    found = only(
        lint(Topology.of(typo, Queue("work.dead")), publishers=[Publishes("", "work")]), "dead letters"
    )
    assert found.severity is ERROR
    assert "the default exchange with key 'work.daed'" in found.problem
    unbound = Topology.of(Exchange("dlx", "direct"), Queue("w", dead_letter_exchange="dlx"))
    nowhere = only(lint(unbound), "dead letters")  # nothing known of w's messages: any key is lost
    assert "exchange 'dlx' whatever their key" in nowhere.problem
    fixed = Queue("work", dead_letter_exchange="", dead_letter_routing_key="work.dead")
    assert not about(lint(Topology.of(fixed, Queue("work.dead"))), "dead letters go")


def shop_before_the_fix() -> Topology:
    """The shop example as it was: orders.created dead-lettered with no dead_letter_routing_key."""
    shop = shop_topology.topology
    orders = replace(shop_topology.orders, dead_letter_routing_key=None)
    return replace(shop, queues=tuple(orders if q.name == orders.name else q for q in shop.queues))


SHOP_LOST = (
    "error: queue 'orders.created': its dead letters go to exchange 'shop.dlx' with key "
    "'order.created', which routes them to no queue: RabbitMQ drops them; fix: bind a queue to "
    "the dead-letter exchange for that key, or set a dead_letter_routing_key that reaches one"
)


def test_the_shop_examples_dead_letters_kept_their_key_and_were_lost() -> None:
    # orders.created had no dead_letter_routing_key, so its dead letters kept the key they were
    # published with (order.created), and shop.dlx binds only 'orders.created'. Its binding from
    # shop.events says so without any publisher; its publishers say the same.
    before = shop_before_the_fix()
    assert [str(f) for f in lint(before)] == [SHOP_LOST]
    assert [str(f) for f in lint(before, publishers=shop_topology.publishes)] == [SHOP_LOST]
    fixed = shop_topology.topology
    assert lint(fixed) == () and lint(fixed, publishers=shop_topology.publishes) == ()


def bound_by(
    kind: str, key: str, *more: Exchange | Queue | Binding, dlx: Exchange | None = None, **queue: str
) -> Topology:
    """A queue 'w' bound to exchange 'in' by `key`, dead-lettering to 'dlx' (direct unless
    given), which binds 'dead' only for 'w'; and `more`."""
    source = Exchange("in", kind)  # type: ignore[arg-type]
    dlx = dlx or Exchange("dlx", "direct")
    w = Queue("w", dead_letter_exchange=dlx.name, **queue)  # type: ignore[arg-type]
    return Topology.of(source, dlx, w, Queue("dead"), source.bind(w, key), dlx.bind("dead", "w"), *more)


def test_the_key_a_queue_is_bound_by_is_the_key_its_dead_letters_keep() -> None:
    for kind, key in (("direct", "job"), ("topic", "job.created"), ("topic", "")):
        found = only(lint(bound_by(kind, key)), "dead letters go")
        assert (found.severity, found.entity) == (ERROR, "queue 'w'")
        assert f"exchange 'dlx' with key {key!r}, which routes them to no queue" in found.problem
    # a binding that does not fix the key says nothing of it: no guessing
    for kind, key in (("topic", "job.*"), ("topic", "job.#"), ("topic", "#"), ("fanout", "")):
        assert lint(bound_by(kind, key)) == ()
    headers = Exchange("in", "headers")
    by_headers = Topology.of(
        headers, Exchange("dlx", "direct"), Queue("w", dead_letter_exchange="dlx"), Queue("dead"),
        headers.bind("w", match="all", headers={"a": 1}), Exchange("dlx", "direct").bind("dead", "w"),
    )  # fmt: skip
    assert lint(by_headers) == ()
    # a dead_letter_routing_key replaces the key: only it is routed, and it lands
    assert lint(bound_by("direct", "job", dead_letter_routing_key="w")) == ()
    assert (
        "with key 'v'" in only(lint(bound_by("direct", "job", dead_letter_routing_key="v")), "dead").problem
    )


def test_a_bound_key_is_not_lost_where_an_alternate_or_a_headers_exchange_may_take_it() -> None:
    # the dead-letter exchange's alternate exchange catches what it does not route
    spare = Exchange("spare", "fanout")
    dlx = Exchange("dlx", "direct", alternate_exchange="spare")
    assert lint(bound_by("direct", "job", spare, Queue("parked"), spare.bind("parked"), dlx=dlx)) == ()
    # an alternate exchange that routes it nowhere loses it too
    nowhere = Exchange("spare", "direct")
    lost = bound_by("direct", "job", nowhere, Queue("parked"), nowhere.bind("parked", "p"), dlx=dlx)
    assert "with key 'job'" in only(lint(lost), "dead letters go").problem
    # a headers exchange on the way: the dead letter's headers are not known, so nothing is said
    by_headers = Exchange("dlx", "headers")
    assert not about(lint(bound_by("direct", "job", dlx=by_headers)), "dead letters go")


def test_a_dead_letter_exchange_missing_from_the_topology_is_refused_before_lint(tmp_path: Path) -> None:
    # RabbitMQ takes the queue and drops its dead letters; a topology refuses it at construction,
    # from a definitions file too, so `routing lint` exits 1 with the fix.
    queue = {"name": "w", "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {"x-dead-letter-exchange": "nowhere"}}  # fmt: skip
    path = tmp_path / "defs.json"
    path.write_text(json.dumps({"queues": [queue], "exchanges": [], "bindings": []}), encoding="utf-8")
    code, lines = run(str(path))
    assert code == 1
    assert lines == [
        f"Error: {path}: queue 'w': dead-letter exchange 'nowhere' is not in the topology; add it"
    ]


# ---------------------------------------------------------------- queue settings


def test_a_quorum_queue_with_a_delivery_limit_and_no_dead_letter_exchange_is_a_warning() -> None:
    limited = Topology.of(Queue("q", type="quorum", delivery_limit=3))
    found = only(lint(limited, profile="3.10", publishers=[Publishes("", "q")]), "no dead_letter_exchange")
    assert (found.severity, found.entity) == (WARNING, "queue 'q'")
    assert "given back 4 times is dropped" in found.problem
    default = Topology.of(Queue("q", type="quorum"))
    assert about(lint(default, profile="4.0"), "no dead_letter_exchange")  # the 4.0 default of 20
    assert not about(lint(default, profile="3.10"), "no dead_letter_exchange")
    assert not about(
        lint(Topology.of(Queue("q", type="quorum", delivery_limit=-1)), profile="4.0"), "no dead_"
    )
    dlx = Exchange("dlx", "fanout")
    kept = Topology.of(
        dlx,
        Queue("d"),
        dlx.bind("d"),
        Queue("q", type="quorum", delivery_limit=3, dead_letter_exchange="dlx"),
    )
    assert not about(lint(kept), "no dead_letter_exchange")


def test_a_retry_delay_past_consumer_timeout_is_a_warning() -> None:
    app = App(retry=RetryPolicy(initial=60, max_delay=3600, multiplier=60, max_attempts=3))
    topology = Topology.of(
        Exchange("jobs", "direct"), app.topology("w"), Exchange("jobs", "direct").bind("w", "w")
    )
    found = only(lint(topology, apps=[app]), "consumer_timeout")
    assert (found.severity, found.entity) == (WARNING, "queue 'w.retry.3600000ms'")
    assert not about(lint(topology, apps=[app], consumer_timeout_ms=3_600_000), "consumer_timeout")
    short = App(retry=RetryPolicy(initial=1, max_delay=60))
    assert lint(Topology.of(short.topology("w"), topology.exchanges, topology.bindings), apps=[short]) == ()


def test_per_message_ttls_mixed_in_one_queue_are_a_warning() -> None:
    topology = Topology.of(Queue("delays"))
    mixed = [Publishes("", "delays", expiration=5_000), Publishes("", "delays", expiration=60_000)]
    found = only(lint(topology, publishers=mixed), "expire after")
    assert (found.severity, found.entity) == (WARNING, "queue 'delays'")
    assert "5000 ms, 60000 ms" in found.problem
    same = [
        Publishes("", "delays", expiration=5_000, name="a"),
        Publishes("", "delays", expiration=5_000, name="b"),
    ]
    assert lint(topology, publishers=same) == ()
    capped = Topology.of(Queue("delays", message_ttl=1_000))  # the queue's TTL is the shorter for both
    assert lint(capped, publishers=mixed) == ()
    with_none = [Publishes("", "delays", expiration=5_000), Publishes("", "delays")]
    assert "5000 ms, none" in only(lint(topology, publishers=with_none), "expire after").problem


def test_at_least_once_dead_lettering_without_reject_publish_is_an_error() -> None:
    dlx = Exchange("dlx", "fanout")
    base = Topology.of(dlx, Queue("dead"), dlx.bind("dead"))
    strategy = {"x-dead-letter-strategy": "at-least-once"}
    loose = Queue("q", type="quorum", message_ttl=1000, dead_letter_exchange="dlx", arguments=strategy)
    found = only(lint(Topology.of(base, loose), publishers=[Publishes("", "q")]), "at-least-once")
    assert (found.severity, found.entity) == (ERROR, "queue 'q'")
    assert "expired messages are lost" in found.problem
    tight = Queue(
        "q",
        type="quorum",
        message_ttl=1000,
        dead_letter_exchange="dlx",
        arguments=strategy,
        overflow=Overflow.REJECT_PUBLISH,
    )
    assert lint(Topology.of(base, tight), publishers=[Publishes("", "q")], profile="3.10") == ()


def test_what_the_release_deprecates_or_refuses_comes_from_the_profiles() -> None:
    transient = Topology.of(
        Queue("t", durable=False), Exchange("x", "fanout"), Exchange("x", "fanout").bind("t")
    )
    assert lint(transient, profile="3.10") == ()
    deprecated = only(lint(transient, profile="4.0"), "non-durable")
    assert deprecated.severity is WARNING
    assert only(lint(transient, profile="4.3"), "non-durable").severity is ERROR  # refused from 4.3 on


# ---------------------------------------------------------------- the command


def run(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["lint", *args])
    return result.exit_code, result.output.splitlines()


def test_exit_1_on_an_error_and_0_on_warnings_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lint_case.py").write_text(
        "from routing import Exchange, Queue, Topology\n"
        "from routing.operations import Publishes\n"
        "a = Queue('a', message_ttl=10, dead_letter_exchange='', dead_letter_routing_key='b')\n"
        "b = Queue('b', message_ttl=10, dead_letter_exchange='', dead_letter_routing_key='a')\n"
        "cycle = Topology.of(a, b)\n"
        "lonely = Topology.of(Queue('lonely'))\n"
        "fine = Topology.of(Queue('fine'))\n"
        "sends = [Publishes('', 'fine')]\n"
        "one = Publishes('', 'fine')\n"
        "wrong = 42\n",
        encoding="utf-8",
    )
    code, lines = run("lint_case:cycle")
    assert code == 1
    assert lines[0].startswith("error: dead-letter cycle a -> b -> a: ")
    assert lines[-1] == "1 error, 0 warnings on RabbitMQ 4.0 (4.0 and later)"  # a and b reach each other
    code, lines = run("lint_case:lonely", "--rabbitmq", "3.10")
    assert (code, lines[-1]) == (0, "0 errors, 1 warning on RabbitMQ 3.10 (3.10-3.12)")
    assert run("lint_case:fine", "--publishers", "lint_case:sends") == (
        0,
        ["no findings on RabbitMQ 4.0 (4.0 and later)"],
    )
    assert run("lint_case:fine", "--publishers", "lint_case:one")[0] == 0
    code, lines = run("lint_case:fine", "--publishers", "lint_case:wrong")
    assert code == 1 and "not a Publishes or a list of them" in lines[-1]
    code, lines = run("lint_case:fine", "--rabbitmq", "2.8")
    assert code == 1 and "no profile for RabbitMQ '2.8'" in lines[-1]


def readme_lint_blocks() -> tuple[list[str], list[list[str]]]:
    """The README's lint section: its `routing lint` command lines and its ```text blocks."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### `routing lint`") : text.index("## Envelopes")]
    fenced = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    commands = [line for kind, body in fenced if kind == "sh" for line in body.splitlines()]
    return commands, [body.splitlines() for kind, body in fenced if kind == "text"]


def test_the_readme_shows_what_lint_prints(tmp_path: Path) -> None:
    commands, (before, after) = readme_lint_blocks()
    old = tmp_path / "shop_before_the_fix.json"
    old.write_text(json.dumps(dump_definitions(shop_before_the_fix())), encoding="utf-8")
    assert run(str(old)) == (1, before)
    assert before[0] == SHOP_LOST
    printed = []
    for command in commands:
        code, lines = run(*shlex.split(command)[2:])
        assert code == 0, (command, lines)
        printed += lines
    assert printed == after


def test_an_app_on_the_command_line_contributes_its_queues() -> None:
    topology = "examples.resize_worker:topology"
    assert run(topology, "--app", "examples.resize_worker:app") == (
        0,
        ["no findings on RabbitMQ 4.0 (4.0 and later)"],
    )
    code, lines = run(topology)
    assert (
        code == 0 and lines[-1] == "0 errors, 4 warnings on RabbitMQ 4.0 (4.0 and later)"
    )  # its 4 retry queues
    code, lines = run(topology, "--app", "examples.resize_worker:app@resize", "--consumer-timeout", "1000")
    assert (
        code == 0 and lines[-1] == "0 errors, 3 warnings on RabbitMQ 4.0 (4.0 and later)"
    )  # 2, 4, 8 s > 1 s
    assert all("consumer_timeout (1000 ms)" in line for line in lines[:-1])


# ---------------------------------------------------------------- the demos and examples

LINTED: dict[str, Callable[[str], tuple[Finding, ...]]] = {
    "topic_logs": lambda release: lint(topic_logs.TOPOLOGY, profile=release),
    "header_filtering": lambda release: lint(header_filtering.TOPOLOGY, profile=release),
    "cache_invalidation": lambda release: lint(cache_invalidation.TOPOLOGY, profile=release),
    # the demo publishes its jobs to the default exchange, by the queue's name
    "work_queue": lambda release: lint(
        work_queue.TOPOLOGY, profile=release, publishers=[Publishes("", "demo.resize")]
    ),
    "shop_topology": lambda release: lint(shop_topology.topology, profile=release),
    "resize_worker": lambda release: lint(resize_worker.topology, profile=release, apps=[resize_worker.app]),
}


@pytest.mark.parametrize("release", ["3.10", "4.0"])
@pytest.mark.parametrize("name", LINTED)
def test_every_demo_and_example_lints_clean(name: str, release: str) -> None:
    # Documented exceptions: work_queue's queue is reached only by the demo publishing to it by name
    # (declared above).
    assert LINTED[name](release) == ()


# ---------------------------------------------------------------- what RabbitMQ does


def settle(t: Transport, queues: list[str], want: list[int], seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while True:
        counts = [t.message_count(q) for q in queues]
        if counts == want or time.monotonic() > deadline:
            return counts
        time.sleep(0.05)


# These two run on the embedded broker too, which applies the same rule (dropped_as_cycle).
def test_rabbitmq_drops_the_cycle_lint_calls_an_error(either_url: str, unique: str) -> None:
    a, b = f"{unique}.a", f"{unique}.b"
    topology = ttl_loop(a, b, ttl_a=50, ttl_b=500)
    assert only(lint(topology), "comes back").severity is ERROR
    with open_transport(either_url) as t:
        t.declare(topology)
        try:
            t.publish("", a, b"round")
            t.flush()
            assert settle(t, [a, b], [0, 1], seconds=0.4) == [0, 1]  # expired in a, waiting in b
            time.sleep(0.8)  # expired in b at ~550 ms, and dead-lettered back to a: dropped there
            # Kept, it would be in a or b now and then: a for 50 ms, then b for 500 ms, over and over.
            seen = set()
            for _ in range(12):
                seen.add((t.message_count(a), t.message_count(b)))
                time.sleep(0.05)
            assert seen == {(0, 0)}
        finally:
            t.delete_queue(a)
            t.delete_queue(b)


def test_rabbitmq_keeps_a_cycle_broken_by_rejects(either_url: str, unique: str) -> None:
    a, b = f"{unique}.a", f"{unique}.b"
    topology = ttl_loop(a, b, ttl_a=None, ttl_b=None)
    assert not about(lint(topology), "comes back")
    with open_transport(either_url) as t:
        t.declare(topology)
        try:
            t.publish("", a, b"round")
            t.flush()
            for _ in range(2):  # twice round: a -> b -> a -> b -> a
                for here, there in ((a, b), (b, a)):
                    delivery = t.get(here)
                    assert delivery is not None
                    t.reject(delivery, requeue=False)
                    assert settle(t, [there], [1]) == [1]
        finally:
            t.delete_queue(a)
            t.delete_queue(b)


@pytest.mark.broker
def test_rabbitmq_routes_a_dead_letter_by_the_key_it_was_published_with(amqp_url: str, unique: str) -> None:
    events = Exchange(f"{unique}.events", "topic", auto_delete=True)
    dlx = Exchange(f"{unique}.dlx", "direct", auto_delete=True)
    work = Queue(f"{unique}.work", dead_letter_exchange=dlx.name)
    dead = Queue(f"{unique}.dead")
    # the shop example's shape: the dead-letter exchange binds the queue's name, not the message's key
    topology = Topology.of(events, dlx, work, dead, events.bind(work, "job.*"), dlx.bind(dead, work.name))
    by_event = only(lint(topology, publishers=[Publishes(events.name, "job.created")]), "dead letters")
    assert by_event.severity is ERROR
    assert lint(topology, publishers=[Publishes("", work.name)]) == ()  # by name: the key is bound
    with open_transport(amqp_url) as t:
        t.declare(topology)
        try:
            for exchange, key, reaches_dead in ((events.name, "job.created", 0), ("", work.name, 1)):
                t.publish(exchange, key, b"job")
                t.flush()
                delivery = None
                for _ in range(100):
                    delivery = t.get(work.name)
                    if delivery is not None:
                        break
                    time.sleep(0.02)
                assert delivery is not None
                t.reject(delivery, requeue=False)
                assert settle(t, [dead.name], [reaches_dead], seconds=1.0) == [reaches_dead]
        finally:
            t.delete_queue(work.name)
            t.delete_queue(dead.name)
            t.delete_exchange(events.name)
            t.delete_exchange(dlx.name)


def get_one(t: Transport, queue: str) -> Delivery:
    for _ in range(100):
        delivery = t.get(queue)
        if delivery is not None:
            return delivery
        time.sleep(0.02)
    raise AssertionError(f"nothing in {queue!r}")


def test_rabbitmq_drops_the_dead_letters_of_a_queue_bound_by_a_key_its_dlx_does_not_bind(
    either_url: str, unique: str
) -> None:
    # The old shop example's shape, with no publisher known: 'lost' keeps the key it is bound
    # by (order.created) as a dead letter, and the dead-letter exchange binds only 'parked';
    # 'kept' takes 'parked' as its dead_letter_routing_key. One message reaches both.
    events = Exchange(f"{unique}.events", "topic", auto_delete=True)
    dlx = Exchange(f"{unique}.dlx", "direct", auto_delete=True)
    lost = Queue(f"{unique}.lost", dead_letter_exchange=dlx.name)
    kept = Queue(f"{unique}.kept", dead_letter_exchange=dlx.name, dead_letter_routing_key="parked")
    dead = Queue(f"{unique}.dead")
    topology = Topology.of(
        events, dlx, lost, kept, dead,
        events.bind(lost, "order.created"), events.bind(kept, "order.created"), dlx.bind(dead, "parked"),
    )  # fmt: skip
    found = only(lint(topology), "dead letters go")
    assert (found.severity, found.entity) == (ERROR, f"queue {lost.name!r}")
    assert f"exchange {dlx.name!r} with key 'order.created'" in found.problem
    with open_transport(either_url) as t:
        t.declare(topology)
        try:
            t.publish(events.name, "order.created", b"order")
            t.flush()
            for queue in (lost.name, kept.name):  # lost's dead letter goes first
                t.reject(get_one(t, queue), requeue=False)
            assert settle(t, [dead.name], [1]) == [1]
            time.sleep(0.3)
            assert [t.message_count(q) for q in (lost.name, kept.name, dead.name)] == [0, 0, 1]
            letter = get_one(t, dead.name)
            assert [d["queue"] for d in letter.headers["x-death"]] == [kept.name]  # kept's, not lost's
            t.ack(letter)
        finally:
            for q in (lost, kept, dead):
                t.delete_queue(q.name)
            t.delete_exchange(events.name)
            t.delete_exchange(dlx.name)


@pytest.mark.broker
def test_rabbitmq_expires_a_per_message_ttl_only_at_the_head(amqp_url: str, unique: str) -> None:
    name = f"{unique}.delays"
    topology = Topology.of(Queue(name))
    sends = [Publishes("", name, expiration=60_000), Publishes("", name, expiration=50)]
    assert only(lint(topology, publishers=sends), "expire after").severity is WARNING
    with open_transport(amqp_url) as t:
        t.declare(topology)
        try:
            t.publish("", name, b"long", Properties(expiration="60000"))
            t.publish("", name, b"short", Properties(expiration="50"))
            t.flush()
            time.sleep(0.5)  # ten times the short TTL
            assert t.message_count(name) == 2  # the short one waits behind the long one, unexpired
            first = t.get(name)
            assert first is not None and first.body == b"long"
            t.ack(first)
            assert settle(t, [name], [0]) == [0]
            assert t.get(name) is None  # reaching the head, it expired
        finally:
            t.delete_queue(name)


def test_an_internal_exchange_takes_dead_letters(either_url: str, unique: str) -> None:
    # A client may not publish to an internal exchange, but the broker dead-letters into one
    # (route(..., by_broker=True)): lint reports nothing lost (3.10.8 and 4.0.5 agree).
    dlx = Exchange(f"{unique}.dlx", "fanout", internal=True, auto_delete=True)
    work = Queue(f"{unique}.work", dead_letter_exchange=dlx.name)
    dead = Queue(f"{unique}.dead")
    topology = Topology.of(dlx, work, dead, dlx.bind(dead))
    assert lint(topology, publishers=[Publishes("", work.name)]) == ()
    with open_transport(either_url) as t:
        t.declare(topology)
        try:
            t.publish("", work.name, b"job")
            t.flush()
            delivery = None
            for _ in range(100):
                delivery = t.get(work.name)
                if delivery is not None:
                    break
                time.sleep(0.02)
            assert delivery is not None
            t.reject(delivery, requeue=False)
            assert settle(t, [dead.name], [1]) == [1]
        finally:
            t.delete_queue(work.name)
            t.delete_queue(dead.name)
            t.delete_exchange(dlx.name)
