"""`python -m bench [--quick] [--json]`: every benchmark, one table each."""

from __future__ import annotations

import argparse
import json

from bench import envelope_bench, route_bench


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N: only proves the benchmarks still run")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    args = parser.parse_args()
    results = {"route": route_bench.run(args.quick), "envelope": envelope_bench.run(args.quick)}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("Topic route decisions per second by number of bindings")
    print(route_bench.report(results["route"]))
    print("\nEnvelope cost per message (microseconds)")
    print(envelope_bench.report(results["envelope"]))


if __name__ == "__main__":
    main()
