#!/usr/bin/env python3
"""Fetch the served OpenAPI document, report what in it keeps schemathesis from testing the API as
it is used, and write a copy with those defects worked around, so the run still reaches the
handlers' real inputs.

Usage: schema.py BASE_URL OUT_DIR   (writes OUT_DIR/openapi.served.json, OUT_DIR/openapi.json and
OUT_DIR/schema-lint.md; exit 1 when the lint found something)

Lint (each is a documentation bug in the utoipa annotations, reported and then patched):
- a parameter documented `in: path` whose name is not in the path template: utoipa's IntoParams
  defaults to `Path` without `#[into_params(parameter_in = Query)]`; schemathesis (and any client
  generated from the document) then never sends it. Patched to `in: query`.
- a query or header parameter whose schema allows `null`: neither can carry JSON null, so a client
  sends the text "null". Patched: `null` removed, and the parameter made optional.
"""
import copy
import json
import os
import sys
import urllib.request


def strip_null(schema):
    """The schema without its `null` alternative, and whether it had one."""
    if isinstance(schema.get("type"), list) and "null" in schema["type"]:
        types = [t for t in schema["type"] if t != "null"]
        out = dict(schema, type=types[0] if len(types) == 1 else types)
        return out, True
    for key in ("oneOf", "anyOf"):
        alts = schema.get(key)
        if isinstance(alts, list) and any(a == {"type": "null"} for a in alts):
            rest = [a for a in alts if a != {"type": "null"}]
            out = {k: v for k, v in schema.items() if k != key}
            if len(rest) == 1:
                out.update(rest[0])
            else:
                out[key] = rest
            return out, True
    return schema, False


def main():
    base, out_dir = sys.argv[1].rstrip("/"), sys.argv[2]
    with urllib.request.urlopen(f"{base}/api/openapi.json", timeout=30) as resp:
        served = json.load(resp)
    with open(os.path.join(out_dir, "openapi.served.json"), "w") as fh:
        json.dump(served, fh, indent=1)
    doc = copy.deepcopy(served)
    findings = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            for param in op.get("parameters", []):
                where = f"{method.upper()} {path} `{param['name']}`"
                if param.get("in") == "path" and "{" + param["name"] + "}" not in path:
                    findings.append(f"{where}: documented `in: path`, not in the path template (a query parameter)")
                    param["in"] = "query"
                if param.get("in") in ("query", "header"):
                    schema, had_null = strip_null(param.get("schema", {}))
                    if had_null:
                        findings.append(f"{where}: {param['in']} parameter schema allows `null` (sent as the text \"null\")")
                        param["schema"] = schema
                        param["required"] = False
    with open(os.path.join(out_dir, "openapi.json"), "w") as fh:
        json.dump(doc, fh, indent=1)
    with open(os.path.join(out_dir, "schema-lint.md"), "w") as fh:
        fh.write("".join(f"- {f}\n" for f in findings) or "nothing found\n")
    print(f"schema lint: {len(findings)} problems (patched for the run); see {out_dir}/schema-lint.md")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
