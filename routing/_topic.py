"""Topic matching (`rabbit_exchange_type_topic`): word by word, and a trie of binding keys.

Identical on RabbitMQ 3.10.8 and 4.0.5 on RabbitMQ's own tables (`tests/data/topic_*.json`).
"""

from __future__ import annotations

from collections.abc import Iterable

from routing.profiles import Profile, profile
from routing.topology import Binding


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


class _Node:
    __slots__ = ("bindings", "children")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.bindings: list[Binding] = []


class TopicTrie:
    """Topic bindings in a trie of words: matching costs grow with the key, not the bindings."""

    __slots__ = ("_root", "_size")

    def __init__(self, bindings: Iterable[Binding] = ()) -> None:
        self._root = _Node()
        self._size = 0
        for b in bindings:
            self.add(b)

    def __len__(self) -> int:
        return self._size

    def add(self, binding: Binding) -> None:
        node = self._root
        for word in split_key(binding.routing_key):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = _Node()
            node = child
        if binding not in node.bindings:
            node.bindings.append(binding)
            self._size += 1

    def remove(self, binding: Binding) -> None:
        path = [self._root]
        for word in split_key(binding.routing_key):
            nxt = path[-1].children.get(word)
            if nxt is None:
                return
            path.append(nxt)
        if binding not in path[-1].bindings:
            return
        path[-1].bindings.remove(binding)
        self._size -= 1
        words = split_key(binding.routing_key)
        # Prune empty branches so removed bindings leave nothing to walk.
        for depth in range(len(words), 0, -1):
            node = path[depth]
            if node.bindings or node.children:
                break
            del path[depth - 1].children[words[depth - 1]]

    def match(self, routing_key: str) -> list[Binding]:
        words = split_key(routing_key)
        n = len(words)
        found: list[Binding] = []
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            mark = (id(node), i)
            if mark in seen:
                continue
            seen.add(mark)
            if i == n:
                found.extend(node.bindings)
            children = node.children
            if not children:
                continue
            hash_node = children.get("#")
            if hash_node is not None:
                # `#` swallows zero or more of the remaining words.
                stack.extend((hash_node, j) for j in range(i, n + 1))
            if i < n:
                exact = children.get(words[i])
                if exact is not None:
                    stack.append((exact, i + 1))
                star = children.get("*")
                if star is not None and star is not exact:
                    stack.append((star, i + 1))
        # A binding is reached once per path; report it once (by identity: hashing is slower).
        return list({id(b): b for b in found}.values())
