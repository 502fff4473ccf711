"""Binding indexes: a trie of topic binding keys, and one exchange's bindings by its type's rule.

Mutable: the embedded broker adds and removes bindings as they are declared and deleted;
`routing.pipeline` builds one table per exchange of a static topology. Matching a message
against a table applies the rules of `routing.matching`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from routing.matching import headers_match, split_key
from routing.profiles import DEFAULT_PROFILE, Profile
from routing.topology import Binding, Exchange, ExchangeType

__all__ = ["BindingTable", "RoutingIndex", "TopicTrie"]


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


class BindingTable:
    """One exchange's bindings, indexed for its type's rule."""

    __slots__ = ("_by_key", "_list", "_trie", "type")

    def __init__(self, type: ExchangeType, bindings: Iterable[Binding] = ()) -> None:
        self.type = type
        self._list: dict[Binding, None] = {}
        self._by_key: dict[str, dict[Binding, None]] = {}
        self._trie = TopicTrie() if type is ExchangeType.TOPIC else None
        for b in bindings:
            self.add(b)

    def __iter__(self) -> Iterator[Binding]:
        return iter(self._list)

    def __len__(self) -> int:
        return len(self._list)

    def add(self, binding: Binding) -> None:
        self._list[binding] = None
        if self._trie is not None:
            self._trie.add(binding)
        elif self.type is ExchangeType.DIRECT:
            self._by_key.setdefault(binding.routing_key, {})[binding] = None

    def remove(self, binding: Binding) -> None:
        self._list.pop(binding, None)
        if self._trie is not None:
            self._trie.remove(binding)
        elif self.type is ExchangeType.DIRECT:
            self._by_key.get(binding.routing_key, {}).pop(binding, None)

    def match(
        self,
        routing_keys: Sequence[str],
        headers: Mapping[str, Any] | None,
        rabbitmq: Profile = DEFAULT_PROFILE,
    ) -> list[Binding]:
        if self.type is ExchangeType.FANOUT:
            return list(self._list)
        if self.type is ExchangeType.HEADERS:
            return [b for b in self._list if headers_match(b.arguments, headers, rabbitmq=rabbitmq)]
        found: list[Binding] = []
        for key in routing_keys:
            if self._trie is not None:
                found += self._trie.match(key)
            else:
                found += self._by_key.get(key, ())
        return found


Q = TypeVar("Q")


class RoutingIndex(Generic[Q]):
    """Exchanges and queues by name, and one `BindingTable` per exchange: what routing reads of
    a broker's state (`routing.pipeline.RoutingState` but the profile). The base of a static
    topology's state (`routing.pipeline`) and of the embedded broker, which keep their
    exchanges, queues and tables in these dicts."""

    def __init__(self, exchanges: dict[str, Exchange], queues: dict[str, Q]) -> None:
        self._exchanges = exchanges
        self._queues = queues
        self._tables: dict[str, BindingTable] = {}

    def exchange(self, name: str) -> Exchange | None:
        return self._exchanges.get(name)

    def has_queue(self, name: str) -> bool:
        return name in self._queues

    def table(self, exchange: str) -> BindingTable:
        """The exchange's table; an empty one for an exchange without bindings (or none)."""
        table = self._tables.get(exchange)
        if table is None:
            ex = self._exchanges.get(exchange)
            table = self._tables[exchange] = BindingTable(ex.type if ex else ExchangeType.DIRECT)
        return table
