// Parse AsyncAPI documents with the official parser (@asyncapi/parser) and print what it says.
//
//   node validate_asyncapi.mjs FILE...     (or "-" for stdin)
//
// Prints one JSON object: for each file, {"parsed": bool, "counts": {error, warning, info, hint},
// "diagnostics": [{severity, code, message, path}]}. Exit code 0 whatever the verdict: the
// caller (tests/test_asyncapi_parser.py) judges; 2 only when this script itself cannot run.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "info", "hint"];

async function check(parser, name) {
  const text = readFileSync(name === "-" ? 0 : name, "utf8");
  const { document, diagnostics } = await parser.parse(text);
  const counts = Object.fromEntries(SEVERITY.map((s) => [s, 0]));
  const found = diagnostics.map((d) => {
    const severity = SEVERITY[d.severity] ?? String(d.severity);
    counts[severity] = (counts[severity] ?? 0) + 1;
    return { severity, code: String(d.code), message: d.message, path: d.path.join("/") };
  });
  return { parsed: document !== undefined, counts, diagnostics: found };
}

const names = process.argv.slice(2);
if (names.length === 0) {
  console.error("usage: node validate_asyncapi.mjs FILE... (- for stdin)");
  process.exit(2);
}
const parser = new Parser();
const out = {};
for (const name of names) {
  out[name] = await check(parser, name);
}
console.log(JSON.stringify(out, null, 2));
