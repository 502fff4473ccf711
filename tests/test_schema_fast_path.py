"""The jsonschema-rs fast path gives jsonschema's verdict, and jsonschema's messages, on every document.

The fast path may only say "valid" where jsonschema would (`SchemaRegistry._fast_accepts`); it
is built to agree exactly, so these tests hold it to that: on every plain-JSON document drawn
here, `_fast_accepts` is True exactly when jsonschema finds no problem, and the fast registry
reports the same problems as the jsonschema-only one. Documents are mutations of valid ones
(missing fields, wrong types, extra names, bounds, formats, the characters where Python's and
Rust's regexes part) and arbitrary JSON drawn by hypothesis.
"""

from __future__ import annotations

import copy
import enum
import json
import math
import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing._schema_fast import FAST_ENV, _native_pattern
from routing._schema_fast import plain_json as _plain
from routing.errors import SchemaError, ValidationError
from routing.schemas import SUFFIX, SchemaRegistry, bundled_directory

rs = pytest.importorskip("jsonschema_rs")

# Known-valid `data` for every bundled type: the seeds that mutations start from.
VALID: dict[str, list[Any]] = {
    "log.record": [
        {"level": "info", "service": "api", "message": "", "time": "2024-01-01T00:00:00Z"},
        {"level": "error", "service": "billing", "logger": "billing.payments", "message": "declined",
         "time": "2024-05-01T12:00:00.123456+02:00", "host": "b-7f9c", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
         "fields": {"invoice": "2024-0042", "amount_cents": 129900, "tags": ["eu", "card"]}},
    ],
    "cache.invalidate": [
        {"cache": "products", "keys": ["p-1", "p-2"], "reason": "price", "version": 3},
        {"cache": "products", "pattern": "p-*", "reason": "bulk import"},
    ],
    "config.changed": [
        {"service": "billing", "keys": ["tax.rate"], "version": 12},
        {"service": "billing", "keys": ["a", "b"], "version": "9f2c", "previous_version": 11, "changed_by": "ops"},
    ],
    "task.resize_image": [
        {"input": "in/a.png", "width": 100, "height": 50},
        {"id": 1, "action": "resize_image", "input": "a.png", "output": "b.png", "width": 1, "height": 65535,
         "keep_aspect": True},
        {"id": "job-7", "action": "resize_image"},
    ],
}  # fmt: skip
ENVELOPE = {
    "specversion": "1.0", "id": "e-1", "source": "urn:svc:billing", "type": "log.record",
    "time": "2024-05-01T12:00:00Z", "subject": "invoice/42", "datacontenttype": "application/json",
    "dataschema": "urn:schema:log.record", "tenant": "acme", "retries": 2, "replay": False,
}  # fmt: skip

# Values that sit on the edges of what the bundled schemas say, or of where jsonschema and
# jsonschema-rs (Python's `re` and Rust's regex) could part.
DATE_TIMES = [
    "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T23:59:59.999+01:00",
    "2026-13-45T00:00:00Z", "2016-12-31T23:59:60Z", "0000-01-01T00:00:00Z", "2024-01-01t00:00:00z",
    "2024-01-01T00:00:00Z\n", "2024-01-01T00:00:00Z\n\n", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00+24:00",
    "2024-01-01T00:00:00.Z", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00", "2024-04-31T10:00:00-05:30",
    "2024-01-01\u1e9700:00:00Z", "\uff12024-01-01T00:00:00Z", "٢٠٢٤-01-01T00:00:00Z", "noon",
]  # fmt: skip
ODD_STRINGS = [
    "", "x", "x\n", "\n", " x", "\x1c", "a\x1c", "\ufeff", "\x85", "\u3000", "٣", "ü", "a.b", "A", "p-*",
    "not a uri", "urn:x", "urn:x\n", "urn:x\x1c", "urn:\ufeff", "urn:x y", "a:\x85", "http://example.com/a b",
    "application/json", "a/b;x", "a/b\n", "a/b\x1c;x", "a/b\ufeff;x", "a/b\u3000;charset=utf-8", "a/b ;", "a/",
    "0" * 32, "0" * 32 + "\n", "0" * 31 + "٣", "A" * 32, "g" * 32, "0" * 33, "x" * 255, "x" * 256,
    "debug", "critical", "loud", "resize_image", "1.0",
]  # fmt: skip
ODD_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 1.5, -0.0, 65535, 65536, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1,
    2**53, 1e300, [], {}, ["a"], ["a", "a"], ["a", ""], [1], ["a", 3], {"a": 1}, *ODD_STRINGS, *DATE_TIMES,
]  # fmt: skip
EXTRA_NAMES = ["extra", "x1", "Tenant", "a.b", "ü", "", "tenant\n", "data2"]


