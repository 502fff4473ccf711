"""`topic_matches` and the topic trie against RabbitMQ's own tables and a reference matcher."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import Binding, topic_matches
from routing.indexes import TopicTrie

DATA = Path(__file__).parent / "data"


def _cases(name: str) -> list[tuple[str, str, bool]]:
    doc = json.loads((DATA / name).read_text())
    return [(c["binding_key"], c["routing_key"], c["match"]) for c in doc["cases"]]


SUITES = _cases("topic_routing_suite.json") + _cases("topic_db_suite.json")


def test_the_tables_are_all_there() -> None:
    # routing_SUITE: 312 distinct pairs over its two tables; rabbit_db_topic_exchange_SUITE: 24.
    assert len(_cases("topic_routing_suite.json")) == 312
    assert len(_cases("topic_db_suite.json")) == 24
    assert any(m for *_, m in SUITES) and not all(m for *_, m in SUITES)


@pytest.mark.parametrize(("binding_key", "routing_key", "expected"), SUITES)
def test_rabbitmq_topic_table(binding_key: str, routing_key: str, expected: bool) -> None:
    assert topic_matches(binding_key, routing_key) is expected


def test_trie_agrees_with_the_tables() -> None:
    tried: dict[str, set[str]] = {}  # routing key -> binding keys the tables pair it with
    expected: dict[str, set[str]] = {}
    for b, r, m in SUITES:
        tried.setdefault(r, set()).add(b)
        expected.setdefault(r, set())
        if m:
            expected[r].add(b)
    trie = TopicTrie(Binding("x", f"q{i}", b) for i, b in enumerate({b for b, _, _ in SUITES}))
    for routing_key, keys in tried.items():
        got = {b.routing_key for b in trie.match(routing_key)} & keys
        assert got == expected[routing_key], routing_key


@pytest.mark.parametrize(
    ("binding_key", "routing_key", "expected"),
    [
        ("", "", True),  # the empty key is zero words
        ("#", "", True),
        ("*", "", False),
        ("#.*", "", False),
        ("a.#", "a", True),
        ("a.*.b", "a..b", True),  # an empty word is still a word
        ("a.b", "a..b", False),
        ("*", ".", False),  # "." is two empty words
        ("*.*", ".", True),
        ("#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.a", "b." * 40 + "b", False),  # no exponential cliff
        ("a.#.#.b", "a.x.y.z.b", True),
        ("*", "*", True),
        ("a", "*", False),  # a routing key's `*` is a plain word
    ],
)
def test_edge_cases(binding_key: str, routing_key: str, expected: bool) -> None:
    assert topic_matches(binding_key, routing_key) is expected
    trie = TopicTrie([Binding("x", "q", binding_key)])
    assert bool(trie.match(routing_key)) is expected


def reference_match(binding_key: str, routing_key: str) -> bool:
    """An independent matcher: plain recursion over word lists, memoized, straight from the rules."""
    pattern = tuple(binding_key.split(".")) if binding_key else ()
    words = tuple(routing_key.split(".")) if routing_key else ()

    @cache
    def go(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(words)
        if pattern[i] == "#":
            return go(i + 1, j) or (j < len(words) and go(i, j + 1))
        if j == len(words):
            return False
        return (pattern[i] in ("*", words[j])) and go(i + 1, j + 1)

    return go(0, 0)


WORDS = st.sampled_from(["a", "b", "c", "", "ab"])
PATTERN_WORDS = st.sampled_from(["a", "b", "c", "", "*", "#"])


def _key(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(words, max_size=6).map(".".join)


@settings(max_examples=2000, deadline=None)
@given(_key(PATTERN_WORDS), _key(WORDS))
def test_matches_the_reference(binding_key: str, routing_key: str) -> None:
    assert topic_matches(binding_key, routing_key) is reference_match(binding_key, routing_key)


@settings(max_examples=300, deadline=None)
@given(st.lists(_key(PATTERN_WORDS), min_size=1, max_size=12, unique=True), _key(WORDS))
def test_trie_matches_the_reference(binding_keys: list[str], routing_key: str) -> None:
    trie = TopicTrie(Binding("x", f"q{i}", k) for i, k in enumerate(binding_keys))
    got = {b.routing_key for b in trie.match(routing_key)}
    assert got == {k for k in binding_keys if reference_match(k, routing_key)}


def test_trie_remove_prunes_and_forgets() -> None:
    a, b = Binding("x", "q1", "a.*.c"), Binding("x", "q2", "a.#")
    trie = TopicTrie([a, b])
    trie.remove(a)
    assert trie.match("a.b.c") == [b] and len(trie) == 1
    trie.remove(b)
    assert trie.match("a.b.c") == [] and len(trie) == 0
    trie.remove(b)  # removing what is not there is a no-op, as unbind is in RabbitMQ
    assert len(trie) == 0


@pytest.mark.parametrize("release", ["3.10", "4.0", "3.12.1", "4.0.5"])
def test_topic_rules_are_the_same_on_every_supported_release(release: str) -> None:
    for binding_key, routing_key, expected in SUITES:
        assert topic_matches(binding_key, routing_key, rabbitmq=release) is expected


def test_an_unknown_release_is_refused() -> None:
    from routing.profiles import ProfileError

    with pytest.raises(ProfileError, match="supported"):
        topic_matches("a.*", "a.b", rabbitmq="3.9")


@pytest.mark.broker
def test_the_tables_on_the_live_broker(amqp_url: str, unique: str, rabbitmq_profile: str) -> None:
    """RabbitMQ's own tables through a live topic exchange, one queue per binding key."""
    from routing import Exchange, Queue, Topology
    from routing.transport.base import Properties
    from routing.transport.rabbitmq import RabbitTransport

    keys = sorted({b for b, _, _ in SUITES})
    routing_keys = sorted({r for _, r, _ in SUITES})
    x = Exchange(f"{unique}-t", "topic", durable=False, auto_delete=True)
    queues = [Queue(f"{unique}-{i}", durable=False, exclusive=True) for i in range(len(keys))]
    with RabbitTransport(amqp_url) as rabbit:
        rabbit.declare(Topology.of(x, *queues, *(x.bind(q, k) for q, k in zip(queues, keys, strict=True))))
        for n, key in enumerate(routing_keys):
            rabbit.publish(x.name, key, b"", Properties(message_id=str(n)))
        assert rabbit.flush(timeout=30) == []
        wrong = []
        for q, binding_key in zip(queues, keys, strict=True):
            arrived = set()
            while (d := rabbit.get(q.name)) is not None:
                arrived.add(routing_keys[int(d.properties.message_id or 0)])
                rabbit.ack(d)
            for key in routing_keys:
                if topic_matches(binding_key, key, rabbitmq=rabbitmq_profile) is not (key in arrived):
                    wrong.append(f"{binding_key!r} ~ {key!r}: live {key in arrived}")
    assert not wrong, "\n".join(wrong)
