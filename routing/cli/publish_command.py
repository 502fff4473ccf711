"""`routing publish`: envelopes (or a plain JSON body) onto a broker, with publisher confirms."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from routing.cli._shared import URL_HELP, announce, fail, header_option, parse_headers
from routing.cli.envelope_commands import allow_unknown_option, load_registry, schemas_option
from routing.envelope import JSON_TYPE, build_envelope, decode
from routing.errors import DecodeError, RoutingError, ValidationError
from routing.properties import Properties
from routing.publisher import Publisher
from routing.transport import Outcome, Publication, open_transport

_PROGRESS_STEP = 256  # redrawing the bar per message costs more than sending one


def register(group: click.Group) -> None:
    """Add `publish` to `group`."""

    @group.command()
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
    @click.option(
        "--ce-headers", is_flag=True, help="Also copy the attributes into ce- headers (ce-type...)."
    )
    @click.option(
        "--count", type=click.IntRange(min=1), default=1, show_default=True, help="How many to send."
    )
    @click.option("--mandatory", is_flag=True, help="Fail if no queue is bound for the key.")
    @click.option("--transient", is_flag=True, help="delivery_mode 1 instead of persistent.")
    @schemas_option
    @allow_unknown_option
    @click.option("--url", help=URL_HELP)
    def publish(
        exchange: str,
        routing_key: str,
        event_type: str | None,
        source: str,
        subject: str | None,
        data: str | None,
        body: str | None,
        headers: tuple[str, ...],
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
        try:
            extra = parse_headers(headers)
        except RoutingError as exc:
            raise fail(exc) from exc
        if body is None and data in (None, "-"):
            data = "" if data is None and sys.stdin.isatty() else sys.stdin.read()
        persistent = not transient
        try:  # refused here, before any connection, when invalid
            if body is not None:
                plain = _plain_message(body, event_type, extra, persistent, registry)
            else:
                first = build_envelope(
                    event_type or "", data, source=source, subject=subject, registry=registry
                )
        except ValidationError as exc:
            for problem in exc.problems:
                click.echo(f"invalid: {problem}", err=True)
            what = "body" if body is not None else "envelope"
            raise click.ClickException(
                f"{what} refused ({len(exc.problems)} problem(s)); nothing was sent"
            ) from exc
        except RoutingError as exc:
            raise fail(exc) from exc

        sent = 0
        interrupted = False
        try:
            with open_transport(broker_url) as transport:
                started = time.monotonic()  # the rate is of sending, not of connecting
                send: Callable[[int], Publication]
                if body is not None:

                    def send(n: int) -> Publication:
                        props = plain(n)
                        return transport.publish(
                            exchange, routing_key, body_bytes, props, mandatory=mandatory
                        )

                    body_bytes = body.encode()
                else:
                    publisher = Publisher(
                        transport,
                        registry=registry,
                        source=source,
                        persistent=persistent,
                        ce_headers=ce_headers,
                        mandatory=mandatory,
                        headers=extra,
                    )
                    value = first.to_dict().get("data")

                    def send(n: int) -> Publication:
                        if n == 0:
                            return publisher.publish(exchange, routing_key, first)
                        return publisher.emit(exchange, routing_key, first.type, value, subject=subject)

                if count == 1:
                    send(0)
                    sent = 1
                    click.echo(f"id: {first.id if body is None else plain.first_id}")
                else:
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
                    interrupted = bool(stop)  # then report what the broker confirmed of what was sent
                failures = transport.flush(timeout=30)
        except RoutingError as exc:
            raise fail(exc) from exc
        elapsed = time.monotonic() - started
        _report(exchange, routing_key, count, sent, failures, elapsed, interrupted)


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


class _Plain:
    """The properties of plain-body messages: the same body, a fresh message_id each."""

    def __init__(self, event_type: str | None, headers: dict[str, Any], persistent: bool) -> None:
        self.event_type = event_type
        self.headers = headers
        self.delivery_mode = 2 if persistent else 1
        self.first_id = str(uuid.uuid4())

    def __call__(self, n: int) -> Properties:
        return Properties(
            content_type=JSON_TYPE,
            delivery_mode=self.delivery_mode,
            message_id=self.first_id if n == 0 else str(uuid.uuid4()),
            type=self.event_type,
            headers=self.headers,
        )


def _plain_message(
    body: str, event_type: str | None, headers: dict[str, Any], persistent: bool, registry: Any
) -> _Plain:
    """Check a --body as a consumer will read it: a JSON object, valid for `event_type` if given."""
    plain = _Plain(event_type, headers, persistent)
    if event_type is not None:
        decode(body.encode(), plain(0), registry=registry, event_type=event_type)
        return plain
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"--body: not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DecodeError(f"--body: expected a JSON object, got {type(value).__name__}")
    return plain


def _report(
    exchange: str,
    routing_key: str,
    count: int,
    sent: int,
    failures: list[Publication],
    elapsed: float,
    interrupted: bool,
) -> None:
    tally = {o: sum(p.outcome is o for p in failures) for o in Outcome}
    pending = sum(p.outcome is None for p in failures)
    confirmed = sent - len(failures)
    rate = f", {sent / elapsed:,.0f} msg/s" if sent > 1 and elapsed > 0 else ""
    head = f"published {sent} of {count} (interrupted)" if interrupted else f"published {sent}"
    click.echo(
        f"{head}: {confirmed} confirmed, {tally[Outcome.RETURNED]} returned, "
        f"{tally[Outcome.NACKED]} nacked, {tally[Outcome.UNCONFIRMED] + pending} unconfirmed{rate}"
    )
    if interrupted:
        raise click.ClickException(f"interrupted: {sent} of {count} sent, {confirmed} confirmed")
    if failures:
        first_error = next((p.error for p in failures if p.error is not None), None)
        if tally[Outcome.RETURNED]:
            shown = exchange or "(default exchange)"
            raise click.ClickException(
                f"unroutable: no queue is bound to exchange {shown!r} for key {routing_key!r}"
                f" ({tally[Outcome.RETURNED]} returned)"
            )
        raise click.ClickException(
            str(first_error) if first_error else f"{len(failures)} message(s) not confirmed"
        )
