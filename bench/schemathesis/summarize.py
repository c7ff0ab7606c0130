#!/usr/bin/env python3
"""Reduce schemathesis NDJSON reports to one row per distinct finding.

Usage: summarize.py OUT_DIR ROLE...   (reads OUT_DIR/ROLE.ndjson, writes OUT_DIR/findings.md)

A finding is keyed by (operation, check code, response status, problem `code`), so the hundreds of
generated cases that hit the same gap collapse into one row with a count and one example request.
"""
import base64
import collections
import json
import os
import sys


def decode(content, limit):
    if not content:
        return ""
    if "$base64" in content:
        raw = base64.b64decode(content["$base64"])
    else:
        raw = (content.get("string") or "").encode()
    text = raw[:limit].decode("utf-8", "replace")
    return text + ("…" if len(raw) > limit else "")


def problem_code(text):
    try:
        return json.loads(text).get("code", "")
    except Exception:  # not JSON, or truncated
        return ""


def main():
    out_dir, roles = sys.argv[1], sys.argv[2:]
    findings = collections.OrderedDict()
    errors = []
    for role in roles:
        path = os.path.join(out_dir, f"{role}.ndjson")
        if not os.path.exists(path):
            errors.append((role, "no report (run did not start?)"))
            continue
        for line in open(path, encoding="utf-8"):
            event = json.loads(line)
            if "NonFatalError" in event:
                err = event["NonFatalError"]
                errors.append((role, f"{err.get('label', '?')}: {str(err.get('value', {}).get('message', err))[:200]}"))
                continue
            if "ScenarioFinished" not in event:
                continue
            rec = event["ScenarioFinished"]["recorder"]
            for case_id, checks in rec.get("checks", {}).items():
                for check in checks:
                    if check.get("status") == "success":
                        continue
                    failure = (check.get("failure_info") or {}).get("failure") or {}
                    inter = rec.get("interactions", {}).get(case_id) or {}
                    req, resp = inter.get("request") or {}, inter.get("response") or {}
                    body = decode(resp.get("content"), 300)
                    status = resp.get("status_code", "-")
                    key = (role, failure.get("operation") or rec.get("label"), failure.get("code", check["name"]),
                           failure.get("title", check["name"]), status, problem_code(body))
                    if key in findings:
                        findings[key]["count"] += 1
                        continue
                    case = (rec.get("cases", {}).get(case_id) or {}).get("value", {})
                    findings[key] = {
                        "count": 1,
                        "message": (failure.get("message") or "").replace("\n", "; ")[:300],
                        "request": f"{req.get('method', case.get('method', '?'))} {req.get('uri', case.get('path', '?'))}",
                        "request_body": decode(req.get("body"), 300),
                        "response": body,
                        "scenario": ((case.get("meta") or {}).get("phase") or {}).get("data", {}).get("description", ""),
                    }

    def cell(s):
        return str(s).replace("|", "\\|").replace("\n", " ")

    grouped = collections.OrderedDict()
    for (role, op, code, title, status, pcode), f in sorted(findings.items(), key=lambda kv: (
            not str(kv[0][4]).startswith("5"), kv[0][2], str(kv[0][4]), kv[0][5])):
        g = grouped.setdefault((code, title, status, pcode), {"ops": set(), "roles": set(), "count": 0})
        g["ops"].add(op)
        g["roles"].add(role)
        g["count"] += f["count"]
    lines = ["## By kind", "", "| check | status | problem code | cases | roles | operations |", "|---|---|---|---|---|---|"]
    for (code, title, status, pcode), g in grouped.items():
        lines.append("| " + " | ".join(cell(x) for x in (
            f"{code} {title}", status, pcode, g["count"], ", ".join(sorted(g["roles"])),
            ", ".join(sorted(g["ops"])))) + " |")
    lines += ["", "## Every distinct finding, with one example each", ""]
    lines += ["| role | operation | check | status | problem code | cases | example request | request body | response excerpt |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (role, op, code, title, status, pcode), f in sorted(
            findings.items(), key=lambda kv: (not str(kv[0][4]).startswith("5"), kv[0][2], kv[0][1], kv[0][0])):
        lines.append("| " + " | ".join(cell(x) for x in (
            role, op, f"{code} {title}", status, pcode, f["count"], f["request"], f["request_body"][:200],
            (f["message"] + " — " if code in ("ST103", "ST105") or not status else "") + f["response"][:200])) + " |")
    if errors:
        lines += ["", "Errors (tool or run):", ""] + [f"- {r}: {cell(e)}" for r, e in errors]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "findings.md"), "w", encoding="utf-8") as fh:
        fh.write(text)
    five = sum(1 for k in findings if str(k[4]).startswith("5"))
    print(f"{len(findings)} distinct findings ({five} with a 5xx); table in {os.path.join(out_dir, 'findings.md')}")
    if findings or errors:
        # The report directory is gone once a CI checkout is cleaned: the log must say what failed.
        print(text)
    return 1 if findings or errors else 0


if __name__ == "__main__":
    sys.exit(main())
