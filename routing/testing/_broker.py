"""`Broker`: the broker under test as a test sees it. Its transport records what the test's
code publishes; the assertions read the queues back (each message taken and put back in its
place), so they check what the broker did, not what `route()` predicts."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Self

from routing.embedded import forget
from routing.errors import BrokerError, DeclareConflicts, RoutingError
from routing.testing._recording import Published, RecordingTransport
from routing.testing._select import Select, holders, listed, shown, until
from routing.topology import Topology
from routing.transport import DeclareReport, Delivery, Outcome, Transport, open_transport
from routing.worker import App, DeadLetterRecord, WorkerStats
from routing.worker.dead_letter_queue import peek

__all__ = ["WAIT", "Broker"]

WAIT = 3.0  # how long an assertion waits for what comes asynchronously (dead letters, TTLs)


class Broker:
    """A test's view of the broker at `url`: `transport` (a `RecordingTransport` on a
    connection of its own), the queues declared through it, and assertions on them. On
    RabbitMQ, closing deletes the queues, exchanges and bindings this broker created (never
    what was there before, which it only empties again); an embedded broker is forgotten."""

    def __init__(self, url: str) -> None:
        self.url = url  # as given (with its password): the workers of `run_app` connect to it
        self.embedded = url.split(":", 1)[0].lower() == "memory"
        self.transport = RecordingTransport(open_transport(url, name="routing-pytest"))
        self.topology = Topology.of()  # everything declared through this broker so far
        self._created: list[str] = []  # DeclareReport labels: `queue 'x'`, `exchange 'y'`, `binding ...`
        self._found_empty: list[str] = []  # queues there before the test, empty: emptied again after

    @classmethod
    def for_test(cls, url: str | None = None) -> Broker:
        """On `url`, else on an embedded broker of its own (`memory://pytest-<uuid>`)."""
        return cls(cls.url_for_test(url))

    @staticmethod
    def url_for_test(url: str | None = None) -> str:
        """`url`, else a new embedded broker's (`memory://pytest-<uuid>`)."""
        return url or f"memory://pytest-{uuid.uuid4().hex[:12]}"

    @property
    def published(self) -> list[Published]:
        """Every message published through `transport`, in order."""
        return list(self.transport.published)

    @property
    def queues(self) -> tuple[str, ...]:
        """The queues declared through this broker: where the assertions look."""
        return tuple(q.name for q in self.topology.queues)

    # ------------------------------------------------------------------ declaring

    def declare(self, topology: Topology) -> DeclareReport:
        """Declare `topology`; at `close` on RabbitMQ what of it was created is deleted, and
        queues that were there before, empty, are emptied again. A queue that was there
        before with messages in it is refused: the test would see them."""
        known = set(self.queues)
        self.topology = self.topology + topology  # a clash with what it declared before: refused here
        try:
            report = self.transport.declare(topology)
        except DeclareConflicts as exc:  # what it created before the conflict is deleted too
            self._remember(getattr(exc.report, "created", ()))
            raise
        self._remember(report.created)
        there = [
            q.name
            for q in topology.queues
            if q.name not in known and f"queue {q.name!r}" not in report.created
        ]
        held = {name: n for name in there if (n := self.transport.message_count(name))}
        self._found_empty += [name for name in there if name not in held]
        if held:
            counts = ", ".join(f"{name!r} holds {n}" for name, n in held.items())
            raise RoutingError(
                f"queues of the topology were on the broker before this test, with messages ({counts}) "
                f"at {self.transport.url}: the test would see them. Purge them, or give the tests a "
                "vhost of their own (--routing-url amqp://.../tests)"
            )
        return report

    def _remember(self, created: Iterable[str]) -> None:
        self._created += [label for label in created if label not in self._created]

    # ------------------------------------------------------------------ reading

    def messages(self, queue: str) -> list[Delivery]:
        """Every ready message in `queue`, oldest first. The queue keeps them: each is taken
        and put back in its place (on RabbitMQ marked redelivered; on a quorum queue that
        counts as a delivery towards its delivery limit)."""
        taken: list[Delivery] = []
        try:
            while (delivery := self.transport.get(queue)) is not None:
                taken.append(delivery)
        finally:
            for delivery in reversed(taken):
                self.transport.nack(delivery, requeue=True)
        return taken

    def where(self, published: Published) -> list[str]:
        """The declared queues that hold `published` now: by its message id, else by its
        body and routing key."""
        return holders(published, self._snapshot())

    def _snapshot(self) -> dict[str, list[Delivery]]:
        """Every declared queue's messages, each queue looked at once."""
        return {q: self.messages(q) for q in self.queues}

    # ------------------------------------------------------------------ assertions

    def assert_published(
        self,
        exchange: str | None = None,
        routing_key: str | None = None,
        *,
        type: str | None = None,
        id: str | None = None,
        count: int | None = None,
    ) -> list[Published]:
        """The messages published through `transport` with these fields (at least one, or
        exactly `count`), confirmed or not: see each one's `publication.outcome`."""
        __tracebackhide__ = True
        select = Select(exchange, routing_key, type, id)
        found = self._matching(select)
        if (count is None and found) or len(found) == count:
            return found
        wanted = "a message" if count is None else f"{count} message(s)"
        raise AssertionError(
            f"expected {wanted} {select.describe()} published through routing_transport, found "
            f"{len(found)}\n  published:\n{listed(p.describe() for p in self.published)}"
        )

    def assert_routed(
        self,
        to: str | Iterable[str],
        *,
        exchange: str | None = None,
        routing_key: str | None = None,
        type: str | None = None,
        id: str | None = None,
    ) -> None:
        """Each message published with these fields is in exactly the queues `to` now (of
        those declared through this broker)."""
        __tracebackhide__ = True
        expected = sorted({to} if isinstance(to, str) else set(to))
        problems = []
        found = self._some(Select(exchange, routing_key, type, id))
        snapshot = self._snapshot()
        for published in found:
            actual = holders(published, snapshot)
            if actual != expected:
                problems.append(
                    f"{published.describe()} was routed to other queues than expected\n"
                    f"  expected: {expected}\n  actual:   {actual}\n"
                    f"  missing:  {sorted(set(expected) - set(actual))}\n"
                    f"  extra:    {sorted(set(actual) - set(expected))}"
                )
        if problems:
            raise AssertionError("\n".join(problems))

    def assert_unrouted(
        self,
        *,
        exchange: str | None = None,
        routing_key: str | None = None,
        type: str | None = None,
        id: str | None = None,
    ) -> None:
        """Each message published with these fields reached no declared queue (it was
        dropped, or returned when published with `mandatory`)."""
        __tracebackhide__ = True
        problems = []
        found = self._some(Select(exchange, routing_key, type, id))
        snapshot = self._snapshot()
        for published in found:
            if published.publication.outcome is Outcome.RETURNED:
                continue
            if queues := holders(published, snapshot):
                problems.append(f"{published.describe()} was routed, to {queues}; expected it unrouted")
        if problems:
            raise AssertionError("\n".join(problems))

    def assert_queue(
        self,
        queue: str,
        *,
        types: Iterable[str] | None = None,
        count: int | None = None,
        timeout: float = WAIT,
    ) -> list[Delivery]:
        """`queue` holds messages of these event `types`, in this order (a message without
        a type counts as its body), or `count` messages; waits up to `timeout` seconds for
        it. Returns the messages (still in the queue)."""
        __tracebackhide__ = True
        wanted = None if types is None else list(types)

        def check() -> list[Delivery] | None:
            messages = self.messages(queue)
            kinds = [m.properties.type or repr(m.body[:60]) for m in messages]
            ok = (wanted is None or kinds == wanted) and (count is None or len(messages) == count)
            return messages if ok else None

        found = until(check, timeout)
        if found is not None:
            return found
        messages = self.messages(queue)
        expected = f"{wanted}" if wanted is not None else f"{count} message(s)"
        actual = [m.properties.type or repr(m.body[:60]) for m in messages]
        raise AssertionError(
            f"queue {queue!r} does not hold what was expected (waited {timeout:g} s)\n"
            f"  expected: {expected}\n  actual:   {actual if wanted is not None else len(actual)}\n"
            f"  in {queue!r}:\n{listed(map(shown, messages))}"
        )

    def assert_dead_lettered(
        self,
        queue: str,
        *,
        reason: str | None = None,
        type: str | None = None,
        id: str | None = None,
        count: int | None = None,
        timeout: float = WAIT,
    ) -> list[DeadLetterRecord]:
        """Dead letters in `queue` (at least one, or exactly `count`) with this event `type`,
        `id`, and a `reason` containing the text given: the worker's (`ValueError: cannot
        decode x.jpg`) or RabbitMQ's (`rejected`, `expired`, `maxlen`, `delivery_limit`).
        Waits up to `timeout` seconds: RabbitMQ dead-letters asynchronously."""
        __tracebackhide__ = True

        def matching() -> list[DeadLetterRecord]:
            return [
                r
                for r in peek(self.transport, queue)
                if (type is None or r.type == type)
                and (id is None or r.id == id)
                and (reason is None or reason in r.reason)
            ]

        def check() -> list[DeadLetterRecord] | None:
            found = matching()
            return found if (count is None and found) or len(found) == count else None

        found = until(check, timeout)
        if found is not None:
            return found
        wanted = "a dead letter" if count is None else f"{count} dead letter(s)"
        fields = [f"{k} {v!r}" for k, v in (("type", type), ("id", id)) if v is not None]
        if reason is not None:
            fields.append(f"a reason containing {reason!r}")
        present = peek(self.transport, queue)
        raise AssertionError(
            f"expected {wanted} in {queue!r}{' with ' + ', '.join(fields) if fields else ''}, found "
            f"{len(matching())} within {timeout:g} s\n  in {queue!r}:\n"
            + listed(
                f"{r.type or '(no type)'} (id {r.id}): {r.reason!r}, attempts {r.attempts}" for r in present
            )
        )

    # ------------------------------------------------------------------ workers

    def run_app(self, app: App, queue: str, *, timeout: float = 30.0) -> WorkerStats:
        """Run `app` on `queue` (its work, retry and dead-letter queues declared first) on a
        connection of its own until nothing is left to do: the work queue and its retry
        queues empty. An app with `async def` handlers runs on an event loop of its own
        (from a coroutine, `await run_app_async(...)`). Returns the worker's stats."""
        __tracebackhide__ = True
        from routing.testing._run import run_blocking, run_on_loop

        self.declare(app.topology(queue))
        if app.has_async_handlers:
            return run_on_loop(app, self.url, queue, timeout)
        return run_blocking(app, self.url, queue, timeout)

    async def run_app_async(self, app: App, queue: str, *, timeout: float = 30.0) -> WorkerStats:
        """`run_app` for a test that runs on an event loop itself."""
        __tracebackhide__ = True
        from routing.testing._run import run_async

        self.declare(app.topology(queue))  # a few blocking calls, as AsyncWorker.serve's declare
        return await run_async(app, self.url, queue, timeout)

    # ------------------------------------------------------------------ the end

    def close(self) -> None:
        """Delete what this broker created on RabbitMQ (bindings first, then queues and
        exchanges) and empty the queues it found empty, close the transport; an embedded
        broker is forgotten."""
        try:
            if not self.embedded:
                self._delete_created()
        finally:
            with contextlib.suppress(RoutingError):
                self.transport.close()
            if self.embedded:
                forget(self.url)

    def _delete_created(self) -> None:
        if not (self._created or self._found_empty):
            return
        with contextlib.ExitStack() as stack:
            t: Transport = self.transport
            if t.closed:  # the test closed it, or the connection is gone: clean up on another
                t = stack.enter_context(open_transport(self.url, name="routing-pytest-cleanup"))
            self._delete_on(t)

    def _delete_on(self, t: Transport) -> None:
        for name in self._found_empty:
            with contextlib.suppress(BrokerError):
                t.purge(name)
        for binding in self.topology.bindings:
            if f"binding {binding.describe()}" in self._created:
                with contextlib.suppress(BrokerError):
                    t.unbind(binding)
        for q in self.topology.queues:
            if f"queue {q.name!r}" in self._created:
                with contextlib.suppress(BrokerError):  # gone already (exclusive, auto-delete)
                    t.delete_queue(q.name)
        for x in self.topology.exchanges:
            if f"exchange {x.name!r}" in self._created:
                with contextlib.suppress(BrokerError):
                    t.delete_exchange(x.name)

    def _matching(self, select: Select) -> list[Published]:
        self.transport.flush()  # the broker's answers first: a return comes before its confirm
        return [p for p in self.transport.published if select(p)]

    def _some(self, select: Select) -> list[Published]:
        __tracebackhide__ = True
        found = self._matching(select)
        if not found:
            raise AssertionError(
                f"no message {select.describe()} was published through routing_transport\n"
                f"  published:\n{listed(p.describe() for p in self.published)}"
            )
        return found

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
