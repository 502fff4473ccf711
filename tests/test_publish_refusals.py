"""Values that would kill the connection are refused at publish, by name, and the messages
in flight around them are unaffected (issue 12, items 6, 7 and 9)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from routing._frozen import thaw
from routing.errors import PropertyError
from routing.topology import Queue, Topology
from routing.transport.base import Outcome, Properties, Transport
from routing.transport.rabbitmq import RabbitTransport

_BAD = [
    pytest.param({"n": math.nan}, "headers.n", id="nan"),
    pytest.param({"list": [1, math.inf]}, "headers.list[1]", id="inf-in-list"),
    pytest.param({"t": {"deep": -math.inf}}, "headers.t.deep", id="-inf-in-table"),
    pytest.param({"blob": "x" * 140_000}, "headers", id="over-frame-max"),
    pytest.param({"d": Decimal("-1.5")}, "headers.d", id="negative-decimal"),
    pytest.param({"big": 2**63}, "headers.big", id="int-too-big"),
]


def _count(t: Transport, queue: str) -> list[Any]:
    out = []
    while (d := t.get(queue)) is not None:
        out.append(thaw(d.headers))
        t.ack(d)
    return out


@pytest.mark.broker
@pytest.mark.parametrize(("headers", "field"), _BAD)
def test_a_bad_header_is_refused_and_the_messages_around_it_are_confirmed(
    amqp_url: str, unique: str, headers: dict[str, Any], field: str
) -> None:
    # resend=True: before the fix the connection died (541, 501) and came back in a storm.
    with RabbitTransport(amqp_url, name="routing-tests", resend=True) as t:
        t.declare(Topology.of(Queue(unique, expires=60_000)))
        good = [t.publish("", unique, b"good", Properties(headers={"i": i})) for i in range(10)]
        with pytest.raises(PropertyError) as caught:
            t.publish("", unique, b"bad", Properties(headers=headers))
        assert caught.value.field == field
        good += [t.publish("", unique, b"good", Properties(headers={"i": i})) for i in range(10, 20)]
        assert t.flush(timeout=10) == []
        assert [p.outcome for p in good] == [Outcome.CONFIRMED] * 20
        assert t.reconnects == 0
        assert _count(t, unique) == [{"i": i} for i in range(20)]  # nothing else reached the queue


@pytest.mark.parametrize(
    ("exchange", "key", "properties", "field"),
    [
        ("", "a\udcff", None, "routing_key"),
        ("", "q", Properties(priority=256), "priority"),
        ("", "q", Properties(timestamp=-1), "timestamp"),
        ("", "q", Properties(message_id=5), "message_id"),  # type: ignore[arg-type]
        ("", "q", Properties(headers={"k" * 256: 1}), "headers"),
        ("", "q", Properties(headers={"d": Decimal("1E+10")}), "headers.d"),
        ("", "q", Properties(headers={"s": "\ud800"}), "headers.s"),
    ],
)
@pytest.mark.broker
def test_bad_values_raise_property_error_before_sending(
    amqp_url: str, unique: str, exchange: str, key: str, properties: Any, field: str
) -> None:
    with RabbitTransport(amqp_url, name="routing-tests") as t:
        t.declare(Topology.of(Queue(unique, expires=60_000)))
        with pytest.raises(PropertyError) as caught:
            t.publish(exchange, unique if key == "q" else key, b"x", properties)
        assert caught.value.field.startswith(field)
        ok = t.publish("", unique, b"after", None)
        assert t.flush(timeout=10) == [] and ok.outcome is Outcome.CONFIRMED
        assert len(_count(t, unique)) == 1
        assert t.reconnects == 0


@pytest.mark.broker
def test_a_reused_properties_sends_the_headers_it_was_built_with(amqp_url: str, unique: str) -> None:
    # Item 7: the encoding was cached by the object's identity, so a changed dict was ignored;
    # now the value is frozen at construction and a new value is needed to send new headers.
    with RabbitTransport(amqp_url, name="routing-tests") as t:
        t.declare(Topology.of(Queue(unique, expires=60_000)))
        h = {"n": 1}
        p = Properties(headers=h)
        t.publish("", unique, b"1", p)
        h["n"] = 2
        t.publish("", unique, b"2", p)
        t.publish("", unique, b"3", Properties(headers=h))
        assert t.flush(timeout=10) == []
        assert _count(t, unique) == [{"n": 1}, {"n": 1}, {"n": 2}]
        assert thaw(p.headers) == {"n": 1}


@pytest.mark.broker
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (
            ["--header", "big=99999999999999999999"],
            "Error: headers.big is 99999999999999999999, which does not fit",
        ),
        (["--header", "k" * 300 + "=1"], "has a name of 300 bytes; AMQP allows 255"),
        (["--routing-key", "a\udcff"], "Error: routing_key is not valid UTF-8 text"),
    ],
)
def test_cli_publish_of_a_value_amqp_cannot_carry_is_one_line(
    amqp_url: str, extra: list[str], says: str
) -> None:
    # Issue 12 item 29: the library raises PropertyError, the CLI shows it as one line, exit 1.
    from click.testing import CliRunner

    from routing.cli import main

    data = '{"level": "error", "service": "billing", "message": "boom", "time": "2026-01-01T12:00:00Z"}'
    args = ["publish", "--exchange", "amq.topic", "--type", "log.record", "--data", data, "--url", amqp_url]
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 1, result.output
    assert says in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 2  # the broker line, then the error
