"""Commands that talk to a running broker: `declare`, `diff`, `publish`, `consume`, `tail`."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from routing._frozen import thaw
from routing.cli import publish_command
from routing.cli._shared import (
    URL_HELP,
    announce,
    conflicting_entities,
    fail,
    header_option,
    parse_headers,
    print_report,
    rabbit_url,
    target_check,
)
from routing.cli.envelope_commands import allow_unknown_option, load_registry, schemas_option
from routing.cluster import cluster_warnings
from routing.definitions import load_definitions
from routing.diff import diff_topology
from routing.envelope import Envelope, Rejection, decode_or_reject
from routing.errors import DeclareConflicts, RoutingError
from routing.loading import load_topology
from routing.management import Management
from routing.schemas import SchemaRegistry
from routing.topology import Binding, Exchange, ExchangeType, Queue, Topology
from routing.transport import Delivery, Transport, open_transport
from routing.transport.base import DeclareReport
from routing.urls import describe, is_memory

DIFFERENT = 3  # `routing diff`'s exit code for drift: 1 is an error, 2 click's usage error


_limit_option = click.option("--limit", type=click.IntRange(min=1), help="Stop after N messages.")
_timeout_option = click.option(
    "--timeout", type=click.FloatRange(min=0), help="Stop after S seconds with no message."
)
_json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")


# ------------------------------------------------------------------ printing


def _render(item: Delivery, result: Envelope | Rejection, as_json: bool, number: int) -> str:
    where = {"exchange": item.exchange, "routing_key": item.routing_key, "queue": item.queue}
    if as_json:
        record: dict[str, Any] = {**where, "redelivered": item.redelivered}
        if item.headers:
            record["headers"] = _jsonable(thaw(item.headers))
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
    data = json.dumps(thaw(result.data), ensure_ascii=False, default=str)
    return f"{head} {result.type} id={result.id} source={result.source}\n    data: {data}"


def _jsonable(value: Any) -> Any:
    """A header value as JSON can hold it: bytes as text (a bad byte as U+FFFD), names that
    are bytes as text too, NaN and infinities as strings (JSON has no such numbers)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, dict):
        return {_jsonable(k) if isinstance(k, bytes) else str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _deliveries(consumer: Any, limit: int | None, timeout: float | None) -> Iterator[Delivery]:
    """Deliveries until `limit` of them, `timeout` seconds of silence, or Ctrl-C."""
    count = 0
    try:
        while limit is None or count < limit:
            item = consumer.get(timeout=timeout)
            if item is None:
                return
            count += 1
            yield item
    except KeyboardInterrupt:
        return


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
    transport: Transport,
    consumer: Any,
    handle: Callable[[Delivery, Envelope | Rejection], None],
    registry: SchemaRegistry,
    event_type: str | None,
    limit: int | None,
    timeout: float | None,
) -> tuple[int, int]:
    """Decode and hand on each delivery; returns (shown, rejected)."""
    shown = rejected = 0
    for item in _deliveries(consumer, limit, timeout):
        result = decode_or_reject(item.body, item.properties, registry=registry, event_type=event_type)
        shown += 1
        rejected += isinstance(result, Rejection)
        handle(item, result)
    consumer.cancel()
    return shown, rejected


def _dead_letter_exchange(url: str, queue: str) -> str | None:
    """The queue's dead-letter exchange, as the management API tells; None when it has none
    or nobody can tell (then a message that cannot be accepted stays on the queue)."""
    if is_memory(url):
        return None  # the embedded broker of a new process has no queue with one
    try:
        return Management.for_broker(url).dead_letter_exchange(queue)
    except RoutingError:
        return None


# ------------------------------------------------------------------ tail's queue


def _tail_exchange(transport: Transport, url: str, name: str, kind: str | None, rule: str) -> list[Exchange]:
    """The exchange to bind to, exactly as the broker has it (so declaring it changes
    nothing), then the alternate exchanges it names, as the broker has them too (a topology
    holds the exchanges it refers to); nothing for `amq.*`, which every vhost has."""
    if name.startswith("amq."):
        return []
    if not is_memory(url):
        try:
            management = Management.for_broker(url)
            item = management.exchange(name)
        except RoutingError:
            pass  # no management API: guess below, and check with a declare
        else:
            if item is None:
                raise click.ClickException(
                    f"no exchange {name!r} on the broker; check the name and the vhost"
                )
            found = [item]
            while (ae := (found[-1].get("arguments") or {}).get("alternate-exchange")) is not None:
                if not isinstance(ae, str) or ae.startswith("amq.") or any(f["name"] == ae for f in found):
                    break
                next_item = management.exchange(ae)
                if next_item is None:
                    raise click.ClickException(
                        f"exchange {found[-1]['name']!r} names alternate exchange {ae!r}, which the broker"
                        " does not have; tail would have to create it"
                    )
                found.append(next_item)
            keys = ("name", "type", "durable", "auto_delete", "internal", "arguments")
            return list(load_definitions({"exchanges": [{k: f[k] for k in keys} for f in found]}).exchanges)
    guess = kind or ("headers" if rule == "headers" else "topic" if rule == "key" else "fanout")
    return [Exchange(name, ExchangeType(guess))]


