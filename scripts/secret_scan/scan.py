#!/usr/bin/env python3
"""Secret scanner for the IMS repository and for everything that ships from it.

What it scans, from a repository ROOT (`scan.py --repo ROOT`):
  1. the committed files (`git -C ROOT ls-files -z`, as they are in the working tree); files over
     50 MB are skipped and reported;
  2. the built web bundle ROOT/web/dist (`--bundle DIR` overrides); "skipped: not built" when it
     is missing, a failure with `--require-bundle`;
  3. the container image's files: what the runtime stage of ROOT/deploy/Dockerfile copies (read at
     every run; a COPY this script cannot map to a local path is an error, so the list cannot
     drift): the release binary (`--binary PATH`, default ROOT/target/release/ims, else
     ROOT/target/debug/ims; "skipped: not built" when neither exists, a failure with
     `--require-binary`; a missing `--binary PATH` is an error), web/dist and deploy/healthcheck.sh.
     Each physical file is scanned once even when it belongs to several of these sets.
Binary files (a NUL byte in the first 8 KB) are scanned like `strings`: printable ASCII runs of 8+
characters, found with one compiled regex over an mmap of the file.

Rules: aws-access-key-id, aws-secret-key, private-key, ed25519-pkcs8 (the format of the
`private_key` field of IMS's JWT_SIGNING_KEYS), jwt, url-credentials, github-token, slack-token,
stripe-key, google-api-key, generic-secret (a secret-like name assigned a quoted literal of 16+
characters with Shannon entropy >= 3.5 bits/char). Placeholders (`${VAR}`, `$VAR`, `<...>`,
`{{...}}`, `***`, `[redacted]`, the words password/secret/pass...) are not findings.

Allowlist: allowlist.txt next to this file (`--allowlist PATH` overrides), one entry per line,
`path-glob<TAB>rule<TAB>fingerprint-or-*<TAB>reason`, `#` comments. Parsed strictly (a malformed
line is an error). An entry that matched nothing is a "stale allowlist entry" and fails the scan
(entries whose paths were not scanned because the bundle or binary is missing are only noted).

Output: one line per finding, `path:line: rule (fingerprint 0123456789ab, starts "AKIA…")`, where
line is `@OFFSET` (a byte offset) for binary files. The matched text is never printed: at most its
first 4 characters. fingerprint = the first 12 hex digits of sha256(matched text).

Exit status: 0 clean, 1 findings (or stale entries, or a required part missing), 2 usage or
configuration error. `scan.py --self-test` plants every kind of secret in a temporary directory
and checks that each is found with the right rule, that clean look-alikes are not, and that the
allowlist, the Dockerfile mapping and the output behave as described. Python 3.11, standard
library only.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import hashlib
import io
import json
import math
import mmap
import os
import re
import secrets
import shlex
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ALLOWLIST = os.path.join(HERE, "allowlist.txt")
MAX_COMMITTED_BYTES = 50 * 1024 * 1024
STRINGS_MIN = 8
STRINGS_RE = re.compile(rb"[\x20-\x7e]{%d,}" % STRINGS_MIN)
BINARY_SNIFF = 8192
ENTROPY_MIN = 3.5


class UsageError(Exception):
    """Bad arguments or configuration (exit status 2)."""


# ---------------------------------------------------------------------------------------- rules


def shannon_entropy(s: str) -> float:
    n = len(s)
    if not n:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


PLACEHOLDER_WORDS = {"password", "passwd", "pass", "pwd", "secret", "redacted", "[redacted]"}
PLACEHOLDER_RE = re.compile(
    r"""\$.*                    # ${VAR}, $VAR, $(cmd)
      | .*\$\{.*                # a template with ${VAR} inside
      | .*\{\{.*\}\}.*          # {{resolve:...}}, {{ var }}
      | <[^<>]*>                # <password>
      | \{[A-Za-z0-9_.]*\}      # {password}, {} (format strings)
      | %(?:\([A-Za-z0-9_]+\))?s  # %s, %(password)s
      | \*{3,} | x{3,} | X{3,} | \.\.\. | …
    """,
    re.VERBOSE | re.DOTALL,
)


def is_placeholder(value: str) -> bool:
    v = value.strip()
    return v.lower() in PLACEHOLDER_WORDS or PLACEHOLDER_RE.fullmatch(v) is not None


@dataclass(frozen=True)
class Rule:
    name: str
    regex: re.Pattern[str]
    # Called with the match; False drops it (placeholder, low entropy).
    keep: Callable[[re.Match[str]], bool] | None = None
    # A literal that every match contains (lower-cased when `fold`): a file without it is skipped.
    anchors: tuple[str, ...] = ()
    fold: bool = False


def _keep_url(m: re.Match[str]) -> bool:
    return not is_placeholder(m.group("pw"))


def _keep_generic(m: re.Match[str]) -> bool:
    v = m.group("value")
    return not is_placeholder(v) and shannon_entropy(v) >= ENTROPY_MIN


RULES: tuple[Rule, ...] = (
    Rule("aws-access-key-id", re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}"), anchors=("AKIA", "ASIA")),
    Rule(
        "aws-secret-key",
        re.compile(
            r"(?i:(?:aws_?)?secret_?access_?key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
        ),
        anchors=("access",),
        fold=True,
    ),
    Rule(
        "private-key",
        re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP |)PRIVATE KEY(?: BLOCK)?-----"),
        anchors=("-----BEGIN ",),
    ),
    Rule(
        "ed25519-pkcs8",
        re.compile(r"MC4CAQAwBQYDK2VwBCIEI[A-Za-z0-9+/]{43}=?"),
        anchors=("MC4CAQAwBQYDK2VwBCIEI",),
    ),
    Rule(
        "jwt",
        re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}"),
        anchors=(".eyJ",),
    ),
    Rule(
        "url-credentials",
        # The lookbehind only skips starting points inside a scheme (speed); matches are the same.
        re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<pw>[^@\s/]{3,})@"),
        keep=_keep_url,
        anchors=("://",),
    ),
    Rule("github-token", re.compile(r"gh[pousr]_[A-Za-z0-9]{36}"), anchors=("gh",)),
    Rule("slack-token", re.compile(r"xox[baprs]-[A-Za-z0-9-]{10,}"), anchors=("xox",)),
    Rule("stripe-key", re.compile(r"sk_live_[0-9a-zA-Z]{24,}"), anchors=("sk_live_",)),
    Rule("google-api-key", re.compile(r"AIza[0-9A-Za-z_-]{35}"), anchors=("AIza",)),
    Rule(
        "generic-secret",
        # A name ending in one of these words (SMTP_PASSWORD, dbPassword, "password" in JSON),
        # ':' or '=', then a quoted literal of 16+ characters without blanks.
        re.compile(
            r"(?i:secret|password|passwd|pepper|api[_-]?key|private[_-]?key|token)[\"'`]?\s*[:=]\s*"
            r"[\"'`](?P<value>[^\"'`\s]{16,})[\"'`]"
        ),
        keep=_keep_generic,
        anchors=("secret", "passw", "pepper", "key", "token"),
        fold=True,
    ),
)
RULE_NAMES = frozenset(r.name for r in RULES)


@dataclass(frozen=True)
class Finding:
    path: str  # the display path (allowlist globs match it)
    where: str  # "12" (a line) or "@123456" (a byte offset in a binary file)
    rule: str
    fingerprint: str
    head: str  # at most the first 4 characters of the match

    def render(self) -> str:
        return f'{self.path}:{self.where}: {self.rule} (fingerprint {self.fingerprint}, starts "{self.head}…")'


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def scan_text(text: str) -> Iterable[tuple[int, Rule, re.Match[str]]]:
    """Every (offset, rule, match) in `text`, in offset order."""
    folded: str | None = None
    hits: list[tuple[int, Rule, re.Match[str]]] = []
    for rule in RULES:
        if rule.anchors:
            if rule.fold:
                if folded is None:
                    folded = text.lower()
                hay = folded
            else:
                hay = text
            if not any(a in hay for a in rule.anchors):
                continue
        for m in rule.regex.finditer(text):
            if rule.keep is None or rule.keep(m):
                hits.append((m.start(), rule, m))
    # One secret, one finding: generic-secret yields to a specific rule matching inside it
    # (`"private_key":"MC4C…"` is an ed25519-pkcs8 finding only).
    specific = [(m.start(), m.end()) for _, r, m in hits if r.name != "generic-secret"]
    if specific:
        hits = [
            h for h in hits
            if h[1].name != "generic-secret" or not any(s < h[2].end() and h[2].start() < e for s, e in specific)
        ]
    hits.sort(key=lambda h: (h[0], h[1].name))
    return hits


def _finding(path: str, where: str, rule: Rule, m: re.Match[str]) -> Finding:
    text = m.group(0)
    return Finding(path, where, rule.name, fingerprint(text), text[:4])


def scan_file(real: str, display: str) -> list[Finding]:
    """Scans one file: text line by line offsets, binary as strings runs."""
    with open(real, "rb") as f:
        head = f.read(BINARY_SNIFF)
        if b"\0" in head:
            return scan_binary(f, display)
        data = head + f.read()
    text = data.decode("utf-8", "surrogateescape")
    out = []
    line, pos = 1, 0
    for start, rule, m in scan_text(text):
        line += text.count("\n", pos, start)
        pos = start
        out.append(_finding(display, str(line), rule, m))
    return out


def scan_binary(f: io.BufferedReader, display: str) -> list[Finding]:
    """`strings`-style scan: printable ASCII runs of 8+ bytes, joined by newlines, then the rules.

    The file is mapped (mmap), not read: pages come in as the regex walks them, so a 150 MB binary
    costs no more memory than its strings."""
    size = os.fstat(f.fileno()).st_size
    if size == 0:
        return []
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        runs = [(m.start(), m.group()) for m in STRINGS_RE.finditer(mm)]
    if not runs:
        return []
    joined = b"\n".join(r[1] for r in runs).decode("ascii")
    hits = list(scan_text(joined))
    if not hits:
        return []
    # Map offsets in `joined` back to file offsets.
    starts = []
    acc = 0
    for _, run in runs:
        starts.append(acc)
        acc += len(run) + 1
    out = []
    for start, rule, m in hits:
        i = bisect.bisect_right(starts, start) - 1
        offset = runs[i][0] + (start - starts[i])
        out.append(_finding(display, f"@{offset}", rule, m))
    return out


# ------------------------------------------------------------------------------------ allowlist


@dataclass
class AllowEntry:
    lineno: int
    glob: str
    rule: str
    fingerprint: str  # 12 hex digits or "*"
    reason: str
    regex: re.Pattern[str]
    source: str = "allowlist.txt"
    used: int = 0

    def matches(self, f: Finding) -> bool:
        return (
            f.rule == self.rule
            and (self.fingerprint == "*" or self.fingerprint == f.fingerprint)
            and self.regex.fullmatch(f.path) is not None
        )

    def describe(self) -> str:
        return f"{self.glob}\t{self.rule}\t{self.fingerprint}\t{self.reason}"


def glob_regex(glob: str) -> re.Pattern[str]:
    """`**/` any directories (or none), `**` anything, `*` and `?` within one path segment."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


FP_RE = re.compile(r"[0-9a-f]{12}")


def parse_allowlist(text: str, name: str = "allowlist.txt") -> list[AllowEntry]:
    entries = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        where = f"{name}:{lineno}"
        if len(fields) != 4:
            raise UsageError(
                f"{where}: expected 4 TAB-separated fields (path-glob, rule, fingerprint or *, reason), got {len(fields)}"
            )
        glob, rule, fp, reason = fields
        if not glob or glob != glob.strip() or glob.startswith("/"):
            raise UsageError(f"{where}: bad path glob {glob!r} (non-empty, no surrounding blanks)")
        if rule not in RULE_NAMES:
            raise UsageError(f"{where}: unknown rule {rule!r} (known: {', '.join(sorted(RULE_NAMES))})")
        if fp != "*" and not FP_RE.fullmatch(fp):
            raise UsageError(f"{where}: fingerprint must be 12 lower-case hex digits or '*', got {fp!r}")
        if len(reason.strip()) < 10:
            raise UsageError(f"{where}: a reason is required (at least 10 characters)")
        entries.append(AllowEntry(lineno, glob, rule, fp, reason.strip(), glob_regex(glob), name))
    return entries


def load_allowlist(path: str) -> list[AllowEntry]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UsageError(f"allowlist {path} does not exist") from None
    return parse_allowlist(text, os.path.basename(path))


# ---------------------------------------------------------------------------- the Dockerfile


# Where each runtime-stage COPY source is found locally: (stage, source) -> what it is.
BINARY, BUNDLE = "binary", "bundle"
IMAGE_SOURCES: dict[tuple[str, str], str] = {
    ("build", "/out/ims"): BINARY,
    ("web", "/src/web/dist"): BUNDLE,
}
# Copied from a stage that downloads it at image build time: nothing local to scan.
IMAGE_EXTERNAL: dict[tuple[str, str], str] = {
    ("certs", "/out/rds-global-bundle.pem"): "the Amazon RDS CA bundle, downloaded at image build time (public certificates, no key)",
}


@dataclass(frozen=True)
class ImageCopy:
    lineno: int
    stage: str | None  # --from=STAGE, None for the build context
    source: str
    dest: str


def dockerfile_runtime_copies(text: str) -> list[ImageCopy]:
    """COPY/ADD instructions of the stage named `runtime` (else the last stage)."""
    logical: list[tuple[int, str]] = []
    buf, start = "", 0
    for lineno, raw in enumerate(text.split("\n"), 1):
        s = raw.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue  # comment lines inside a continued instruction
        if not buf:
            start = lineno
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        logical.append((start, buf + s))
        buf = ""
    if buf:
        logical.append((start, buf))

    stages: list[tuple[str | None, list[tuple[int, str]]]] = []
    for lineno, instr in logical:
        word = instr.split(None, 1)[0].upper()
        if word == "FROM":
            m = re.search(r"\s+AS\s+(\S+)\s*$", instr, re.IGNORECASE)
            stages.append((m.group(1) if m else None, []))
        elif stages:
            stages[-1][1].append((lineno, instr))
    if not stages:
        raise UsageError("deploy/Dockerfile has no FROM")
    body = next((b for n, b in stages if n == "runtime"), stages[-1][1])

    copies = []
    for lineno, instr in body:
        word, _, rest = instr.partition(" ")
        if word.upper() not in ("COPY", "ADD"):
            continue
        try:
            tokens = shlex.split(rest)
        except ValueError as e:
            raise UsageError(f"deploy/Dockerfile:{lineno}: cannot parse {word}: {e}") from None
        flags = {}
        while tokens and tokens[0].startswith("--"):
            k, _, v = tokens.pop(0)[2:].partition("=")
            flags[k] = v
        if tokens and tokens[0].startswith("["):
            tokens = json.loads(" ".join(tokens))
        if len(tokens) < 2:
            raise UsageError(f"deploy/Dockerfile:{lineno}: {word} without source and destination")
        for src in tokens[:-1]:
            copies.append(ImageCopy(lineno, flags.get("from"), src, tokens[-1]))
    return copies


# ------------------------------------------------------------------------------------- scanning


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)  # not allowlisted
    allowed: list[tuple[Finding, AllowEntry]] = field(default_factory=list)
    stale: list[AllowEntry] = field(default_factory=list)
    unchecked: list[AllowEntry] = field(default_factory=list)  # their files were not scanned
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # a required part missing
    scanned_paths: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if (self.findings or self.stale or self.failures) else 0

    def render(self, out: io.TextIOBase) -> None:
        for n in self.notes:
            print(n, file=out)
        for f in self.findings:
            print(f.render(), file=out)
        if self.allowed:
            print(f"allowlisted: {len(self.allowed)} finding(s)", file=out)
        for e in self.stale:
            print(f"stale allowlist entry: {e.source}:{e.lineno}: {e.describe()} (matched nothing: remove it)", file=out)
        for e in self.unchecked:
            print(f"allowlist entry not checked (its files were not scanned): {e.source}:{e.lineno}: {e.glob} {e.rule}", file=out)
        for msg in self.failures:
            print(f"FAILED: {msg}", file=out)
        if self.exit_code == 0:
            print("secret scan: clean", file=out)
        else:
            print(
                f"secret scan: FAILED ({len(self.findings)} finding(s), {len(self.stale)} stale allowlist entr(y/ies), "
                f"{len(self.failures)} other failure(s)). Remove real secrets from the files AND rotate them; add a "
                "test fixture or documented example to scripts/secret_scan/allowlist.txt with its exact fingerprint "
                "and a reason.",
                file=out,
            )