@pytest.fixture(scope="module")
def fast() -> SchemaRegistry:
    registry = SchemaRegistry.bundled(fast=True)
    assert registry.fast
    return registry


@pytest.fixture(scope="module")
def slow() -> SchemaRegistry:
    registry = SchemaRegistry.bundled(fast=False)
    assert not registry.fast
    return registry


def bundled_schemas() -> dict[str, dict[str, Any]]:
    return {
        path.name.removesuffix(SUFFIX): json.loads(path.read_text())
        for path in sorted(bundled_directory().glob(f"*{SUFFIX}"))
    }


def envelope(event_type: str, data: Any) -> dict[str, Any]:
    return {**ENVELOPE, "type": event_type, "data": data}


def mutations(value: dict[str, Any], schema: dict[str, Any], *, objects_only: bool = False) -> Iterator[Any]:
    """The seed, then each property dropped, set to each odd value, and extra names added."""
    yield value
    for name in value:
        yield {k: v for k, v in value.items() if k != name}
    for name in {*schema.get("properties", {}), *value}:
        for odd in ODD_VALUES:
            yield {**value, name: odd}
    for name in EXTRA_NAMES:
        yield {**value, name: "x"}
        yield {**value, name: 7}
    if not objects_only:  # (a registry takes only objects: `problems(None)` is a TypeError)
        yield from (None, [], "x", 1, [value])


def same_verdict(fast: SchemaRegistry, slow: SchemaRegistry, document: Any) -> bool:
    """Asserts the fast path gives jsonschema's verdict on `document`; returns whether it is valid.

    `problems()` and `validate()` return at once when `_fast_accepts` is True and otherwise run
    the same jsonschema code as `slow`, so comparing `_fast_accepts` with `slow` is enough (and
    runs jsonschema once instead of twice: several thousand documents are checked here).
    """
    expected = slow.problems(document)
    if _plain(document):  # jsonschema-rs answers by itself: it must give jsonschema's verdict
        assert fast._fast_accepts(document) == (expected == []), (document, expected)
    else:
        assert not fast._fast_accepts(document), document
    return expected == []


def test_every_bundled_schema_has_valid_seeds(fast: SchemaRegistry) -> None:
    assert set(bundled_schemas()) == {"envelope", *VALID}, "add valid examples of the new type to VALID"
    assert fast.fast_types == tuple(sorted(VALID))
    for event_type, seeds in VALID.items():
        for data in seeds:
            assert fast._fast_accepts(envelope(event_type, data)), (event_type, data)


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_mutated_data_gets_jsonschemas_verdict(
    fast: SchemaRegistry, slow: SchemaRegistry, event_type: str
) -> None:
    schema = bundled_schemas()[event_type]
    verdicts = [
        same_verdict(fast, slow, envelope(event_type, data))
        for seed in VALID[event_type]
        for data in mutations(seed, schema)
    ]
    assert len(verdicts) > 400
    assert 0.05 < sum(verdicts) / len(verdicts) < 0.95  # both verdicts are well represented


def test_mutated_envelopes_get_jsonschemas_verdict(fast: SchemaRegistry, slow: SchemaRegistry) -> None:
    schema = bundled_schemas()["envelope"]
    seed = envelope("config.changed", VALID["config.changed"][0])
    verdicts = [same_verdict(fast, slow, document) for document in mutations(seed, schema, objects_only=True)]
    verdicts += [same_verdict(fast, slow, {**seed, "type": t}) for t in ("nope", "", "log.record", None)]
    lenient = SchemaRegistry.bundled(allow_unknown=True, fast=True)
    lenient_slow = SchemaRegistry.bundled(allow_unknown=True, fast=False)
    assert same_verdict(lenient, lenient_slow, {**seed, "type": "nope", "data": [1]})
    assert len(verdicts) > 500
    assert 0.05 < sum(verdicts) / len(verdicts) < 0.95


# -- hypothesis: arbitrary JSON and drawn edge strings ---------------------------------------

