"""The asyncio RabbitMQ transport against the real broker: confirms, returns, nacks, the window,
consuming, declare reports, refusals, reconnects, resend, failover and connect errors.

Each test runs its own event loop (`asyncio.run`), so no pytest plugin is needed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from broker_under_test import admin

from routing.errors import (
    BrokerError,
    ChannelClosed,
    ConnectionFailed,
    ConnectionLost,
    DeclareConflicts,
    Nacked,
    Unroutable,
)
from routing.topology import Exchange, Overflow, Queue, Topology
from routing.transport.aio.base import AsyncConsumer, AsyncPublication, AsyncTransport
from routing.transport.base import Outcome, Properties
from routing.transport.rabbitmq import AsyncRabbitTransport, RabbitTransport
from routing.transport.rabbitmq._url import parse_url

pytestmark = pytest.mark.broker
T = TypeVar("T")


def run(make: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(make(), timeout)

    return asyncio.run(bounded())


def _queue(name: str, **options: Any) -> Queue:
    return Queue(name, expires=60_000, **options)  # gone a minute after a test that died


def _api(management_url: str, path: str, method: str = "GET") -> Any:
    parts = urllib.parse.urlsplit(management_url)
    token = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    request = urllib.request.Request(
        f"{parts.scheme}://{parts.hostname}:{parts.port}/api/{path}",
        method=method,
        headers={"Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = answer.read()
    return json.loads(body) if body else None


def _my_connection(management_url: str, connection_name: str, timeout: float = 30) -> str:
    """The management API's name of the one connection whose client named itself
    `connection_name`: ours. The API lists a new connection some seconds after it opens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _api(management_url, "connections?columns=name,client_properties")
        mine = [
            r["name"]
            for r in rows
            if r.get("client_properties", {}).get("connection_name") == connection_name
        ]
        if mine:
            assert len(mine) == 1, mine
            return str(mine[0])
        time.sleep(0.5)
    raise AssertionError(f"no connection named {connection_name!r} showed in the management API")


def _close_connection(management_url: str, name: str) -> None:
    """Close one connection (ours: found by `_my_connection`), as an operator would."""
    _api(management_url, "connections/" + urllib.parse.quote(name, safe=""), "DELETE")


def _close_my_connection(management_url: str, connection_name: str) -> None:
    _close_connection(management_url, _my_connection(management_url, connection_name))


def test_implements_the_async_transport_protocol(amqp_url: str, unique: str) -> None:
    async def main() -> None:
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            assert isinstance(t, AsyncTransport)
            assert "guest:***@" in t.url and ":guest@" not in t.url
            assert t.server_version.count(".") == 2 and not t.closed
            assert isinstance(t.consume(unique), AsyncConsumer)
        assert t.closed
        with pytest.raises(BrokerError, match="closed"):
            await t.publish("", unique, b"x")

    run(main)


def test_publish_confirm_get_ack_round_trip(amqp_url: str, unique: str) -> None:
    async def main() -> None:
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            await t.declare(Topology.of(_queue(unique)))
            props = Properties(content_type="application/json", headers={"n": 1.5, "s": "x"})
            pub = await t.publish("", unique, b'{"a": 1}', props)
            assert isinstance(pub, AsyncPublication) and pub.sequence == 1
            assert await pub is Outcome.CONFIRMED and await pub is Outcome.CONFIRMED
            assert await t.message_count(unique) == 1
            got = await t.get(unique)
            assert got is not None and got.body == b'{"a": 1}' and got.properties == props
            await t.ack(got)
            assert await t.get(unique) is None
            assert await t.flush(timeout=10) == []

    run(main)


def test_pipelined_confirms_with_a_small_window(amqp_url: str, unique: str) -> None:
    async def main() -> None:
        async with await AsyncRabbitTransport.open(amqp_url, window=50) as t:
            await t.declare(Topology.of(_queue(unique)))
            pubs = []
            for i in range(3000):
                pubs.append(await t.publish("", unique, b"%d" % i))
                assert len(t._tracker) <= 50
            assert await t.flush(timeout=30) == []
            assert all(p.outcome is Outcome.CONFIRMED for p in pubs)
            assert [p.sequence for p in pubs[:3]] == [1, 2, 3]
            assert await t.purge(unique) == 3000

    run(main)


