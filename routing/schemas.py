"""JSON Schemas for envelopes and their `data`, loaded once, one compiled validator per type.

A schema folder holds `envelope.schema.json` (the CloudEvents attributes) and one
`<event type>.schema.json` per event type: **the file name is the type**, so
`log.record.schema.json` checks the `data` of events whose `type` is `log.record`. Other
`*.json` files in the folder are loaded too, as targets for `$ref` only. Every schema is
draft 2020-12. A schema without `$id` is known by its file's URI, so `"$ref":
"common.json#/$defs/level"` finds a sibling file. Nothing is ever fetched from the network:
a `$ref` that the folder cannot resolve is a `SchemaError` at load time.

The bundled schemas ship inside the package (`routing.schemas_data`); a user folder is
loaded on top of them, and its files win over bundled ones of the same name.

jsonschema is the reference. `jsonschema-rs` (a dependency: a plain `pip install routing`
has it) also compiles each schema, and a document it accepts is valid without running
jsonschema (~30x faster); anything else goes to jsonschema, which gives the verdict and the
messages. So the fast path may only say "valid" where jsonschema would: see `routing._schema_fast`.
`ROUTING_SCHEMAS_FAST=0` (or `fast=False`) turns it off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urldefrag, urljoin

import jsonschema.exceptions
import referencing.exceptions
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from routing._json import parse_json
from routing._schema_fast import compile_fast, fast_accepts, plain_json, want_fast
from routing.errors import SchemaError, ValidationError

__all__ = ["DRAFT", "ENVELOPE", "SUFFIX", "SchemaRegistry", "bundled_directory", "json_path"]


ENVELOPE = "envelope"  # envelope.schema.json: not an event type
SUFFIX = ".schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

_Validator = Draft202012Validator
# Both kinds carry the same fields (validator, instance, path...).
_JsonSchemaError: TypeAlias = jsonschema.exceptions.ValidationError | jsonschema.exceptions.SchemaError
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def bundled_directory() -> Path:
    """Where the schemas shipped with the package are, installed or in a checkout."""
    try:
        found = resources.files("routing.schemas_data")
    except ModuleNotFoundError:  # a source checkout that was never installed
        return Path(__file__).resolve().parent.parent / "schemas"
    return Path(str(found))


class SchemaRegistry:
    """Compiled validators for the envelope and for each event type's `data`.

    Build it once (it reads and checks every file) and share it: validating is then only
    running the compiled validators. `allow_unknown` accepts event types that have no schema
    (their `data` goes unchecked); otherwise they are refused.
    """

    def __init__(
        self,
        documents: Mapping[str, Mapping[str, Any]],
        *,
        allow_unknown: bool = False,
        fast: bool | None = None,
    ) -> None:
        """`documents` maps a URI to a parsed schema; file names become types in `from_directory`.
        Use `from_directory` or `bundled` rather than this. `fast`: None uses jsonschema-rs when
        it is installed (unless `ROUTING_SCHEMAS_FAST=0`), True requires it, False never uses it."""
        self.allow_unknown = allow_unknown
        # Every schema gets an absolute `$id` (its file's URI when it has none), so relative
        # `$ref`s resolve the same way when checked at load and in the compiled validator.
        documents = {uri: _with_absolute_id(uri, schema) for uri, schema in documents.items()}
        resources = []
        for uri, schema in documents.items():
            resource = Resource.from_contents(schema, default_specification=DRAFT202012)
            resources.append((uri, resource))
            if schema["$id"] != uri:
                resources.append((schema["$id"], resource))  # also reachable by its declared id
        registry: Registry = Registry().with_resources(resources)
        try:
            self._registry = registry.crawl()
        except referencing.exceptions.Unresolvable as exc:
            raise SchemaError(f"schema reference cannot be resolved: {exc}") from exc
        for uri, schema in documents.items():
            _check(uri, schema, self._registry)
        types: dict[str, Any] = {}
        envelope = None
        for uri, schema in documents.items():
            name = _type_of(uri)
            if name is None:
                continue
            validator = _Validator(schema, registry=self._registry, format_checker=_Validator.FORMAT_CHECKER)
            if name == ENVELOPE:
                envelope = validator
            else:
                types[name] = validator
        if envelope is None:
            raise SchemaError(f"no {ENVELOPE}{SUFFIX} among the schemas; add one or load the bundled ones")
        self._envelope = envelope
        self._bundled_envelope = _without_id(envelope.schema) == _bundled_envelope()
        self._types = types
        self._fast: dict[str, Callable[[Any], bool]] = compile_fast(documents, want_fast(fast), _type_of)

    @classmethod
    def from_directory(
        cls,
        directory: str | Path,
        *,
        include_bundled: bool = True,
        allow_unknown: bool = False,
        fast: bool | None = None,
    ) -> SchemaRegistry:
        """Load every `*.json` in `directory` (not its subfolders), over the bundled schemas."""
        documents = dict(_read_folder(bundled_directory())) if include_bundled else {}
        for uri, schema in _read_folder(Path(directory)):
            # A user file replaces the bundled one with the same name (say, a stricter envelope).
            documents = {k: v for k, v in documents.items() if _name(k) != _name(uri)}
            documents[uri] = schema
        return cls(documents, allow_unknown=allow_unknown, fast=fast)

    @classmethod
    def bundled(cls, *, allow_unknown: bool = False, fast: bool | None = None) -> SchemaRegistry:
        """The schemas shipped with `routing`, loaded once per process."""
        return _bundled(allow_unknown, fast)

    @property
    def fast(self) -> bool:
        """Whether jsonschema-rs checks envelopes first (it compiled the envelope schema)."""
        return ENVELOPE in self._fast

    @property
    def fast_types(self) -> tuple[str, ...]:
        """The event types whose `data` jsonschema-rs checks first, sorted."""
        return tuple(sorted(name for name in self._fast if name != ENVELOPE))

    @property
    def types(self) -> tuple[str, ...]:
        """The event types that have a schema, sorted."""
        return tuple(sorted(self._types))

    def schema(self, event_type: str) -> Mapping[str, Any]:
        """The schema for `event_type`'s data (`envelope` for the envelope's own)."""
        validator = self._envelope if event_type == ENVELOPE else self._types.get(event_type)
        if validator is None:
            raise SchemaError(f"no schema for event type {event_type!r}; known: {', '.join(self.types)}")
        schema: Mapping[str, Any] = validator.schema
        return schema

    def contents(self, uri: str) -> Mapping[str, Any]:
        """The schema document known by `uri` (its file's URI or its declared `$id`): where a
        `$ref` of another one leads. Every document carries its absolute `$id`."""
        try:
            found: Mapping[str, Any] = self._registry.contents(uri)
        except referencing.exceptions.NoSuchResource:
            raise SchemaError(f"no schema document is known as {uri!r}") from None
        return found

    @property
    def checks_attributes(self) -> bool:
        """Whether the envelope schema is the bundled one, which checks all `Envelope` checks but
        extension value types (1.0 is a JSON Schema integer): what it passed is not checked again."""
        return self._bundled_envelope

    def problems(self, document: Mapping[str, Any]) -> list[str]:
        """Every way `document` (an envelope as a JSON object) breaks its schemas, one line
        each, sorted by path; empty when it is valid."""
        if self._fast_accepts(document):
            return []
        return [f"{path}: {message}" for path, message in self._find(document)]

    def validate(self, document: Mapping[str, Any], *, parsed: bool = False) -> None:
        """Raise `ValidationError` naming every failing path, or return None. `parsed`: `document`
        is as `parse_json_exact` returned it, every integer exact: the fast path need not check it."""
        if self._fast_parsed(document) if parsed else self._fast_accepts(document):
            return
        found = self._find(document)
        if found:
            raise ValidationError([f"{path}: {message}" for path, message in found], path=found[0][0])

    def _fast_accepts(self, document: Any) -> bool:
        """True only when jsonschema-rs accepts the envelope and its data; False means "ask
        jsonschema" (invalid, no fast validator for the type, or not plain JSON)."""
        if ENVELOPE not in self._fast or type(document) is not dict or not plain_json(document):
            return False
        return self._fast_parsed(document)

    def _fast_parsed(self, document: Any) -> bool:
        """`_fast_accepts` for a document known to be plain JSON."""
        if type(document) is not dict:
            return False
        kind = document.get("type")
        unknown_ok = self.allow_unknown and isinstance(kind, str) and kind not in self._types
        return fast_accepts(self._fast, ENVELOPE, document, unknown_ok)

    def _find(self, document: Mapping[str, Any]) -> list[tuple[str, str]]:
        found = [p for e in self._envelope.iter_errors(document) for p in _problems(e, "")]
        event_type = document.get("type")
        if isinstance(event_type, str) and event_type:
            validator = self._types.get(event_type)
            if validator is not None:
                found += [
                    p for e in validator.iter_errors(document.get("data")) for p in _problems(e, "data")
                ]
            elif not self.allow_unknown:
                known = ", ".join(self.types) or "none"
                found.append(
                    ("type", f"unknown event type {event_type!r}; add {event_type}{SUFFIX} (known: {known})")
                )
        return sorted(set(found))


@cache
def _bundled_envelope() -> dict[str, Any]:
    return _without_id(parse_json((bundled_directory() / f"{ENVELOPE}{SUFFIX}").read_bytes()))


def _without_id(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "$id"}


@cache
def _bundled(allow_unknown: bool, fast: bool | None) -> SchemaRegistry:
    return SchemaRegistry(dict(_read_folder(bundled_directory())), allow_unknown=allow_unknown, fast=fast)


def _with_absolute_id(uri: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    declared = schema.get("$id", "")
    if not isinstance(declared, str):
        raise SchemaError(f"{uri.removeprefix('file://')}: $id must be a string, got {declared!r}")
    return {**schema, "$id": urljoin(uri, declared)}


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


def _type_of(uri: str) -> str | None:
    """The event type a schema's file name gives (`envelope` included), or None for `$ref`-only files."""
    name = _name(uri)
    if not name.endswith(SUFFIX):
        return None
    return name[: -len(SUFFIX)] or None


def _read_folder(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(URI, schema) for each `*.json` file, keyed by file URI so types keep their file name."""
    if not directory.is_dir():
        raise SchemaError(f"schema folder {str(directory)!r} does not exist or is not a folder")
    for path in sorted(directory.glob("*.json")):
        uri = path.resolve().as_uri()
        try:
            schema = parse_json(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise SchemaError(f"{path}: cannot read it as JSON: {exc}") from exc
        if not isinstance(schema, dict):
            raise SchemaError(f"{path}: a schema must be a JSON object, not {type(schema).__name__}")
        declared = schema.get("$schema", DRAFT)
        if not isinstance(declared, str) or declared.rstrip("#") != DRAFT:
            raise SchemaError(f"{path}: $schema is {declared!r}; use draft 2020-12 ({DRAFT})")
        yield uri, schema


def _check(uri: str, schema: Mapping[str, Any], registry: Registry) -> None:
    """The schema is itself valid, and every `$ref` in it resolves without the network."""
    where = uri.removeprefix("file://")
    try:
        _Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        (path, message), *_ = _problems(exc, "schema") or [("schema", exc.message)]
        raise SchemaError(f"{where}: not a valid schema: {path}: {message}") from exc
    for base, ref in _refs(schema, uri):
        resolver = registry.resolver(base_uri=base)
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable as exc:
            target = urldefrag(urljoin(base, ref)).url or base
            raise SchemaError(
                f"{where}: $ref {ref!r} cannot be resolved ({target} is not in the schema folder;"
                " schemas are never fetched from the network)"
            ) from exc


def _refs(node: Any, base: str) -> Iterable[tuple[str, str]]:
    """(base URI, $ref) for every reference, following `$id` changes of base."""
    if isinstance(node, dict):
        if isinstance(node.get("$id"), str):
            base = urljoin(base, node["$id"])
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield base, value
            elif key not in ("const", "enum", "examples", "default"):
                yield from _refs(value, base)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value, base)


def json_path(prefix: str, parts: Iterable[str | int]) -> str:
    """`data.keys[2]` from a root name and path parts; odd keys are quoted."""
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


def _json_type(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return "integer"
    if isinstance(value, float):
        return "number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _problems(error: _JsonSchemaError, root: str) -> list[tuple[str, str]]:
    """(path, readable message) for one jsonschema error; `required` and
    `additionalProperties` give one line per property named."""
    path = json_path(root, error.absolute_path)
    rule, expected, value = error.validator, error.validator_value, error.instance
    subschema = error.schema if isinstance(error.schema, Mapping) else {}
    if rule == "required" and isinstance(value, Mapping):
        return [(json_path(path, [name]), "required") for name in expected if name not in value]
    if rule == "additionalProperties" and isinstance(value, Mapping):
        allowed = subschema.get("properties", {})
        patterns = [re.compile(p) for p in subschema.get("patternProperties", {})]
        extra = [k for k in value if k not in allowed and not any(p.search(k) for p in patterns)]
        names = f"; names must match {' or '.join(p.pattern for p in patterns)}" if patterns else ""
        return [(json_path(path, [k]), f"not allowed here{names}") for k in extra]
    if "propertyNames" in error.relative_schema_path and isinstance(value, str):
        if error.validator == "pattern":
            return [(json_path(path, [value]), f"name must match {error.validator_value}")]
        return [(json_path(path, [value]), f"not an allowed name ({_message(error)})")]
    return [(path or "envelope", _message(error))]


def _message(error: _JsonSchemaError) -> str:
    rule, expected, value = error.validator, error.validator_value, error.instance
    if rule == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {wanted}, got {_json_type(value)}"
    messages: dict[str, Callable[[], str]] = {
        "const": lambda: f"must be {_short(expected)}",
        "enum": lambda: f"must be one of {', '.join(_short(v) for v in expected)}",
        "format": lambda: f"not a valid {expected}: {_short(value)}",
        "pattern": lambda: f"{_short(value)} does not match {expected}",
        "minLength": lambda: "must not be empty" if expected == 1 else f"shorter than {expected} characters",
        "maxLength": lambda: f"longer than {expected} characters",
        "minimum": lambda: f"{value} is less than the minimum {expected}",
        "maximum": lambda: f"{value} is more than the maximum {expected}",
        "exclusiveMinimum": lambda: f"{value} must be more than {expected}",
        "exclusiveMaximum": lambda: f"{value} must be less than {expected}",
        "minItems": lambda: "must not be empty" if expected == 1 else f"needs at least {expected} items",
        "maxItems": lambda: f"has more than {expected} items",
        "uniqueItems": lambda: "has repeated items",
        "oneOf": lambda: _alternatives(error, "exactly one of"),
        "anyOf": lambda: _alternatives(error, "one of"),
    }
    if rule in messages:
        return messages[rule]()
    return f"{error.message[:200]} ({rule})"


def _alternatives(error: _JsonSchemaError, how: str) -> str:
    """`needs exactly one of keys, pattern` when the alternatives are `required` lists."""
    options = error.validator_value
    if all(isinstance(o, Mapping) and set(o) == {"required"} for o in options):
        names = ", ".join("+".join(o["required"]) for o in options)
        # oneOf with an empty context: several alternatives matched, not none.
        several = " (not several)" if error.validator == "oneOf" and not error.context else ""
        return f"needs {how} {names}{several}"
    if error.validator == "oneOf" and not error.context:
        return f"matches several of the {len(options)} allowed forms; it must match exactly one"
    reasons = sorted({_message(sub) for sub in error.context or ()})
    return f"matches none of the {len(options)} allowed forms ({'; '.join(reasons)})"