_ALPHABET = "aAz09-:.+TtZz \n\x1c\x85\ufeff\u3000٣é/;#_"
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.sampled_from(_ALPHABET), max_size=12)
    | st.sampled_from(ODD_STRINGS),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.sampled_from(_ALPHABET), max_size=6), children, max_size=4)
    ),
    max_leaves=8,
)


@st.composite
def date_times(draw: st.DrawFn) -> str:
    """Near-RFC 3339 timestamps: fields a little out of range, either case, odd separators."""
    year = draw(
        st.sampled_from(
            ["0000", "0001", "0004", "0100", "0400", "1900", "2000", "2023", "2024", "9999", "202"]
        )
    )
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 60)), draw(st.integers(0, 61))
    fraction = draw(st.sampled_from(["", ".5", ".123456", ".", ",5"]))
    zone = draw(st.sampled_from(["Z", "z", "+01:00", "-23:59", "+24:00", "+01", "", "+0100"]))
    separator = draw(st.sampled_from("TTt _"))
    tail = draw(st.sampled_from(["", "", "\n", "\n\n", " "]))
    return f"{year}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{zone}{tail}"


@settings(max_examples=100, deadline=None)
@given(event_type=st.sampled_from(sorted(VALID)), data=st.data())
def test_arbitrary_json_gets_jsonschemas_verdict(
    fast: SchemaRegistry, slow: SchemaRegistry, event_type: str, data: st.DataObject
) -> None:
    seed = copy.deepcopy(data.draw(st.sampled_from(VALID[event_type])))
    names = [*bundled_schemas()[event_type]["properties"], *EXTRA_NAMES]
    changes = data.draw(st.dictionaries(st.sampled_from(names), json_values, max_size=3))
    drop = data.draw(st.sets(st.sampled_from(sorted(seed))))
    document = envelope(event_type, {**{k: v for k, v in seed.items() if k not in drop}, **changes})
    extensions = data.draw(
        st.dictionaries(st.sampled_from(["x", "ab1", "A", "a-b", "time"]), json_values, max_size=2)
    )
    same_verdict(fast, slow, document)
    same_verdict(fast, slow, {**document, **extensions})
    same_verdict(fast, slow, envelope(event_type, data.draw(json_values)))


@settings(max_examples=150, deadline=None)
@given(stamp=date_times(), text=st.text(st.sampled_from(_ALPHABET), max_size=40))
def test_drawn_timestamps_and_strings_get_jsonschemas_verdict(
    fast: SchemaRegistry, slow: SchemaRegistry, stamp: str, text: str
) -> None:
    log = {"level": "info", "service": "api", "message": "m", "time": stamp}
    same_verdict(fast, slow, {**envelope("log.record", log), "time": stamp})
    for name in ("datacontenttype", "dataschema", "subject", "id"):
        same_verdict(fast, slow, {**envelope("log.record", VALID["log.record"][0]), name: text})
    same_verdict(fast, slow, envelope("log.record", {**VALID["log.record"][0], "trace_id": text}))
    same_verdict(fast, slow, {**envelope("log.record", VALID["log.record"][0]), text: "x"})


def test_every_date_near_the_edges_gets_rfc3339_validators_verdict(tmp_path: Path) -> None:
    write(tmp_path, "t.schema.json", {"type": "string", "format": "date-time"})
    registry = SchemaRegistry.from_directory(tmp_path, fast=True)
    assert "t" in registry.fast_types
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    years = ["0000", "0001", "0004", "0100", "0400", "1900", "2000", "2023", "2024", "2100", "9999"]
    times = ["T00:00:00Z", "t23:59:59.5z", "T23:59:60Z", "T24:00:00+01:00", "T12:00:00-23:59", "T12:00:00Z\n"]
    checked = valid = 0
    for year in years:
        for month in range(14):
            for day in range(33):
                for time in times:
                    stamp = f"{year}-{month:02}-{day:02}{time}"
                    expected = checker.conforms(stamp, "date-time")
                    assert registry._fast_accepts(envelope("t", stamp)) == expected, stamp
                    checked, valid = checked + 1, valid + expected
    assert checked == 30_492 and valid > 8_000


# -- the regexes jsonschema-rs runs natively match what Python's re.search does ---------------