def test_publishes_just_before_close_are_still_sent(amqp_url: str, unique: str) -> None:
    async def main() -> int:
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            await t.declare(Topology.of(_queue(unique)))
            pubs = [await t.publish("", unique, b"%d" % i) for i in range(10)]  # no turn of the loop
        assert {p.outcome for p in pubs} <= {Outcome.UNCONFIRMED, Outcome.CONFIRMED}
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            deadline = time.monotonic() + 5
            while (count := await t.message_count(unique)) < 10 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await t.delete_queue(unique)
            return count

    assert run(main) == 10


def test_mandatory_unroutable_is_returned_and_a_full_queue_nacks(amqp_url: str, unique: str) -> None:
    ex = Exchange(f"{unique}-ex", "direct", auto_delete=True)
    q = _queue(f"{unique}-q")
    full = _queue(f"{unique}-full", max_length=1, overflow=Overflow.REJECT_PUBLISH)

    async def main() -> None:
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            await t.declare(Topology.of(ex, q, full, ex.bind(q, "known")))
            routed = await t.publish(ex.name, "known", b"1", mandatory=True)
            lost = await t.publish(ex.name, "nobody", b"2", mandatory=True)
            dropped = await t.publish(ex.name, "nobody", b"3")  # not mandatory: confirmed
            first = await t.publish("", full.name, b"a")
            refused = await t.publish("", full.name, b"b")
            assert await lost is Outcome.RETURNED and await refused is Outcome.NACKED
            assert await routed is await dropped is await first is Outcome.CONFIRMED
            with pytest.raises(Unroutable, match=f"{ex.name}.*'nobody'"):
                lost.raise_for_outcome()
            with pytest.raises(Nacked):
                refused.raise_for_outcome()
            assert await t.flush(timeout=10) == [lost, refused]
            await t.delete_queue(full.name)

    run(main)


def test_publish_to_unknown_exchange_settles_with_404_and_publishing_goes_on(
    amqp_url: str, unique: str
) -> None:
    async def main() -> None:
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            await t.declare(Topology.of(_queue(unique)))
            bad = await t.publish(f"{unique}-missing", "k", b"x")
            assert await bad is Outcome.UNCONFIRMED  # woken by the channel's close, no other call
            with pytest.raises(
                ChannelClosed, match=f"404 NOT_FOUND - no exchange '{unique}-missing'"
            ) as info:
                bad.raise_for_outcome()
            assert info.value.code == 404
            good = await t.publish("", unique, b"y")
            assert await good is Outcome.CONFIRMED
            assert await t.flush(timeout=10) == [bad]

    run(main)


def test_get_from_a_missing_queue_is_a_404(amqp_url: str, unique: str) -> None:
    async def main() -> None:
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            with pytest.raises(ChannelClosed, match="404") as info:
                await t.get(f"{unique}-missing")
            assert info.value.code == 404
            consumer = t.consume(f"{unique}-missing")
            with pytest.raises(ChannelClosed, match="404"):
                await consumer.start()
            await t.declare(Topology.of(_queue(unique)))
            assert await t.get(unique) is None  # the transport goes on

    run(main)


