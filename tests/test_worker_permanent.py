"""`Permanent`: a handler's failure that trying again cannot help (a corrupt upload) goes to the
dead-letter queue at once, with its reason; no retry queue sees it. Both brokers, through
`Bench` (test_worker), counting the messages across the work, retry and dead-letter queues.
"""

from __future__ import annotations

import pytest
from test_worker import FAST, Bench, bench, event, wait_until

from routing import Envelope
from routing.worker import App, Failure, Permanent

__all__ = ["bench"]  # the fixture, imported to be used here


class NotAnImage(Permanent):
    """A handler's own kind of permanent failure."""


def _caught(exc: BaseException) -> Failure:
    try:
        raise exc
    except BaseException as caught:
        return Failure.from_exception(caught)


def test_a_permanent_exception_makes_a_permanent_failure() -> None:
    plain = _caught(Permanent("cannot decode cat.jpg"))
    assert (plain.error_type, plain.reason, plain.permanent) == (
        "Permanent",
        "Permanent: cannot decode cat.jpg",
        True,
    )
    own = _caught(NotAnImage("cat.jpg is a text file"))
    assert (own.error_type, own.permanent) == ("NotAnImage", True)
    cause = ValueError("cannot identify image file")
    try:
        raise Permanent("cat.jpg is not an image") from cause
    except Permanent as exc:
        assert Failure.from_exception(exc).reason == "Permanent: cat.jpg is not an image"
    assert not _caught(ValueError("cannot decode cat.jpg")).permanent
    assert not _caught(OSError("disk full")).permanent


def test_raising_the_class_itself_is_permanent() -> None:
    try:
        raise Permanent
    except Permanent as exc:
        assert Failure.from_exception(exc).permanent


@pytest.mark.parametrize("raised", [Permanent, NotAnImage])
def test_a_permanent_failure_is_dead_lettered_at_once(bench: Bench, raised: type[Permanent]) -> None:
    app = App(retry=FAST)  # three attempts for an ordinary failure
    calls: list[str] = []

    @app.handler("task.resize_image")
    def resize(envelope: Envelope) -> None:
        calls.append(envelope.id)
        if envelope.data["input"] == "bad.jpg":
            raise raised("bad.jpg is not an image") from ValueError("cannot identify image file")

    bench.declare(app)
    bad = [bench.send(event({"input": "bad.jpg", "width": 1, "height": 1})) for _ in range(2)]
    good = bench.send(event())
    with bench.worker(app) as spy:
        wait_until(lambda: spy.worker.stats.processed == 1, "the good job handled")
        letters = bench.letters(2)
        stats = spy.worker.stats
    assert calls == [bad[0].id, bad[1].id, good.id]  # each bad job tried once
    assert (stats.processed, stats.retried, stats.dead_lettered) == (1, 0, 2)
    assert [queue for queue, _ in spy.published] == [bench.dead, bench.dead]  # no retry copy
    assert [letter.id for letter in letters] == [e.id for e in bad]
    for letter in letters:
        assert letter.attempts == 1
        assert letter.error_type == raised.__name__
        assert letter.reason == f"{raised.__name__}: bad.jpg is not an image"
        assert "in resize" in letter.traceback
    # Nothing lost, nothing waiting to come back: two in the dead-letter queue, none elsewhere.
    assert len(bench.drain(bench.dead)) == 2
    for queue in bench.queues - {bench.dead}:
        assert bench.drain(queue) == [], queue
