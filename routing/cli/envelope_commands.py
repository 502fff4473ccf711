"""`routing validate` and `routing build`: envelopes checked against their JSON Schemas."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import click

from routing.cli._shared import allow_unknown_option, load_registry, schemas_option
from routing.envelope import DEFAULT_SOURCE, MAX_BYTES, build_envelope, decode, encode, parse_json
from routing.errors import EnvelopeError, ValidationError

__all__ = ["build", "register", "validate"]


def _records(raw: bytes) -> Iterator[tuple[int | None, bytes]]:
    """(line number or None, body): one envelope, pretty-printed or not, or JSON lines."""
    lines = raw.splitlines()
    filled = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if len(filled) <= 1:
        yield None, raw
        return
    try:
        parse_json(raw)
    except ValueError:
        yield from filled
    else:
        yield None, raw


@click.command()
@click.argument("source", type=click.File("rb"), metavar="FILE|-")
@schemas_option
@allow_unknown_option
@click.option(
    "--type", "event_type", help="The event type of plain JSON bodies (records without specversion)."
)
@click.option(
    "--max-bytes", type=click.IntRange(min=1), default=MAX_BYTES, show_default=True, help="Size limit."
)
def validate(
    source: IO[bytes], schemas: Path | None, allow_unknown: bool, event_type: str | None, max_bytes: int
) -> None:
    """Check an envelope, or a JSON-lines file of them, against the schemas.

    Prints every problem with its JSON path (and line number for JSON lines); exits 0 when
    all are valid, 1 otherwise.

    \b
    Examples:
      routing validate event.json
      routing build --type log.record --data '{"level": "info", ...}' | routing validate -
      routing validate --schemas ./my-schemas events.jsonl
    """
    registry = load_registry(schemas, allow_unknown)
    name = getattr(source, "name", "-")
    name = "<stdin>" if name in ("-", "<stdin>") else name
    raw = source.read()
    count = bad = 0
    for line, body in _records(raw):
        count += 1
        where = name if line is None else f"{name}:{line}"
        try:
            decode(body, None, registry=registry, event_type=event_type, max_bytes=max_bytes)
        except ValidationError as exc:
            bad += 1
            for problem in exc.problems:
                click.echo(f"{where}: {problem}")
        except EnvelopeError as exc:
            bad += 1
            click.echo(f"{where}: {exc}")
    if bad:
        click.echo(f"{bad} of {count} invalid", err=True)
        sys.exit(1)
    click.echo(f"{name}: {count} valid" if count > 1 else f"{name}: valid")


@click.command()
@click.option("--type", "event_type", required=True, help="The event type, e.g. log.record.")
@click.option("--source", default=DEFAULT_SOURCE, show_default=True, help="Who sends it (a URI-reference).")
@click.option("--subject", help="What the event is about, within the source.")
@click.option("--data", help="The data as JSON; read from stdin when omitted or '-'.")
@schemas_option
@allow_unknown_option
def build(
    event_type: str,
    source: str,
    subject: str | None,
    data: str | None,
    schemas: Path | None,
    allow_unknown: bool,
) -> None:
    """Build a validated envelope and print it as one JSON line.

    `routing publish` builds its envelope the same way before sending it.

    \b
    Example:
      routing build --type cache.invalidate --source urn:svc:catalog \\
        --data '{"cache": "products", "keys": ["p-1"], "reason": "price change"}'
    """
    registry = load_registry(schemas, allow_unknown)
    text = sys.stdin.read() if data in (None, "-") else data
    envelope = build_envelope(event_type, text, source=source, subject=subject, registry=registry)
    click.echo(encode(envelope).decode())


def register(group: click.Group) -> None:
    """Add this module's commands to `group`."""
    group.add_command(validate)
    group.add_command(build)
