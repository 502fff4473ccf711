"""`routing consume QUEUE` and `routing tail EXCHANGE`: messages as they arrive, decoded."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from routing.cli._shared import (
    allow_unknown_option,
    announce,
    header_option,
    json_lines_option,
    limit_option,
    load_registry,
    schemas_option,
    timeout_option,
    url_option,
)
from routing.envelope import Envelope, Rejection, decode_or_reject
from routing.errors import DeclareConflicts, RoutingError
from routing.management import Management
from routing.schemas import SchemaRegistry
from routing.tail import Tail, open_tail
from routing.topology import ExchangeType
from routing.transport import Consumer, Delivery, Transport, open_transport

_EXCHANGE_TYPES = click.Choice(["direct", "fanout", "topic", "headers"])


def render_delivery(item: Delivery, result: Envelope | Rejection, as_json: bool, number: int) -> str:
    """One delivery as `consume` and `tail` print it: two lines, or one JSON object."""
    where = {"exchange": item.exchange, "routing_key": item.routing_key, "queue": item.queue}
    if as_json:
        record: dict[str, Any] = {**where, "redelivered": item.redelivered}
        if item.headers:
            record["headers"] = _jsonable(item.headers)
        if isinstance(result, Rejection):
            record["rejected"] = {"reason": result.reason, "path": result.path}
        else:
            record["envelope"] = _jsonable(result.to_dict())  # its data may hold 1e999 (inf)
        return json.dumps(record, ensure_ascii=False, allow_nan=False, default=str)
    shown = item.exchange or "(default)"
    head = f"#{number} {shown} {item.routing_key!r}" + (" (redelivered)" if item.redelivered else "")
    if isinstance(result, Rejection):
        path = f" at {result.path}" if result.path else ""
        return f"{head} REJECTED{path}: {result.reason}"
    data = json.dumps(result.to_dict().get("data"), ensure_ascii=False, default=str)
    return f"{head} {result.type} id={result.id} source={result.source}\n    data: {data}"


def _jsonable(value: Any) -> Any:
    """A header value as JSON can hold it: bytes as text (a bad byte as U+FFFD), names that
    are bytes as text too, NaN and infinities as strings (JSON has no such numbers)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, Mapping):
        return {_jsonable(k) if isinstance(k, bytes) else str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class _Fetcher:
    """A consumer's `get`/`cancel` over basic.get, one message at a time: with --limit the
    broker hands out no more than the limit (a prefetch window would take more, and give
    them back redelivered when the command stops)."""

    POLL = 0.05

    def __init__(self, transport: Transport, queue: str) -> None:
        self.transport = transport
        self.queue = queue

    def get(self, timeout: float | None = None) -> Delivery | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (item := self.transport.get(self.queue)) is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self.transport.wait(self.POLL if remaining is None else min(self.POLL, remaining))
        return item

    def cancel(self) -> None:
        """Nothing to stop: what is still unacked goes back to the queue when the transport closes."""


def _watch(
    consumer: Consumer | _Fetcher,
    handle: Callable[[Delivery, Envelope | Rejection], None],
    registry: SchemaRegistry,
    event_type: str | None,
    limit: int | None,
    timeout: float | None,
) -> tuple[int, int]:
    """Decode and hand on each delivery until `limit` of them, `timeout` seconds of silence,
    or Ctrl-C; returns (shown, rejected)."""
    shown = rejected = 0
    try:
        while limit is None or shown < limit:
            item = consumer.get(timeout=timeout)
            if item is None:
                break
            result = decode_or_reject(item.body, item.properties, registry=registry, event_type=event_type)
            shown += 1
            rejected += isinstance(result, Rejection)
            handle(item, result)
    except KeyboardInterrupt:
        pass
    consumer.cancel()
    return shown, rejected


def _dead_letter_exchange(url: str, queue: str) -> str | None:
    """The queue's dead-letter exchange, as the management API tells; None when it has none
    or nobody can tell (then a message that cannot be accepted stays on the queue)."""
    try:
        return Management.for_broker(url).dead_letter_exchange(queue)
    except RoutingError:  # no management API, or a URL that names none (memory://)
        return None


@click.command()
@click.argument("queue")
@click.option(
    "--ack/--no-ack",
    default=True,
    show_default=True,
    help="Ack what is shown, or leave it all on the queue.",
)
@limit_option
@click.option(
    "--prefetch",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Unacked deliveries in flight (with --limit, messages are fetched one at a time).",
)
@timeout_option
@json_lines_option
@click.option("--type", "event_type", help="The event type of plain JSON bodies (sent without an envelope).")
@click.option("--event-type", "old_event_type", hidden=True)  # the spelling before --type
@schemas_option
@allow_unknown_option
@url_option
def consume(
    queue: str,
    ack: bool,
    limit: int | None,
    prefetch: int,
    timeout: float | None,
    as_json: bool,
    event_type: str | None,
    old_event_type: str | None,
    schemas: Path | None,
    allow_unknown: bool,
    url: str | None,
) -> None:
    """Print the envelopes arriving on QUEUE.

    Each message is decoded and checked against its schema, printed, and acked. One
    that cannot be accepted (not JSON, invalid, no event type) is printed as REJECTED
    with the reason and never destroyed: when the queue has a dead-letter exchange it
    is rejected to it, otherwise it stays on the queue (given back when this command
    exits). The exit code is 1 when any message was not accepted. --no-ack leaves
    every message on the queue. Runs until --limit, --timeout or Ctrl-C.

    \b
    Example:
      routing consume billing-alerts --limit 10 --timeout 5
    """
    event_type = event_type or old_event_type
    broker_url = announce(url, err=as_json)
    registry = load_registry(schemas, allow_unknown)
    kept = dead_lettered = shown = 0
    dlx = _dead_letter_exchange(broker_url, queue) if ack else None

    def handle(item: Delivery, result: Envelope | Rejection) -> None:
        nonlocal shown, kept, dead_lettered
        shown += 1
        click.echo(render_delivery(item, result, as_json, shown))
        if not ack:
            return
        if not isinstance(result, Rejection):
            transport.ack(item)
        elif dlx is not None:
            transport.reject(item, requeue=False)  # the queue's dead-letter exchange takes it
            dead_lettered += 1
        else:
            kept += 1  # unacked: back on the queue when the consumer stops

    with open_transport(broker_url) as transport:
        # Without acks, a prefetch window would stall after `prefetch` messages.
        consumer = (
            _Fetcher(transport, queue) if limit else transport.consume(queue, prefetch=prefetch if ack else 0)
        )
        if not as_json:
            click.echo(f"consuming from {queue!r}; Ctrl-C to stop")
        total, rejected = _watch(consumer, handle, registry, event_type, limit, timeout)
    click.echo(f"{total} message(s), {rejected} rejected" + ("" if ack else ", none acked"), err=as_json)
    if rejected and ack:
        parts = []
        if dead_lettered:
            parts.append(f"{dead_lettered} dead-lettered to exchange {dlx!r}")
        if kept:
            parts.append(f"{kept} left on the queue (it has no dead-letter exchange)")
        raise click.ClickException(f"{rejected} message(s) not accepted: " + ", ".join(parts))


@click.command()
@click.argument("exchange")
@click.option(
    "--routing-key",
    "-k",
    "key",
    help="The binding key to watch with: a topic pattern (default '#') or a direct key.",
)
@click.option("--key", "old_key", hidden=True)  # the spelling before --routing-key
@header_option
@click.option(
    "--match",
    type=click.Choice(["all", "any"]),
    default="all",
    show_default=True,
    help="Headers exchange: every --header must match, or any one.",
)
@click.option(
    "--exchange-type",
    "kind",
    type=_EXCHANGE_TYPES,
    help="The exchange's type, when the management API cannot tell.",
)
@click.option("--type", "old_kind", type=_EXCHANGE_TYPES, hidden=True)  # the spelling before --exchange-type
@limit_option
@timeout_option
@json_lines_option
@schemas_option
@url_option
def tail(
    exchange: str,
    key: str | None,
    old_key: str | None,
    headers: dict[str, Any],
    match: str,
    kind: str | None,
    old_kind: str | None,
    limit: int | None,
    timeout: float | None,
    as_json: bool,
    schemas: Path | None,
    url: str | None,
) -> None:
    """Watch what flows through EXCHANGE.

    Binds a temporary exclusive, auto-delete queue (gone when this command exits) with
    --routing-key (a binding key) for a topic or direct exchange, --header rules for a
    headers exchange, or nothing for fanout, and prints every message it receives. Nothing is taken from
    anyone: the exchange copies each message to this queue too.

    \b
    Examples:
      routing tail logs --routing-key '*.error' --limit 5
      routing tail media --header format=jpeg --header region=eu --match any
    """
    key = key if key is not None else old_key
    if key is not None and headers:
        raise click.UsageError("give --routing-key or --header, not both")
    kind = kind or old_kind
    watch = Tail(
        exchange=exchange,
        routing_key=key,
        headers=headers,
        match=match,
        exchange_type=None if kind is None else ExchangeType(kind),
    )
    broker_url = announce(url, err=as_json)
    registry = load_registry(schemas, allow_unknown=True)

    shown = 0

    def handle(item: Delivery, result: Envelope | Rejection) -> None:
        nonlocal shown
        shown += 1
        click.echo(render_delivery(item, result, as_json, shown))
        transport.ack(item)

    with open_transport(broker_url) as transport:
        try:
            with open_tail(transport, watch, url=broker_url) as tap:
                if not as_json:
                    click.echo(f"watching {tap.binding.describe()}; Ctrl-C to stop")
                total, _ = _watch(tap.consumer, handle, registry, None, limit, timeout)
        except DeclareConflicts as exc:
            raise click.ClickException(
                f"{exc.conflicts[0]}; pass --exchange-type with the exchange's type"
            ) from exc
    click.echo(f"{total} message(s)", err=as_json)


def register(group: click.Group) -> None:
    """Add this module's commands to `group`."""
    group.add_command(consume)
    group.add_command(tail)
