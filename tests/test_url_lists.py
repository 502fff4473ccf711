"""Comma-separated URL lists (a cluster in one ROUTING_URL): redaction, describe and parsing
split them the same way, with the scheme matched in any case (pure)."""

from __future__ import annotations

import pytest

from routing.transport.rabbitmq._url import parse_urls
from routing.urls import describe, redact, split_urls

# (list, what each URL's endpoint is: host, port, vhost, user, password, tls)
LISTS = [
    (
        "amqp://a:b@h1/,AMQP://c:d@h2/",  # was one URL to the parser, with a vhost of ",AMQP:"...
        [("h1", 5672, "/", "a", "b", False), ("h2", 5672, "/", "c", "d", False)],
    ),
    (
        "amqps://a:b@h1/v, AMQPS://c:d@h2:5676/w",
        [("h1", 5671, "v", "a", "b", True), ("h2", 5676, "w", "c", "d", True)],
    ),
    (
        "AmQp://a:b@h1/ ,  aMqPs://c:d@h2/,amqp://e:f@h3:5673/%2F",
        [
            ("h1", 5672, "/", "a", "b", False),
            ("h2", 5671, "/", "c", "d", True),
            ("h3", 5673, "/", "e", "f", False),
        ],
    ),
    (
        "amqp://a:p%2Cq@h1/,amqp://c:r%2C%2Cs@h2/",  # commas in passwords, percent-encoded
        [("h1", 5672, "/", "a", "p,q", False), ("h2", 5672, "/", "c", "r,,s", False)],
    ),
    (
        "amqp://a:p,q@h1/",  # an unescaped comma with no scheme after it stays in its URL
        [("h1", 5672, "/", "a", "p,q", False)],
    ),
    (
        "amqp://a:b@h1/?connection_name=x,y,AMQP://c:d@h2/",
        [("h1", 5672, "/", "a", "b", False), ("h2", 5672, "/", "c", "d", False)],
    ),
]


@pytest.mark.parametrize(("urls", "endpoints"), LISTS)
def test_parsing_finds_every_url_of_the_list(urls: str, endpoints: list[tuple[object, ...]]) -> None:
    eps = parse_urls(urls)
    assert [(e.host, e.port, e.vhost, e.username, e.password, e.tls) for e in eps] == endpoints


@pytest.mark.parametrize(("urls", "endpoints"), LISTS)
def test_redaction_and_parsing_see_the_same_urls(urls: str, endpoints: list[tuple[object, ...]]) -> None:
    parts = split_urls(urls)
    assert ",".join(parts) == urls  # nothing lost or added, spaces included
    assert len(parts) == len(endpoints) == len(parse_urls(urls))
    shown = redact(urls)
    assert shown.count(":***@") == len(endpoints)
    for _, _, _, _, password, _ in endpoints:
        assert f":{password}@" not in shown and f":{password.replace(',', '%2C')}@" not in shown
    # Each URL redacted alone reads as it does in the list.
    assert shown == ",".join(redact(part) for part in parts)
    assert describe(urls) == f"broker: {shown}"
    # The endpoints' own (redacted) URLs are the list's, one by one.
    assert [e.url for e in parse_urls(urls)] == [redact(part.strip()) for part in parts]


def test_the_management_option_of_each_url_stays_with_it() -> None:
    urls = "amqp://a:b@h1/?management=http://m:pw@h1:15672,AMQP://c:d@h2/?management=http://m:pw@h2:15672"
    assert split_urls(urls) == [
        "amqp://a:b@h1/?management=http://m:pw@h1:15672",
        "AMQP://c:d@h2/?management=http://m:pw@h2:15672",
    ]
    assert "pw" not in redact(urls)
    assert [e.management for e in parse_urls(urls)] == ["http://m:pw@h1:15672", "http://m:pw@h2:15672"]
