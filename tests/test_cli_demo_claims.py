"""`routing demo --url` never deletes what it did not create (issue 12, item 28)."""

from __future__ import annotations

import json

import pika
import pytest
from broker_under_test import plain_amqp_url, queue_depth
from click.testing import CliRunner

from routing.cli import main
from routing.topology import Queue, Topology
from routing.transport import open_transport


def _exchange_exists(url: str, name: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(url)))
    try:
        connection.channel().exchange_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


@pytest.mark.broker
def test_an_existing_queue_of_a_demos_name_is_left_alone(vhost_url: str) -> None:
    with open_transport(vhost_url) as t:
        t.declare(Topology.of(Queue("demo.logs.pager")))
        for n in range(3):
            t.publish("", "demo.logs.pager", json.dumps({"n": n}).encode())
        assert not t.flush(timeout=5)
    refused = CliRunner().invoke(main, ["demo", "topic-logs", "--url", vhost_url])
    assert refused.exit_code == 1, refused.output
    [line] = refused.stderr.splitlines()
    assert "the broker already has queue 'demo.logs.pager'" in line and "--force" in line
    assert line.count("demo topic-logs:") == 1, line
    assert queue_depth(vhost_url, "demo.logs.pager") == 3  # its messages are still there
    # What the demo created before it found out is gone again.
    assert queue_depth(vhost_url, "demo.logs.archive") is None
    assert not _exchange_exists(vhost_url, "demo.logs")

    forced = CliRunner().invoke(main, ["demo", "topic-logs", "--url", vhost_url, "--force"])
    assert forced.exit_code == 0, forced.output
    assert queue_depth(vhost_url, "demo.logs.pager") is None  # replaced, then cleaned up as usual


@pytest.mark.broker
def test_an_existing_exchange_stops_the_fanout_demo(vhost_url: str) -> None:
    from routing.topology import Exchange

    with open_transport(vhost_url) as t:
        t.declare(Topology.of(Exchange("demo.invalidations", "fanout")))
    refused = CliRunner().invoke(main, ["demo", "cache-invalidation", "--url", vhost_url])
    assert refused.exit_code == 1 and "exchange 'demo.invalidations'" in refused.stderr
    assert _exchange_exists(vhost_url, "demo.invalidations")  # not deleted by the demo's cleanup
    assert CliRunner().invoke(main, ["demo", "all", "--url", vhost_url, "--force"]).exit_code == 0
