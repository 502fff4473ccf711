"""`routing consume QUEUE`: the envelopes arriving on a queue, acked, or kept when unreadable."""

from __future__ import annotations

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
from routing.cli._watching import render_delivery, until_ctrl_c
from routing.envelope import Rejection
from routing.transport import open_transport
from routing.watching import ReadOutcome, read_queue

__all__ = ["consume", "register"]


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
    counts = dict.fromkeys(ReadOutcome, 0)
    rejected, dlx = 0, None
    with open_transport(broker_url) as transport:
        found = read_queue(
            transport,
            queue,
            registry,
            event_type=event_type,
            ack=ack,
            limit=limit,
            timeout=timeout,
            prefetch=prefetch,
            url=broker_url,
        )
        if not as_json:
            click.echo(f"consuming from {queue!r}; Ctrl-C to stop")
        for number, read in enumerate(until_ctrl_c(found), 1):
            click.echo(render_delivery(read.delivery, read.result, as_json, number))
            counts[read.outcome] += 1
            rejected += isinstance(read.result, Rejection)
            dlx = read.dead_letter_exchange or dlx
    total = sum(counts.values())
    click.echo(f"{total} message(s), {rejected} rejected" + ("" if ack else ", none acked"), err=as_json)
    if rejected and ack:
        parts = []
        if counts[ReadOutcome.DEAD_LETTERED]:
            parts.append(f"{counts[ReadOutcome.DEAD_LETTERED]} dead-lettered to exchange {dlx!r}")
        if counts[ReadOutcome.KEPT]:
            parts.append(f"{counts[ReadOutcome.KEPT]} left on the queue (it has no dead-letter exchange)")
        raise click.ClickException(f"{rejected} message(s) not accepted: " + ", ".join(parts))


def register(group: click.Group) -> None:
    """Add `consume` to `group`."""
    group.add_command(consume)
