"""`routing publish`, `consume`, `tail` and `diff` through CliRunner, against RabbitMQ."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from broker_under_test import naming_management as with_management
from click.testing import CliRunner, Result

from routing.cli import main
from routing.definitions import dump_definitions
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport import Outcome, open_transport
from routing.urls import describe

LOG = {"level": "error", "service": "billing", "message": "card declined", "time": "2026-01-01T00:00:00Z"}


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input)


def records(result: Result) -> list[dict[str, Any]]:
    """The --json lines of a consume or tail run (other lines are the broker line and notes)."""
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def shop(amqp_url: str, unique: str) -> Iterator[dict[str, str]]:
    """A topic exchange `x` and a queue `q` bound with `billing.*`, deleted afterwards."""
    names = {"x": f"{unique}.logs", "q": f"{unique}.billing", "dlx": f"{unique}.dlx", "dlq": f"{unique}.dead"}
    topology = Topology.of(
        Exchange(names["x"], "topic"),
        Exchange(names["dlx"], "fanout"),
        Queue(names["q"], dead_letter_exchange=names["dlx"]),
        Queue(names["dlq"]),
        Binding(names["x"], names["q"], "billing.*"),
        Binding(names["dlx"], names["dlq"]),
    )
    with open_transport(amqp_url) as t:
        t.declare(topology)
    yield names
    with open_transport(amqp_url) as t:
        for q in (names["q"], names["dlq"]):
            t.delete_queue(q)
        for x in (names["x"], names["dlx"]):
            t.delete_exchange(x)


@pytest.mark.broker
def test_publish_then_consume_round_trip(amqp_url: str, shop: dict[str, str]) -> None:
    sent = run(
        "publish", "--exchange", shop["x"], "--routing-key", "billing.error", "--type", "log.record",
        "--source", "urn:test", "--header", "tenant=acme", "--url", amqp_url, input=json.dumps(LOG),
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    lines = sent.stdout.splitlines()
    assert lines[0] == describe(amqp_url)  # the URL, password redacted
    assert "guest:guest" not in sent.output
    assert "1 confirmed, 0 returned, 0 nacked" in sent.stdout
    sent_id = next(line.split(": ", 1)[1] for line in lines if line.startswith("id: "))

    got = run("consume", shop["q"], "--limit", "1", "--timeout", "5", "--json", "--url", amqp_url)
    assert got.exit_code == 0, got.output
    [record] = records(got)
    assert record["routing_key"] == "billing.error"
    assert record["headers"] == {"tenant": "acme"}
    assert record["envelope"]["id"] == sent_id
    assert record["envelope"]["type"] == "log.record"
    assert record["envelope"]["data"] == LOG
    # acked: the queue is empty now
    with open_transport(amqp_url) as t:
        assert t.get(shop["q"]) is None


@pytest.mark.broker
def test_invalid_envelope_is_refused_before_sending(amqp_url: str, shop: dict[str, str]) -> None:
    bad = {"level": "loud", "service": "billing"}
    result = run(
        "publish", "--exchange", shop["x"], "--routing-key", "billing.error", "--type", "log.record",
        "--data", json.dumps(bad), "--url", amqp_url,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "data.message: required" in result.stderr
    assert "data.level" in result.stderr
    assert "nothing was sent" in result.stderr.splitlines()[-1]
    with open_transport(amqp_url) as t:
        assert t.get(shop["q"]) is None


@pytest.mark.broker
def test_count_publishes_confirmed_messages_with_distinct_ids(amqp_url: str, shop: dict[str, str]) -> None:
    sent = run(
        "publish", "--exchange", shop["x"], "--routing-key", "billing.info", "--type", "log.record",
        "--data", json.dumps(LOG), "--count", "200", "--url", amqp_url,
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    assert "published 200: 200 confirmed, 0 returned, 0 nacked, 0 unconfirmed" in sent.stdout
    got = run("consume", shop["q"], "--limit", "200", "--timeout", "5", "--json", "--url", amqp_url)
    ids = {r["envelope"]["id"] for r in records(got)}
    assert len(ids) == 200


@pytest.mark.broker
def test_unroutable_with_mandatory_fails(amqp_url: str, shop: dict[str, str]) -> None:
    result = run(
        "publish", "--exchange", shop["x"], "--routing-key", "auth.info", "--type", "log.record",
        "--data", json.dumps(LOG), "--mandatory", "--url", amqp_url,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "0 confirmed, 1 returned" in result.stdout
    assert (
        f"Error: unroutable: no queue is bound to exchange {shop['x']!r} for key 'auth.info'" in result.stderr
    )
    # without --mandatory the broker confirms it (and drops it)
    quiet = run(
        "publish", "--exchange", shop["x"], "--routing-key", "auth.info", "--type", "log.record",
        "--data", json.dumps(LOG), "--url", amqp_url,
    )  # fmt: skip
    assert quiet.exit_code == 0, quiet.output


@pytest.mark.broker
def test_consume_rejects_invalid_messages_to_the_dead_letter_queue(
    amqp_url: str, management_url: str, shop: dict[str, str]
) -> None:
    with open_transport(amqp_url) as t:
        t.publish(shop["x"], "billing.error", b"{not json")
        assert not t.flush(timeout=5)
    url = with_management(amqp_url, management_url)  # where consume learns the queue's DLX
    got = run("consume", shop["q"], "--limit", "1", "--timeout", "5", "--url", url)
    assert got.exit_code == 1, got.output  # not accepted (issue 12, item 1): exit 1, dead-lettered
    assert "REJECTED" in got.stdout and "not JSON" in got.stdout
    assert "1 message(s), 1 rejected" in got.stdout
    with open_transport(amqp_url) as t:
        deadline = time.monotonic() + 5
        while (dead := t.get(shop["dlq"])) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dead is not None and dead.body == b"{not json"
        t.ack(dead)


@pytest.mark.broker
def test_consume_no_ack_leaves_messages_on_the_queue(amqp_url: str, shop: dict[str, str]) -> None:
    with open_transport(amqp_url) as t:
        for _ in range(3):
            t.publish(shop["x"], "billing.x", json.dumps({"type": "log.record", "id": "1"}).encode())
        t.flush(timeout=5)
    args = ("consume", shop["q"], "--no-ack", "--limit", "3", "--timeout", "3", "--event-type", "x.y")
    first = run(*args, "--allow-unknown", "--url", amqp_url)
    assert "3 message(s), 0 rejected, none acked" in first.stdout, first.output
    again = run(*args, "--allow-unknown", "--url", amqp_url)
    assert "(redelivered)" in again.stdout and "3 message(s)" in again.stdout


def _publish_until_routed(url: str, exchange: str, key: str, headers: dict[str, Any] | None = None) -> None:
    """From a thread: publish (mandatory) until tail's queue is bound, then once more is not needed."""
    from routing.properties import Properties

    props = Properties(headers=headers or {}, content_type="application/json", type="log.record")
    with open_transport(url) as t:
        for _ in range(100):
            t.publish(exchange, key, json.dumps(LOG).encode(), props, mandatory=True)
            if not [p for p in t.flush(timeout=5) if p.outcome is Outcome.RETURNED]:
                return
            time.sleep(0.1)