_pattern_atoms = st.sampled_from(["a", "b", "-", ".", "\\.", "\\-", "\\s", "\\S", "[ab]", "[^a]", "[a-c]", "[\\s;]",
                                  "[^\\s]", "[-a]", "[a-]", " ", "\n", "\x1c", "\ufeff", "٣", "/"])  # fmt: skip
_patterns = st.recursive(
    _pattern_atoms,
    lambda inner: (
        st.tuples(inner, inner).map("".join)
        | st.tuples(inner, inner).map("|".join)
        | inner.map(lambda p: f"({p})")
        | st.tuples(inner, st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "*?"])).map(
            lambda t: f"({t[0]}){t[1]}"
        )
    ),
    max_leaves=6,
)


@settings(max_examples=250, deadline=None)
@given(
    pattern=st.tuples(st.sampled_from(["", "^"]), _patterns, st.sampled_from(["", "$"])).map("".join),
    texts=st.lists(
        st.text(st.sampled_from("ab-. \n\x1c\x85\ufeff\u3000٣/;c"), max_size=8), min_size=1, max_size=20
    ),
)
def test_native_patterns_match_what_python_matches(pattern: str, texts: list[str]) -> None:
    native = _native_pattern(pattern, rs)
    assert native is not None, pattern  # everything drawn here is in the allowed subset
    validator = rs.validator_for({"pattern": native})
    for text in [*texts, *(t + "\n" for t in texts)]:
        assert validator.is_valid(text) == bool(re.search(pattern, text)), (pattern, native, text)


@pytest.mark.parametrize(
    "pattern",
    ["\\d", "\\w+", "\\b", "\\Z", "(?i)a", "a(?=b)", "a*+", "a{,3}", "[]a]", "[a-c-e]", "[[:alpha:]]", "[a&&b]",
     "[a--b]", "a$b", "\\<a", "\\1", "[\\S]", "[a\\s-z]"],
)  # fmt: skip
def test_patterns_outside_the_subset_are_handed_back_to_python(pattern: str) -> None:
    assert _native_pattern(pattern, rs) is None


def test_python_whitespace_class_is_what_re_calls_whitespace() -> None:
    spaces = [chr(c) for c in range(0x3001) if re.match(r"\s", chr(c))]
    spaces += [chr(c) for c in range(0x3001, 0x110000) if chr(c).isspace()]  # re's \s is str.isspace()
    validator = rs.validator_for({"pattern": _native_pattern("^\\s$", rs)})
    assert all(validator.is_valid(c) for c in spaces)
    assert not any(validator.is_valid(chr(c)) for c in range(0x3001) if chr(c) not in spaces)
    assert not validator.is_valid("\ufeff")  # Rust's \s would take it


# -- user schemas: sibling files, delegated keywords, fallbacks -------------------------------


def write(folder: Path, name: str, schema: dict[str, Any]) -> None:
    (folder / name).write_text(json.dumps(schema))


def test_refs_to_sibling_files_work_on_the_fast_path(tmp_path: Path) -> None:
    write(tmp_path, "common.json", {"$defs": {"sku": {"type": "string", "pattern": "^p-[0-9]+$"},
                                              "code": {"type": "string", "pattern": "^\\d+$"},
                                              "at": {"type": "string", "format": "date-time"}}})  # fmt: skip
    write(tmp_path, "money.json", {"$id": "urn:example:money", "type": "integer", "minimum": 0})
    write(tmp_path, "shop.order.schema.json", {
        "type": "object", "required": ["sku"],
        "properties": {"sku": {"$ref": "common.json#/$defs/sku"}, "code": {"$ref": "common.json#/$defs/code"},
                       "at": {"$ref": "common.json#/$defs/at"}, "cents": {"$ref": "urn:example:money"}},
    })  # fmt: skip
    registry = SchemaRegistry.from_directory(tmp_path, fast=True)
    slow = SchemaRegistry.from_directory(tmp_path, fast=False)
    assert "shop.order" in registry.fast_types
    good = {"sku": "p-1", "code": "٣4", "at": "2024-01-01T00:00:00Z", "cents": 5}  # Python's \d takes ٣
    assert registry._fast_accepts(envelope("shop.order", good))
    for data in [good, {"sku": "x"}, {**good, "code": "x"}, {**good, "at": "2016-12-31T23:59:60Z"},
                 {**good, "cents": -1}, {"code": "1"}]:  # fmt: skip
        same_verdict(registry, slow, envelope("shop.order", data))
        assert registry.problems(envelope("shop.order", data)) == slow.problems(envelope("shop.order", data))
    assert registry.problems(envelope("shop.order", {"sku": "x", "cents": -1})) == [
        "data.cents: -1 is less than the minimum 0",
        'data.sku: "x" does not match ^p-[0-9]+$',
    ]


