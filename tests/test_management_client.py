"""The one management API client (`routing.transport.rabbitmq._management`), against a
local stand-in HTTP server: its Basic auth, its error translation, and declare's reader of
existing bindings built on it (no broker needed)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from routing.errors import BrokerError, ConnectionFailed
from routing.management import Management
from routing.transport.rabbitmq._declare_ops import ManagementBindings
from routing.transport.rabbitmq._url import parse_url


class _Api(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, tuple[int, bytes]]] = {}
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        status, body = self.answers.get(self.path, (404, b'{"error":"Object Not Found"}'))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    _Api.answers, _Api.seen = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_credentials_come_from_the_amqp_url_unless_the_management_url_has_its_own(api: str) -> None:
    _Api.answers["/api/nodes"] = (200, b'[{"name": "rabbit@a", "running": true}, 7]')
    assert Management.for_broker("amqp://al%40ice:s%3Ac@h/v", api).nodes() == [
        {"name": "rabbit@a", "running": True}
    ]
    host = api.removeprefix("http://")
    Management.for_broker("amqp://al:s@h/", f"http://bo%3Ab:p%40w@{host}/").nodes()
    assert [auth for _, auth in _Api.seen] == [_basic("al@ice", "s:c"), _basic("bo:b", "p@w")]
    ep = parse_url(f"amqp://x:y@h/%2Fprod?management=http://m:Pw0rd@{host}")
    management = Management.for_endpoint(ep)
    assert (management.base, management.vhost, management.username) == (api, "/prod", "m")
    assert management.password == "Pw0rd" and "Pw0rd" not in repr(management)


def test_every_failure_is_one_routing_error(api: str) -> None:
    management = Management.for_broker("amqp://u:p@h/", api)
    _Api.answers["/api/queues/%2F/x"] = (401, b"")
    with pytest.raises(ConnectionFailed, match="refused the credentials of user 'u'"):
        management.queue("x")
    _Api.answers["/api/queues/%2F/x"] = (500, b"")
    with pytest.raises(BrokerError, match=r"HTTP 500 for queues/%2F/x"):
        management.queue("x")
    _Api.answers["/api/queues/%2F/x"] = (200, b"<html>")
    with pytest.raises(ConnectionFailed, match="management API not reachable"):
        management.queue("x")
    assert management.exchange("missing") is None  # 404
    assert management.bindings_from("missing") is None
    with pytest.raises(ConnectionFailed, match="the management URL must be http"):
        Management.for_broker("amqp://u:p@h/", "ftp://h:15672")
    closed = Management.for_broker("amqp://u:p@h/", "http://127.0.0.1:9")  # nobody listens on 9
    with pytest.raises(ConnectionFailed, match=r"management API not reachable at http://127\.0\.0\.1:9 "):
        closed.nodes()


def test_declare_reads_existing_bindings_until_the_api_fails_then_asks_no_more(api: str) -> None:
    rows = [
        {"destination_type": "queue", "destination": "q", "routing_key": "k", "arguments": {"x": None}},
        {"destination_type": "exchange", "destination": "e", "routing_key": "", "arguments": {}},
    ]
    _Api.answers["/api/exchanges/%2F/src/bindings/source"] = (200, json.dumps(rows).encode())
    _Api.answers["/api/definitions/%2F"] = (200, b'{"queues": []}')
    reader = ManagementBindings(parse_url(f"amqp://u:p@h/?management={api}"))
    assert reader.definitions() == {"queues": []}
    assert reader.existing("src") == {
        ("queue", "q", "k", '{"x": "undefined"}'),
        ("exchange", "e", "", "{}"),
    }
    assert reader.existing("src") is not None and len(_Api.seen) == 2  # cached
    assert reader.existing("other") is None  # 404: the API is not trusted any more
    assert reader.existing("src") is None and reader.definitions() is None
    assert len(_Api.seen) == 3
    assert all(auth == _basic("u", "p") for _, auth in _Api.seen)


def test_declare_reader_of_a_management_url_that_is_not_http_answers_none() -> None:
    reader = ManagementBindings(parse_url("amqp://u:p@h/?management=ftp://h"))
    assert reader.definitions() is None and reader.existing("src") is None
