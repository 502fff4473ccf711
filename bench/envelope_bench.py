"""What an envelope costs per message: encode + validate + decode, next to bare json.dumps/loads.

The validators are compiled once by `SchemaRegistry`; `jsonschema.validate()` per call is
shown for contrast, because it re-checks the schema every time. "validate (compiled)" is the
default registry: jsonschema-rs first (a dependency of routing); the two rows after
it force one path each. Run:
`python -m bench.envelope_bench [--n N] [--quick] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import jsonschema

from bench import message
from routing.envelope import Envelope, decode, encode, to_properties
from routing.errors import SchemaError
from routing.schemas import SchemaRegistry

DEFAULT_N = 5_000


def sample_envelope() -> Envelope:
    """The benchmark's one message (`bench.message`): a realistic log.record of ~540 bytes."""
    return message.envelope()


def _per_message_us(step: Callable[[], object], n: int, rounds: int) -> dict[str, float]:
    """Median and best microseconds per call over `rounds` runs of `n` calls."""
    step()  # warm caches (and fail early)
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            step()
        timings.append((time.perf_counter() - start) / n * 1e6)
    return {"us_median": statistics.median(timings), "us_best": min(timings), "calls": n * rounds}


def steps(registry: SchemaRegistry | None = None) -> dict[str, Callable[[], object]]:
    """The measured operations, by name, all on the same envelope."""
    registry = registry or SchemaRegistry.bundled()
    envelope = sample_envelope()
    document = envelope.to_dict()
    body = encode(envelope)
    props = to_properties(envelope)
    envelope_schema, data_schema = registry.schema("envelope"), registry.schema(envelope.type)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER

    def per_call_validate() -> None:
        jsonschema.validate(document, envelope_schema, format_checker=checker)
        jsonschema.validate(document["data"], data_schema, format_checker=checker)

    only_jsonschema = SchemaRegistry.bundled(fast=False)
    try:
        fast: SchemaRegistry | None = SchemaRegistry.bundled(fast=True)
    except SchemaError:  # jsonschema-rs is not installed: no row for it
        fast = None
    validators: dict[str, Callable[[], object]] = {
        "validate (compiled)": lambda: registry.validate(document),
        "validate (jsonschema alone)": lambda: only_jsonschema.validate(document),
    }
    if fast is not None:
        validators["validate (jsonschema-rs first)"] = lambda: fast.validate(document)
    return {
        "json.dumps + json.loads": lambda: json.loads(json.dumps(document)),
        "encode": lambda: encode(envelope),
        "decode (no schema)": lambda: decode(body, props, registry=None),
        # With a registry, `data` is frozen when first read: both, so the laziness shows.
        "decode + validate": lambda: decode(body, props, registry=registry),
        "decode + validate, data read": lambda: decode(body, props, registry=registry).data,
        **validators,
        "encode + validate + decode": lambda: decode(
            encode(envelope, registry=registry), props, registry=None
        ),
        # A checked round trip: the publisher validates, and so does the consumer.
        "... and validate on decode too": lambda: decode(
            encode(envelope, registry=registry), props, registry=registry
        ),
        "jsonschema.validate() per call": per_call_validate,
    }


def run(quick: bool = False, n: int | None = None) -> list[dict[str, Any]]:
    """One row per operation. `jsonschema.validate()` runs 20x fewer times: it is that slow."""
    n = n or (300 if quick else DEFAULT_N)
    rounds = 2 if quick else 5
    size = len(encode(sample_envelope()))
    rows = []
    for name, step in steps().items():
        calls = max(10, n // 20) if "per call" in name else n
        rows.append({"operation": name, "body_bytes": size, **_per_message_us(step, calls, rounds)})
    base = rows[0]["us_median"]
    for row in rows:
        row["vs_json"] = row["us_median"] / base
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"envelope of {rows[0]['body_bytes']} bytes; microseconds per message",
        f"{'operation':<32}  {'median':>9}  {'best':>9}  {'vs json':>8}",
    ]
    for r in rows:
        lines.append(
            f"{r['operation']:<32}  {r['us_median']:>9.1f}  {r['us_best']:>9.1f}  {r['vs_json']:>7.1f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.envelope_bench", description=__doc__)
    parser.add_argument("--n", type=int, default=None, help=f"messages per round (default {DEFAULT_N})")
    parser.add_argument("--quick", action="store_true", help="small N: only proves the bench still runs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = run(args.quick, args.n)
    print(json.dumps(rows, indent=2) if args.json else report(rows))


if __name__ == "__main__":
    main()
