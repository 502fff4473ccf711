"""What `tail`, `consume` and every command's first line show (issue 12, item 34)."""

from __future__ import annotations

import json
import re
import threading

import pytest
from broker_under_test import naming_management as with_management
from click.testing import CliRunner

from routing.cli import main
from routing.cli._watching import render_delivery as _render
from routing.envelope import Envelope
from routing.properties import Properties
from routing.topology import Exchange, Topology
from routing.transport import Delivery, Outcome, open_transport
from routing.urls import describe, redact

LOG = {"level": "error", "service": "billing", "message": "boom", "time": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "amqp://guest:PW@h:5672/?management=http://guest:PW@h:15672",
            "amqp://guest:***@h:5672/?management=http://guest:***@h:15672",
        ),
        (
            "amqp://u:p/w@h/%2F?heartbeat=5&management=https://admin:Q@h:15671&cafile=ca.pem",
            "amqp://u:***@h/%2F?heartbeat=5&management=https://admin:***@h:15671&cafile=ca.pem",
        ),
        ("amqp://u:p@h/?management=http://h:15672", "amqp://u:***@h/?management=http://h:15672"),
    ],
)
def test_a_url_with_a_management_option_is_shown_with_its_amqp_host(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert describe(url) == f"broker: {shown}"
    assert "PW" not in describe(url) and ":Q@" not in describe(url)


def test_consume_json_is_json_even_for_infinite_headers() -> None:
    headers = {"up": float("inf"), "down": float("-inf"), "what": [float("nan")], b"\xff": 1}
    item = Delivery(b"{}", Properties(headers=headers), "x", "k", "q", 1, False, None)
    envelope = Envelope.new("log.record", LOG)
    record = json.loads(_render(item, envelope, True, 1))  # strict: no Infinity or NaN
    assert record["headers"] == {"up": "Infinity", "down": "-Infinity", "what": ["NaN"], "\ufffd": 1}


def _publish_until_routed(url: str, exchange: str, key: str) -> None:
    props = Properties(content_type="application/json", type="log.record")
    with open_transport(url) as t:
        for _ in range(100):
            t.publish(exchange, key, json.dumps(LOG).encode(), props, mandatory=True)
            if not [p for p in t.flush(timeout=5) if p.outcome is Outcome.RETURNED]:
                return
            t.wait(0.1)


@pytest.mark.broker
def test_tail_an_exchange_with_an_alternate_exchange(amqp_url: str, management_url: str, unique: str) -> None:
    """It failed: "alternate exchange ... is not in the topology; add it"."""
    main_x, ae, ae2 = f"{unique}.main", f"{unique}.ae", f"{unique}.ae2"
    topology = Topology.of(
        Exchange(ae2, "fanout", auto_delete=True),
        Exchange(ae, "fanout", auto_delete=True, alternate_exchange=ae2),
        Exchange(main_x, "topic", auto_delete=True, alternate_exchange=ae),
    )
    with open_transport(amqp_url) as t:
        t.declare(topology)
    url = with_management(amqp_url, management_url)  # tail reads the exchanges from it
    publisher = threading.Thread(target=_publish_until_routed, args=(amqp_url, main_x, "billing.error"))
    publisher.start()
    try:
        args = [
            "tail",
            main_x,
            "--routing-key",
            "billing.*",
            "--limit",
            "1",
            "--timeout",
            "10",
            "--json",
            "--url",
            url,
        ]
        result = CliRunner().invoke(main, args)
    finally:
        publisher.join(timeout=20)
        with open_transport(amqp_url) as t:
            for name in (main_x, ae, ae2):
                t.delete_exchange(name)
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in result.stdout.splitlines()]  # --json: stdout is JSON only
    assert record["exchange"] == main_x and record["envelope"]["data"] == LOG
    assert result.stderr.splitlines()[0] == describe(url)


def _options(command: str) -> dict[str, str]:
    """Option name -> help text, as `routing COMMAND --help` shows them."""
    text = CliRunner().invoke(main, [command, "--help"], terminal_width=200).stdout
    found = {}
    for line in text.splitlines():
        words = line.split()
        for word in words[:3]:
            if word.startswith("--"):
                found[word.rstrip(",")] = line
    return found


def test_one_name_one_meaning_across_commands() -> None:
    """Item 35: --type is the event type wherever it is shown; --routing-key is the key."""
    for command in ("publish", "consume", "build", "validate"):
        assert "event type" in _options(command)["--type"], command
    tail = _options("tail")
    assert "--type" not in tail and "--key" not in tail  # hidden: the old spellings
    assert "--exchange-type" in tail and "binding key" in tail["--routing-key"]
    assert "--event-type" not in _options("consume")
    for command in ("publish", "tail", "explain"):
        assert "--routing-key" in _options(command), command


@pytest.mark.parametrize("command", ["declare", "diff", "explain", "export", "graph"])
def test_the_topology_in_a_help_example_loads(command: str) -> None:
    """Item 26: `declare --help` showed shop/topology.py:topology, which is refused."""
    from routing.loading import load_topology

    text = CliRunner().invoke(main, [command, "--help"], terminal_width=200).stdout
    example = text.split("Example", 1)[1]
    refs = [
        w
        for w in example.split()
        if w != "guest:guest" and re.fullmatch(r"[a-z_][\w.]*:[a-z_]\w*|[\w./-]+\.py:\w+", w)
    ]
    assert refs, example
    for ref in refs:
        assert load_topology(ref).exchanges, ref


def test_consume_json_is_json_even_for_an_infinite_number_in_the_data() -> None:
    # `1e999` parses as inf: the envelope printed "Infinity" or stopped the command (review).
    item = Delivery(b"{}", Properties(), "x", "k", "q", 1, False, None)
    envelope = Envelope.new("log.record", {**LOG, "n": float("inf")})
    record = json.loads(_render(item, envelope, True, 1))  # strict: no Infinity or NaN
    assert record["envelope"]["data"]["n"] == "Infinity"