def test_consume_with_prefetch_ack_nack_reject(amqp_url: str, unique: str) -> None:
    async def main() -> None:
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            await t.declare(Topology.of(_queue(unique)))
            for i in range(10):
                await t.publish("", unique, b"%d" % i)
            assert await t.flush(timeout=10) == []
            async with t.consume(unique, prefetch=3) as consumer:
                held = [await consumer.get(timeout=5) for _ in range(3)]
                assert [d.body for d in held if d] == [b"0", b"1", b"2"]
                assert await consumer.get(timeout=0.5) is None  # prefetch 3: no fourth unacked
                a, b, c = held
                assert a and b and c
                await t.ack(a)
                await t.nack(b, requeue=True)
                await t.reject(c, requeue=False)
                bodies = []
                async for delivery in consumer:
                    bodies.append(delivery.body)
                    await t.ack(delivery)
                    if len(bodies) == 8:
                        break
                # b"1" came back (requeued), b"2" is gone (rejected without requeue).
                assert sorted(bodies) == sorted([b"1", *(b"%d" % i for i in range(3, 10))])
            assert consumer.cancelled and await t.message_count(unique) == 0

    run(main)


def test_closing_the_transport_ends_a_waiting_consumer(amqp_url: str, unique: str) -> None:
    async def main() -> None:
        t = await AsyncRabbitTransport.open(amqp_url)
        await t.declare(Topology.of(_queue(unique)))
        consumer = t.consume(unique)
        await consumer.start()

        async def drain() -> list[bytes]:
            return [delivery.body async for delivery in consumer]

        waiting = asyncio.create_task(drain())
        await asyncio.sleep(0.2)  # it waits for a delivery now
        await t.close()
        assert await asyncio.wait_for(waiting, 5) == [] and consumer.cancelled
        with pytest.raises(BrokerError, match="closed"):
            t.consume(unique)

    run(main)


def test_double_ack_is_a_406_and_the_consumer_recovers(amqp_url: str, unique: str) -> None:
    async def main() -> None:
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            await t.declare(Topology.of(_queue(unique)))
            for body in (b"1", b"2"):
                await t.publish("", unique, body)
            await t.flush(timeout=10)
            consumer = t.consume(unique, prefetch=1)
            first = await consumer.get(timeout=5)
            assert first is not None
            await t.ack(first)
            await t.ack(first)  # unknown tag: the broker closes the channel
            with pytest.raises(ChannelClosed, match="406"):
                while await consumer.get(timeout=5) is not None:
                    pass
            again = await consumer.get(timeout=5)
            assert again is not None and again.body == b"2"
            await t.ack(again)
            await consumer.cancel()

    run(main)


def test_declare_reports_conflicts_as_the_blocking_transport_does(amqp_url: str, unique: str) -> None:
    theirs = Topology.of(Exchange(f"{unique}-orders", "direct"), _queue(f"{unique}-billing", message_ttl=5))
    ours = Topology.of(
        Exchange(f"{unique}-orders", "topic"),
        _queue(f"{unique}-billing", message_ttl=30_000),
        _queue(f"{unique}-jobs"),
        Exchange(f"{unique}-orders", "topic").bind(_queue(f"{unique}-billing", message_ttl=30_000), "a.*"),
    )
    with RabbitTransport(amqp_url) as blocking:
        blocking.declare(theirs)
        with pytest.raises(DeclareConflicts) as sync_info:
            blocking.declare(ours)

    async def main() -> DeclareConflicts:
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            with pytest.raises(DeclareConflicts) as info:
                await t.declare(ours)
            assert (await t.declare(Topology.of(_queue(f"{unique}-jobs")))).unchanged == (
                f"queue '{unique}-jobs'",
            )
            for name in (f"{unique}-billing", f"{unique}-jobs"):
                await t.delete_queue(name)
            await t.delete_exchange(f"{unique}-orders")
            return info.value

    async_error = run(main)
    assert async_error.conflicts == sync_info.value.conflicts
    assert len(async_error.conflicts) == 2
    assert async_error.report.skipped == sync_info.value.report.skipped != ()
    # The queue the blocking run created is there for the asyncio one: unchanged, not created.
    assert sync_info.value.report.created == (f"queue '{unique}-jobs'",)
    assert async_error.report.unchanged == (f"queue '{unique}-jobs'",)