TRICKY = {
    "type": "object",
    "properties": {
        "step": {"multipleOf": 0.1},
        "big": {"const": 2**60},
        "cap": {"maximum": 2**60},
        "level": {"enum": [1, "1", 2**60 + 1]},
        "host": {"format": "ipv4"},
        "link": {"format": "uri"},
        "mail": {"format": "email"},
        "one": {"oneOf": [{"pattern": "^\\d+$"}, {"pattern": "^[0-9]+$"}]},
        "not_space": {"not": {"pattern": "^\\s+$"}},
        "legacy": {"dependencies": {"a": ["b"]}},
        "needs": {"dependentRequired": {"a": ["b"]}, "required": ["pattern"]},
        "zero": {"const": 0},
        "mixed": {"enum": [1.5, [1, 2], {"a": 1}, {"pattern": "x"}]},
        "unique": {"uniqueItems": True},
        "strict": {"properties": {"a": {"type": "integer"}}, "unevaluatedProperties": False},
    },
}


@pytest.mark.parametrize(
    ("name", "value"),
    [("step", 0.3), ("step", 0.5), ("step", 19.99), ("big", 2**60), ("big", float(2**60)), ("cap", 2**60),
     ("cap", 1.2e18), ("level", 1), ("level", 1.0), ("level", 2**60 + 1), ("host", "127.0.0.1"), ("host", "1.2.3"),
     ("host", "01.2.3.4"), ("link", "not a uri"), ("mail", "not-an-email@"), ("mail", "plain"), ("one", "12"),
     ("one", "٣"), ("one", "x"), ("not_space", "\x1c"), ("not_space", "\ufeff"), ("not_space", " "),
     ("legacy", {"a": 1}), ("needs", {"a": 1, "pattern": 1}), ("needs", {"a": 1, "b": 1, "pattern": 1}),
     ("needs", {"b": 1}), ("zero", -0.0), ("zero", 0.0), ("zero", False), ("mixed", [1.0, 2.0]), ("mixed", {"a": 1.0}),
     ("mixed", {"a": True}), ("mixed", {"pattern": "x"}), ("mixed", {"pattern": "y"}), ("unique", [[1], [1.0]]),
     ("unique", [{"a": 1}, {"a": True}]), ("unique", [0, False]), ("unique", [{"a": 1, "b": 2}, {"b": 2, "a": 1}]),
     ("strict", {"a": 1}), ("strict", {"a": 1, "b": 2}), ("strict", {"a": 1.0})],
)  # fmt: skip
def test_keywords_jsonschema_rs_reads_otherwise_give_jsonschemas_verdict(
    tmp_path: Path, name: str, value: Any
) -> None:
    write(tmp_path, "t.schema.json", TRICKY)
    registry = SchemaRegistry.from_directory(tmp_path, fast=True)
    slow = SchemaRegistry.from_directory(tmp_path, fast=False)
    assert "t" in registry.fast_types
    same_verdict(registry, slow, envelope("t", {name: value}))
    assert registry.problems(envelope("t", {name: value})) == slow.problems(envelope("t", {name: value}))


def test_a_pattern_property_that_may_differ_leaves_its_type_to_jsonschema(tmp_path: Path) -> None:
    write(tmp_path, "t.schema.json", {"patternProperties": {"^\\d+$": {"type": "integer"}},
                                      "additionalProperties": False})  # fmt: skip
    write(tmp_path, "u.schema.json", {"patternProperties": {"^[0-9]+$": {"type": "integer"}}})
    registry = SchemaRegistry.from_directory(tmp_path, fast=True)
    assert "t" not in registry.fast_types and "u" in registry.fast_types and registry.fast
    assert registry.problems(envelope("t", {"٣": 1, "x": 1})) == [
        "data.x: not allowed here; names must match ^\\d+$"
    ]


