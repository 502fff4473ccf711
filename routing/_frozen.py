"""An immutable, hashable mapping, so that topology values with arguments stay hashable.

`types.MappingProxyType` is read-only but not hashable; this one is both, and `freeze`
turns nested dicts and lists into it and tuples all the way down.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class FrozenDict(Mapping[str, Any]):
    """A read-only dict with a hash. Keeps insertion order, as AMQP tables do."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = {k: freeze(v) for k, v in (data or {}).items()}
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return repr(self._data)


EMPTY = FrozenDict()


_SCALARS = frozenset((str, int, float, bool, type(None), bytes))


def freeze(value: Any) -> Any:
    """Deeply freeze JSON-like data: dicts become FrozenDict, lists become tuples."""
    kind = type(value)
    if kind in _SCALARS:  # the common case, before the slower ABC checks
        return value
    if kind is dict:
        return FrozenDict(value)
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict(value)
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The plain-dict, plain-list twin of `freeze`, for JSON and for pika."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is FrozenDict:
        return {k: thaw(v) for k, v in value._data.items()}
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value
