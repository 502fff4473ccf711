"""Header values against Node's amqplib, an AMQP client we did not write, through RabbitMQ.

amqplib is installed with npm into a temporary directory once per session (skipped, with
the reason, when node or npm is missing). It publishes decimals we read, and reads ours.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from routing.topology import Queue, Topology
from routing.transport.base import Outcome, Properties
from routing.transport.rabbitmq import RabbitTransport

pytestmark = pytest.mark.broker

_SCRIPT = r"""
const amqp = require('amqplib');
const [url, mode, queue, payload] = process.argv.slice(2);
(async () => {
  const conn = await amqp.connect(url);
  const ch = await conn.createConfirmChannel();
  if (mode === 'publish') {
    const headers = JSON.parse(payload);  // amqplib's typed values: {'!': 'decimal', value: ...}
    ch.sendToQueue(queue, Buffer.from('from amqplib'), {headers});
    await ch.waitForConfirms();
  } else {
    const msg = await ch.get(queue, {noAck: true});
    process.stdout.write(JSON.stringify(msg ? msg.properties.headers : null));
  }
  await conn.close();
})().catch((e) => { console.error(e); process.exit(1); });
"""


@pytest.fixture(scope="session")
def amqplib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the amqplib interop tests")
    where = tmp_path_factory.mktemp("amqplib")
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "amqplib"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.skip(f"npm install amqplib failed: {done.stderr.strip()[-300:]}")
    script = where / "peer.js"
    script.write_text(_SCRIPT)
    return script


def _node(script: Path, *args: str) -> str:
    done = subprocess.run(
        ["node", str(script), *args], cwd=script.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_decimals_amqplib_publishes_arrive_with_their_value(
    amqplib: Path, amqp_url: str, unique: str
) -> None:
    sent = {
        "top_bit": {"places": 2, "digits": 3_000_000_000},  # the issue: read as -12949672.96
        "largest": {"places": 0, "digits": 2**32 - 1},
        "small": {"places": 3, "digits": 1500},
    }
    with RabbitTransport(amqp_url, name="routing-tests") as t:
        t.declare(Topology.of(Queue(unique, expires=60_000)))
        typed = {k: {"!": "decimal", "value": v} for k, v in sent.items()}
        _node(amqplib, amqp_url, "publish", unique, json.dumps(typed))
        delivery = t.get(unique)
        assert delivery is not None
        t.ack(delivery)
    headers = dict(delivery.headers)
    assert headers == {
        "top_bit": Decimal("30000000.00"),
        "largest": Decimal(4294967295),
        "small": Decimal("1.500"),
    }
    assert str(headers["small"]) == "1.500"  # scale kept as sent


def test_decimals_we_publish_reach_amqplib_as_places_and_digits(
    amqplib: Path, amqp_url: str, unique: str
) -> None:
    ours = {
        "half": Decimal("1.5"),
        "widest": Decimal("4294967.295"),
        "written": Decimal("2.50"),
        "whole": Decimal("1E+3"),
    }
    with RabbitTransport(amqp_url, name="routing-tests") as t:
        t.declare(Topology.of(Queue(unique, expires=60_000)))
        publication = t.publish("", unique, b"from routing", Properties(headers=ours))
        assert t.flush(timeout=10) == [] and publication.outcome is Outcome.CONFIRMED
    got: dict[str, Any] = json.loads(_node(amqplib, amqp_url, "get", unique))
    values = {k: v["value"] for k, v in got.items()}
    assert {k: v["!"] for k, v in got.items()} == dict.fromkeys(ours, "decimal")
    assert values == {
        "half": {"places": 1, "digits": 15},  # was 429496728.1 for -1.5 with signed digits
        "widest": {"places": 3, "digits": 4294967295},
        "written": {"places": 2, "digits": 250},
        "whole": {"places": 0, "digits": 1000},
    }


def test_a_timestamp_header_beyond_year_9999_does_not_cost_the_connection(
    amqplib: Path, amqp_url: str, unique: str
) -> None:
    # pika raised decoding it and aborted the connection, for every consumer, every time.
    far = 253402300800 + 60  # 10000-01-01T00:01:00Z
    with RabbitTransport(amqp_url, name="routing-tests") as t:
        t.declare(Topology.of(Queue(unique, expires=60_000)))
        _node(amqplib, amqp_url, "publish", unique, json.dumps({"at": {"!": "timestamp", "value": far}}))
        delivery = t.get(unique)
        assert delivery is not None and dict(delivery.headers) == {"at": far}
        t.ack(delivery)
        assert t.get(unique) is None and t.reconnects == 0