class Color(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    "data",
    [(1, 2), {"keys": ("k",)}, Color.RED, Decimal("1"), float("nan"), float("inf"), 2**70, {1: "a"},
     {"service": "s", "keys": ["k"], "version": Decimal(1)},
     {"service": "s", "keys": ("k",), "version": 1}, {"service": "s", "keys": ["k"], "version": 2**70}],
)  # fmt: skip
def test_values_json_does_not_have_go_to_jsonschema(
    fast: SchemaRegistry, slow: SchemaRegistry, data: Any
) -> None:
    # jsonschema-rs reads a tuple as an array, an Enum as its value, NaN as null, Decimal(1) as
    # an integer: jsonschema does not, so none of these may take the fast path.
    document = envelope("config.changed", data)
    assert not _plain(document)
    same_verdict(fast, slow, document)
    assert fast.problems(document) == slow.problems(document)


def test_lone_surrogates_get_jsonschemas_verdict(fast: SchemaRegistry, slow: SchemaRegistry) -> None:
    # Not UTF-8: jsonschema-rs refuses to read such a string where it needs its text (and the
    # registry then asks jsonschema), but may pass it where only its type matters.
    seed = VALID["log.record"][1]
    for change in ({"message": "\ud800"}, {"service": "\ud800"}, {"trace_id": "\ud800" * 32}, {"host": ""},
                   {"time": "2024-01-01T00:00:00Z\ud800"}, {"fields": {"\ud800": 1}}):  # fmt: skip
        document = envelope("log.record", {**seed, **change})
        assert fast.problems(document) == slow.problems(document), change


def test_the_fast_path_answers_without_jsonschema(
    fast: SchemaRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("jsonschema ran")

    monkeypatch.setattr(jsonschema.Draft202012Validator, "iter_errors", forbidden)
    for event_type, seeds in VALID.items():
        for data in seeds:
            fast.validate(envelope(event_type, data))
            assert fast.problems(envelope(event_type, data)) == []
    with pytest.raises(AssertionError, match="jsonschema ran"):  # invalid: jsonschema explains
        fast.validate(envelope("log.record", {}))
    with pytest.raises(AssertionError, match="jsonschema ran"):
        SchemaRegistry.bundled(fast=False).validate(envelope("log.record", VALID["log.record"][0]))


def test_invalid_documents_get_jsonschemas_messages(fast: SchemaRegistry, slow: SchemaRegistry) -> None:
    document = {
        **envelope("config.changed", {"service": "", "keys": "k", "version": 1}),
        "id": 7,
        "Tenant": "x",
    }
    problems = [
        "Tenant: name must match ^[a-z0-9]+$",
        "data.keys: expected array, got string",
        "data.service: must not be empty",
        "id: expected string, got integer",
    ]
    assert fast.problems(document) == slow.problems(document) == problems
    with pytest.raises(ValidationError) as caught:
        fast.validate(document)
    assert list(caught.value.problems) == problems and caught.value.path == "Tenant"
    assert str(caught.value) == "; ".join(problems)


def test_without_jsonschema_rs_jsonschema_does_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema_rs", None)  # `import jsonschema_rs` now fails
    registry = SchemaRegistry.from_directory(tmp_path)
    assert not registry.fast and registry.fast_types == ()
    registry.validate(envelope("log.record", VALID["log.record"][0]))
    assert registry.problems(envelope("log.record", {})) == [
        f"data.{name}: required"
        for name in ("level", "message", "service")  # time: the event's own
    ]
    with pytest.raises(SchemaError, match=r"fast=True needs jsonschema-rs, .*: pip install jsonschema-rs"):
        SchemaRegistry.from_directory(tmp_path, fast=True)


@pytest.mark.parametrize(("setting", "expected"), [("0", False), ("off", False), ("1", True), ("", True)])
def test_the_environment_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, expected: bool
) -> None:
    monkeypatch.setenv(FAST_ENV, setting)
    assert SchemaRegistry.from_directory(tmp_path).fast is expected
    assert SchemaRegistry.from_directory(tmp_path, fast=True).fast  # an explicit flag wins


def test_a_bad_environment_switch_is_a_schema_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAST_ENV, "fastest")
    with pytest.raises(SchemaError, match=f"{FAST_ENV}='fastest'"):
        SchemaRegistry.from_directory(tmp_path)


def test_finite_floats_only() -> None:
    assert _plain({"a": [1.5, -0.0, 2**53, "x", None, True]})
    assert not any(_plain(v) for v in ({"a": math.nan}, [math.inf], 2**53 + 1, (1,), {"a": Decimal(1)}))
