"""Which RabbitMQ the broker tests run against, read from the environment, and its release.

`ROUTING_TEST_URL` (default amqp://guest:guest@127.0.0.1:5672/%2F) and
`ROUTING_TEST_MANAGEMENT_URL` (default: where the library itself looks for the management API
of that URL) name the broker; nothing here assumes a port. The shared fixtures
(`tests/conftest.py`) and the private nodes (`tests/rabbit_node.py`) both ask this module.
"""

from __future__ import annotations

import functools
import os
import shlex
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from routing.management import Management
from routing.transport.rabbitmq._url import parse_url

AMQP_URL = os.environ.get("ROUTING_TEST_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _default_management_url(amqp_url: str) -> str:
    """The management API the library would use for `amqp_url`, with its credentials."""
    found = Management.for_broker(amqp_url)
    parts = urlsplit(found.base)
    return urlunsplit(parts._replace(netloc=f"{found.username}:{found.password}@{parts.netloc}"))


MANAGEMENT_URL = os.environ.get("ROUTING_TEST_MANAGEMENT_URL") or _default_management_url(AMQP_URL)

# The command that runs `rabbitmqctl` against the broker under test (its node and cookie):
# the machine's own by default; CI's 4.0 run sets "scripts/rabbitmq4.sh ctl".
RABBITMQCTL = shlex.split(os.environ.get("ROUTING_TEST_RABBITMQCTL", "rabbitmqctl"))


def plain_amqp_url(url: str) -> str:
    """`url` without the options only `routing` knows (`management=`), for plain pika, which
    refuses an unknown URL parameter."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "management"]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def with_options(url: str, **options: str) -> str:
    """`url` with these query options added (or replaced): `with_options(amqp_url, heartbeat="1")`."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in options]
    return urlunsplit(parts._replace(query=urlencode([*kept, *options.items()], safe=":/@")))


def naming_management(amqp_url: str, management_url: str) -> str:
    """`amqp_url`, naming `management_url` as its management API (`?management=`) unless the
    URL names one already or the library would find that one anyway.

    The management URL's credentials stay out when they are the AMQP URL's (the library uses
    those): a URL with one password shows redacted as it is written."""
    endpoint = parse_url(amqp_url)
    wanted = Management.for_broker(amqp_url, management_url)
    if endpoint.management or Management.for_broker(amqp_url) == wanted:
        return amqp_url
    option = wanted.base
    if (wanted.username, wanted.password) != (endpoint.username, endpoint.password):
        option = management_url.rstrip("/")
    return with_options(amqp_url, management=option)


@functools.cache
def release(amqp_url: str = AMQP_URL) -> str:
    """The version the broker at `amqp_url` announces in `connection.start` ("3.10.8", "4.0.5")."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
    try:
        version = connection._impl.server_properties.get("version", b"")
    finally:
        connection.close()
    return version.decode() if isinstance(version, bytes) else str(version)


def admin(management_url: str, method: str, path: str, body: object = None) -> None:
    """One call to the management HTTP API (`PUT vhosts/x`), with the URL's credentials."""
    import base64
    import json
    import urllib.request

    parts = urlsplit(management_url)
    token = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    request = urllib.request.Request(
        f"{parts.scheme}://{parts.hostname}:{parts.port}/api/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Basic {token}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def queue_depth(url: str, queue: str) -> int | None:
    """How many messages `queue` holds on the broker at `url` (a passive declare through plain
    pika, not the toolkit under test), or None when there is no such queue."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(url)))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    except pika.exceptions.ChannelClosedByBroker:
        return None
    finally:
        if connection.is_open:
            connection.close()


def tutorial_publish(url: str, queue: str, bodies: list[bytes]) -> None:
    """As the pika tutorial's `new_task.py` sends its jobs: plain pika, plain JSON bodies,
    persistent, to the default exchange (with confirms, so they are there on return)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(url)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish(
                exchange="",
                routing_key=queue,
                body=body,
                properties=pika.BasicProperties(
                    content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent
                ),
            )
    finally:
        connection.close()
