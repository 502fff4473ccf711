"""The fast path of schema validation: jsonschema-rs may say "valid" only where jsonschema would.

Each schema is rewritten for jsonschema-rs (`_for_rs`) wherever the two would disagree:
format checks and patterns Python reads differently, numbers jsonschema compares exactly,
keywords jsonschema ignores. What cannot be made to agree is handed back to jsonschema's
own code, or the whole schema is left to jsonschema. `routing.schemas` uses `compile_fast`.
"""

from __future__ import annotations

import importlib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from loguru import logger

from routing.errors import SchemaError

FAST_ENV = "ROUTING_SCHEMAS_FAST"
_Validator = Draft202012Validator


_DELEGATE = "x-routing-jsonschema:"  # a keyword jsonschema-rs hands back to jsonschema's own code
_IGNORED = "x-routing-ignored:"  # a keyword jsonschema ignores in draft 2020-12, hidden from jsonschema-rs
_COMPARED = {"const", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
_DELEGATED = (*_COMPARED, "pattern", "format", "multipleOf")
_KEPT = {"$id", "$schema", "$anchor", "$dynamicAnchor", "$defs", "definitions", "$comment", "title"}
_KEPT |= {"description", "default", "examples", "deprecated", "readOnly", "writeOnly"}
_KEPT |= {"contentEncoding", "contentMediaType", "contentSchema"}  # annotations in both
_SCHEMA_MAPS = {"properties", "dependentSchemas", "$defs", "definitions"}
_SUBSCHEMAS = {"additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else"}
_SUBSCHEMAS |= {"unevaluatedItems", "unevaluatedProperties", "contentSchema", "allOf", "anyOf", "oneOf"}
_SUBSCHEMAS |= {"prefixItems"}
# Past 2**53 an int is no longer exactly a float: Python compares exactly, jsonschema-rs may not.
_EXACT_INT = 2**53
_ESCAPED = set(".^$*+?()[]{}|\\/-")  # escaped, a literal in both regex engines
_REPEAT = re.compile(r"\{[0-9]+(,[0-9]*)?\}")
# What Python's `\s` matches in a str pattern (str.isspace()), as a class body; jsonschema-rs's
# `\s` leaves out \x1c-\x1f and \x85 and takes \ufeff. tests/test_schema_fast_path.py checks it.
_SPACE = "\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _date_time_regex() -> str:
    """jsonschema's date-time check, `rfc3339_validator.validate_rfc3339(value.upper())`, as one
    regex that jsonschema-rs runs natively: its RFC3339_REGEX (`re.ASCII`, `.match`, so `$`
    also takes a final newline), no year 0, and no day past the end of its month. `upper()`
    only matters for `t` and `z` (no other character upper-cases into this alphabet except as
    "T" followed by a combining mark, or "ST"), so they are allowed in either case."""
    year = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
    leap = "(?:0[48]|[2468][048]|[13579][26])"
    leap_year = f"(?:[0-9]{{2}}{leap}|{leap}00)"
    day = (
        "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
        "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
        "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    )
    hours = "(?:[01][0-9]|2[0-3])"
    return (
        f"^(?:{year}-{day}|{leap_year}-02-29)[Tt]{hours}:[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?"
        f"(?:[Zz]|[+-]{hours}:[0-5][0-9])\\n?$"
    )


# Probes of the edges where the regex and jsonschema's checker could part: checked once per
# process, so a jsonschema that checks date-time otherwise gets delegation, not a wrong answer.
_DATE_TIME = _date_time_regex()
_DATE_TIME_PROBES = (
    "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2000-02-29T23:59:59.5+01:00", "1900-02-29T00:00:00Z",
    "0000-01-01T00:00:00Z", "0004-02-29T00:00:00Z", "2016-12-31T23:59:60Z", "2024-04-31T00:00:00Z",
    "2024-01-01t00:00:00z", "2024-01-01T00:00:00Z\n", "2024-01-01T00:00:00Z\n\n", "2024-01-01T24:00:00Z",
    "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00.Z", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00",
    "2024-13-01T00:00:00Z", "2024-01-01\u1e9700:00:00Z", "\uff12024-01-01T00:00:00Z", " 2024-01-01T00:00:00Z",
)  # fmt: skip


@cache
def _native_date_time(rs: Any) -> bool:
    """Whether jsonschema-rs may check date-time with `_DATE_TIME` (jsonschema checks it, and
    the regex gives jsonschema's answer on every probe)."""
    checker = _Validator.FORMAT_CHECKER
    if "date-time" not in checker.checkers:
        return False  # nothing to check: rfc3339-validator is missing
    regex = rs.validator_for({"pattern": _DATE_TIME})
    return all(regex.is_valid(probe) == checker.conforms(probe, "date-time") for probe in _DATE_TIME_PROBES)


class _NotExact(Exception):
    """jsonschema-rs cannot be made to agree with jsonschema on this schema."""


def want_fast(fast: bool | None) -> bool | None:
    if fast is not None:
        return fast
    setting = os.environ.get(FAST_ENV, "").strip().lower()
    if setting in ("", "auto"):
        return None
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    raise SchemaError(f"{FAST_ENV}={setting!r}: use 0 (jsonschema only), 1 (require jsonschema-rs) or auto")


def compile_fast(
    documents: Mapping[str, Mapping[str, Any]], fast: bool | None, type_of: Callable[[str], str | None]
) -> dict[str, Any]:
    """`is_valid` of a jsonschema-rs validator for the envelope and each type, for the schemas
    it can check exactly as jsonschema does; the others are left out (jsonschema checks them)."""
    if fast is False:
        return {}
    try:
        rs = importlib.import_module("jsonschema_rs")
    except ImportError as exc:
        if fast:
            raise SchemaError(
                "fast=True needs jsonschema-rs, a dependency of routing this install lacks: pip install jsonschema-rs"
            ) from exc
        logger.debug("jsonschema-rs is not installed; schemas are checked by jsonschema alone")
        return {}
    converted = {}
    for uri, schema in documents.items():
        try:
            converted[uri] = _for_rs(schema, rs)
        except _NotExact as exc:
            logger.debug("{} is checked by jsonschema alone: {}", uri, exc)
    resources = [*converted.items(), *((s["$id"], s) for uri, s in converted.items() if s["$id"] != uri)]

    def refuse(uri: str) -> Any:
        raise SchemaError(f"{uri} is not in the schema folder; schemas are never fetched")

    registry = rs.Registry(resources, draft=rs.Draft202012, retriever=refuse)
    context = _Validator({}, format_checker=_Validator.FORMAT_CHECKER)
    keywords = {_DELEGATE + name: _delegate(name, context) for name in _DELEGATED}
    compiled = {}
    for uri, schema in converted.items():
        name = type_of(uri)
        if name is None:
            continue
        try:
            validator = rs.Draft202012Validator(
                schema, registry=registry, retriever=refuse, validate_formats=False, keywords=keywords
            )
        except Exception as exc:  # a $ref into a schema left out above, a pointer into a renamed keyword
            logger.debug("{} is checked by jsonschema alone: {}", uri, exc)
            continue
        compiled[name] = validator.is_valid
    return compiled


def _delegate(keyword: str, context: Draft202012Validator) -> type:
    """A jsonschema-rs keyword that runs jsonschema's own implementation of `keyword`."""
    implementation = _Validator.VALIDATORS[keyword]

    class Delegated:
        def __init__(self, parent_schema: dict[str, Any], value: Any, schema_path: list[str | int]) -> None:
            self.value, self.schema = value, parent_schema

        def validate(self, instance: Any) -> None:
            for _ in implementation(context, self.value, instance, self.schema):
                raise ValueError(keyword)

    class Pattern:  # what jsonschema's `pattern` does, without its per-call type lookup
        def __init__(self, parent_schema: dict[str, Any], value: str, schema_path: list[str | int]) -> None:
            self.search = re.compile(value).search

        def validate(self, instance: Any) -> None:
            if isinstance(instance, str) and not self.search(instance):
                raise ValueError(keyword)

    return Pattern if keyword == "pattern" else Delegated


def _for_rs(node: Any, rs: Any) -> Any:
    """A copy of a schema that jsonschema-rs evaluates exactly as jsonschema does.

    Where the two differ, the keyword is renamed so that jsonschema-rs calls jsonschema's code
    for it (`_delegate`), or ignores it:
    - `format`, when jsonschema checks that format at all: its checkers differ from
      jsonschema-rs's own (rfc3339-validator refuses leap seconds and year 0, jsonschema-rs
      takes them; jsonschema checks "uri" only with rfc3987 installed...), so jsonschema-rs's
      `validate_formats` stays off. date-time, the one our schemas use, becomes the native
      regex `_DATE_TIME` instead (a Python call per timestamp would cost more than the rest).
    - `pattern`, unless `_native_pattern` proves both engines match the same strings: Python's
      `\\d`, `\\w`, `\\s` are Unicode, jsonschema-rs's ASCII, so `\\S` matches "\\x1c" only there.
    - `multipleOf` (float arithmetic differs) and ints past 2**53 in `const`, `enum` and bounds.
    - keywords that jsonschema ignores in draft 2020-12 (`dependencies`, `additionalItems`...):
      jsonschema-rs applies some of them. A `$ref` into one then fails to compile: no fast path.
    A `patternProperties` regex that is not provably the same cannot be handed back (it also
    decides what `additionalProperties` sees): the whole schema is then jsonschema's alone.
    """
    if isinstance(node, list):
        return [_for_rs(item, rs) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    also: list[dict[str, str]] = []  # native checks to run beside the others (in `allOf`)
    for key, value in node.items():
        native = _native_pattern(value, rs) if key == "pattern" and isinstance(value, str) else None
        if key.startswith((_DELEGATE, _IGNORED)):
            raise _NotExact(f"keyword {key!r} is reserved")
        if native is not None:
            out[key] = native
        elif key in ("pattern", "multipleOf") or (key in _COMPARED and _inexact(value)):
            out[_DELEGATE + key] = value
        elif key == "format" and value == "date-time" and _native_date_time(rs):
            out[_IGNORED + key] = value
            also.append({"pattern": _DATE_TIME})
        elif key == "format":
            checked = isinstance(value, str) and value in _Validator.FORMAT_CHECKER.checkers
            out[_DELEGATE + key if checked else _IGNORED + key] = value
        elif key == "patternProperties" and isinstance(value, dict):
            out[key] = {}
            for regex, subschema in value.items():
                native = _native_pattern(regex, rs)
                if native is None or native in out[key]:
                    raise _NotExact(f"patternProperties {regex!r} may match other names in jsonschema-rs")
                out[key][native] = _for_rs(subschema, rs)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _for_rs(subschema, rs) for name, subschema in value.items()}
        elif key in _SUBSCHEMAS:  # a schema, or a list of them
            out[key] = _for_rs(value, rs)
        elif key in _KEPT or key in _Validator.VALIDATORS:  # values (`required`, `enum`...), not schemas
            out[key] = value
        else:
            out[_IGNORED + key] = value
    if also:  # appended, so `$ref`s to "#/.../allOf/0" still find what they did
        out["allOf"] = [*out.get("allOf", []), *also]
    return out


def _inexact(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) > _EXACT_INT
    if isinstance(value, list):
        return any(_inexact(v) for v in value)
    if isinstance(value, dict):
        return any(_inexact(v) for v in value.values())
    return False


@cache
def _native_pattern(pattern: str, rs: Any) -> str | None:
    """`pattern` for jsonschema-rs when it matches exactly the strings Python's `re.search`
    does, else None. Allowed: literals, `.`, `^`, a final `$`, groups without `(?`, `|`,
    greedy and lazy repeats, escaped punctuation, `\\s` and `\\S`, and classes of characters,
    ranges and `\\s`. Python's `$` also matches before a final newline: a final `$` becomes
    `\\n?$`; Python's `\\s` is not jsonschema-rs's: it becomes the class of what it matches."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        width = 1
        if c == "\\":
            token, width = _escape(pattern, i, f"[{_SPACE}]", f"[^{_SPACE}]"), 2
        elif c == "[":
            found = _class(pattern, i)
            token, width = found if found is not None else (None, 0)
        elif c == "{":
            repeat = _REPEAT.match(pattern, i)
            token = repeat.group() if repeat is not None and out else None
            width = len(token or "")
        elif c == "$":
            token = "\\n?$" if i == n - 1 else None
        else:  # `(?` flags, lookarounds, named groups; a stray `]` or `}`
            token = None if c in "]}" or pattern.startswith("(?", i) else c
        if token is None:
            return None
        i += width
        if token in ("^", "\\n?$") and pattern[i : i + 1] in ("*", "+", "?", "{"):
            return None  # a repeated anchor
        if c in "*+?{" and pattern[i : i + 1] == "+":
            return None  # a possessive repeat (Python 3.11)
        out.append(token)
    native = "".join(out)
    try:
        rs.validator_for({"pattern": native})
    except Exception:
        return None
    return native


def _escape(pattern: str, i: int, space: str | None, not_space: str | None) -> str | None:
    """The escape at `i` for jsonschema-rs: punctuation as it is, `\\s`/`\\S` as given; None
    for the rest (`\\d`, `\\w`, `\\b`, `\\A`, `\\Z`, `\\1`, `\\<`... are not the same in both)."""
    c = pattern[i + 1 : i + 2]
    if c in _ESCAPED:
        return pattern[i : i + 2]
    return {"s": space, "S": not_space}.get(c)


def _class(pattern: str, start: int) -> tuple[str, int] | None:
    """The class `[...]` at `start` for jsonschema-rs and its length in `pattern`, if both
    engines read it alike: characters, ranges and `\\s`; `-` first or last; no `]` first, no
    nested `[` (a POSIX class in Rust), no `&&`, `--`, `~~` (set operations in Rust)."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("-", i):
        i += 1
    out = [pattern[start:i]]
    first = i
    while i < len(pattern):
        if pattern[i] == "]":
            body = pattern[start:i]
            if (i == first and not body.endswith("-")) or any(op in body for op in ("&&", "--", "~~")):
                return None
            return "".join(out) + "]", i + 1 - start
        atom = _class_atom(pattern, i)
        if atom is None:
            return None
        out.append(atom)
        i += 2 if pattern[i] == "\\" else 1
        if pattern.startswith("-]", i):
            out.append("-")
            i += 1
        elif pattern.startswith("-", i):
            end = _class_atom(pattern, i + 1)
            if end is None or atom == _SPACE or end == _SPACE:
                return None
            out.append("-" + end)  # a range
            i += 3 if pattern[i + 1] == "\\" else 2
    return None


def _class_atom(pattern: str, i: int) -> str | None:
    c = pattern[i : i + 1]
    if c in ("", "[", "]", "-"):
        return None
    return _escape(pattern, i, _SPACE, None) if c == "\\" else c


def fast_accepts(
    fast: Mapping[str, Any], envelope_name: str, document: dict[str, Any], unknown_ok: bool
) -> bool:
    """Whether the compiled validators `fast` (by type; the envelope's under `envelope_name`)
    accept a plain-JSON envelope and its data. False means "ask jsonschema": invalid, no fast
    validator for its type (`unknown_ok`: a type without a schema is allowed), or a value
    jsonschema-rs cannot convert (a lone surrogate...)."""
    envelope = fast.get(envelope_name)
    if envelope is None:
        return False
    try:
        if not envelope(document):
            return False
        event_type = document.get("type")
        if not isinstance(event_type, str) or not event_type:
            return True
        check = fast.get(event_type)
        return check(document.get("data")) if check is not None else unknown_ok
    except Exception:
        return False


def plain_json(value: Any) -> bool:
    """Made only of what json.loads returns (exact types; finite floats; ints that are exactly
    floats): jsonschema-rs reads other Python values its own way (a tuple as an array, an Enum
    as its value, NaN as null), where jsonschema refuses them or compares them otherwise."""
    kind = type(value)
    if kind is dict:
        try:
            "".join(value)  # every key a str, at C speed (a str Enum passes: both read it alike)
        except TypeError:
            return False
        items: Iterable[Any] = value.values()
    elif kind is list:
        items = value
    elif kind is float:
        return math.isfinite(value)
    elif kind is int:
        number: int = value
        return -_EXACT_INT <= number <= _EXACT_INT
    else:
        return kind is str or kind is bool or value is None
    for item in items:
        kind = type(item)
        if kind is str or kind is bool or item is None or (kind is int and -_EXACT_INT <= item <= _EXACT_INT):
            continue
        if not plain_json(item):
            return False
    return True
