"""The suite can fail: the same scenario with a deliberately wrong expectation fails on both
brokers, so a pass on either one means the broker did what the expectation says."""

from __future__ import annotations

import pytest

from .conftest import Harness
from .test_routing import EXPECTED, check_exchange, expected_for

# The classic mistake of regex-based topic matchers: `a.#` not matching `a` (zero words).
WRONG_TOPIC = {**EXPECTED["topic"], "many": {b"m2", b"m3"}}


@pytest.mark.parametrize("kind", ["direct", "fanout", "topic", "headers"])
def test_a_wrong_expected_set_fails(harness: Harness, kind: str) -> None:
    right = expected_for(harness, kind)
    first = next(iter(right))
    wrong = {**right, first: right[first] ^ {b"m1"}}  # one message too many, or missing
    assert wrong != right
    check_exchange(harness, kind, right)  # the setup works: the right expectation passes...
    with pytest.raises(AssertionError):
        check_exchange(harness, kind, wrong)  # ...and the wrong one, on the same broker, fails


def test_the_regex_topic_mistake_is_caught(harness: Harness) -> None:
    with pytest.raises(AssertionError, match="many"):
        check_exchange(harness, "topic", WRONG_TOPIC)
