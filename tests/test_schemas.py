"""The schema registry: loading folders, checking schemas and refs, and readable problems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import routing.schemas as schemas_module
from routing.errors import SchemaError, ValidationError
from routing.schemas import SchemaRegistry, bundled_directory, json_path

BUNDLED_TYPES = ("cache.invalidate", "config.changed", "log.record", "task.resize_image")


def envelope(event_type: str, data: Any, **extra: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "1", "source": "urn:test", "type": event_type, "data": data, **extra}


def write(folder: Path, name: str, schema: dict[str, Any]) -> Path:
    path = folder / name
    path.write_text(json.dumps(schema))
    return path


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.bundled()


def test_bundled_schemas_are_found_and_give_the_types(registry: SchemaRegistry) -> None:
    assert registry.types == BUNDLED_TYPES
    assert (bundled_directory() / "envelope.schema.json").is_file()
    assert registry.schema("envelope")["required"] == ["specversion", "id", "source", "type"]
    assert registry.schema("log.record")["title"] == "log.record"


def test_bundled_registry_is_loaded_once() -> None:
    assert SchemaRegistry.bundled() is SchemaRegistry.bundled()
    assert SchemaRegistry.bundled(allow_unknown=True) is not SchemaRegistry.bundled()


def test_schema_of_an_unknown_type_is_a_schema_error(registry: SchemaRegistry) -> None:
    with pytest.raises(SchemaError, match=r"no schema for event type 'nope'; known: cache\.invalidate"):
        registry.schema("nope")


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("log.record", {"level": "info", "service": "api", "message": "", "time": "2024-01-01T00:00:00Z"}),
        ("log.record", {"level": "error", "service": "billing", "message": "boom"}),  # the README's: time is the event's
        ("log.record", {"level": "debug", "service": "api", "message": "m", "time": "2024-01-01T00:00:00+01:00",
                        "logger": "api.http", "trace_id": "0" * 32, "fields": {"status": 200}}),
        ("cache.invalidate", {"cache": "products", "keys": ["p-1", "p-2"], "reason": "price", "version": 3}),
        ("cache.invalidate", {"cache": "products", "pattern": "p-*", "reason": "bulk import"}),
        ("config.changed", {"service": "billing", "keys": ["tax.rate"], "version": 12}),
        ("config.changed", {"service": "billing", "keys": ["a", "b"], "version": "9f2c", "changed_by": "ops"}),
        ("task.resize_image", {"input": "in/a.png", "width": 100, "height": 50}),
        ("task.resize_image", {"id": 1, "action": "resize_image", "input": "a.png", "output": "b.png",
                               "width": 1, "height": 65535, "keep_aspect": True}),
        ("task.resize_image", {"id": 1, "action": "resize_image"}),  # the seed tutorial's message
        ("task.resize_image", {"id": 1, "action": "resize_image", "path": "/uploads/img_1.jpg"}),  # its producer's
        ("task.resize_image", {"id": "job-7", "action": "resize_image", "output": "b.png"}),
    ],
)  # fmt: skip
def test_valid_data_for_each_bundled_type(registry: SchemaRegistry, event_type: str, data: Any) -> None:
    assert registry.problems(envelope(event_type, data)) == []
    registry.validate(envelope(event_type, data))


@pytest.mark.parametrize(
    ("event_type", "data", "problems"),
    [
        ("log.record", {"level": "loud", "service": "a", "message": "m", "time": "2024-01-01T00:00:00Z"},
         ['data.level: must be one of "debug", "info", "warning", "error", "critical"']),
        ("log.record", {"level": "info", "service": "a", "message": 5, "time": "noon", "trace_id": "xyz"},
         ["data.message: expected string, got integer", 'data.time: not a valid date-time: "noon"',
          'data.trace_id: "xyz" does not match ^[0-9a-f]{32}$']),
        ("cache.invalidate", {"cache": "c", "reason": "r"}, ["data: needs exactly one of keys, pattern"]),
        ("cache.invalidate", {"cache": "c", "reason": "r", "keys": ["a"], "pattern": "*"},
         ["data: needs exactly one of keys, pattern (not several)"]),
        ("cache.invalidate", {"cache": "c", "reason": "r", "keys": ["a", "a", 3]},
         ["data.keys: has repeated items", "data.keys[2]: expected string, got integer"]),
        ("cache.invalidate", {"cache": "c", "reason": "r", "keys": []}, ["data.keys: must not be empty"]),
        ("config.changed", {"service": "s", "keys": ["k"], "version": 1.5},
         ["data.version: expected integer or string, got number"]),
        ("config.changed", None, ["data: expected object, got null"]),
        ("task.resize_image", {"input": "a", "width": 0, "height": 70000, "action": "crop"},
         ['data.action: must be "resize_image"', "data.height: 70000 is more than the maximum 65535",
          "data.width: 0 is less than the minimum 1"]),
        ("task.resize_image", {"input": "a", "width": 1, "height": 1, "a.b": 1, "ü": 2},
         ['data["a.b"]: not allowed here', 'data["ü"]: not allowed here']),
        ("task.resize_image", {"id": 1.5, "action": "resize_image"},
         ["data.id: expected integer or string, got number"]),
        ("task.resize_image", {"width": 5, "action": "resize_image"},
         ["data: needs one of input+width+height, id+action"]),
    ],
)  # fmt: skip
def test_problems_name_each_path_and_rule(
    registry: SchemaRegistry, event_type: str, data: Any, problems: list[str]
) -> None:
    assert registry.problems(envelope(event_type, data)) == sorted(problems)
    with pytest.raises(ValidationError) as caught:
        registry.validate(envelope(event_type, data))
    assert list(caught.value.problems) == sorted(problems)
    assert caught.value.path == sorted(problems)[0].split(": ")[0]
    assert str(caught.value) == "; ".join(sorted(problems))


def test_envelope_and_data_problems_come_together(registry: SchemaRegistry) -> None:
    document = envelope("config.changed", {"service": "", "keys": "k", "version": 1}, id=7, Tenant="x")
    assert registry.problems(document) == [
        "Tenant: name must match ^[a-z0-9]+$",
        "data.keys: expected array, got string",
        "data.service: must not be empty",
        "id: expected string, got integer",
    ]


def test_unknown_types_are_refused_unless_allowed(registry: SchemaRegistry) -> None:
    problems = registry.problems(envelope("billing.invoice_paid", {"anything": 1}))
    assert problems == [
        "type: unknown event type 'billing.invoice_paid'; add billing.invoice_paid.schema.json"
        " (known: cache.invalidate, config.changed, log.record, task.resize_image)"
    ]
    lenient = SchemaRegistry.bundled(allow_unknown=True)
    assert lenient.problems(envelope("billing.invoice_paid", {"anything": 1})) == []
    assert lenient.problems(envelope("log.record", {})) != []  # known types are still checked


@pytest.mark.parametrize("fast", [False, True], ids=["jsonschema", "jsonschema-rs first"])
def test_validators_are_compiled_once(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a registry is built, validating compiles nothing and re-checks no schema, on both
    paths: jsonschema alone (`fast=False`), and jsonschema-rs first, which accepts the valid
    documents and leaves the invalid ones to jsonschema (for its messages). Each path is
    shown to run, so that neither can pass by not being taken."""
    if fast:
        pytest.importorskip("jsonschema_rs")
    registry = SchemaRegistry.bundled(fast=fast)
    assert registry.fast is fast
    compiled: list[str] = []  # recorded as well as raised: the fast path swallows exceptions

    def forbid(owner: object, name: str) -> None:
        def forbidden(*args: object, **kwargs: object) -> None:
            compiled.append(name)
            raise AssertionError(f"{name} called per message: a schema was compiled or re-checked")

        monkeypatch.setattr(owner, name, forbidden)

    forbid(jsonschema, "validate")
    forbid(jsonschema.Draft202012Validator, "check_schema")
    forbid(schemas_module, "_Validator")
    forbid(schemas_module, "compile_fast")
    if fast:
        import jsonschema_rs

        for name in ("validator_for", "Draft202012Validator", "Registry"):
            forbid(jsonschema_rs, name)
    fast_accepted = 0
    accepts = registry._fast_accepts

    def counting(document: Any) -> bool:
        nonlocal fast_accepted
        accepted = accepts(document)
        fast_accepted += accepted
        return accepted

    reference_runs = 0
    find = registry._find

    def counting_find(document: Any) -> list[tuple[str, str]]:
        nonlocal reference_runs
        reference_runs += 1
        return find(document)

    monkeypatch.setattr(registry, "_fast_accepts", counting)
    monkeypatch.setattr(registry, "_find", counting_find)
    data = {"service": "s", "keys": ["k"], "version": 1}
    for _ in range(3):
        registry.validate(envelope("config.changed", data))
        with pytest.raises(ValidationError, match=r"data\.keys"):
            registry.validate(envelope("config.changed", {**data, "keys": []}))
    assert compiled == []
    assert fast_accepted == (3 if fast else 0)  # the valid ones, on the fast path
    assert reference_runs == (3 if fast else 6)  # jsonschema: every document, or only the invalid ones


