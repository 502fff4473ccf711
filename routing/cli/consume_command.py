"""`routing consume QUEUE`: the envelopes arriving on a queue, acked, or kept when unreadable."""

from __future__ import annotations

import time
from pathlib import Path

import click

from routing.cli._shared import (
    allow_unknown_option,
    announce,
    json_lines_option,
    limit_option,
    load_registry,
    schemas_option,
    timeout_option,
    url_option,
)
from routing.cli._watching import render_delivery, watch
from routing.envelope import Envelope, Rejection
from routing.errors import RoutingError
from routing.management import Management
from routing.transport import Delivery, Transport, open_transport


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
        total, rejected = watch(consumer, handle, registry, event_type, limit, timeout)
    click.echo(f"{total} message(s), {rejected} rejected" + ("" if ack else ", none acked"), err=as_json)
    if rejected and ack:
        parts = []
        if dead_lettered:
            parts.append(f"{dead_lettered} dead-lettered to exchange {dlx!r}")
        if kept:
            parts.append(f"{kept} left on the queue (it has no dead-letter exchange)")
        raise click.ClickException(f"{rejected} message(s) not accepted: " + ", ".join(parts))


def register(group: click.Group) -> None:
    """Add `consume` to `group`."""
    group.add_command(consume)