@pytest.mark.broker
@pytest.mark.parametrize(
    ("kind", "rule", "key", "headers"),
    [
        ("topic", ["--key", "billing.*"], "billing.error", None),
        ("headers", ["--header", "region=eu", "--header", "tier=1", "--match", "all"], "", {"region": "eu",
                                                                                           "tier": 1}),
        ("fanout", [], "anything", None),
    ],
)  # fmt: skip
def test_tail_sees_a_published_message(
    amqp_url: str,
    management_url: str,  # tail reads the exchange's settings (auto-delete here) from it
    unique: str,
    kind: str,
    rule: list[str],
    key: str,
    headers: dict[str, Any] | None,
) -> None:
    exchange = f"{unique}.tail"
    with open_transport(amqp_url) as t:
        t.declare(Topology.of(Exchange(exchange, kind, auto_delete=True)))
    publisher = threading.Thread(target=_publish_until_routed, args=(amqp_url, exchange, key, headers))
    publisher.start()
    try:
        url = with_management(amqp_url, management_url)
        result = run("tail", exchange, *rule, "--limit", "1", "--timeout", "10", "--json", "--url", url)
    finally:
        publisher.join(timeout=20)
    assert result.exit_code == 0, result.output
    [record] = records(result)
    assert record["exchange"] == exchange and record["routing_key"] == key
    assert record["envelope"]["data"] == LOG
    assert record["queue"].startswith("routing.tail.")


@pytest.mark.broker
def test_tail_of_a_missing_exchange_fails_cleanly(amqp_url: str, unique: str) -> None:
    result = run("tail", f"{unique}.none", "--timeout", "1", "--url", amqp_url)
    assert result.exit_code == 1
    assert f"no exchange '{unique}.none' on the broker" in result.stderr


# ------------------------------------------------------------------ diff


DIFF_TOPOLOGY = Topology.of(
    Exchange("orders", "topic"),
    Exchange("dlx", "fanout"),
    Queue("shipping", message_ttl=60000, dead_letter_exchange="dlx"),
    Queue("dead"),
    Binding("orders", "shipping", "order.*"),
    Binding("dlx", "dead"),
)


