"""TLS against a real broker: a private node with a TLS listener and a certificate from a
CA made for the test. amqps:// verifies the certificate and the host name by default,
`cafile=` names the CA, `verify=false` is the explicit opt-out, and every refusal is one
clear `ConnectionFailed` line within seconds, never a hang. Each round trip and refusal is
tried with the asyncio transport too, which must say the same."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rabbit_node import RabbitNode, free_port, node_dir, seen_by_node

from routing.errors import ConnectionFailed
from routing.topology import Queue, Topology
from routing.transport.rabbitmq import AsyncRabbitTransport, RabbitTransport

pytestmark = [pytest.mark.broker, pytest.mark.slow]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FAST = 5.0  # seconds: a refused TLS connection must fail at least this fast

# The server certificate: a leaf for `localhost` and 127.0.0.1, with the extensions
# Python's default context checks (SAN, key usage, authority key identifier).
SERVER_EXTENSIONS = """\
subjectAltName = DNS:localhost, IP:127.0.0.1
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


@dataclass(frozen=True)
class TlsNode:
    node: RabbitNode
    tls_port: int
    ca: Path  # the CA that signed the server certificate
    other_ca: Path  # a CA that did not

    def url(self, host: str = "localhost", query: str = "", *, port: int | None = None) -> str:
        return f"amqps://guest:guest@{host}:{port or self.tls_port}/%2F" + (f"?{query}" if query else "")


def _openssl(folder: Path, *args: str) -> None:
    done = subprocess.run(["openssl", *args], cwd=folder, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr.strip()}")


def _make_ca(folder: Path, name: str) -> None:
    _openssl(
        folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN=routing test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip


def make_certificates(folder: Path) -> None:
    """ca.pem signs server.pem (localhost, 127.0.0.1); other-ca.pem signs nothing we use."""
    _make_ca(folder, "ca")
    _make_ca(folder, "other-ca")
    _openssl(
        folder, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost",
    )  # fmt: skip
    (folder / "server.ext").write_text(SERVER_EXTENSIONS)
    _openssl(
        folder, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
    )  # fmt: skip
    # The node runs as this same user (rabbit_node calls the real scripts, not the wrappers
    # that switch to `rabbitmq`), so the owner-only key file (0600) is readable by it.
    assert os.access(folder / "server.key", os.R_OK)


@pytest.fixture(scope="module")
def tls() -> Iterator[TlsNode]:
    if shutil.which("openssl") is None:
        message = "the openssl command is not installed: cannot make the test certificates"
        if IN_CI:
            pytest.fail(f"{message}; CI must run the TLS tests", pytrace=False)
        pytest.skip(message)
    folder = node_dir("routing-tls-")  # where the node can read it (in its chroot, if any)
    try:
        make_certificates(folder)
        port = free_port()
        node = RabbitNode.start(
            config=[
                f"listeners.ssl.default = 127.0.0.1:{port}",
                f"ssl_options.cacertfile = {seen_by_node(folder / 'ca.pem')}",
                f"ssl_options.certfile = {seen_by_node(folder / 'server.pem')}",
                f"ssl_options.keyfile = {seen_by_node(folder / 'server.key')}",
                "ssl_options.verify = verify_none",
                "ssl_options.fail_if_no_peer_cert = false",
            ]
        )
        try:
            yield TlsNode(node, port, folder / "ca.pem", folder / "other-ca.pem")
        finally:
            node.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _refused(url: str) -> str:
    """The one-line `ConnectionFailed` message for `url`, which must come fast, and the same
    from the asyncio transport."""

    async def open_async() -> None:
        await AsyncRabbitTransport.open(url)

    messages = []
    for attempt in (lambda: RabbitTransport(url), lambda: asyncio.run(open_async())):
        start = time.monotonic()
        with pytest.raises(ConnectionFailed) as info:
            attempt()
        elapsed = time.monotonic() - start
        assert elapsed < FAST, f"took {elapsed:.1f}s to refuse {url}"
        message = str(info.value)
        assert "\n" not in message and "Traceback" not in message
        assert "guest:guest" not in message
        assert isinstance(info.value.__cause__, Exception)  # the TLS or pika error, kept for debugging
        messages.append(message)
    blocking, awaited = messages
    assert awaited == blocking
    return blocking


def _round_trip(url: str, queue: str) -> None:
    with RabbitTransport(url) as rabbit:
        rabbit.declare(Topology.of(Queue(queue, durable=False, auto_delete=True)))
        rabbit.publish("", queue, b"over tls")
        assert rabbit.flush(timeout=10) == []  # confirmed by the broker
        consumer = rabbit.consume(queue)
        delivery = consumer.get(timeout=10)
        assert delivery is not None and delivery.body == b"over tls"
        rabbit.ack(delivery)
        consumer.cancel()

    async def round_trip_async() -> None:
        async with await AsyncRabbitTransport.open(url) as rabbit:
            await rabbit.declare(Topology.of(Queue(queue, durable=False, auto_delete=True)))
            await rabbit.publish("", queue, b"over tls, asyncio")
            assert await rabbit.flush(timeout=10) == []
            async with rabbit.consume(queue) as consumer:
                delivery = await consumer.get(timeout=10)
                assert delivery is not None and delivery.body == b"over tls, asyncio"
                await rabbit.ack(delivery)

    asyncio.run(asyncio.wait_for(round_trip_async(), 30))


def _tls_connections(tls: TlsNode) -> set[str]:
    """`port<TAB>ssl` of the client connections the node has."""
    out = tls.node.ctl("list_connections", "port", "ssl", "--quiet", "--no-table-headers")
    return {line for line in out.splitlines() if "\t" in line}


# ------------------------------------------------------------------ verified


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])  # the DNS and the IP subjectAltName
def test_amqps_with_the_ca_round_trips(tls: TlsNode, unique: str, host: str) -> None:
    _round_trip(tls.url(host, f"cafile={tls.ca}"), unique)