def test_a_queue_deleted_under_a_consumer_is_one_clear_error(
    amqp_url: str, unique: str, capfd: pytest.CaptureFixture[str]
) -> None:
    async def main() -> None:
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            await t.declare(Topology.of(_queue(unique)))
            consumer = t.consume(unique, prefetch=10)
            await consumer.start()
            async with await AsyncRabbitTransport.open(amqp_url) as other:
                await other.delete_queue(unique)
            with pytest.raises(BrokerError, match=f"queue '{unique}' was deleted"):
                await consumer.get(timeout=10)
            await consumer.cancel()
            assert await consumer.get(timeout=0.1) is None

    run(main)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ERROR" not in err, err


def test_reconnect_after_the_broker_closes_our_connection(
    amqp_url: str, management_url: str, unique: str
) -> None:
    name = f"{unique}-conn"

    async def main() -> None:
        async with await AsyncRabbitTransport.open(amqp_url, name=name, reconnect_timeout=30) as t:
            await t.declare(Topology.of(_queue(unique)))
            consumer = t.consume(unique, prefetch=10)
            assert await (await t.publish("", unique, b"before")) is Outcome.CONFIRMED
            got = await consumer.get(timeout=5)
            assert got is not None and got.body == b"before"
            await t.ack(got)
            mine = await asyncio.to_thread(_my_connection, management_url, name)
            closer = asyncio.create_task(asyncio.to_thread(_close_connection, management_url, mine))
            pubs: list[AsyncPublication] = []
            while not closer.done():  # a steady stream, with some always in flight
                pubs.append(await t.publish("", unique, b"s%d" % len(pubs)))
            await closer
            # Without resend, what the broker had not confirmed settles UNCONFIRMED, with why.
            outcomes = [await p for p in pubs]
            assert set(outcomes) <= {Outcome.CONFIRMED, Outcome.UNCONFIRMED}
            lost = [p for p in pubs if p.outcome is Outcome.UNCONFIRMED]
            assert lost and all(isinstance(p.error, ConnectionLost) for p in lost)
            assert "guest:***@" in str(lost[0].error) and ":guest@" not in str(lost[0].error)
            # The consumer notices, reconnects, declares again and resumes: every confirmed
            # message comes (some maybe twice: unacked when the connection went).
            received: set[bytes] = set()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                delivery = await consumer.get(timeout=2)
                if delivery is None and t.reconnects:
                    break
                if delivery is not None:
                    received.add(delivery.body)
                    await t.ack(delivery)
            assert t.reconnects == 1
            assert {b"s%d" % i for i, p in enumerate(pubs) if p.outcome is Outcome.CONFIRMED} <= received
            assert await (await t.publish("", unique, b"after")) is Outcome.CONFIRMED
            got = await consumer.get(timeout=10)
            assert got is not None and got.body == b"after"
            await t.ack(got)
            await consumer.cancel()
            await t.delete_queue(unique)

    run(main)


def test_resend_publishes_again_what_was_unconfirmed(amqp_url: str, management_url: str, unique: str) -> None:
    name = f"{unique}-conn"

    async def main() -> None:
        async with await AsyncRabbitTransport.open(
            amqp_url, name=name, resend=True, window=5000, reconnect_timeout=30
        ) as t:
            await t.declare(Topology.of(_queue(unique)))
            await (await t.publish("", unique, b"first"))
            mine = await asyncio.to_thread(_my_connection, management_url, name)
            closer = asyncio.create_task(asyncio.to_thread(_close_connection, management_url, mine))
            pubs: list[AsyncPublication] = []
            while not closer.done():  # a steady stream, with some always in flight
                pubs.append(await t.publish("", unique, b"m%d" % len(pubs), Properties(delivery_mode=2)))
            await closer
            # No call after the close: only awaiting. The transport reconnects by itself and
            # sends again what was unconfirmed; each publication settles CONFIRMED.
            outcomes = [await p for p in pubs]  # (asyncio.gather cannot: a publication is unhashable)
            assert set(outcomes) == {Outcome.CONFIRMED} and t.reconnects == 1
            # Sent on the first connection as number i + 2 ("first" was 1); renumbered: sent again.
            resent = [p for i, p in enumerate(pubs) if p.sequence != i + 2]
            assert resent, "nothing was in flight when the connection closed"
            assert await t.flush(timeout=30) == []
            seen: set[bytes] = set()
            async with t.consume(unique, prefetch=1000) as consumer:
                while len(seen) < len(pubs) + 1:
                    delivery = await consumer.get(timeout=10)
                    assert delivery is not None, f"{len(seen)} of {len(pubs) + 1} arrived"
                    seen.add(delivery.body)
                    await t.ack(delivery)
            await t.delete_queue(unique)

    run(main, timeout=120)