def _write(tmp_path: Path, topology: Topology) -> str:
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(dump_definitions(topology, vhost=None)))
    return str(path)


@pytest.mark.broker
def test_diff_against_the_broker(vhost_url: str, tmp_path: Path) -> None:
    with open_transport(vhost_url) as t:
        t.declare(DIFF_TOPOLOGY)

    same = run("diff", _write(tmp_path, DIFF_TOPOLOGY), "--url", vhost_url)
    assert same.exit_code == 0, same.output
    assert same.stdout.splitlines()[0].startswith("broker: amqp://guest:***@")
    assert "the broker matches the topology" in same.stdout

    changed = Topology.of(
        *[q for q in DIFF_TOPOLOGY.queues if q.name != "shipping"],
        *DIFF_TOPOLOGY.exchanges,
        *DIFF_TOPOLOGY.bindings,
        Queue("shipping", message_ttl=30000, dead_letter_exchange="dlx"),
    )
    # Exit 3 for different (issue 12, item 31: 2 was click's usage-error code too).
    result = run("diff", _write(tmp_path, changed), "--url", vhost_url)
    assert result.exit_code == 3, result.output
    assert (
        "differs: queue 'shipping': argument 'x-message-ttl': topology 30000, broker 60000" in result.stdout
    )
    assert "0 to create, 1 differing, 0 only on the broker" in result.stdout

    missing = Topology.of(DIFF_TOPOLOGY, Queue("returns"), Binding("orders", "returns", "order.returned"))
    result = run("diff", _write(tmp_path, missing), "--url", vhost_url)
    assert result.exit_code == 3, result.output
    assert "would create: queue 'returns'" in result.stdout
    assert "would create: binding orders -> returns [order.returned]" in result.stdout

    # What only the broker has: the topology without the dead-letter queue.
    fewer = Topology.of(
        *DIFF_TOPOLOGY.exchanges, *[q for q in DIFF_TOPOLOGY.queues if q.name == "shipping"],
        Binding("orders", "shipping", "order.*"),
    )  # fmt: skip
    # Listed, but not a difference unless --strict (item 31: another application's queues in
    # the vhost are no drift of this topology).
    result = run("diff", _write(tmp_path, fewer), "--url", vhost_url)
    assert result.exit_code == 0, result.output
    assert "only on the broker: queue 'dead'" in result.stdout
    assert "only on the broker: binding dlx -> dead" in result.stdout
    assert (
        "the broker matches the topology; 2 more only on the broker (--strict counts them)" in result.stdout
    )
    assert run("diff", _write(tmp_path, fewer), "--url", vhost_url, "--strict").exit_code == 3
    hidden = run("diff", _write(tmp_path, fewer), "--url", vhost_url, "--ignore-extra")
    assert hidden.exit_code == 0 and "only on the broker" not in hidden.stdout
    typo = run("diff", _write(tmp_path, fewer), "--url", vhost_url, "--strickt")
    assert typo.exit_code == 2  # click's usage error, now distinct from "different"


@pytest.mark.broker
def test_diff_errors_are_one_line(vhost_url: str, management_url: str, tmp_path: Path) -> None:
    path = _write(tmp_path, DIFF_TOPOLOGY)
    down = run("diff", path, "--url", vhost_url, "--management-url", "http://127.0.0.1:1")
    assert down.exit_code == 1
    assert down.stderr.startswith("Error: management API not reachable at http://127.0.0.1:1")
    parts = urlsplit(management_url)
    nope = parts._replace(netloc=f"{parts.username}:nope@{parts.netloc.rsplit('@', 1)[-1]}").geturl()
    wrong = run("diff", path, "--url", vhost_url, "--management-url", nope)
    assert wrong.exit_code == 1 and "refused the credentials of user 'guest'" in wrong.stderr
    assert "nope" not in wrong.output


# ------------------------------------------------------------------ no broker needed


def test_memory_publish_says_the_broker_is_per_process() -> None:
    result = run(
        "publish", "--exchange", "", "--routing-key", "nobody", "--type", "log.record",
        "--data", json.dumps(LOG), "--mandatory", "--url", "memory://",
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0].startswith("broker: embedded (in-process)")
    assert "inside this one process" in lines[1]
    assert result.exit_code == 1 and "unroutable" in result.stderr


def test_diff_needs_rabbitmq(tmp_path: Path) -> None:
    result = run("diff", _write(tmp_path, DIFF_TOPOLOGY), "--url", "memory://")
    assert result.exit_code == 1 and "diff needs RabbitMQ" in result.stderr


@pytest.mark.parametrize("command", ["publish", "consume", "tail", "diff", "declare"])
def test_help_has_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout and f"routing {command}" in result.stdout
