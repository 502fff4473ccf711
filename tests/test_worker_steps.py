"""`routing.worker.steps` without a broker: for one delivery, the effects it asks for, in order,
given the answers a driver sends back. Both workers drive these same steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError, fields, replace

import pytest

from routing import Envelope, encode, to_properties
from routing.errors import ConnectionLost, Nacked, PropertyError
from routing.transport import Delivery, Outcome, Publication
from routing.worker import App, RetryPolicy
from routing.worker.failures import ATTEMPTS
from routing.worker.steps import (
    Ack,
    CallHandler,
    CopyRefused,
    Effect,
    PublishCopy,
    Redeclare,
    Settled,
    steps,
)

RESIZE = "task.resize_image"
QUEUE = "jobs"
POLICY = RetryPolicy(initial=0.1, multiplier=2, max_delay=0.2, max_attempts=3)


def app() -> App:
    a = App(retry=POLICY)

    @a.handler(RESIZE)
    def resize(event: Envelope) -> None: ...

    return a


def delivery(body: bytes | None = None, attempts: int = 0) -> Delivery:
    envelope = Envelope.new(RESIZE, {"input": "a.jpg", "width": 1, "height": 1})
    properties = to_properties(envelope)
    if attempts:
        properties = replace(properties, headers={**properties.headers, ATTEMPTS: attempts})
    return Delivery(encode(envelope) if body is None else body, properties, "ex", "key", QUEUE, 7)


def confirmed(effect: PublishCopy) -> Publication:
    return Publication("", effect.queue, 1, Outcome.CONFIRMED)


Answer = Callable[[Effect], object]


def drive(d: Delivery, answer: Answer, *, dead_letters_to_queue: bool = True) -> tuple[list[Effect], Settled]:
    """Run the steps for `d`, answering each effect with `answer(effect)`; the effects seen and
    how it settled."""
    a = app()
    plan = steps(d, app=a, queues=a.queues(QUEUE), dead_letters_to_queue=dead_letters_to_queue)
    seen: list[Effect] = []
    try:
        effect = next(plan)
        while True:
            seen.append(effect)
            effect = plan.send(answer(effect))
    except StopIteration as done:
        return seen, done.value


def answers(handler: object = None, publish: Callable[[PublishCopy], object] = confirmed) -> Answer:
    def answer(effect: Effect) -> object:
        if isinstance(effect, CallHandler):
            return handler
        if isinstance(effect, PublishCopy):
            return publish(effect)
        return None

    return answer


def kinds(effects: list[Effect]) -> list[str]:
    return [type(e).__name__ for e in effects]


def test_a_handled_message_is_acked_as_handled() -> None:
    d = delivery()
    effects, settled = drive(d, answers())
    assert kinds(effects) == ["CallHandler", "Ack"] and settled is Settled.PROCESSED
    assert effects[1] == Ack(d, handled=True)


def test_a_failure_publishes_a_retry_copy_and_acks_only_after_its_confirm() -> None:
    d = delivery()
    effects, settled = drive(d, answers(handler=ValueError("no")))
    assert kinds(effects) == ["CallHandler", "PublishCopy", "Ack"] and settled is Settled.RETRIED
    copy = effects[1]
    assert isinstance(copy, PublishCopy) and copy.queue == f"{QUEUE}.retry.100ms"
    assert copy.properties.headers[ATTEMPTS] == 1
    assert effects[2] == Ack(d, handled=False)  # the original, now: its copy is confirmed


def test_the_last_attempt_goes_to_the_dead_letter_queue() -> None:
    effects, settled = drive(delivery(attempts=2), answers(handler=ValueError("no")))
    copy = effects[1]
    assert isinstance(copy, PublishCopy) and copy.queue == f"{QUEUE}.dead"
    assert settled is Settled.DEAD_LETTERED


def test_an_invalid_message_is_dead_lettered_without_calling_the_handler() -> None:
    effects, settled = drive(delivery(body=b"{nope"), answers())
    assert kinds(effects) == ["PublishCopy", "Ack"] and settled is Settled.DEAD_LETTERED


def test_a_returned_copy_redeclares_its_queue_and_is_sent_again() -> None:
    sent: list[str] = []

    def publish(effect: PublishCopy) -> Publication:
        sent.append(effect.queue)
        outcome = Outcome.RETURNED if len(sent) == 1 else Outcome.CONFIRMED
        return Publication("", effect.queue, len(sent), outcome)

    effects, settled = drive(delivery(), answers(handler=ValueError("no"), publish=publish))
    assert kinds(effects) == ["CallHandler", "PublishCopy", "Redeclare", "PublishCopy", "Ack"]
    redeclare = effects[2]
    assert isinstance(redeclare, Redeclare) and [q.name for q in redeclare.topology.queues] == [sent[0]]
    assert settled is Settled.RETRIED


def test_a_copy_lost_with_the_connection_is_neither_acked_nor_counted() -> None:
    def publish(effect: PublishCopy) -> Publication:
        return Publication("", effect.queue, 1, Outcome.UNCONFIRMED, ConnectionLost("gone"))

    effects, settled = drive(delivery(), answers(handler=ValueError("no"), publish=publish))
    assert kinds(effects) == ["CallHandler", "PublishCopy"] and settled is Settled.AGAIN


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (Publication("", "q", 1, Outcome.NACKED, Nacked("full")), "full"),
        (
            PropertyError("headers.x", "cannot be encoded"),
            "refused before sending: headers.x cannot be encoded",
        ),
    ],
)
def test_a_refused_copy_leaves_the_original_in_the_queue_and_stops(answer: object, why: str) -> None:
    seen: list[Effect] = []

    def record(effect: Effect) -> object:
        seen.append(effect)
        return answers(handler=ValueError("no"), publish=lambda _: answer)(effect)

    with pytest.raises(CopyRefused, match=why):
        drive(delivery(), record)
    assert kinds(seen) == ["CallHandler", "PublishCopy", "Nack"]


def test_a_copy_that_cannot_carry_the_failure_is_rejected_to_the_dead_letter_queue() -> None:
    big = delivery()
    big = replace(big, properties=replace(big.properties, headers={"filler": "x" * 140_000}))
    effects, settled = drive(big, answers(handler=ValueError("no")))
    assert kinds(effects) == ["CallHandler", "Redeclare", "Reject"] and settled is Settled.DEAD_LETTERED
    with pytest.raises(CopyRefused, match="no-declare"):
        drive(big, answers(handler=ValueError("no")), dead_letters_to_queue=False)


def test_every_effect_is_a_frozen_value() -> None:
    effects, _ = drive(delivery(), answers(handler=ValueError("no")))
    for effect in effects:
        first = fields(effect)[0].name
        with pytest.raises(FrozenInstanceError):
            setattr(effect, first, None)