def test_the_connection_really_is_tls(tls: TlsNode) -> None:
    with RabbitTransport(tls.url(query=f"cafile={tls.ca}")):
        assert _tls_connections(tls) == {f"{tls.tls_port}\ttrue"}


def test_without_the_ca_the_certificate_is_not_trusted(tls: TlsNode) -> None:
    message = _refused(tls.url())  # verification is on by default: the system CAs only
    assert f"localhost:{tls.tls_port}" in message
    assert "TLS certificate not trusted" in message
    assert "self-signed certificate" in message  # OpenSSL's reason, passed on


def test_a_ca_that_did_not_sign_it_is_not_trusted(tls: TlsNode) -> None:
    message = _refused(tls.url(query=f"cafile={tls.other_ca}"))
    assert "TLS certificate not trusted" in message


def test_untrusted_is_one_line_from_the_cli(tls: TlsNode) -> None:
    """What a user sees: `Error: ...` and nothing else on stderr, exit code 1."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", "from routing.cli import main; main(prog_name='routing')",
         "consume", "anything", "--timeout", "1", "--url", tls.url()],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert time.monotonic() - start < FAST + 5  # interpreter start-up included
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: amqps://guest:***@localhost:")
    assert "TLS certificate not trusted" in lines[0]


def test_a_cafile_that_does_not_exist_fails_before_connecting(tls: TlsNode, tmp_path: Path) -> None:
    message = _refused(tls.url(query=f"cafile={tmp_path / 'missing.pem'}"))
    assert "TLS files cannot be used" in message and "missing.pem" in message


# ------------------------------------------------------------------ host names


def test_a_host_name_the_certificate_does_not_name_is_refused(tls: TlsNode) -> None:
    """The CA is trusted, but the certificate is for localhost / 127.0.0.1, and
    `server_name` asks for another name: host name verification must refuse it."""
    message = _refused(tls.url("127.0.0.1", f"cafile={tls.ca}&server_name=rabbit.example"))
    assert "TLS certificate not trusted" in message
    assert "rabbit.example" in message  # "Hostname mismatch, certificate is not valid for ..."


def test_server_name_is_the_name_verified(tls: TlsNode, unique: str) -> None:
    """The other half of the test above: with the IP as the address and a name the
    certificate has as `server_name`, it connects."""
    _round_trip(tls.url("127.0.0.1", f"cafile={tls.ca}&server_name=localhost"), unique)


# ------------------------------------------------------------------ opt-out


def test_verify_false_is_the_explicit_opt_out(tls: TlsNode, unique: str) -> None:
    """Why `verify=false` exists: a development or test broker with a self-signed
    certificate whose CA the client does not have. The link is still encrypted, but the
    broker is not authenticated (anyone in the middle could pose as it), so it must be
    asked for by name in the URL, where it shows in configuration and in every logged
    (redacted) URL, never be the fallback when verification fails."""
    url = tls.url(query="verify=false&server_name=rabbit.example")  # no CA, and a wrong name
    _round_trip(url, unique)
    with RabbitTransport(url) as rabbit:
        assert "verify=false" in rabbit.url
        assert _tls_connections(tls) == {f"{tls.tls_port}\ttrue"}  # still TLS, only unverified


# ------------------------------------------------------------------ wrong port


def test_amqp_to_the_tls_port_fails_clearly(tls: TlsNode) -> None:
    message = _refused(f"amqp://guest:guest@127.0.0.1:{tls.tls_port}/%2F")
    assert f"127.0.0.1:{tls.tls_port}" in message
    assert "does not speak AMQP 0-9-1 on this port" in message


def test_amqps_to_the_plain_port_fails_clearly(tls: TlsNode) -> None:
    message = _refused(tls.url("127.0.0.1", f"cafile={tls.ca}", port=tls.node.port))
    assert f"127.0.0.1:{tls.node.port}" in message
    assert "TLS failed" in message and "is it a TLS port?" in message