def test_unbind_and_deletes(amqp_url: str, unique: str) -> None:
    ex = Exchange(f"{unique}-ex", "topic", auto_delete=False)
    q = _queue(f"{unique}-q")
    to_ex = Exchange(f"{unique}-ex2", "fanout")

    async def main() -> None:
        async with await AsyncRabbitTransport.open(amqp_url) as t:
            await t.declare(Topology.of(ex, to_ex, q, ex.bind(q, "a.*"), ex.bind(to_ex, "#")))
            assert await (await t.publish(ex.name, "a.b", b"1", mandatory=True)) is Outcome.CONFIRMED
            await t.unbind(ex.bind(q, "a.*"))
            await t.unbind(ex.bind(to_ex, "#"))
            await t.unbind(ex.bind(q, "a.*"))  # missing: fine
            assert await (await t.publish(ex.name, "a.b", b"2", mandatory=True)) is Outcome.RETURNED
            assert await t.purge(q.name) == 1
            await t.delete_queue(q.name)
            await t.delete_exchange(ex.name)
            await t.delete_exchange(to_ex.name)
            with pytest.raises(ChannelClosed, match="404"):
                await t.message_count(q.name)

    run(main)


def test_failover_to_the_next_url(amqp_url: str) -> None:
    async def main() -> None:
        async with await AsyncRabbitTransport.open(["amqp://guest:guest@127.0.0.1:1/%2F", amqp_url]) as t:
            assert t.endpoint.port != 1
            assert await (await t.publish("", "no-such-queue-anywhere", b"x")) is Outcome.CONFIRMED

    run(main)


def _refused(url: str | list[str]) -> str:
    start = time.monotonic()
    with pytest.raises(ConnectionFailed) as info:
        run(lambda: AsyncRabbitTransport.open(url))
    assert time.monotonic() - start < 15
    message = str(info.value)
    assert "\n" not in message and "secret-pw" not in message
    return message


@pytest.fixture
def where(amqp_url: str) -> str:
    endpoint = parse_url(amqp_url)
    return f"{endpoint.host}:{endpoint.port}"


def test_a_wrong_password_is_connection_failed_without_the_password(where: str) -> None:
    message = _refused(f"amqp://guest:secret-pw@{where}/%2F")
    assert where in message and "wrong username or password" in message


def test_all_urls_failing_names_each_host() -> None:
    message = _refused(["amqp://u:secret-pw@127.0.0.1:1/", "amqp://u:secret-pw@127.0.0.1:2/"])
    assert "no broker answered" in message and "127.0.0.1:1" in message and "127.0.0.1:2" in message


def test_tls_to_a_plain_port_is_refused_cleanly(where: str, capfd: pytest.CaptureFixture[str]) -> None:
    message = _refused(f"amqps://guest:secret-pw@{where}/%2F")
    assert "TLS" in message and where in message
    assert "Traceback" not in capfd.readouterr().err


def test_a_vhost_of_its_own_sees_its_declares(management_url: str, vhost_url: str, unique: str) -> None:
    async def main() -> None:
        async with await AsyncRabbitTransport.open(vhost_url) as t:
            report = await t.declare(Topology.of(Queue(unique)))
            assert report.created == (f"queue '{unique}'",)

    run(main)
    queues = _api(management_url, f"queues/{urllib.parse.quote(parse_url(vhost_url).vhost, safe='')}")
    assert [q["name"] for q in queues] == [unique]
    admin(management_url, "GET", "overview")
