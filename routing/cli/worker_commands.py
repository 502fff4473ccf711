"""`routing worker` runs an App's handlers on a queue; `routing dlq` reads and replays dead letters."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import asdict

import click

from routing.cli._logging import configure_logging
from routing.cli._shared import print_report, rabbit_url, rabbitmq_url_option
from routing.errors import DeclareConflicts
from routing.loading import load_instance
from routing.transport import open_transport
from routing.urls import ENV_VAR, describe
from routing.worker import App, Worker
from routing.worker.async_runner import AsyncWorker
from routing.worker.dead_letter_queue import peek_counted, replay
from routing.worker.failures import DeadLetterRecord
from routing.worker.queues import declare_work_queues
from routing.worker.supervisor import supervise

__all__ = ["dlq", "dlq_replay", "dlq_show", "load_app", "register", "worker"]


def load_app(ref: str) -> App:
    """The App `module:attribute` names, or that a zero-argument function there returns."""
    return load_instance(ref, App, "routing.worker.App")


def _print_letter(number: int, letter: DeadLetterRecord) -> None:
    where = f"exchange {letter.exchange!r} key {letter.routing_key!r}"
    click.echo(
        f"{number}. id {letter.id}  type {letter.type or '-'}  attempts {letter.attempts}  from {where}"
    )
    click.echo(f"   {letter.reason}")
    if letter.first_failure:
        click.echo(
            f"   failed first {letter.first_failure}, last {letter.last_failure}; queue {letter.queue!r}"
        )
    if letter.traceback:
        click.echo(f"   at {letter.traceback}")


@click.command()
@click.argument("app_ref", metavar="MODULE:APP")
@click.option("--queue", required=True, help="The work queue to consume.")
@click.option(
    "--prefetch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Unacked messages per worker. 1 is fair dispatch for slow jobs; raise it for many short ones.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes to run (each with its own connection); restarted if one dies. For an app "
    "with `async def` handlers: handlers in flight at once in one process, on one connection "
    "(prefetch raised to at least N).",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to finish the message in progress after SIGTERM/SIGINT.",
)
@click.option("--no-declare", is_flag=True, help="Do not declare the work, retry and dead-letter queues.")
# A child of --concurrency: its parent declared the queues (so QUEUE dead-letters to QUEUE.dead).
@click.option("--declared-by-parent", "declared_by_parent", is_flag=True, hidden=True)
@click.option(
    "--type",
    "event_type",
    metavar="EVENT_TYPE",
    help="The event type of plain JSON bodies on QUEUE (they name none), e.g. task.resize_image.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve OpenTelemetry metrics for Prometheus on http://ADDRESS:PORT/metrics (0: any free port), "
    "and trace with the global tracer provider; needs the `otel` extra.",
)
@click.option(
    "--metrics-address",
    default="0.0.0.0",
    show_default=True,
    metavar="ADDRESS",
    help="The address --metrics-port listens on.",
)
@rabbitmq_url_option
@click.pass_context
def worker(
    ctx: click.Context,
    app_ref: str,
    queue: str,
    prefetch: int,
    concurrency: int,
    shutdown_timeout: float,
    no_declare: bool,
    declared_by_parent: bool,
    event_type: str | None,
    metrics_port: int | None,
    metrics_address: str,
    url: str | None,
) -> None:
    """Run the handlers of MODULE:APP (a routing.worker.App) on QUEUE until SIGTERM/SIGINT.

    A message is acked once its handler returns. A handler that raises gets the
    message again after its retry policy's delay (through QUEUE.retry.<delay>ms);
    after the last attempt, and at once for invalid messages, it goes to QUEUE.dead
    with the reason (`routing dlq show QUEUE.dead`). The first signal finishes the
    message in progress; a second stops at once (unacked messages are requeued).

    An app with any `async def` handler runs on an event loop in this process
    (routing.aio.AsyncWorker): --concurrency N is then N handlers in flight, plain
    handlers each in a thread, every message acked on its own once its handler or
    copy is done.

    --metrics-port serves the worker's OpenTelemetry metrics (messages consumed
    and sent, retried and dead-lettered, durations) for Prometheus and traces it
    (routing.otel); with --concurrency N it needs an app of `async def` handlers,
    which runs in one process.

    \b
    Example:
      routing worker shop.jobs:app --queue resize --concurrency 3 --url amqp://guest:guest@localhost/
    """
    root = ctx.find_root()
    if root.get_parameter_source("log_level") is click.core.ParameterSource.DEFAULT:
        # A worker says what it did with each message: INFO unless asked otherwise.
        configure_logging("INFO", root.params["log_json"])
    try:
        broker_url = rabbit_url(url, "worker")
        app = load_app(app_ref)
        if event_type is not None:
            app.event_type = event_type
        if app.has_async_handlers:
            prefetch = max(prefetch, concurrency)
            running = f"up to {concurrency} handler(s) in flight"
        else:
            running = f"{concurrency} worker(s)"
        click.echo(f"{describe(broker_url)}; {running} on {queue!r}, prefetch {prefetch}")
        if not no_declare:
            with open_transport(broker_url) as transport:
                print_report(declare_work_queues(transport, app.queues(queue)))
        if metrics_port is not None:  # after the declare: the queues are there once it says so
            _serve_metrics(
                metrics_port, metrics_address, one_process=app.has_async_handlers or concurrency == 1
            )
    except DeclareConflicts as exc:
        for line in exc.conflicts:
            click.echo(f"conflict: {line}", err=True)
        raise click.ClickException(
            f"{queue!r}: the broker has these queues with other settings; nothing was declared"
        ) from exc
    dead_letters_to_queue = not no_declare or declared_by_parent
    if app.has_async_handlers:
        stats = asyncio.run(
            AsyncWorker.serve(
                app,
                broker_url,
                queue=queue,
                concurrency=concurrency,
                prefetch=prefetch,
                shutdown_timeout=shutdown_timeout,
                declare=False,
                dead_letters_to_queue=dead_letters_to_queue,
            )
        )
    elif concurrency > 1:
        # Each child is `routing worker ... --concurrency 1`; the URL (and its password)
        # goes by environment, never on a command line `ps` shows.
        params = root.params
        level = params["log_level"]
        if root.get_parameter_source("log_level") is click.core.ParameterSource.DEFAULT:
            level = "INFO"
        command = [sys.executable, "-m", "routing", "--log-level", level]
        command += ["--log-json"] if params["log_json"] else []
        command += ["worker", app_ref, "--queue", queue, "--prefetch", str(prefetch)]
        command += ["--shutdown-timeout", str(shutdown_timeout), "--no-declare"]
        command += [] if no_declare and not declared_by_parent else ["--declared-by-parent"]
        command += ["--type", event_type] if event_type is not None else []
        ctx.exit(supervise(command, concurrency, env={**os.environ, ENV_VAR: broker_url}))
    else:
        stats = Worker.serve(
            app,
            broker_url,
            queue=queue,
            prefetch=prefetch,
            shutdown_timeout=shutdown_timeout,
            declare=False,
            dead_letters_to_queue=dead_letters_to_queue,
        )
    click.echo(
        f"stopped{' at once' if stats.interrupted else ''}: {stats.processed} processed, "
        f"{stats.retried} retried, {stats.dead_lettered} dead-lettered"
    )


def _serve_metrics(port: int, address: str, *, one_process: bool) -> None:
    """`--metrics-port`: instrument this process, its metrics served for Prometheus."""
    if not one_process:
        raise click.ClickException(
            "--metrics-port serves one process's metrics: run one worker per process (--concurrency 1) "
            "and scrape each, or give the app `async def` handlers"
        )
    try:
        import routing.otel
    except ImportError as exc:
        raise click.ClickException(
            f"--metrics-port needs the otel extra ({exc}): pip install 'routing[otel]'"
        ) from None
    try:
        server = routing.otel.serve_metrics(port, address=address)
    except OSError as exc:
        raise click.ClickException(f"--metrics-port {port}: cannot listen on {address}: {exc}") from None
    routing.otel.instrument(meter_provider=server.meter_provider)
    click.echo(f"metrics for Prometheus on http://{address}:{server.port}/metrics")


@click.group()
def dlq() -> None:
    """Read and replay dead letters (QUEUE is the dead-letter queue, e.g. resize.dead)."""


@dlq.command("show")
@click.argument("queue")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many (oldest first).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
@rabbitmq_url_option
def dlq_show(queue: str, limit: int | None, as_json: bool, url: str | None) -> None:
    """List the dead letters in QUEUE with why each died; the queue keeps them.

    \b
    Example:
      routing dlq show resize.dead --url amqp://guest:guest@localhost/
    """
    broker_url = rabbit_url(url, "dlq show")
    if not as_json:  # JSON output is one object a line, nothing else
        click.echo(describe(broker_url))
    with open_transport(broker_url) as transport:
        letters, total = peek_counted(transport, queue, limit=limit)
    if as_json:
        for letter in letters:
            click.echo(json.dumps(asdict(letter), ensure_ascii=False))
        return
    shown = f" (the first {len(letters)} of {total})" if len(letters) < total else ""
    click.echo(f"{total} dead letter(s) in {queue!r}{shown}")
    for number, letter in enumerate(letters, 1):
        _print_letter(number, letter)


@dlq.command("replay")
@click.argument("queue")
@click.option("--id", "ids", multiple=True, help="Replay the dead letter with this id (repeatable).")
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter in QUEUE.")
@rabbitmq_url_option
def dlq_replay(queue: str, ids: tuple[str, ...], replay_all: bool, url: str | None) -> None:
    """Publish dead letters from QUEUE again to the exchange and routing key they were
    first published with, as new messages (attempt count reset). Each leaves QUEUE only
    once the broker confirmed its copy. Exits 1 if any was not replayed.

    \b
    Example:
      routing dlq replay resize.dead --id 2ee59ac7-7359-4283-a741-64879a06e573
    """
    if bool(ids) == replay_all:
        raise click.UsageError("give --id ID (one or more) or --all")
    broker_url = rabbit_url(url, "dlq replay")
    click.echo(describe(broker_url))
    with open_transport(broker_url) as transport:
        result = replay(transport, queue, ids=None if replay_all else set(ids))
    for letter in result.replayed:
        click.echo(f"replayed {letter.id} to exchange {letter.exchange!r} key {letter.routing_key!r}")
    for letter, why in result.failed:
        click.echo(f"not replayed {letter.id}: {why}", err=True)
    for missing in result.missing:
        click.echo(f"not found: {missing}", err=True)
    click.echo(
        f"{len(result.replayed)} replayed, {len(result.failed)} failed, {len(result.missing)} not found"
    )
    if result.failed or result.missing:
        raise click.exceptions.Exit(1)


def register(group: click.Group) -> None:
    """Add this module's commands to `group`."""
    group.add_command(worker)
    group.add_command(dlq)
