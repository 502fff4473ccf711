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


_NO_CHILDREN: dict[str, _Node] = {}  # never written to: `_Node.child` replaces it first
_NO_BINDINGS: list[Binding] = []  # the same: `TopicTrie.add` replaces it first


class _Node:
    """One word of binding keys. `star` and `hash` are the children for `*` and `#` (also in
    `children`), read without a lookup; `loops` is True for a `#` node, which takes any
    number of words itself."""

    __slots__ = ("bindings", "children", "hash", "loops", "star")

    def __init__(self, loops: bool = False) -> None:
        # A leaf shares one empty dict and one empty list: most nodes of a big trie are leaves,
        # and a walk then reads no memory of their own for them but the node.
        self.children: dict[str, _Node] = _NO_CHILDREN
        self.bindings: list[Binding] = _NO_BINDINGS
        self.star: _Node | None = None
        self.hash: _Node | None = None
        self.loops = loops

    def child(self, word: str) -> _Node:
        node = self.children.get(word)
        if node is None:
            if self.children is _NO_CHILDREN:
                self.children = {}
            node = self.children[word] = _Node(loops=word == "#")
            if word == "*":
                self.star = node
            elif word == "#":
                self.hash = node
        return node

    def drop(self, word: str) -> None:
        del self.children[word]
        if not self.children:
            self.children = _NO_CHILDREN
        if word == "*":
            self.star = None
        elif word == "#":
            self.hash = None


class TopicTrie:
    """Topic bindings in a trie of words: matching costs grow with the key, not the bindings.

    A binding key without `*` or `#` matches one routing key only, itself (word for word is
    string for string): those are kept in a dict by their whole key, and only the keys with a
    wildcard go into the trie. In a big table most keys are plain, so the walk then reads a
    small trie, not the nodes of every binding (at 100,000 bindings, memory the caches do
    not hold: each node read is a miss).

    `match` walks the trie a word at a time, with the set of nodes the words so far lead to
    (as `rabbit_db_topic_exchange` walks its trie edges): one `children` lookup per node and
    word, plus the `*` and `#` children. A node is in a set once, so `#`-heavy keys cost
    polynomial time, and distinct nodes hold distinct bindings: nothing to deduplicate after."""

    __slots__ = ("_plain", "_root", "_size")

    def __init__(self, bindings: Iterable[Binding] = ()) -> None:
        self._root = _Node()
        self._plain: dict[str, list[Binding]] = {}
        self._size = 0
        for b in bindings:
            self.add(b)

    def __len__(self) -> int:
        return self._size

    def add(self, binding: Binding) -> None:
        words = split_key(binding.routing_key)
        if "*" not in words and "#" not in words:
            held = self._plain.setdefault(binding.routing_key, [])
        else:
            node = self._root
            for word in words:
                node = node.child(word)
            if node.bindings is _NO_BINDINGS:
                node.bindings = []
            held = node.bindings
        if binding not in held:
            held.append(binding)
            self._size += 1

    def remove(self, binding: Binding) -> None:
        words = split_key(binding.routing_key)
        if "*" not in words and "#" not in words:
            held = self._plain.get(binding.routing_key, [])
            if binding in held:
                held.remove(binding)
                self._size -= 1
                if not held:
                    del self._plain[binding.routing_key]
            return
        path = [self._root]
        for word in words:
            nxt = path[-1].children.get(word)
            if nxt is None:
                return
            path.append(nxt)
        if binding not in path[-1].bindings:
            return
        path[-1].bindings.remove(binding)
        self._size -= 1
        # Prune empty branches so removed bindings leave nothing to walk.
        for depth in range(len(words), 0, -1):
            node = path[depth]
            if node.bindings or node.children:
                break
            path[depth - 1].drop(words[depth - 1])

    def match(self, routing_key: str) -> list[Binding]:
        plain = self._plain.get(routing_key)
        found: list[Binding] = [] if plain is None else plain.copy()
        root = self._root
        if not root.children and not root.bindings:
            return found
        level, looped = _zero_words([root])
        for word in routing_key.split(".") if routing_key else ():
            nxt: list[_Node] = []
            add = nxt.append
            for node in level:
                if node.loops:  # `#` takes this word too
                    add(node)
                    looped = True
                exact = node.children.get(word)
                if exact is not None:
                    add(exact)
                star = node.star
                if star is not None and star is not exact:
                    add(star)
            if not nxt:
                return found
            level, hashes = _zero_words(nxt)
            if looped or hashes:  # only a `#` reaches one node along two paths
                level = list(dict.fromkeys(level))
            looped = False
        for node in level:
            if node.bindings:
                found += node.bindings
        return found


def _zero_words(nodes: list[_Node]) -> tuple[list[_Node], bool]:
    """`nodes` with the `#` children they have (and theirs): `#` may match zero words.
    Extends the list it is given; True when it added any."""
    added = False
    i = 0
    while i < len(nodes):
        hash_node = nodes[i].hash
        if hash_node is not None:
            nodes.append(hash_node)
            added = True
        i += 1
    return nodes, added


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
