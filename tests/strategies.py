"""Hypothesis strategies for valid `routing` values, shared by the test modules.

`topologies()` draws whole valid topologies: all four exchange types, exchange-to-exchange
bindings, alternate exchanges, classic and quorum queues with typed arguments, dead-letter
exchanges (the default exchange and `amq.*` ones included), headers bindings under every
`x-match` mode, bindings from the built-in `amq.*` exchanges, and names with dots, spaces,
quotes and unicode. Every value it draws passes the model's own validation, so a strategy
that starts failing to draw means the model got stricter.

    from strategies import topologies

    @given(topologies())
    def test_something(topology): ...
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from hypothesis import strategies as st

from routing.topology import (
    MAX_NAME_BYTES,
    X_MATCH_MODES,
    Binding,
    DestinationType,
    Exchange,
    ExchangeType,
    Overflow,
    Queue,
    QueueType,
    Topology,
)

# The built-in exchanges a topology may bind from, bind to, or use as AE/DLX without declaring.
BUILTIN_EXCHANGES = {
    "amq.direct": ExchangeType.DIRECT,
    "amq.fanout": ExchangeType.FANOUT,
    "amq.topic": ExchangeType.TOPIC,
    "amq.headers": ExchangeType.HEADERS,
    "amq.match": ExchangeType.HEADERS,
}

_WORDS = ("order", "created", "eu", "billing", "a", "b", "ünï", "x-y")
# Characters that have tripped up escaping somewhere: quotes, Mermaid/HTML markup, separators.
_ODD = " \"'#;:|<>&`%.-_/\\()[]{}é日🐇"


@cache  # strategies are immutable; building them anew per draw is slow
def words() -> st.SearchStrategy[str]:
    """One word of a name or key: mostly readable, sometimes odd characters."""
    return st.one_of(
        st.sampled_from(_WORDS),
        st.text(st.sampled_from(_ODD + "abc"), min_size=1, max_size=4),
        st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=6),
    )


@cache
def names() -> st.SearchStrategy[str]:
    """Valid exchange or queue names: dotted words, not `amq.`-prefixed, at most 255 bytes."""
    return (
        st.lists(words(), min_size=1, max_size=4)
        .map(".".join)
        .filter(lambda n: not n.startswith("amq.") and len(n.encode()) <= MAX_NAME_BYTES)
    )


@cache
def topic_keys() -> st.SearchStrategy[str]:
    """Topic routing or binding keys: zero or more words, with `*`, `#` and empty words."""
    word = st.sampled_from(("a", "b", "order", "*", "#", "", "日本"))
    return st.lists(word, max_size=5).map(".".join)


@cache
def header_values(max_leaves: int = 4) -> st.SearchStrategy[Any]:
    """Values an AMQP table can carry and JSON can write: no NaN or infinity, no bytes."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=max_leaves,
    )


