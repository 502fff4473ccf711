"""`headers_match` against RabbitMQ's headers-exchange cases and 3.10's comparison rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from routing import headers_match

SUITE = json.loads((Path(__file__).parent / "data" / "headers_suite.json").read_text())["cases"]


@pytest.mark.parametrize("case", SUITE, ids=[c.get("note", str(i))[:60] for i, c in enumerate(SUITE)])
def test_rabbitmq_headers_cases(case: dict[str, Any]) -> None:
    assert headers_match(case["binding"], case["headers"]) is case["match"]


@pytest.mark.parametrize(
    ("binding", "headers", "expected"),
    [
        ({}, None, True),  # nothing to compare: `all` matches everything
        ({"x-match": "all"}, {"a": 1}, True),
        ({"x-match": "any"}, {"a": 1}, False),  # ...and `any` matches nothing
        ({"a": 1}, {"a": 1, "b": 2}, True),  # extra message headers do not matter
        ({"a": 1, "b": 2}, {"a": 1}, False),
        ({"x-match": "any", "a": 1, "b": 2}, {"b": 2}, True),
        ({"a": None}, {"a": "anything"}, True),  # void: "present, any value"
        ({"a": None}, {}, False),
        ({"x-match": "any", "a": None}, {"b": 1}, False),
        ({"a": 1}, {"a": 1.0}, True),  # Erlang ==: 1 == 1.0
        ({"a": True}, {"a": 1}, False),  # but a boolean is not a number
        ({"a": 0}, {"a": False}, False),
        ({"a": "1"}, {"a": 1}, False),
        ({"a": [1, 2]}, {"a": [1, 2]}, True),
        ({"a": [1, 2]}, {"a": [2, 1]}, False),  # arrays compare in order
        ({"a": [1]}, {"a": [1.0]}, False),  # and with their element types
        ({"a": {"k": 1, "j": 2}}, {"a": {"k": 1, "j": 2}}, True),
        ({"a": {"k": 1, "j": 2}}, {"a": {"j": 2, "k": 1}}, False),  # nested tables keep their order
        ({"x-foo": "1"}, {}, True),  # x- keys are skipped under all/any...
        ({"x-match": "any", "x-foo": "1", "a": 1}, {"x-foo": "1"}, False),
        ({"X-Foo": "1"}, {}, False),  # ...case-sensitively
        ({"x-match": "all-with-x", "x-foo": "1"}, {"x-foo": "1"}, True),  # compared under *-with-x
        ({"x-match": "all-with-x", "x-foo": "1"}, {}, False),
        ({"x-match": "any-with-x", "x-foo": "1", "a": 1}, {"x-foo": "1"}, True),
        ({"x-match": "any-with-x"}, {"x-match": "any-with-x"}, False),  # x-match itself never compares
    ],
)
def test_rabbitmq_310_rules(binding: dict[str, Any], headers: dict[str, Any] | None, expected: bool) -> None:
    assert headers_match(binding, headers) is expected
