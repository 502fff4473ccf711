"""Hostile input gets one line and exit 1 from the CLI, never a traceback (issue 12, item 29).

Each case runs through the real CLI (CliRunner); the argument that cannot be typed into a
Python string as the shell would give it (`$'a\\xff'`) runs in a subprocess too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest
from broker_under_test import plain_amqp_url
from click.testing import CliRunner

from routing.cli import main
from routing.topology import Queue, Topology
from routing.transport import open_transport

LOG = {"level": "error", "service": "billing", "message": "boom", "time": "2026-01-01T00:00:00Z"}


def _one_line(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if args[0] == "validate":  # its report: a line per problem, then the count
        assert result.stderr.splitlines() == ["1 of 1 invalid"]
        assert "\\ud800" in result.stdout
        return result.stdout
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert result.stderr.splitlines()[-1] == line
    return line


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _definitions(name_json: str) -> str:
    return (
        '{"exchanges": [{"name": ' + name_json + ', "vhost": "/", "type": "topic", "durable": true,'
        ' "auto_delete": false, "internal": false, "arguments": {}}]}'
    )


LOCAL: dict[str, Callable[[Path], list[str]]] = {
    "validate a lone surrogate in a name": lambda p: [
        "validate", _write(p, "e.json", '{"specversion": "1.0", "id": "1", "source": "urn:x", "type": "x",'
                                        ' "\\ud800": 1}'),
    ],
    "validate a lone surrogate as the type": lambda p: [
        "validate", _write(p, "e.json", '{"specversion": "1.0", "id": "1", "source": "u", "type": "\\ud800"}'),
    ],
    "definitions with a 5,000-digit number": lambda p: [
        "explain", _write(p, "d.json", '{"exchanges": [], "x": ' + "9" * 5000 + "}"), "--exchange", "x",
    ],
    "definitions nested 1,000 levels": lambda p: [
        "explain", _write(p, "d.json", '{"x": ' + "[" * 1000 + "]" * 1000 + "}"), "--exchange", "x",
    ],
    "a name written \\udcff": lambda p: [
        "explain", _write(p, "d.json", _definitions('"\\udcff"')), "--exchange", "x",
    ],
    "a name written \\udcff, exported": lambda p: ["export", _write(p, "d.json", _definitions('"\\udcff"'))],
    "--log-level FOO": lambda p: ["--log-level", "FOO", "demo", "topic-logs"],
}  # fmt: skip


@pytest.mark.parametrize("case", LOCAL)
def test_local_input_gets_one_line(case: str, tmp_path: Path) -> None:
    line = _one_line(LOCAL[case](tmp_path))
    assert "unexpected error" not in line  # each is a known error, said as such


@pytest.fixture
def queue(amqp_url: str, unique: str) -> Iterator[str]:
    name = f"{unique}.hostile"
    with open_transport(amqp_url) as t:
        t.declare(Topology.of(Queue(name, auto_delete=True)))
    yield name
    with open_transport(amqp_url) as t:
        t.delete_queue(name)


BROKER = {
    "--header big=99999999999999999999": ["--header", "big=99999999999999999999"],
    "--header <300-character name>=1": ["--header", "a" * 300 + "=1"],
    "--routing-key a\\udcff": ["--routing-key", "a\udcff"],
}


@pytest.mark.broker
@pytest.mark.parametrize("case", BROKER)
def test_publish_of_what_amqp_cannot_carry_gets_one_line(case: str, amqp_url: str) -> None:
    args = ["publish", "--exchange", "amq.topic", "--type", "log.record", "--data", json.dumps(LOG)]
    line = _one_line([*args, *BROKER[case], "--url", amqp_url])
    assert "guest:guest" not in line


@pytest.mark.broker
def test_a_non_utf8_routing_key_argument_in_a_subprocess(amqp_url: str) -> None:
    routing = Path(sys.executable).with_name("routing")
    argv = [os.fsencode(str(routing)), b"publish", b"--exchange", b"amq.topic", b"--routing-key", b"a\xff",
            b"--type", b"log.record", b"--data", json.dumps(LOG).encode(), b"--url", amqp_url.encode()]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert done.returncode == 1, done
    err = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("Error: "), err


def _publish_raw(url: str, queue: str, body: bytes, headers: dict[object, object]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(url)))
    try:
        props = pika.BasicProperties(content_type="application/json", headers=headers)  # type: ignore[arg-type]
        connection.channel().basic_publish("", queue, body, props)
    finally:
        connection.close()


@pytest.mark.broker
@pytest.mark.parametrize("as_json", [False, True])
def test_consume_shows_a_lone_surrogate_in_the_data(amqp_url: str, queue: str, as_json: bool) -> None:
    body = json.dumps({**LOG, "message": "\ud800"}).encode()  # the JSON escape "\\ud800"
    _publish_raw(amqp_url, queue, body, {"ce-type": "log.record"})
    args = ["consume", queue, "--limit", "1", "--timeout", "5", "--url", amqp_url]
    result = CliRunner().invoke(main, [*args, "--json"] if as_json else args)
    assert result.exit_code == 0, result.output
    assert "\\ud800" in result.stdout
    if as_json:
        [record] = [json.loads(line) for line in result.stdout.splitlines()]
        assert record["envelope"]["data"]["message"] == "\ud800"


@pytest.mark.broker
def test_consume_json_on_a_non_utf8_header_name(amqp_url: str, queue: str) -> None:
    _publish_raw(amqp_url, queue, json.dumps(LOG).encode(), {b"bad\xff": 1, "ce-type": "log.record"})
    args = ["consume", queue, "--limit", "1", "--timeout", "5", "--json", "--url", amqp_url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in result.stdout.splitlines()]  # stdout is JSON only
    assert record["headers"]["bad\ufffd"] == 1
    assert result.stderr.splitlines()[0].startswith("broker: ")
