"""The `components.schemas` of one AsyncAPI document: each schema document the payloads need,
once, with its references rewritten to point inside the AsyncAPI document.

A registry's schema refers to its own parts (`#/$defs/x`) and to sibling files
(`common.json#/$defs/level`, resolved against its `$id`); embedded, both become
`#/components/schemas/<id>/...`, and every sibling a reference reaches is embedded too. `$schema`
and `$id` are dropped: AsyncAPI reads the schema as its own format, and a `file://` `$id`
would move the base of references and show a local path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urldefrag, urljoin

from routing._frozen import thaw
from routing.errors import SchemaError
from routing.schemas import SchemaRegistry

__all__ = ["Components"]


class Components:
    """Schemas by component id; `new_id` makes an id the document has not used yet."""

    def __init__(self, registry: SchemaRegistry, new_id: Callable[..., str]) -> None:
        self.registry, self.new_id = registry, new_id
        self.schemas: dict[str, Any] = {}
        self._ids: dict[str, str] = {}  # a document's base URI -> its component id

    def add(self, schema: Mapping[str, Any]) -> str:
        """The component id of `schema` (a registry document, with its absolute `$id`)."""
        base = str(schema.get("$id", ""))
        found = self._ids.get(base)
        if found is not None:
            return found
        stem = base.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json") or "schema"
        cid = self._ids[base] = self.new_id(stem)
        self.schemas[cid] = {}  # taken before the walk: a reference may lead back here
        self.schemas[cid] = self._walk(thaw(schema), base, cid, top=True)
        return cid

    def _walk(self, node: Any, base: str, cid: str, *, top: bool = False) -> Any:
        if isinstance(node, list):
            return [self._walk(v, base, cid) for v in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if top and key in ("$schema", "$id"):
                continue
            if key == "$ref" and isinstance(value, str):
                out[key] = self._ref(value, base, cid)
            else:
                out[key] = self._walk(value, base, cid)
        return out

    def _ref(self, ref: str, base: str, cid: str) -> str:
        target, fragment = urldefrag(urljoin(base, ref))
        if fragment and not fragment.startswith("/"):
            raise SchemaError(f"{base}: $ref {ref!r} names an anchor; use a JSON pointer (#/$defs/...)")
        if target != base:
            cid = self.add(self.registry.contents(target))
        return f"#/components/schemas/{cid}{fragment}"