def git_ls_files(root: str, untracked: bool = False) -> list[str]:
    cmd = ["git", "-C", root, "ls-files", "-z"] + (["--others", "--exclude-standard"] if untracked else [])
    try:
        p = subprocess.run(cmd, capture_output=True, check=False)
    except FileNotFoundError:
        raise UsageError("git is not installed") from None
    if p.returncode != 0:
        raise UsageError(f"git ls-files failed in {root}: {p.stderr.decode(errors='replace').strip()}")
    return [p for p in p.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def _walk(top: str) -> list[str]:
    out = []
    for d, dirs, files in os.walk(top):
        dirs[:] = sorted(x for x in dirs if x != ".git")
        for name in sorted(files):
            out.append(os.path.join(d, name))
    return out


def _display(root: str, path: str) -> str:
    rel = os.path.relpath(path, root)
    return path if rel.startswith("..") else rel.replace(os.sep, "/")


def scan_repo(
    root: str,
    allowlist: list[AllowEntry],
    *,
    bundle: str | None = None,
    binary: str | None = None,
    require_bundle: bool = False,
    require_binary: bool = False,
    committed: list[str] | None = None,
    untracked: bool = False,
) -> Report:
    """The whole scan. `committed` replaces `git ls-files` (the self-test's temporary trees)."""
    root = os.path.abspath(root)
    rep = Report()
    targets: dict[str, str] = {}  # realpath -> display path, in scan order
    timings: list[str] = []

    def add(real: str, display: str) -> None:
        targets.setdefault(os.path.realpath(real), display)

    # 1. committed files
    t0 = time.monotonic()
    names = git_ls_files(root) if committed is None else committed
    extra = git_ls_files(root, untracked=True) if untracked else []
    names = names + extra
    big, missing = [], 0
    for name in names:
        p = os.path.join(root, name)
        if name == ".git" or name.startswith(".git/") or os.path.islink(p):
            continue
        if not os.path.isfile(p):
            missing += 1  # deleted in the working tree, or a submodule
            continue
        size = os.path.getsize(p)
        if size > MAX_COMMITTED_BYTES:
            big.append(f"{name} ({size / 1e6:.0f} MB)")
            continue
        add(p, name)
    rep.notes.append(
        f"committed files: {len(names) - len(extra)} listed"
        + (f" (+{len(extra)} untracked, --untracked)" if untracked else "")
        + (f", {missing} not in the working tree" if missing else "")
        + (f"; skipped (over 50 MB, NOT scanned): {', '.join(big)}" if big else "")
    )

    # 2. the web bundle
    default_bundle = os.path.join(root, "web", "dist")
    bundle_dir = os.path.abspath(bundle) if bundle else default_bundle
    bundle_ok = os.path.isdir(bundle_dir)
    if bundle_ok:
        files = _walk(bundle_dir)
        for p in files:
            add(p, "web/dist/" + os.path.relpath(p, bundle_dir).replace(os.sep, "/"))
        rep.notes.append(f"web bundle {_display(root, bundle_dir)}: {len(files)} files")
    elif bundle or require_bundle:
        rep.failures.append(f"web bundle {_display(root, bundle_dir)} is missing (run `npm run build` in web/)")
    else:
        rep.notes.append("web bundle web/dist: skipped: not built")

    # 3. the container image
    if binary:
        binary_path = os.path.abspath(binary)
        if not os.path.isfile(binary_path):
            raise UsageError(f"--binary {binary}: no such file")
    else:
        binary_path = next(
            (p for p in (os.path.join(root, "target", k, "ims") for k in ("release", "debug")) if os.path.isfile(p)),
            None,
        )
    if binary_path:
        add(binary_path, _display(root, binary_path))
        binary_note = f"{_display(root, binary_path)} ({os.path.getsize(binary_path) / 1e6:.1f} MB)"
    else:
        binary_note = "skipped: not built"
        if require_binary:
            rep.failures.append("the release binary is missing (target/release/ims or target/debug/ims)")

    dockerfile = os.path.join(root, "deploy", "Dockerfile")
    if os.path.isfile(dockerfile):
        with open(dockerfile, encoding="utf-8") as f:
            copies = dockerfile_runtime_copies(f.read())
        parts = []
        for c in copies:
            key = (c.stage or "", c.source.rstrip("/"))
            if c.stage is None:
                local = os.path.normpath(os.path.join(root, c.source))
                if not os.path.exists(local):
                    raise UsageError(f"deploy/Dockerfile:{c.lineno}: COPY source {c.source} does not exist")
                for p in _walk(local) if os.path.isdir(local) else [local]:
                    add(p, _display(root, p))
                parts.append(f"{c.dest} <- {c.source}")
            elif IMAGE_SOURCES.get(key) == BINARY:
                parts.append(f"{c.dest} <- {binary_note}")
            elif IMAGE_SOURCES.get(key) == BUNDLE:
                parts.append(f"{c.dest} <- web/dist" + ("" if bundle_ok else " (skipped: not built)"))
            elif key in IMAGE_EXTERNAL:
                parts.append(f"{c.dest}: not scanned, {IMAGE_EXTERNAL[key]}")
            else:
                raise UsageError(
                    f"deploy/Dockerfile:{c.lineno}: the runtime stage copies {c.source} from stage {c.stage}, which "
                    "scan.py cannot find locally: add it to IMAGE_SOURCES or IMAGE_EXTERNAL in scripts/secret_scan/scan.py"
                )
        rep.notes.append("image (deploy/Dockerfile runtime stage): " + "; ".join(parts))
    else:
        rep.notes.append(f"image: no deploy/Dockerfile; binary {binary_note}")
    timings.append(f"listing {time.monotonic() - t0:.2f}s")

    # scan
    t0 = time.monotonic()
    raw: list[Finding] = []
    slowest = ("", 0.0)
    for real, display in targets.items():
        t = time.monotonic()
        try:
            raw.extend(scan_file(real, display))
        except OSError as e:
            rep.failures.append(f"{display}: cannot read: {e}")
        dt = time.monotonic() - t
        if dt > slowest[1]:
            slowest = (display, dt)
    rep.scanned_paths = list(targets.values())
    timings.append(f"scan {time.monotonic() - t0:.2f}s (slowest: {slowest[0]} {slowest[1]:.2f}s)")

    # allowlist
    for f in raw:
        entry = next((e for e in allowlist if e.matches(f)), None)
        if entry:
            entry.used += 1
            rep.allowed.append((f, entry))
        else:
            rep.findings.append(f)
    full = bundle_ok and binary_path is not None
    for e in allowlist:
        if e.used:
            continue
        if full or any(e.regex.fullmatch(p) for p in rep.scanned_paths):
            rep.stale.append(e)
        else:
            rep.unchecked.append(e)
    rep.notes.append(f"{len(targets)} files scanned; " + ", ".join(timings))
    return rep


# ------------------------------------------------------------------------------------ self-test


def _rand(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


UPPER_DIGITS = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"


def _b64url(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def planted_secrets() -> list[tuple[str, str, str]]:
    """(rule, secret, line of text containing it), all built at run time from pieces and random
    characters, so that this file contains no literal secret."""
    dash5 = "-" * 5
    ed_der_prefix = bytes.fromhex("302e020100300506032b657004220420")
    ed = base64.b64encode(ed_der_prefix + secrets.token_bytes(32)).decode()
    jwt = ".".join([_b64url({"alg": "EdDSA", "typ": "JWT"}), _b64url({"sub": "u-" + _rand(ALNUM, 8), "exp": 1}),
                    base64.urlsafe_b64encode(secrets.token_bytes(64)).decode().rstrip("=")])
    aws_id = "AK" + "IA" + _rand(UPPER_DIGITS, 16)
    aws_secret = _rand(B64, 40)
    pw = "Zq" + _rand(ALNUM, 10)
    gen = _rand(ALNUM, 24) + "!#"
    pem = f"{dash5}BEGIN " + "PRIVATE KEY" + dash5
    pem_rsa = f"{dash5}BEGIN RSA " + "PRIVATE KEY" + dash5
    pem_ssh = f"{dash5}BEGIN OPENSSH " + "PRIVATE KEY" + dash5
    return [
        ("aws-access-key-id", aws_id, f"aws_access_key_id = {aws_id}"),
        ("aws-access-key-id", "AS" + "IA" + _rand(UPPER_DIGITS, 16), "key: {s}"),
        ("aws-secret-key", aws_secret, f"aws_secret_access_key = {aws_secret}"),
        ("aws-secret-key", aws_secret[::-1], 'AWS_SECRET_ACCESS_KEY="{s}"'),
        ("private-key", pem, pem),
        ("private-key", pem_rsa, pem_rsa),
        ("private-key", pem_ssh, pem_ssh),
        ("ed25519-pkcs8", ed, '{"keys":[{"kid":"k1","alg":"EdDSA","created_at":1,"private_key":"{s}"}]}'),
        ("jwt", jwt, "Authorization: Bearer {s}"),
        ("url-credentials", pw, "IMS_DATABASE_URL=postgres://ims:{s}@db.internal:5432/ims"),
        ("github-token", "gh" + "p_" + _rand(ALNUM, 36), "GITHUB_TOKEN={s}"),
        ("slack-token", "xo" + "xb-" + _rand(string.digits, 12) + "-" + _rand(ALNUM, 24), "hook {s}"),
        ("stripe-key", "sk" + "_live_" + _rand(ALNUM, 24), "stripe {s}"),
        ("google-api-key", "AI" + "za" + _rand(B64URL, 35), "maps {s}"),
        ("generic-secret", gen, 'SMTP_PASSWORD: "{s}"'),
        ("generic-secret", gen[::-1], 'const apiKey = \'{s}\';'),
        ("generic-secret", gen.lower() + "Q9", '{"client_secret": "{s}"}'),
    ]


def clean_lookalikes() -> list[str]:
    """Lines that resemble secrets but are not (none may be reported)."""
    b64_text = base64.b64encode(b"Production plan for line SMT-3, shift B, week 42 of 2025.").decode()
    spki = base64.b64encode(bytes.fromhex("302a300506032b6570032100") + bytes(range(32))).decode()
    sha512 = base64.b64encode(hashlib.sha512(b"react-18.3.1.tgz").digest()).decode()
    return [
        'password: "${PASSWORD}"',
        'password = "${DATABASE_PASSWORD_FROM_SECRETS_MANAGER}"',
        "IMS_DATABASE_PASSWORD=",
        "DATABASE_PASSWORD, SMTP_PASSWORD and OTP_PEPPER come from Secrets Manager",
        "IMS_DATABASE_PASSWORD_FILE=/run/secrets/db-password",
        "postgres://postgres@127.0.0.1:5432/test",
        "postgres://ims:${IMS_DATABASE_PASSWORD}@db:5432/ims",
        "postgres://ims:$PGPASSWORD@db:5432/ims",
        "https://user:<password>@example.com/x",
        "mysql://root:***@db/x and amqp://guest:[redacted]@mq/ and redis://u:password@cache/",
        "http://user:secret@host/x http://u:pass@h/",
        'format!("postgres://{user}:{pass}@{host}/ims")',
        "MasterUserPassword: '{{resolve:secretsmanager:ims/db:SecretString:password}}'",
        "http://127.0.0.1:8080/api and https://example.com:8443/x@y",
        f"data: {b64_text}",
        f'"public_key": "{spki}"',
        f'"integrity": "sha512-{sha512}",',
        'checksum = "' + hashlib.sha256(b"serde").hexdigest() + '"',
        'token = "aaaaaaaaaaaaaaaaaaaaaaaa"',
        'password: "short"',
        'token: "access_token"',
        "const newPassword = form.get('new_password');",
        "eyJhbGciOi.eyJzdWIi.c2ln",
        "AKIA lowercase akiaabcdefghijklmnop",
        "-----BEGIN CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----",
    ]


def _check(cond: bool, msg: str, errors: list[str]) -> None:
    if not cond:
        errors.append(msg)


def self_test() -> int:
    errors: list[str] = []
    planted = planted_secrets()
    example_key = "AKIA" + "IOSFODNN7" + "EXAMPLE"  # AWS's documented example key id
    with tempfile.TemporaryDirectory(prefix="ims-secret-scan-") as tmp:
        root = os.path.join(tmp, "repo")
        committed: list[str] = []

        def write(rel: str, data: bytes | str, commit: bool = True) -> str:
            p = os.path.join(root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
            if commit:
                committed.append(rel)
            return p

        # One text file per planted secret, the secret on line 3.
        expected: dict[str, tuple[str, str]] = {}  # path -> (rule, where)
        for i, (rule, secret, line) in enumerate(planted):
            rel = f"planted/{i:02d}-{rule}.txt"
            write(rel, f"# fixture\n\n{line.replace('{s}', secret)}\n# end\n")
            expected[rel] = (rule, "3")
        # A fake binary: the secret between NUL bytes at a known offset.
        aws_id = planted[0][1]
        blob = b"\x7fELF\x02\x01\x01\0" + secrets.token_bytes(5000).replace(b"AKIA", b"....") + b"\0\0"
        offset = len(blob)
        blob += aws_id.encode() + b"\0" + secrets.token_bytes(3000) + b"\0tail string\0"
        write("planted/fake.bin", blob)
        expected["planted/fake.bin"] = ("aws-access-key-id", f"@{offset}")
        # A minified-JS-like one-liner (the bundle): a key deep inside one long line.
        google = next(s for r, s, _ in planted if r == "google-api-key")
        filler = "".join(f"function f{i}(a,b){{return a+b*{i}}};" for i in range(4000))
        minified = f'!function(){{"use strict";{filler}var c={{mapsKey:"{google}",n:1}};{filler}}}();'
        bundle = os.path.join(tmp, "dist")
        os.makedirs(os.path.join(bundle, "assets"))
        with open(os.path.join(bundle, "assets", "index-Ab12Cd.js"), "w") as f:
            f.write(minified)
        expected["web/dist/assets/index-Ab12Cd.js"] = ("google-api-key", "1")
        # The image: a Dockerfile with a runtime stage, a binary and an uncommitted context file.
        binary = os.path.join(tmp, "ims-binary")
        with open(binary, "wb") as f:
            f.write(b"\0" * 100 + b"x" * 7 + b"\0" + planted[9][2].replace("{s}", planted[9][1]).encode() + b"\0")
        write(
            "deploy/Dockerfile",
            "FROM rust AS build\nCOPY src ./src\nFROM debian AS runtime\nWORKDIR /app\n"
            "# a comment\nCOPY --from=build --chown=root:root /out/ims /app/ims\n"
            "COPY --from=web /src/web/dist \\\n    /app/web/dist\nCOPY deploy/healthcheck.sh deploy/extra.env /usr/local/bin/\n",
        )
        write("deploy/healthcheck.sh", "#!/bin/sh\nexit 0\n")
        write("deploy/extra.env", f"export STRIPE={planted[12][1]}\n", commit=False)
        expected["deploy/extra.env"] = ("stripe-key", "1")
        # Clean look-alikes, and a documented example key that is allowlisted explicitly.
        write("clean/lookalikes.txt", "\n".join(clean_lookalikes()) + "\n")
        write("clean/package-lock.json", "\n".join(clean_lookalikes()[-10:]) + "\n")
        write("docs/aws.md", f"Example: `{example_key}` (AWS documentation)\n")
        write("big.dat", b"x", commit=True)  # replaced below by a sparse file over 50 MB
        with open(os.path.join(root, "big.dat"), "wb") as f:
            f.truncate(MAX_COMMITTED_BYTES + 1)

        # --- allowlist parsing
        allow_text = (
            "# comment\n\n"
            f"docs/*.md\taws-access-key-id\t{fingerprint(example_key)}\tAWS's documented example key id\n"
            f"planted/never/**\tjwt\t*\ta stale entry: matches nothing in this tree\n"
            f"target/*/ims\tjwt\t*\tonly checked when the binary is scanned\n"
        )
        allow = parse_allowlist(allow_text)
        _check(len(allow) == 3, "allowlist: 3 entries parsed", errors)
        for bad in (
            "a\tjwt\t*\n",  # 3 fields
            "a\tjwt\t*\treason long enough\textra\n",
            "a\tno-such-rule\t*\treason long enough\n",
            "a\tjwt\tABCDEF012345\treason long enough\n",  # upper case
            "a\tjwt\t0123\treason long enough\n",
            "a\tjwt\t*\t \n",  # no reason
            "\tjwt\t*\treason long enough\n",
            "a b \tjwt\t*\treason long enough\n",
        ):
            try:
                parse_allowlist(bad)
                errors.append(f"allowlist: malformed line accepted: {bad!r}")
            except UsageError:
                pass

        # --- full scan
        rep = scan_repo(root, allow, bundle=bundle, binary=binary, committed=committed)
        got: dict[str, list[Finding]] = {}
        for f in rep.findings:
            got.setdefault(f.path, []).append(f)
        for path, (rule, where) in expected.items():
            fs = got.get(path, [])
            _check(
                any(f.rule == rule and f.where == where for f in fs),
                f"{path}: expected {rule} at {where}, got {[(f.rule, f.where) for f in fs]}",
                errors,
            )
        bin_display = _display(root, binary)
        _check(any(f.path == bin_display and f.rule == "url-credentials" for f in rep.findings),
               "the --binary file is scanned (url-credentials)", errors)
        for path, fs in got.items():
            if path in expected and path != "planted/fake.bin":
                _check(len({f.rule for f in fs}) == 1, f"{path}: one rule expected, got {[f.rule for f in fs]}", errors)
        for f in rep.findings:
            if f.path.startswith(("clean/", "docs/")):
                errors.append(f"false positive: {f.render()}")
        for rule, secret, line in planted:
            if rule == "generic-secret":
                m = RULES[-1].regex.search(line.replace("{s}", secret))
                _check(m is not None and fingerprint(m.group(0)) in {f.fingerprint for f in rep.findings},
                       "generic-secret fingerprint is sha256 of the matched text", errors)
        _check([e.lineno for _, e in rep.allowed] == [3], "the example key is allowlisted by its exact fingerprint", errors)
        _check([e.glob for e in rep.stale] == ["planted/never/**", "target/*/ims"], f"stale entries in a full scan: {[e.glob for e in rep.stale]}", errors)
        _check(any("big.dat" in n and "over 50 MB" in n for n in rep.notes), "files over 50 MB are reported", errors)
        _check(rep.exit_code == 1, "findings fail the scan", errors)
        _check(RULE_NAMES <= {f.rule for f in rep.findings}, f"every rule fired: missing {RULE_NAMES - {f.rule for f in rep.findings}}", errors)

        # --- the output never contains a secret
        out = io.StringIO()
        rep.render(out)
        text = out.getvalue()
        for rule, secret, _ in planted + [("aws-access-key-id", example_key, "")]:
            for piece in (secret[:6], secret[-6:], secret):
                _check(piece not in text, f"output contains part of a {rule} secret", errors)
        _check(re.search(r": aws-access-key-id \(fingerprint [0-9a-f]{12}, starts \"AKIA…\"\)", text) is not None,
               "finding format", errors)

        # --- without the allowlist the example key is a finding; partial scans do not call
        # entries for unscanned files stale; a '*' entry covers a rule in matching paths.
        rep2 = scan_repo(root, [], bundle=bundle, binary=binary, committed=committed)
        _check(any(f.path == "docs/aws.md" for f in rep2.findings), "example key found when not allowlisted", errors)
        allow3 = parse_allowlist(
            "planted/*-google-api-key.txt\tgoogle-api-key\t*\tany google key in this fixture file\n"
            "target/*/ims\tjwt\t*\tonly checked when the binary is scanned\n"
            "docs/aws.md\tjwt\t*\tstale: the file is scanned, nothing matches\n"
        )
        rep3 = scan_repo(root, allow3, bundle=bundle, committed=committed)
        _check(not any(f.rule == "google-api-key" and f.path.startswith("planted/") for f in rep3.findings),
               "'*' fingerprint allows the rule in matching paths", errors)
        _check(any(f.rule == "google-api-key" for f in rep3.findings), "'*' entry does not cover other paths", errors)
        _check([e.glob for e in rep3.unchecked] == ["target/*/ims"], "entries for unscanned files are only noted", errors)
        _check([e.glob for e in rep3.stale] == ["docs/aws.md"], "entries for scanned files are stale", errors)

        # --- a clean tree passes; a missing required bundle fails
        clean_root = os.path.join(tmp, "clean")
        os.makedirs(clean_root)
        with open(os.path.join(clean_root, "a.txt"), "w") as f:
            f.write("\n".join(clean_lookalikes()))
        rep4 = scan_repo(clean_root, [], committed=["a.txt"])
        _check(rep4.exit_code == 0 and not rep4.findings, f"clean tree: {[f.render() for f in rep4.findings]}", errors)
        _check(any("skipped: not built" in n for n in rep4.notes), "missing bundle noted", errors)
        _check(scan_repo(clean_root, [], committed=["a.txt"], require_bundle=True).exit_code == 1,
               "--require-bundle fails without a bundle", errors)
        try:
            scan_repo(clean_root, [], committed=["a.txt"], binary=os.path.join(tmp, "missing"))
            errors.append("a missing --binary is an error")
        except UsageError:
            pass
        # An unknown runtime COPY source is an error (the list cannot drift).
        os.makedirs(os.path.join(clean_root, "deploy"))
        with open(os.path.join(clean_root, "deploy", "Dockerfile"), "w") as f:
            f.write("FROM x AS runtime\nCOPY --from=other /etc/app.conf /app/\n")
        try:
            scan_repo(clean_root, [], committed=["a.txt"])
            errors.append("an unmapped runtime COPY is an error")
        except UsageError:
            pass

        # --- the CLI: usage errors exit 2
        for argv in ([], ["--repo", tmp], ["--repo", root, "--self-test"]):
            with _quiet():
                code = main(argv)
            _check(code == 2, f"exit 2 for {argv}, got {code}", errors)

    # --- this directory's own files are clean (scan.py is committed and scanned too)
    for name in ("scan.py", "README.md", "allowlist.txt"):
        p = os.path.join(HERE, name)
        if os.path.exists(p):
            for f in scan_file(p, name):
                errors.append(f"{name} itself has a finding: {f.render()}")

    if errors:
        for e in errors:
            print(f"self-test FAILED: {e}")
        return 1
    print(f"self-test passed: {len(planted)} planted secrets in {len(RULE_NAMES)} rules found, "
          f"{len(clean_lookalikes())} look-alikes clean, allowlist, Dockerfile mapping, output and exit codes checked")
    return 0


class _quiet:
    def __enter__(self):
        self._saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = io.StringIO()

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self._saved


# ------------------------------------------------------------------------------------------ CLI


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit status 2 through main(), not SystemExit
        raise UsageError(message)


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(description="Secret scanner for the IMS repository, web bundle and container image.")
    ap.add_argument("--repo", metavar="ROOT", help="repository root to scan")
    ap.add_argument("--self-test", action="store_true", help="plant secrets in a temporary tree and check the scanner")
    ap.add_argument("--binary", metavar="PATH", help="the release binary (default ROOT/target/release/ims, else ROOT/target/debug/ims)")
    ap.add_argument("--bundle", metavar="DIR", help="the built web bundle (default ROOT/web/dist)")
    ap.add_argument("--require-bundle", action="store_true", help="fail when the web bundle is not built")
    ap.add_argument("--require-binary", action="store_true", help="fail when no binary is found")
    ap.add_argument("--untracked", action="store_true", help="also scan untracked files git does not ignore (before a commit)")
    ap.add_argument("--allowlist", metavar="PATH", default=DEFAULT_ALLOWLIST)
    try:
        args = ap.parse_args(argv)
        if args.self_test:
            if args.repo or args.binary or args.bundle:
                raise UsageError("--self-test takes no other options")
            return self_test()
        if not args.repo:
            raise UsageError("--repo ROOT or --self-test is required")
        if not os.path.isdir(args.repo):
            raise UsageError(f"--repo {args.repo}: not a directory")
        t0 = time.monotonic()
        rep = scan_repo(
            args.repo,
            load_allowlist(args.allowlist),
            bundle=args.bundle,
            binary=args.binary,
            require_bundle=args.require_bundle,
            require_binary=args.require_binary,
            untracked=args.untracked,
        )
        rep.render(sys.stdout)
        print(f"secret scan took {time.monotonic() - t0:.1f}s")
        return rep.exit_code
    except UsageError as e:
        print(f"scan.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