# -- user folders ----------------------------------------------------------------------------


def test_user_types_are_added_to_the_bundled_ones(tmp_path: Path) -> None:
    write(tmp_path, "billing.invoice_paid.schema.json", {"type": "object", "required": ["invoice"]})
    registry = SchemaRegistry.from_directory(tmp_path)
    assert registry.types == tuple(sorted((*BUNDLED_TYPES, "billing.invoice_paid")))
    assert registry.problems(envelope("billing.invoice_paid", {})) == ["data.invoice: required"]
    assert registry.problems(envelope("billing.invoice_paid", {"invoice": "i-1"})) == []


def test_a_user_file_replaces_the_bundled_one_of_the_same_name(tmp_path: Path) -> None:
    write(tmp_path, "log.record.schema.json", {"type": "object", "required": ["text"]})
    registry = SchemaRegistry.from_directory(tmp_path)
    assert registry.problems(envelope("log.record", {"text": "hi"})) == []
    assert registry.types == BUNDLED_TYPES


def test_a_user_folder_alone_needs_an_envelope_schema(tmp_path: Path) -> None:
    write(tmp_path, "a.b.schema.json", {"type": "object"})
    with pytest.raises(SchemaError, match=r"no envelope\.schema\.json among the schemas"):
        SchemaRegistry.from_directory(tmp_path, include_bundled=False)
    write(tmp_path, "envelope.schema.json", {"type": "object", "required": ["type"]})
    registry = SchemaRegistry.from_directory(tmp_path, include_bundled=False)
    assert registry.types == ("a.b",)
    assert registry.problems({"type": "a.b", "data": {}}) == []


