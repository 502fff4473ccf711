"""RabbitMQ's routing rules as pure functions: topic and headers matching, `CC`/`BCC` keys.

Sources, RabbitMQ 3.10 and 4.0: `rabbit_exchange_type_topic` (word by word; the trie that
indexes topic bindings is `routing.indexes.TopicTrie`), `rabbit_exchange_type_headers` (header
comparison, in `routing._headers`), `rabbit_basic:header_routes` (`CC`/`BCC`). The routing
pipeline (`routing.pipeline`: `route()`, `explain()`), the embedded broker and the tests all
call these; nobody reimplements them. Where releases differ, the keyword `rabbitmq` ("3.10",
"4.0", or a full version) picks the profile (`routing.profiles`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routing._headers import values_equal
from routing.errors import RoutingError
from routing.profiles import Profile, profile

__all__ = [
    "header_outcomes",
    "header_routes",
    "header_values_equal",
    "headers_match",
    "routing_keys",
    "split_key",
    "topic_matches",
]

# ---------------------------------------------------------------- topic


def split_key(key: str) -> list[str]:
    """Words of a topic key: `""` is zero words, `"a..b"` is three (the middle one empty)."""
    return key.split(".") if key else []


def topic_matches(binding_key: str, routing_key: str, *, rabbitmq: str | Profile | None = None) -> bool:
    """Whether a topic binding key matches a routing key, word by word.

    `*` is exactly one word, `#` zero or more. Runs the binding key as a small automaton
    over the routing key's words, so `#`-heavy keys cost polynomial time, not exponential.
    `rabbitmq` names the release ("3.10", "4.0.5"; default the newest verified): every
    supported release matches topics alike, but an unknown one is refused all the same.
    """
    if rabbitmq is not None:
        profile(rabbitmq)
    pattern = split_key(binding_key)
    end = len(pattern)

    def closure(states: set[int]) -> set[int]:
        # `#` may match zero words: a state sitting on `#` is also the state after it.
        out = set(states)
        for i in states:
            while i < end and pattern[i] == "#":
                i += 1
                out.add(i)
        return out

    states = closure({0})
    for word in split_key(routing_key):
        step = set()
        for i in states:
            if i < end:
                p = pattern[i]
                if p == "#":
                    step.add(i)
                elif p == "*" or p == word:
                    step.add(i + 1)
        if not step:
            return False
        states = closure(step)
    return end in states


# -------------------------------------------------------------- headers


def header_values_equal(
    binding_value: Any, header_value: Any, *, rabbitmq: str | Profile | None = None
) -> bool:
    """Whether a binding value equals a header value as the release decides (see `routing._headers`):
    3.10 has 1 == 1.0 and a timestamp equal to its seconds; 4.0 compares strictly, a timestamp
    header in milliseconds. Inside arrays and tables element types count on both."""
    return values_equal(binding_value, header_value, profile(rabbitmq))


def header_outcomes(
    binding_arguments: Mapping[str, Any],
    headers: Mapping[str, Any] | None,
    *,
    rabbitmq: str | Profile | None = None,
) -> tuple[str, list[tuple[str, str]]]:
    """The x-match mode and, per compared binding key, `equal`, `present`, `missing` or `differs`."""
    release = profile(rabbitmq)
    mode = binding_arguments.get("x-match", "all")
    with_x = mode in ("all-with-x", "any-with-x")
    headers = headers or {}
    outcomes = []
    for key, expected in binding_arguments.items():
        if key == "x-match" or (key.startswith("x-") and not with_x):
            continue
        if key not in headers:
            outcomes.append((key, "missing"))
        elif expected is None:
            outcomes.append((key, "present"))
        elif values_equal(expected, headers[key], release):
            outcomes.append((key, "equal"))
        else:
            outcomes.append((key, "differs"))
    return mode, outcomes


def headers_match(
    binding_arguments: Mapping[str, Any],
    headers: Mapping[str, Any] | None,
    *,
    rabbitmq: str | Profile | None = None,
) -> bool:
    """Whether a headers-exchange binding matches a message's headers, as RabbitMQ decides.

    `all` (the default) needs every compared key to match; `any` needs one. Keys starting with
    `x-` are compared only under `all-with-x`/`any-with-x`. A `None` binding value means the
    header only has to be present. With no compared keys `all` matches and `any` does not.
    How values compare depends on the release: `rabbitmq="3.10"` or `"4.0"` (a full version
    such as "4.0.5" picks its family; the default is the newest verified profile).
    """
    mode, outcomes = header_outcomes(binding_arguments, headers, rabbitmq=rabbitmq)
    hits = [o in ("equal", "present") for _, o in outcomes]
    return any(hits) if mode.startswith("any") else all(hits)


# ------------------------------------------------------------- CC / BCC

ROUTING_HEADERS = ("CC", "BCC")  # rabbit_basic's ?ROUTING_HEADERS, in its order


def header_routes(headers: Mapping[str, Any] | None, *, strict: bool) -> list[str]:
    """The extra routing keys of the `CC` and `BCC` headers (`rabbit_basic:header_routes`):
    the string elements of each array, in order, CC first; other elements are skipped.

    A `CC` or `BCC` that is there but is not an array: with `strict` a `RoutingError`, as
    RabbitMQ refuses such a publish (`unacceptable_type_in_header`); without, it adds no keys
    (what is read back from a message that was already taken, as dead-lettering does).
    """
    if not headers:
        return []
    keys: list[str] = []
    for name in ROUTING_HEADERS:
        extra = headers.get(name)
        if extra is None:
            continue
        if not isinstance(extra, list | tuple):
            if strict:
                raise RoutingError(f"header {name} must be an array of strings, got {type(extra).__name__}")
            continue
        keys += [k for k in extra if isinstance(k, str)]  # RabbitMQ skips non-string elements
    return keys


def routing_keys(routing_key: str, headers: Mapping[str, Any] | None) -> list[str]:
    """The keys a publish routes with: the key plus the `CC` and `BCC` keys, each once.
    A `CC` or `BCC` that is not an array is a `RoutingError` (`header_routes(strict=True)`)."""
    return list(dict.fromkeys([routing_key, *header_routes(headers, strict=True)]))