def _tail_binding(
    exchange: Exchange | None, name: str, queue: str, key: str | None, headers: dict[str, Any], match: str
) -> Binding:
    kind = (
        str(exchange.type)
        if exchange is not None
        else {"amq.topic": "topic", "amq.fanout": "fanout", "amq.direct": "direct"}.get(name, "headers")
    )
    if headers or kind == "headers":
        if kind != "headers":
            raise click.ClickException(
                f"{name!r} is a {kind} exchange: --header needs a headers exchange; use --routing-key"
            )
        return Binding(name, queue, arguments={"x-match": match, **headers})
    if kind == "direct" and key is None:
        raise click.ClickException(
            f"{name!r} is a direct exchange: give the routing key to watch with --routing-key"
        )
    if kind == "topic" and key is None:
        key = "#"  # everything
    return Binding(name, queue, key or "")


def register(group: click.Group) -> None:
    """Add this module's commands to `group`."""

    @group.command()
    @click.argument("topology", metavar="TOPOLOGY")
    @click.option("--url", help="amqp:// or amqps:// URL of the broker (default: $ROUTING_URL).")
    def declare(topology: str, url: str | None) -> None:
        """Declare TOPOLOGY on RabbitMQ, idempotently.

        TOPOLOGY is a definitions JSON file or `package.module:attribute`. A second run
        changes nothing and says so. Entities the broker already has with other settings
        are listed, one line each, and the command exits 1. On a cluster of several nodes
        (as the management API tells), each durable classic queue gets a warning: it lives
        on one node; Topology.replicated() makes such queues quorum queues.

        \b
        Example:
          routing declare examples.shop_topology:topology --url amqp://guest:guest@localhost/
        """
        try:
            broker_url = rabbit_url(url, "declare")
            click.echo(describe(broker_url))
            management = Management.for_broker(broker_url)
            loaded = load_topology(topology, vhost=management.vhost)
            with open_transport(broker_url) as transport:
                release = transport.server_version
                target_check(loaded, release)
                report = transport.declare(loaded)
            warnings = cluster_warnings(loaded, management)
        except DeclareConflicts as exc:
            if isinstance(exc.report, DeclareReport):
                print_report(exc.report)
            for line in exc.conflicts:
                click.echo(f"conflict: {line}", err=True)
            raise click.ClickException(
                f"{conflicting_entities(exc.conflicts)} entities differ from what the broker has; "
                "the rest was declared. "
                "Delete them on the broker or change the topology to match."
            ) from exc
        except RoutingError as exc:
            raise fail(exc) from exc
        print_report(report)
        for line in warnings:
            click.echo(line, err=True)

    @group.command()
    @click.argument("topology", metavar="TOPOLOGY")
    @click.option("--url", help="amqp:// or amqps:// URL of the broker (default: $ROUTING_URL).")
    @click.option(
        "--management-url",
        metavar="URL",
        help="The management HTTP API (default: the AMQP host, port 15672, same user and password).",
    )
    @click.option("--ignore-extra", is_flag=True, help="Do not list what only the broker has.")
    @click.option("--strict", is_flag=True, help="What only the broker has counts as a difference too.")
    @click.pass_context
    def diff(
        ctx: click.Context,
        topology: str,
        url: str | None,
        management_url: str | None,
        ignore_extra: bool,
        strict: bool,
    ) -> None:
        """Compare TOPOLOGY with what the broker has, through the management API.

        Prints what declaring would create, what differs (setting by setting, argument by
        argument) and what exists only on the broker, in the URL's vhost. Exit code 0 when
        the broker has the topology as written (what only the broker has is listed, and
        counts only with --strict), 3 when it differs, 1 on error (2 is click's usage error).

        \b
        Example:
          routing diff examples.shop_topology:topology --url amqp://guest:guest@localhost/%2F
        """
        if ignore_extra and strict:
            raise click.UsageError("give --ignore-extra or --strict, not both")
        try:
            broker_url = rabbit_url(url, "diff")
            click.echo(describe(broker_url))
            management = Management.for_broker(broker_url, management_url)
            loaded = load_topology(topology, vhost=management.vhost)
            click.echo(f"management API: {management.base}, vhost {management.vhost!r}")
            result = diff_topology(loaded, management.definitions(), vhost=management.vhost)
        except RoutingError as exc:
            raise fail(exc) from exc
        if ignore_extra:
            result = replace(result, extra=())
        for line in result.create:
            click.echo(f"would create: {line}")
        for difference in result.differ:
            click.echo(f"differs: {difference.describe()}")
        for line in result.extra:
            click.echo(f"only on the broker: {line}")
        for line in result.skipped:
            click.echo(f"not compared: {line}")
        different = result.drift or (strict and bool(result.extra))
        counts = (
            f"{len(result.create)} to create, {len(result.differ)} differing, "
            f"{len(result.extra)} only on the broker"
        )
        if not different:
            more = f"; {len(result.extra)} more only on the broker (--strict counts them)"
            click.echo("the broker matches the topology" + (more if result.extra else ""))
            return
        click.echo(counts)
        ctx.exit(DIFFERENT)

    publish_command.register(group)

    @group.command()
    @click.argument("queue")
    @click.option(
        "--ack/--no-ack",
        default=True,
        show_default=True,
        help="Ack what is shown, or leave it all on the queue.",
    )
    @_limit_option
    @click.option(
        "--prefetch",
        type=click.IntRange(min=1),
        default=100,
        show_default=True,
        help="Unacked deliveries in flight (with --limit, messages are fetched one at a time).",
    )
    @_timeout_option
    @_json_option
    @click.option(
        "--type", "event_type", help="The event type of plain JSON bodies (sent without an envelope)."
    )
    @click.option("--event-type", "old_event_type", hidden=True)  # the spelling before --type
    @schemas_option
    @allow_unknown_option
    @click.option("--url", help=URL_HELP)
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
        # Without acks, a prefetch window would stall after `prefetch` messages.
        window = prefetch if ack else 0
        kept: list[Delivery] = []
        dead_lettered = [0]

        def handle(item: Delivery, result: Envelope | Rejection) -> None:
            click.echo(_render(item, result, as_json, shown[0] + 1))
            shown[0] += 1
            if not ack:
                return
            if not isinstance(result, Rejection):
                transport.ack(item)
            elif dlx is not None:
                transport.reject(item, requeue=False)  # the queue's dead-letter exchange takes it
                dead_lettered[0] += 1
            else:
                kept.append(item)  # unacked: back on the queue when the consumer stops

        shown = [0]
        try:
            dlx = _dead_letter_exchange(broker_url, queue) if ack else None
            with open_transport(broker_url) as transport:
                consumer: Any = (
                    _Fetcher(transport, queue) if limit else transport.consume(queue, prefetch=window)
                )
                if not as_json:
                    click.echo(f"consuming from {queue!r}; Ctrl-C to stop")
                total, rejected = _watch(transport, consumer, handle, registry, event_type, limit, timeout)
        except RoutingError as exc:
            raise fail(exc) from exc
        summary = f"{total} message(s), {rejected} rejected" + ("" if ack else ", none acked")
        click.echo(summary, err=as_json)
        if rejected and ack:
            parts = []
            if dead_lettered[0]:
                parts.append(f"{dead_lettered[0]} dead-lettered to exchange {dlx!r}")
            if kept:
                parts.append(f"{len(kept)} left on the queue (it has no dead-letter exchange)")
            raise click.ClickException(f"{rejected} message(s) not accepted: " + ", ".join(parts))

    @group.command()
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
        type=click.Choice(["direct", "fanout", "topic", "headers"]),
        help="The exchange's type, when the management API cannot tell.",
    )
    @click.option(  # the spelling before --exchange-type
        "--type", "old_kind", type=click.Choice(["direct", "fanout", "topic", "headers"]), hidden=True
    )
    @_limit_option
    @_timeout_option
    @_json_option
    @schemas_option
    @click.option("--url", help=URL_HELP)
    def tail(
        exchange: str,
        key: str | None,
        old_key: str | None,
        headers: tuple[str, ...],
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
        kind = kind or old_kind
        if key is not None and headers:
            raise click.UsageError("give --routing-key or --header, not both")
        if exchange == "":
            raise click.ClickException("the default exchange cannot be bound; consume from the queue instead")
        broker_url = announce(url, err=as_json)
        registry = load_registry(schemas, allow_unknown=True)
        rule = "headers" if headers else "key" if key is not None else "none"
        queue_name = f"routing.tail.{uuid.uuid4().hex[:12]}"

        def handle(item: Delivery, result: Envelope | Rejection) -> None:
            click.echo(_render(item, result, as_json, shown[0] + 1))
            shown[0] += 1
            transport.ack(item)

        shown = [0]
        try:
            with open_transport(broker_url) as transport:
                exchanges = _tail_exchange(transport, broker_url, exchange, kind, rule)
                target = next((x for x in exchanges if x.name == exchange), None)
                binding = _tail_binding(target, exchange, queue_name, key, parse_headers(headers), match)
                queue = Queue(queue_name, durable=False, exclusive=True, auto_delete=True)
                entities: list[Any] = [queue, binding, *exchanges]
                try:
                    report = transport.declare(Topology.of(entities))
                except DeclareConflicts as exc:
                    raise click.ClickException(
                        f"{exc.conflicts[0]}; pass --exchange-type with the exchange's type"
                    ) from exc
                if (
                    target is not None
                    and not is_memory(broker_url)
                    and f"exchange {exchange!r}" in report.created
                ):
                    transport.delete_exchange(exchange)  # we guessed it into existence: undo
                    raise click.ClickException(
                        f"no exchange {exchange!r} on the broker; check the name and vhost"
                    )
                consumer = transport.consume(queue_name, prefetch=100)
                if not as_json:
                    click.echo(f"watching {binding.describe()}; Ctrl-C to stop")
                total, _ = _watch(transport, consumer, handle, registry, None, limit, timeout)
        except RoutingError as exc:
            raise fail(exc) from exc
        click.echo(f"{total} message(s)", err=as_json)