def test_refs_between_files_of_a_folder_resolve_without_the_network(tmp_path: Path) -> None:
    write(tmp_path, "common.json", {"$defs": {"sku": {"type": "string", "pattern": "^p-[0-9]+$"}}})
    write(
        tmp_path,
        "shop.order.schema.json",
        {"type": "object", "properties": {"sku": {"$ref": "common.json#/$defs/sku"}}, "required": ["sku"]},
    )
    registry = SchemaRegistry.from_directory(tmp_path)
    assert "common" not in " ".join(registry.types)  # $ref targets without .schema.json are no types
    assert registry.problems(envelope("shop.order", {"sku": "p-1"})) == []
    assert registry.problems(envelope("shop.order", {"sku": "x"})) == [
        'data.sku: "x" does not match ^p-[0-9]+$'
    ]


def test_refs_by_declared_id(tmp_path: Path) -> None:
    write(tmp_path, "money.json", {"$id": "urn:example:money", "type": "integer", "minimum": 0})
    write(
        tmp_path,
        "shop.paid.schema.json",
        {"type": "object", "properties": {"cents": {"$ref": "urn:example:money"}}},
    )
    registry = SchemaRegistry.from_directory(tmp_path)
    assert registry.problems(envelope("shop.paid", {"cents": -1})) == [
        "data.cents: -1 is less than the minimum 0"
    ]


