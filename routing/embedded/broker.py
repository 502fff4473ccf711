"""The embedded broker's state: exchanges, queues, bindings, and the routing between them.

Routing goes through `routing.pipeline.walk()`, the same pure pipeline `routing explain`
uses; this module only keeps the state it walks. One lock guards everything; consumers wait
on Conditions of that lock. Message TTL needs no timer thread: queues put their head's
deadline in a heap, and every operation, and every consumer waiting for a delivery, expires
what is due (a waiting consumer sleeps no later than the next deadline).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace

from routing._frozen import FrozenDict
from routing.embedded.channel import ChannelState, Subscription, settle
from routing.embedded.connections import Connections
from routing.embedded.dead_lettering import REJECTED, dead_letter_properties, dropped_as_cycle
from routing.embedded.equivalence import VHOST, check_exchange, check_queue, locked, not_found
from routing.embedded.queue import Message, MessageQueue
from routing.embedded.routes import RouteCache
from routing.embedded.validate import check_channel
from routing.errors import ChannelClosed, PreconditionFailed
from routing.indexes import RoutingIndex
from routing.matching import routing_keys
from routing.pipeline import walk
from routing.profiles import Profile, profile
from routing.properties import Properties, check_message
from routing.topology import (
    DEFAULT_EXCHANGE,
    IMPLICIT_EXCHANGES,
    Binding,
    DestinationType,
    Exchange,
    Queue,
)

__all__ = ["EmbeddedBroker"]


class EmbeddedBroker(RoutingIndex[MessageQueue]):
    """One in-process broker: what several connections to one RabbitMQ vhost would share."""

    user = "guest"
    """The user every connection to it is authenticated as (for `user_id` checks)."""

    def __init__(
        self,
        name: str = "",
        *,
        rabbitmq: str | Profile | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        # Seconds, for TTLs and x-expires; a test passes a clock it moves by hand.
        self.clock = clock
        # The release it behaves as (routing.profiles): headers routing reads it through walk().
        self.profile: Profile = profile(rabbitmq)
        self.lock = threading.Lock()
        # Exchanges, queues and binding tables: what walk() reads (indexes.RoutingIndex).
        super().__init__(dict(IMPLICIT_EXCHANGES), {})
        # Bindings by destination, to drop them when the destination goes.
        self._inbound: dict[tuple[DestinationType, str], dict[Binding, None]] = {}
        self._bindings: set[Binding] = set()
        self._deadlines: list[tuple[float, int, MessageQueue]] = []
        self._tiebreak = itertools.count()
        self._routes = RouteCache(self)
        self._dying: deque[tuple[MessageQueue, Message, str]] = deque()  # dead letters to send
        self.waiting: set[Subscription] = set()  # consumers blocked in get(), to wake on new deadlines
        self.connections = Connections(self.lock)  # the open transports, by name

    # -------------------------------------------------------------- entities

    def declare_exchange(self, exchange: Exchange) -> bool:
        """Create it, or check it equals what exists (406 if not). True when created."""
        current = self._exchanges.get(exchange.name)
        if current is not None:
            check_exchange(current, exchange)
            return False
        self._exchanges[exchange.name] = exchange
        self._changed()
        return True

    def declare_queue(self, queue: Queue, owner: object) -> bool:
        """Create it (exclusive queues belong to `owner`), or check it is equivalent."""
        current = self._queues.get(queue.name)
        if current is not None:
            if current.owner not in (None, owner) or queue.exclusive != (current.owner is not None):
                raise locked(queue.name)
            check_queue(current.definition, queue)
            current.touch()
            return False
        q = self._queues[queue.name] = MessageQueue(
            queue,
            owner if queue.exclusive else None,
            self._dead_letter,
            self._schedule,
            self.profile,
            self.clock,
        )
        q.touch()
        self._changed()
        return True

    def queue(self, name: str, owner: object) -> MessageQueue:
        """The queue for an operation by `owner`: 404 when missing, 405 when someone else's."""
        q = self._queues.get(name)
        if q is None:
            raise not_found("queue", name)
        if q.owner is not None and q.owner is not owner:
            raise locked(name)
        return q

    def bind(self, binding: Binding, owner: object) -> bool:
        """Add a binding; True when it is new."""
        if binding.source not in self._exchanges:
            raise not_found("exchange", binding.source)
        if binding.destination_type is DestinationType.QUEUE:
            self.queue(binding.destination, owner)
        elif binding.destination not in self._exchanges:
            raise not_found("exchange", binding.destination)
        if binding in self._bindings:
            return False
        self._bindings.add(binding)
        self.table(binding.source).add(binding)
        self._inbound.setdefault((binding.destination_type, binding.destination), {})[binding] = None
        self._changed()
        return True

    def has_binding(self, binding: Binding) -> bool:
        return binding in self._bindings

    def unbind(self, binding: Binding, owner: object) -> None:
        if binding.destination_type is DestinationType.QUEUE and binding.destination in self._queues:
            self.queue(binding.destination, owner)
        self._drop_bindings([binding])

    def _drop_bindings(self, bindings: Iterable[Binding]) -> None:
        sources = set()
        for b in list(bindings):
            if b not in self._bindings:
                continue
            self._bindings.discard(b)
            self._tables[b.source].remove(b)
            self._changed()
            self._inbound.get((b.destination_type, b.destination), {}).pop(b, None)
            sources.add(b.source)
        for name in sources:  # an auto-delete exchange goes with its last binding
            x = self._exchanges.get(name)
            if x is not None and x.auto_delete and not len(self._tables[name]):
                self.delete_exchange(name)

    def delete_queue(self, name: str, owner: object) -> int:
        """Delete a queue (missing is fine); its consumers are cancelled. Returns ready count."""
        if name not in self._queues:
            return 0
        q = self.queue(name, owner)
        del self._queues[name]
        self._changed()
        q.delete()
        self._drop_bindings(self._inbound.pop((DestinationType.QUEUE, name), {}))
        return q.purge()

    def delete_exchange(self, name: str) -> None:
        if name == DEFAULT_EXCHANGE or name.startswith("amq."):
            raise ChannelClosed(403, f"ACCESS_REFUSED - operation not permitted on exchange '{name}'")
        if self._exchanges.pop(name, None) is None:
            return
        self._changed()
        table = self._tables.pop(name, None)
        if table is not None:
            for b in table:
                self._bindings.discard(b)
                self._inbound.get((b.destination_type, b.destination), {}).pop(b, None)
        self._drop_bindings(self._inbound.pop((DestinationType.EXCHANGE, name), {}))

    def queues_owned_by(self, owner: object) -> list[str]:
        return [name for name, q in self._queues.items() if q.owner is owner]

    def message_count(self, name: str) -> int:
        self.expire_due()
        q = self._queues.get(name)
        return len(q.ready) if q is not None else 0

    # ------------------------------------------------------------- messages

    def _changed(self) -> None:
        self._routes.clear()

    def publish(
        self, exchange: str, routing_key: str, body: bytes, properties: Properties
    ) -> tuple[bool, bool]:
        """Route and enqueue. Returns (routed, accepted): accepted is False when a queue
        refused the message (`reject-publish`), which RabbitMQ answers with a nack."""
        check_message(exchange, routing_key, properties)  # what the RabbitMQ transport refuses too
        if len(body) > self.profile.max_message_size:  # rabbit_channel checks it first
            raise PreconditionFailed(
                406,
                f"PRECONDITION_FAILED - message size {len(body)} is larger than configured max size "
                f"{self.profile.max_message_size}",
            )
        x = self._exchanges.get(exchange)
        if x is None:
            raise not_found("exchange", exchange)
        if x.internal:
            raise ChannelClosed(
                403, f"ACCESS_REFUSED - cannot publish to internal exchange '{exchange}' in vhost '{VHOST}'"
            )
        expiration = check_channel(properties, self.user)
        if self._deadlines:
            self.expire_due()
        headers = properties.headers
        keys = None
        if headers:
            if "CC" in headers or "BCC" in headers:
                keys = routing_keys(routing_key, headers)
            if "BCC" in headers or type(headers) is not FrozenDict:
                # Routed with BCC, delivered without it; frozen once, as the RabbitMQ
                # transport hands out headers (tables as FrozenDict, arrays as tuples).
                kept = FrozenDict({k: v for k, v in headers.items() if k != "BCC"})
                properties = replace(properties, headers=kept)
        names = self._routes.get(exchange, routing_key) if keys is None else None
        if names is None:
            # RabbitMQ hands a message to its queues in order of their names (3.10: reverse
            # order), seen in the order their dead letters come out.
            names = self._in_order(walk(self, exchange, routing_key, headers, keys=keys))
            if keys is None:
                self._routes.put(exchange, routing_key, names)
        if not names:
            return False, True
        accepted = True
        now = None
        queues = self._queues
        for name in names:
            q = queues.get(name)
            if q is None:  # deleted while an earlier copy was dead-lettered
                continue
            ttl = q.ttl if expiration is None else expiration if q.ttl is None else min(q.ttl, expiration)
            expires_at = None
            if ttl is not None:
                now = now or self.clock()
                expires_at = now + ttl / 1000
            msg = Message(body, properties, exchange, routing_key, keys, expires_at)
            if not q.publish(msg):
                accepted = False
        if self._dying:
            self.send_dead_letters()
        return True, accepted

    def _in_order(self, names: Iterable[str]) -> list[str]:
        return sorted(names, reverse=self.profile.queues_in_reverse_name_order)

    def _dead_letter(self, q: MessageQueue, msg: Message, reason: str) -> None:
        """Note a message that died in `q`. RabbitMQ's queues dead-letter by publishing anew,
        after the operation that killed the message has reached every queue it touches: a
        publish that pushes m1 out of q1 into q2 has put its own copy in q2 first."""
        self._dying.append((q, msg, reason))

    def send_dead_letters(self) -> None:
        """Send what died, in the order it died (and what dies of that, after it)."""
        dying = self._dying
        while dying:
            self._send_dead_letter(*dying.popleft())

    def _send_dead_letter(self, q: MessageQueue, msg: Message, reason: str) -> None:
        """Send a message that died in `q` to its dead-letter exchange, as RabbitMQ does."""
        dlx = q.definition.dead_letter_exchange
        if dlx is None or dlx not in self._exchanges:
            return  # dropped, as RabbitMQ drops it
        dlrk = q.definition.dead_letter_routing_key
        props, deaths = dead_letter_properties(
            msg.properties,
            msg.deaths,
            reason=reason,
            queue=q.name,
            exchange=msg.exchange,
            routing_key=msg.routing_key,
            dead_letter_routing_key=dlrk,
            profile=self.profile,
        )
        headers = props.headers
        keys = [dlrk] if dlrk is not None else (msg.routing_keys or [msg.routing_key])
        names: Iterable[str] = self._in_order(walk(self, dlx, keys[0], headers, keys=keys))
        # a loop with no rejection in it would never end: RabbitMQ drops the message
        names = [n for n in names if not dropped_as_cycle(n, reason, headers["x-death"])]
        count = 0
        if q.quorum and self.profile.dead_letters_keep_delivery_count:
            count = msg.delivery_count + (reason == REJECTED)  # a reject counts one more
        now = None
        for name in names:
            target = self._queues[name]
            expires_at = None
            if target.ttl is not None:
                now = now or self.clock()
                expires_at = now + target.ttl / 1000
            copy = Message(msg.body, props, dlx, keys[0], keys if len(keys) > 1 else None, expires_at)
            copy.deaths = deaths
            if count and target.quorum:
                copy.delivery_count = count
                copy.redelivered = True
            target.publish(copy, dead_letter=True)

    # ------------------------------------------------------------ consumers

    def subscribe(self, queue: MessageQueue, channel: ChannelState, prefetch: int) -> Subscription:
        sub = Subscription(queue, channel, prefetch, self.lock)
        queue.add_consumer(sub)
        queue.touch()
        queue.dispatch()
        self.send_dead_letters()
        return sub

    def cancel(self, sub: Subscription) -> None:
        """Stop a consumer and close its channel, as the RabbitMQ transport does: everything
        it had unacked goes back to the queue, and an auto-delete queue goes with its last
        consumer."""
        sub.buffer.clear()
        stopping = not sub.cancelled
        sub.cancelled = True
        q = sub.queue
        if stopping:
            q.remove_consumer(sub)
        if not sub.channel.closed:
            self.close_channels([sub.channel])
        if stopping and not q.deleted:
            if q.definition.auto_delete and q.had_consumers and not q.consumers:
                self.delete_queue(q.name, q.owner)
            else:
                q.touch()
        sub.cond.notify_all()

    def settle(self, channel: ChannelState, tag: int, multiple: bool, action: str) -> None:
        """`ack`, `requeue` or `reject` the deliveries a tag covers on a channel."""
        entries = channel.take(tag, multiple)
        if action == "ack":
            settle(entries, requeue=None)
        else:
            settle(entries, requeue=action == "requeue")
        self.send_dead_letters()

    def close_channels(self, channels: Iterable[ChannelState]) -> None:
        """A connection went away: everything its channels had unacked goes back."""
        for channel in channels:
            channel.closed = True
            settle(channel.take_all(), requeue=True, returned=True)
        self.send_dead_letters()

    # --------------------------------------------------------------- expiry

    def _schedule(self, q: MessageQueue, deadline: float) -> None:
        heap = self._deadlines
        earliest = not heap or deadline < heap[0][0]
        heapq.heappush(heap, (deadline, next(self._tiebreak), q))
        if earliest:  # consumers asleep until a later deadline must look again
            for sub in self.waiting:
                sub.cond.notify()

    def next_deadline(self) -> float | None:
        return self._deadlines[0][0] if self._deadlines else None

    def expire_due(self) -> None:
        """Dead-letter every message whose TTL has run out at the head of its queue, and
        delete queues unused for their `x-expires`."""
        heap = self._deadlines
        if not heap:
            return
        now = self.clock()
        while heap and heap[0][0] <= now:
            deadline, _, q = heapq.heappop(heap)
            if q.deleted:
                continue
            if q.scheduled is not None and q.scheduled <= deadline:
                q.scheduled = None
            if deadline == q.unused_deadline:
                q.unused_deadline = None
                if q.unused_until(now):  # x-expires
                    self.delete_queue(q.name, q.owner)
                    continue
            q.drop_expired(now)
            q.dispatch()  # reschedules the new head
        self.send_dead_letters()
