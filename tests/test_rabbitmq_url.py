"""AMQP URL parsing: pure, no broker."""

from __future__ import annotations

import pytest

from routing.errors import ConnectionFailed
from routing.transport.rabbitmq._url import parse_url, parse_urls


def test_full_url() -> None:
    ep = parse_url("amqp://alice:s%40cret@rabbit.example:5673/prod%2Feu?heartbeat=30&retry_delay=0.5")
    assert (ep.host, ep.port, ep.vhost, ep.username, ep.password) == (
        "rabbit.example",
        5673,
        "prod/eu",
        "alice",
        "s@cret",
    )
    assert ep.heartbeat == 30 and ep.retry_delay == 0.5 and not ep.tls
    assert "s@cret" not in ep.url and "s%40cret" not in ep.url and "***" in ep.url
    assert "cret" not in repr(ep)


@pytest.mark.parametrize(
    ("url", "vhost"),
    [
        ("amqp://h", "/"),
        ("amqp://h/", "/"),
        ("amqp://h/%2F", "/"),
        ("amqp://h/%2f", "/"),
        ("amqp://h/orders", "orders"),
    ],
)
def test_vhost(url: str, vhost: str) -> None:
    assert parse_url(url).vhost == vhost


def test_defaults_and_tls() -> None:
    plain = parse_url("amqp://localhost")
    assert (plain.port, plain.username, plain.password, plain.tls) == (5672, "guest", "guest", False)
    tls = parse_url("amqps://u:p@broker/%2F?cafile=/etc/ca.pem&connection_attempts=3")
    assert tls.tls and tls.port == 5671 and tls.verify and tls.cafile == "/etc/ca.pem"
    assert tls.connection_attempts == 3
    assert tls.management_url == "https://broker:15671"
    assert parse_url("amqps://h?verify=false").verify is False


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h/", "use amqp:// or amqps://"),
        ("amqp:///vhost", "no host"),
        ("amqp://h/a/b", "one path segment"),
        ("amqp://h/?heartbeat=soon", "heartbeat='soon' must be an integer"),
        ("amqp://h/?hearbeat=5", "unknown option 'hearbeat'"),
        ("amqp://h/?retry_delay=-1", "must not be negative"),
        ("amqp://h/?cafile=/ca.pem", "TLS options need an amqps:// URL"),
        ("amqp://h:99999/", "not a valid URL"),
    ],
)
def test_bad_urls_say_what_to_change(url: str, message: str) -> None:
    with pytest.raises(ConnectionFailed, match=message):
        parse_url(url)


def test_errors_never_show_the_password() -> None:
    with pytest.raises(ConnectionFailed) as info:
        parse_url("amqp://u:hunter2@h/?bogus=1")
    assert "hunter2" not in str(info.value)


def test_failover_lists() -> None:
    eps = parse_urls("amqp://a:1@n1:5672/, amqp://a:1@n2:5673/")
    assert [(e.host, e.port) for e in eps] == [("n1", 5672), ("n2", 5673)]
    assert [e.host for e in parse_urls(["amqp://x", "amqps://y"])] == ["x", "y"]
    with pytest.raises(ConnectionFailed, match="no broker URL"):
        parse_urls([])