def test_relative_ids_are_taken_relative_to_the_file(tmp_path: Path) -> None:
    write(tmp_path, "defs.json", {"$id": "lib/defs.json", "$defs": {"n": {"type": "integer"}}})
    write(
        tmp_path, "t.schema.json", {"$id": "lib/t.json", "properties": {"n": {"$ref": "defs.json#/$defs/n"}}}
    )
    registry = SchemaRegistry.from_directory(tmp_path)
    assert registry.problems(envelope("t", {"n": "one"})) == ["data.n: expected integer, got string"]


@pytest.mark.parametrize(
    "ref",
    ["https://example.com/schemas/money.json", "missing.json", "#/$defs/nothing", "common.json#/$defs/nope"],
)
def test_unresolvable_refs_fail_at_load(tmp_path: Path, ref: str) -> None:
    write(tmp_path, "common.json", {"$defs": {"sku": {"type": "string"}}})
    write(tmp_path, "shop.order.schema.json", {"properties": {"x": {"$ref": ref}}})
    with pytest.raises(SchemaError, match=r"shop\.order\.schema\.json: \$ref .* cannot be resolved"):
        SchemaRegistry.from_directory(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"type": "object",', "cannot read it as JSON"),
        ("[1]", "a schema must be a JSON object, not list"),
        ('{"type": "objekt"}', "not a valid schema"),
        ('{"minLength": -1}', "not a valid schema"),
        ('{"$schema": "http://json-schema.org/draft-07/schema#"}', "use draft 2020-12"),
        ('{"maximum": NaN}', "cannot read it as JSON"),
        ('{"$id": 5}', "must be a string"),
    ],
)
def test_bad_schema_files_are_schema_errors_naming_the_file(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "bad.thing.schema.json").write_text(content)
    with pytest.raises(SchemaError, match=message) as caught:
        SchemaRegistry.from_directory(tmp_path)
    assert "bad.thing.schema.json" in str(caught.value)


def test_a_missing_folder_is_a_schema_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="does not exist or is not a folder"):
        SchemaRegistry.from_directory(tmp_path / "nope")


def test_format_checking_is_really_on(tmp_path: Path) -> None:
    # Without rfc3339-validator installed jsonschema passes any date-time silently.
    write(tmp_path, "t.schema.json", {"type": "string", "format": "date-time"})
    registry = SchemaRegistry.from_directory(tmp_path)
    assert registry.problems(envelope("t", "2024-01-01T00:00:00Z")) == []
    assert registry.problems(envelope("t", "2024-01-01T25:00:00Z")) == [
        'data: not a valid date-time: "2024-01-01T25:00:00Z"'
    ]


def test_fallback_messages_name_the_rule(tmp_path: Path) -> None:
    write(tmp_path, "t.schema.json", {"type": "object", "minProperties": 2})
    registry = SchemaRegistry.from_directory(tmp_path)
    (problem,) = registry.problems(envelope("t", {"a": 1}))
    assert problem.startswith("data: ") and problem.endswith("(minProperties)")


def test_anyof_with_several_forms_explains_each(tmp_path: Path) -> None:
    write(tmp_path, "t.schema.json", {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 3}]})
    registry = SchemaRegistry.from_directory(tmp_path)
    assert registry.problems(envelope("t", "ab")) == [
        "data: matches none of the 2 allowed forms (expected integer, got string; shorter than 3 characters)"
    ]


@pytest.mark.parametrize(
    ("root", "parts", "expected"),
    [
        ("data", ["keys", 2], "data.keys[2]"),
        ("", ["id"], "id"),
        ("data", ["a.b", "c d"], 'data["a.b"]["c d"]'),
        ("", [0, "x"], "[0].x"),
        ("data", [], "data"),
    ],
)
def test_json_path(root: str, parts: list[str | int], expected: str) -> None:
    assert json_path(root, parts) == expected