@cache
def header_bindings(mode: st.SearchStrategy[str | None] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Headers-binding arguments: an `x-match` mode (or none: `all`) and a few pairs.

    Keys include `x-`-prefixed ones (compared only under `*-with-x`) and `X-` ones (always
    compared: the prefix check is case-sensitive); `None` values mean "header present".
    """
    keys = st.sampled_from(("region", "big", "n", "x-tenant", "X-Up", "kind.sub"))
    modes = mode if mode is not None else st.one_of(st.none(), st.sampled_from(X_MATCH_MODES))
    return st.builds(
        lambda pairs, m: {**pairs, **({"x-match": m} if m is not None else {})},
        st.dictionaries(keys, header_values(2), max_size=3),
        modes,
    )


@cache
def _extra_arguments() -> st.SearchStrategy[dict[str, Any]]:
    """Arguments the model does not type, kept as they are."""
    return st.dictionaries(st.sampled_from(("x-custom", "x-team", "owner")), header_values(2), max_size=2)


@st.composite
def exchanges(
    draw: Callable[..., Any],
    name: st.SearchStrategy[str] | None = None,
    *,
    alternates: tuple[str, ...] = (),
    internal: bool = True,
) -> Exchange:
    """An exchange of any type; its alternate exchange, if any, is one of `alternates`."""
    return Exchange(
        draw(name if name is not None else names()),
        draw(st.sampled_from(list(ExchangeType))),
        durable=draw(st.booleans()),
        auto_delete=draw(st.booleans()),
        internal=draw(st.booleans()) if internal else False,
        alternate_exchange=draw(st.none() | st.sampled_from(alternates)) if alternates else None,
        arguments=draw(st.none() | _extra_arguments()) or {},
    )


@st.composite
def queues(
    draw: Callable[..., Any],
    name: st.SearchStrategy[str] | None = None,
    *,
    dead_letter_exchanges: tuple[str, ...] = (),
    exclusive: bool = False,
) -> Queue:
    """A classic or quorum queue with the typed arguments its type accepts.

    Its dead-letter exchange, if any, is one of `dead_letter_exchanges` (`""`, the default
    exchange, is always a valid one). Exclusive queues only when `exclusive`.
    """
    qtype = draw(st.sampled_from(list(QueueType)))
    quorum = qtype is QueueType.QUORUM
    maybe = st.none
    ms = st.integers(min_value=0, max_value=2**31)
    kwargs: dict[str, Any] = {
        "message_ttl": draw(maybe() | ms),
        "expires": draw(maybe() | st.integers(min_value=1, max_value=2**31)),
        "max_length": draw(maybe() | st.integers(min_value=0, max_value=10**9)),
        "max_length_bytes": draw(maybe() | st.integers(min_value=0, max_value=10**12)),
        "overflow": draw(
            maybe()
            | st.sampled_from([o for o in Overflow if not (quorum and o is Overflow.REJECT_PUBLISH_DLX)])
        ),
        "single_active_consumer": draw(maybe() | st.booleans()),
    }
    dlx = draw(maybe() | st.sampled_from(("", *dead_letter_exchanges)))
    if dlx is not None:
        kwargs["dead_letter_exchange"] = dlx
        kwargs["dead_letter_routing_key"] = draw(maybe() | topic_keys())
    if quorum:
        kwargs["delivery_limit"] = draw(maybe() | st.integers(min_value=0, max_value=100))
        flags: dict[str, Any] = {}
    else:
        kwargs["max_priority"] = draw(maybe() | st.integers(min_value=1, max_value=255))
        flags = {
            "durable": draw(st.booleans()),
            "auto_delete": draw(st.booleans()),
            "exclusive": draw(st.booleans()) if exclusive else False,
        }
    extra = draw(st.none() | _extra_arguments()) or {}
    return Queue(
        draw(name if name is not None else names()),
        type=qtype,
        **flags,
        **{k: v for k, v in kwargs.items() if v is not None},
        arguments=extra,
    )


def _binding_key(kind: ExchangeType) -> st.SearchStrategy[str]:
    if kind is ExchangeType.TOPIC:
        return topic_keys()
    if kind is ExchangeType.HEADERS:
        return st.just("") | topic_keys()  # ignored by headers exchanges, but part of the binding
    return st.just("") | names()


@st.composite
def topologies(
    draw: Callable[..., Any],
    *,
    entity_names: st.SearchStrategy[str] | None = None,
    max_exchanges: int = 5,
    max_queues: int = 5,
    max_bindings: int = 10,
    exclusive_queues: bool = False,
    internal_exchanges: bool = True,
    builtins: bool = True,
) -> Topology:
    """A valid topology; every reference points at an entity it has (or a built-in exchange).

    `entity_names` draws the names (e.g. prefixed with a unique string for broker tests);
    queue and exchange names may coincide, as RabbitMQ allows. `builtins=False` keeps the
    `amq.*` exchanges out of bindings, alternate and dead-letter exchanges.
    """
    name = entity_names if entity_names is not None else names()
    exchange_names = draw(st.lists(name, max_size=max_exchanges, unique=True))
    if exchange_names:  # a queue may share an exchange's name
        name = name | st.sampled_from(exchange_names)
    queue_names = draw(st.lists(name, max_size=max_queues, unique=True))
    others = tuple(BUILTIN_EXCHANGES) if builtins else ()
    alternates = (*exchange_names, *others)
    xs = [
        draw(exchanges(st.just(n), alternates=alternates, internal=internal_exchanges))
        for n in exchange_names
    ]
    qs = [
        draw(queues(st.just(n), dead_letter_exchanges=alternates, exclusive=exclusive_queues))
        for n in queue_names
    ]
    kinds = {**(BUILTIN_EXCHANGES if builtins else {}), **{e.name: e.type for e in xs}}
    bindings = []
    if kinds and (qs or xs):
        for _ in range(draw(st.integers(min_value=0, max_value=max_bindings))):
            source = draw(st.sampled_from(sorted(kinds)))
            to_exchange = draw(st.booleans()) if qs else True
            if to_exchange:
                destination = draw(st.sampled_from(sorted(kinds)))
                kind_of_destination = DestinationType.EXCHANGE
            else:
                destination = draw(st.sampled_from([q.name for q in qs]))
                kind_of_destination = DestinationType.QUEUE
            kind = kinds[source]
            if kind is ExchangeType.HEADERS:
                arguments = draw(header_bindings())
            else:
                arguments = draw(st.just({}) | _extra_arguments())
            bindings.append(
                Binding(
                    source,
                    destination,
                    draw(_binding_key(kind)),
                    destination_type=kind_of_destination,
                    arguments=arguments,
                )
            )
    return Topology.of(xs, qs, bindings)
