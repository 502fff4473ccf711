"""`routing invalidate` and `routing listen`: cache invalidation broadcasts (`routing.broadcast`)."""

from __future__ import annotations

import contextlib
import json
import threading

import click

from routing.broadcast import Broadcaster, Gap, Listener
from routing.cli._shared import announce, url_option
from routing.envelope import Envelope
from routing.transport import open_transport

__all__ = ["invalidate", "listen", "register"]


@click.command()
@click.option("--exchange", required=True, help="The fanout exchange the listeners are bound to.")
@click.option("--cache", required=True, help="The cache the keys belong to, e.g. users.")
@click.option("--key", "keys", multiple=True, help="A key to drop (repeat for several).")
@click.option("--pattern", help="Drop every key matching this glob instead, e.g. 'price:*'.")
@click.option("--reason", help="Why, for the listeners' logs.")
@click.option("--source", default="urn:routing:cli", show_default=True, help="Who sends it (a URI).")
@url_option
def invalidate(
    exchange: str,
    cache: str,
    keys: tuple[str, ...],
    pattern: str | None,
    reason: str | None,
    source: str,
    url: str | None,
) -> None:
    """Tell every listening instance to drop cache entries.

    \b
    Examples:
      routing invalidate --exchange app.invalidations --cache users --key user:1
      routing invalidate --exchange app.invalidations --cache prices --pattern 'price:*'
    """
    if bool(keys) == (pattern is not None):
        raise click.UsageError("give --key (one or more) or --pattern, not both")
    with open_transport(announce(url, err=True)) as transport:
        broadcaster = Broadcaster(transport, exchange=exchange, source=source)
        broadcaster.invalidate(cache, keys or None, pattern=pattern, reason=reason)
    named = ", ".join(keys) if keys else f"pattern {pattern!r}"
    click.echo(f"invalidated {named} in cache {cache!r} (confirmed; publisher {broadcaster.publisher})")


@click.command()
@click.option("--exchange", required=True, help="The fanout exchange to listen on.")
@click.option("--service", default="cli", show_default=True, help="The service name, in the queue's name.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Stop after S seconds.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event or gap.")
@url_option
def listen(exchange: str, service: str, timeout: float | None, as_json: bool, url: str | None) -> None:
    """Print each invalidation, config change and gap as it happens, until Ctrl-C.

    A gap means events may have been missed (the connection dropped, the broker restarted,
    a publisher's sequence jumped, the queue overflowed): an instance would clear its caches.
    """
    lock = threading.Lock()

    def show(record: dict[str, object], line: str) -> None:
        with lock:
            click.echo(json.dumps(record, sort_keys=True) if as_json else line)

    def event(env: Envelope) -> None:
        data = env.to_dict().get("data", {})
        show({"event": env.type, **data}, f"{env.type}: {json.dumps(data, sort_keys=True)}")

    def gap(found: Gap) -> None:
        show({"gap": str(found.cause), "detail": found.detail}, f"GAP ({found.cause}): {found.detail}")

    listener = Listener(announce(url, err=True), exchange=exchange, service=service)
    listener.on_invalidate(event)
    listener.on_config(event)
    listener.on_gap(gap)
    with listener:
        click.echo(f"listening on {exchange!r} (queue {listener.queue}); Ctrl-C to stop", err=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop, then the summary
            threading.Event().wait(timeout)
    stats = listener.stats
    click.echo(f"{stats.applied} event(s), {stats.gaps} gap(s), {stats.rejected} rejected", err=True)


def register(group: click.Group) -> None:
    """Add `invalidate` and `listen` to `group`."""
    group.add_command(invalidate)
    group.add_command(listen)
