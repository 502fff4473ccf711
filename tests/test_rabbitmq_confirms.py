"""Publisher-confirm bookkeeping: multiple acks, nacks, returns before acks, lost channels."""

from __future__ import annotations

import pytest

from routing.errors import ConnectionLost, Nacked, PublishUnconfirmed, Unroutable
from routing.transport.base import Outcome
from routing.transport.rabbitmq._confirms import ConfirmTracker, Returned


def _send(tracker: ConfirmTracker, n: int, key: str = "k", mandatory: bool = False) -> list:
    return [tracker.sent("ex", key, f"body{i}".encode(), None, mandatory) for i in range(n)]


def test_sequences_and_single_acks_out_of_order() -> None:
    t = ConfirmTracker()
    pubs = _send(t, 3)
    assert [p.sequence for p in pubs] == [1, 2, 3]
    t.on_ack(2, multiple=False)
    assert [p.outcome for p in pubs] == [None, Outcome.CONFIRMED, None]
    assert len(t) == 2


def test_multiple_ack_settles_everything_up_to_the_tag() -> None:
    t = ConfirmTracker()
    pubs = _send(t, 5)
    t.on_ack(4, multiple=True)
    assert [p.settled for p in pubs] == [True, True, True, True, False]
    assert t.confirmed == 4 and not t.take_failures()


def test_multiple_nack() -> None:
    t = ConfirmTracker()
    pubs = _send(t, 3)
    t.on_ack(1, multiple=False)
    t.on_nack(3, multiple=True)
    assert [p.outcome for p in pubs] == [Outcome.CONFIRMED, Outcome.NACKED, Outcome.NACKED]
    failures = t.take_failures()
    assert failures == pubs[1:]
    with pytest.raises(Nacked):
        failures[0].raise_for_outcome()
    assert t.take_failures() == []


def test_return_is_matched_when_its_ack_arrives() -> None:
    """An earlier message to the same key waits for a disk write; the later one is
    returned and acked first. Only the returned one may be RETURNED."""
    t = ConfirmTracker()
    first, second = (t.sent("ex", "k", body, None, True) for body in (b"a", b"b"))
    t.on_return(Returned("ex", "k", b"b", 312, "NO_ROUTE"))
    t.on_ack(2, multiple=False)
    assert second.outcome is Outcome.RETURNED and first.outcome is None
    t.on_ack(1, multiple=False)
    assert first.outcome is Outcome.CONFIRMED
    with pytest.raises(Unroutable, match=r"'ex'.*'k'"):
        second.raise_for_outcome()
    first.raise_for_outcome()  # confirmed: nothing to raise


def test_return_in_a_multiple_ack_picks_the_message_by_body() -> None:
    t = ConfirmTracker()
    pubs = [t.sent("ex", "k", body, None, True) for body in (b"a", b"b", b"c")]
    t.on_return(Returned("ex", "k", b"b", 312, "NO_ROUTE"))
    t.on_ack(3, multiple=True)
    assert [p.outcome for p in pubs] == [Outcome.CONFIRMED, Outcome.RETURNED, Outcome.CONFIRMED]


def test_window() -> None:
    t = ConfirmTracker(window=2)
    _send(t, 2)
    assert t.full
    t.on_ack(1, multiple=False)
    assert not t.full
    with pytest.raises(ValueError):
        ConfirmTracker(window=0)


def test_lost_connection_settles_unconfirmed_never_confirmed() -> None:
    t = ConfirmTracker()
    pubs = _send(t, 3)
    t.on_ack(1, multiple=False)
    lost = t.lose_all(ConnectionLost("gone"))
    assert [p.publication for p in lost] == pubs[1:]
    assert [p.outcome for p in pubs] == [Outcome.CONFIRMED, Outcome.UNCONFIRMED, Outcome.UNCONFIRMED]
    assert t.take_failures() == pubs[1:]
    with pytest.raises(ConnectionLost):
        pubs[1].raise_for_outcome()


def test_resend_renumbers_on_the_new_channel() -> None:
    t = ConfirmTracker()
    pubs = _send(t, 2)
    pending = t.take_pending()
    t.restart()
    for p in pending:
        t.resent(p)
    assert [p.sequence for p in pubs] == [1, 2] and not any(p.settled for p in pubs)
    t.on_ack(2, multiple=True)
    assert all(p.outcome is Outcome.CONFIRMED for p in pubs)


def test_unsettled_publication_says_flush_first() -> None:
    t = ConfirmTracker()
    (p,) = _send(t, 1)
    with pytest.raises(PublishUnconfirmed, match="flush"):
        p.raise_for_outcome()
