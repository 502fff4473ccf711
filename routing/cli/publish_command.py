"""`routing publish`: envelopes (or a plain JSON body) onto a broker, with publisher confirms."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from routing.cli._shared import (
    allow_unknown_option,
    announce,
    header_option,
    load_registry,
    schemas_option,
    url_option,
)
from routing.envelope import build_envelope
from routing.errors import DecodeError, ValidationError
from routing.publisher import Publisher, Tally, check_json_body
from routing.transport import Publication, open_transport

__all__ = ["publish", "register"]


_PROGRESS_STEP = 256  # redrawing the bar per message costs more than sending one


@click.command()
@click.option("--exchange", required=True, help='The exchange ("" for the default exchange).')
@click.option("--routing-key", "-k", default="", help="The message's routing key.")
@click.option("--type", "event_type", help="The event type, e.g. log.record (required unless --body).")
@click.option("--source", default="urn:routing:cli", show_default=True, help="Who sends it (a URI).")
@click.option("--subject", help="What the event is about, within the source.")
@click.option("--data", help="The event's data as JSON; read from stdin when omitted or '-'.")
@click.option(
    "--body",
    metavar="JSON",
    help="Send this JSON object as the whole body, no envelope, as producers that know nothing of"
    " envelopes do (application/json, a fresh message_id each); with --type it is checked"
    " against that type's schema and sent with the AMQP type property.",
)
@header_option
@click.option("--ce-headers", is_flag=True, help="Also copy the attributes into ce- headers (ce-type...).")
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True, help="How many to send.")
@click.option("--mandatory", is_flag=True, help="Fail if no queue is bound for the key.")
@click.option("--transient", is_flag=True, help="delivery_mode 1 instead of persistent.")
@schemas_option
@allow_unknown_option
@url_option
def publish(
    exchange: str,
    routing_key: str,
    event_type: str | None,
    source: str,
    subject: str | None,
    data: str | None,
    body: str | None,
    headers: dict[str, Any],
    ce_headers: bool,
    count: int,
    mandatory: bool,
    transient: bool,
    schemas: Path | None,
    allow_unknown: bool,
    url: str | None,
) -> None:
    """Build, validate and publish an envelope, with publisher confirms.

    The envelope is checked against its schema first: an invalid one is refused with
    every failing path, and nothing is sent. `--count N` sends N envelopes (each with
    its own id) and shows progress; Ctrl-C stops and reports what was confirmed.
    Reports how many were confirmed, returned and nacked; exits 1 unless all were.

    \b
    Examples:
      routing publish --exchange logs --routing-key billing.error --type log.record \\
        --data '{"level": "error", "service": "billing", "message": "card declined"}'
      routing publish --exchange "" --routing-key task_queue \\
        --body '{"id": 1, "action": "resize_image", "path": "/uploads/img_1.jpg"}'
    """
    if body is None and event_type is None:
        raise click.UsageError("give --type for an envelope, or --body for a plain JSON body")
    if body is not None and data is not None:
        raise click.UsageError("give --data (an envelope's data) or --body (the whole body), not both")
    broker_url = announce(url)
    registry = load_registry(schemas, allow_unknown)
    if body is None and data in (None, "-"):
        data = "" if data is None and sys.stdin.isatty() else sys.stdin.read()
    first_id = str(uuid.uuid4())
    try:  # refused here, before any connection, when invalid
        if body is not None:
            payload = body.encode()
            try:
                check_json_body(payload, event_type=event_type, headers=headers, registry=registry)
            except DecodeError as exc:
                if event_type is None:
                    raise DecodeError(f"--body: {exc}") from None
                raise
        else:
            first = build_envelope(event_type or "", data, source=source, subject=subject, registry=registry)
            first_id = first.id
    except ValidationError as exc:
        for problem in exc.problems:
            click.echo(f"invalid: {problem}", err=True)
        what = "body" if body is not None else "envelope"
        raise click.ClickException(
            f"{what} refused ({len(exc.problems)} problem(s)); nothing was sent"
        ) from exc

    with open_transport(broker_url) as transport:
        started = time.monotonic()  # the rate is of sending, not of connecting
        publisher = Publisher(
            transport,
            registry=registry,
            source=source,
            persistent=not transient,
            ce_headers=ce_headers,
            mandatory=mandatory,
            headers=headers,
        )
        send: Callable[[int], Publication]
        if body is not None:

            def send(n: int) -> Publication:
                message_id = first_id if n == 0 else None
                return publisher.publish_json(
                    exchange, routing_key, payload, event_type=event_type, message_id=message_id
                )
        else:
            value = first.to_dict().get("data")

            def send(n: int) -> Publication:
                if n == 0:
                    return publisher.publish(exchange, routing_key, first)
                return publisher.emit(exchange, routing_key, first.type, value, subject=subject)

        interrupted = False
        if count == 1:
            send(0)
            click.echo(f"id: {first_id}")
        else:
            interrupted = _send_many(send, count)
        publisher.flush(timeout=30)
    _report(exchange, routing_key, count, publisher.tally, time.monotonic() - started, interrupted)


def _send_many(send: Callable[[int], Publication], count: int) -> bool:
    """`send(n)` for n up to `count`, with a progress bar; True when Ctrl-C stopped it first
    (then what the broker confirmed of what was sent is reported)."""
    sent = 0
    with (
        _stop_on_ctrl_c() as stop,
        click.progressbar(length=count, label="publishing", file=sys.stderr) as bar,
    ):
        for n in range(count):
            if stop:
                break
            send(n)
            sent += 1
            if sent % _PROGRESS_STEP == 0:
                bar.update(_PROGRESS_STEP)
        bar.update(sent % _PROGRESS_STEP)
    return bool(stop)


@contextlib.contextmanager
def _stop_on_ctrl_c() -> Iterator[list[bool]]:
    """A list that becomes true at the first Ctrl-C, so the loop stops between two messages
    (a KeyboardInterrupt inside a publish would leave a message sent but not counted); a
    second Ctrl-C interrupts at once."""
    stop: list[bool] = []

    def handler(signum: int, frame: object) -> None:
        if stop:
            raise KeyboardInterrupt
        stop.append(True)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: Ctrl-C is not ours to catch
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _report(
    exchange: str, routing_key: str, count: int, tally: Tally, elapsed: float, interrupted: bool
) -> None:
    sent = tally.published
    rate = f", {sent / elapsed:,.0f} msg/s" if sent > 1 and elapsed > 0 else ""
    head = f"published {sent} of {count} (interrupted)" if interrupted else f"published {sent}"
    click.echo(
        f"{head}: {tally.confirmed} confirmed, {tally.returned} returned, "
        f"{tally.nacked} nacked, {tally.unconfirmed + tally.unsettled} unconfirmed{rate}"
    )
    if interrupted:
        raise click.ClickException(f"interrupted: {sent} of {count} sent, {tally.confirmed} confirmed")
    if not tally.ok:
        if tally.returned:
            shown = exchange or "(default exchange)"
            raise click.ClickException(
                f"unroutable: no queue is bound to exchange {shown!r} for key {routing_key!r}"
                f" ({tally.returned} returned)"
            )
        raise click.ClickException(str(tally.first_error or f"{tally.failed} message(s) not confirmed"))


def register(group: click.Group) -> None:
    """Add `publish` to `group`."""
    group.add_command(publish)
