#!/usr/bin/env python3
"""A burst of password-reset requests, delivered through a real SMTP server: is every code mailed
exactly once, and how long does the outbox take to drain?

Starts Python's aiosmtpd on loopback (a Maildir handler, one file per accepted message, as
tests/api/mail.rs does) and a release `ims serve` with IMS_MAIL_TRANSPORT=smtp on a fresh
PostgreSQL database (`--sqlite`: the embedded SQLite instead), creates the accounts with
`ims users create … --password-stdin`, then sends REQUESTS `POST /auth/forgot-password` from
CONCURRENCY keep-alive connections, waits (bounded) until the outbox has drained into the Maildir,
and checks what arrived: one message per code, none lost, none twice, none failed.

    python3 bench/forgot_burst.py [--requests 1000] [--concurrency 32] [--sqlite] [--skip-build]

One request per account by default (1,000 accounts). `--per-account N` (at most 5: an address is
sent at most 5 codes an hour) sends N requests to each of REQUESTS / N accounts instead; a newer
code then *replaces* a queued, not yet sent mail to the same address (the old code is dead), so
fewer than REQUESTS messages are expected — the report counts those superseded mails separately.

Environment: IMS_BENCH_PG_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres),
IMS_BIN (binary, default $CARGO_TARGET_DIR/release/ims), BENCH_SKIP_BUILD=1 (same as
--skip-build), BENCH_SERVER_ENV (extra "VAR=value …" for the server).

Writes bench/results/forgot-burst.md (--results) and prints it. Exit status 0 only when every
request was answered 202 and exactly the expected number of distinct messages arrived: 0 lost,
0 duplicates, 0 failed and 0 still pending in the outbox (and every sampled code verifies).
Everything it starts is stopped and the database it creates is dropped, whatever the exit path;
the temp dir (server and SMTP logs) is kept when the run fails.
"""
import argparse
import email
import email.policy
import http.client
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "Violet-Tractor-Lamp-2091!"
EMAIL_DOMAIN = "factory.example"
READY_TIMEOUT = 60  # seconds ims serve may take to answer /readyz
STOP_TIMEOUT = 15  # seconds it may take to stop after SIGTERM
SMTP_TIMEOUT = 20  # seconds aiosmtpd may take to greet
# Outbox worker concurrency and the per-address limit, as in src/mail/worker.rs and notify.rs.
OUTBOX_CONCURRENCY = 4
CODES_PER_ADDRESS_PER_HOUR = 5

# The SMTP sink: aiosmtpd's Mailbox handler (one Maildir file per accepted message), plus the
# time it accepted the message, so the drain can be timed to the millisecond.
SMTP_HANDLER = '''
import time
from aiosmtpd.handlers import Mailbox


class TimedMailbox(Mailbox):
    def handle_message(self, message):
        message["X-Bench-Accepted-Ns"] = str(time.time_ns())
        super().handle_message(message)
'''


def log(msg):
    print(f"[burst {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Failure(Exception):
    """The benchmark cannot go on (setup failed); the message says why."""



def wait_until_ready(proc, name, timeout, ready, log_text):
    """Polls `ready()` (OSError counts as not yet) until it is true; fails, with `log_text()`, when
    `proc` exits first or `timeout` seconds pass."""
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise Failure(f"{name} exited ({proc.returncode}):\n{log_text()}")
        try:
            if ready():
                return
        except OSError:
            pass
        if time.time() > deadline:
            raise Failure(f"{name} not ready within {timeout}s:\n{log_text()}")
        time.sleep(0.05)

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(sorted_xs, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_xs:
        return float("nan")
    k = max(0, min(len(sorted_xs) - 1, math.ceil(p / 100 * len(sorted_xs)) - 1))
    return sorted_xs[k]


# --------------------------------------------------------------------------------------------
# CPU accounting: CPU time of ims, postgres, aiosmtpd, this client and the whole machine
# --------------------------------------------------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pids):
    """{"busy": ticks, "<name>": ticks, "postgres": ticks} for the named pids (name -> pid)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    busy = sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7))
    out = {"busy": busy, "postgres": 0}
    out.update({name: 0 for name in pids})
    by_pid = {str(pid): name for name, pid in pids.items() if pid}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                raw = f.read()
        except OSError:
            continue  # gone meanwhile
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2:].split()
        ticks = int(rest[11]) + int(rest[12])
        if entry in by_pid:
            out[by_pid[entry]] += ticks
        elif comm == "postgres":
            out["postgres"] += ticks
    return out


def cpu_percent(a, b, seconds):
    """% of one core per category between two snapshots; 'other' = everything else."""
    f = 100 / CLK_TCK / max(seconds, 1e-9)
    res = {k: (b[k] - a[k]) * f for k in a}
    res["other"] = max(0.0, res["busy"] - sum(v for k, v in res.items() if k != "busy"))
    return res


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="ims-burst-")
        self.procs = []  # (name, Popen) we started, stopped in cleanup
        self.database = None  # PostgreSQL database we created
        self.pg_admin = args.pg
        self.server = None
        self.smtp = None
        self.server_log = os.path.join(self.work, "server.log")
        self.stopping = False

    # ---- helpers ------------------------------------------------------------------------
    def psql(self, url, sql):
        out = subprocess.run(["psql", url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise Failure(f"psql failed: {out.stderr.strip()}")
        return out.stdout

    def pg_url_for(self, db):
        base, sep, query = self.pg_admin.partition("?")
        return base.rsplit("/", 1)[0] + "/" + db + (sep + query if sep else "")

    def query(self, sql):
        """Rows of a query on the server's database, as lists of strings."""
        if self.db_url.startswith("sqlite"):
            path = self.db_url.split("://", 1)[1]
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            try:
                return [[str(c) for c in row] for row in con.execute(sql).fetchall()]
            finally:
                con.close()
        out = self.psql(self.db_url, sql)
        return [line.split("|") for line in out.splitlines() if line]

    def server_env(self, extra):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
               "LANG": "C.UTF-8", "IMS_LOG_FORMAT": "json", "RUST_LOG": self.args.rust_log}
        env.update(extra)
        for item in os.environ.get("BENCH_SERVER_ENV", "").split():
            k, _, v = item.partition("=")
            env[k] = v
        return env

    def stop(self, name, proc, timeout=STOP_TIMEOUT):
        if proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {proc.pid}) did not stop within {timeout}s; killing it")
            proc.kill()
            proc.wait()

    def cleanup(self, ok):
        self.stopping = True  # account-creating threads stop taking work
        for name, proc in reversed(self.procs):
            self.stop(name, proc)
        self.procs.clear()
        if self.database:
            try:
                self.psql(self.pg_admin, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            except Exception as e:  # noqa: BLE001 - report and carry on cleaning
                log(f"warning: could not drop database {self.database}: {e}")
            self.database = None
        if ok:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            log(f"failed; logs kept in {self.work}")

    # ---- setup ----------------------------------------------------------------------------
    def prepare_binary(self):
        a = self.args
        if not a.skip_build:
            log("building ims (cargo build --release)")
            subprocess.run(["cargo", "build", "--release", "--bin", "ims"], cwd=ROOT, check=True)
        if not os.access(a.bin, os.X_OK):
            raise Failure(f"no ims binary at {a.bin}")
        # A private copy: a concurrent `cargo build` cannot swap the binary mid-run.
        self.bin = os.path.join(self.work, "ims")
        shutil.copy2(a.bin, self.bin)
        git = ["git", "-C", ROOT]
        genv = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read-only: never touch the index
        try:
            rev = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 env=genv, check=True).stdout.strip()
            dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no", "--", "src",
                                          "Cargo.toml", "Cargo.lock", "migrations"],
                                   capture_output=True, text=True, env=genv).stdout.strip()
            if dirty:
                rev += " (+ uncommitted changes in src/)"
        except (OSError, subprocess.CalledProcessError):
            rev = "unknown"
        if a.skip_build:
            built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.stat(a.bin).st_mtime))
            rev += f" — binary not rebuilt by this run (built {built}), it may be older"
        self.git_rev = rev

    def start_smtp(self):
        try:
            import aiosmtpd  # noqa: F401
        except ImportError:
            log("aiosmtpd missing: python3 -m pip install aiosmtpd")
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "aiosmtpd"])
        try:
            import aiosmtpd  # noqa: F401,F811
            self.aiosmtpd_version = aiosmtpd.__version__
        except ImportError as e:
            raise Failure("aiosmtpd is not importable (python3 -m pip install aiosmtpd, or apt-get "
                          "install python3-aiosmtpd)") from e
        root = os.path.join(self.work, "smtp")
        self.maildir = os.path.join(root, "maildir")
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        with open(os.path.join(root, "ims_bench_smtp.py"), "w") as f:
            f.write(SMTP_HANDLER)
        self.smtp_port = free_port()
        env = dict(os.environ, PYTHONPATH=root)
        self.smtp_log = os.path.join(root, "aiosmtpd.log")
        with open(self.smtp_log, "w") as out:
            self.smtp = subprocess.Popen(
                [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.smtp_port}",
                 "-c", "ims_bench_smtp.TimedMailbox", self.maildir],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(("aiosmtpd", self.smtp))
        def greets():
            with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=2) as s:
                banner = s.recv(256).decode(errors="replace")
                s.sendall(b"QUIT\r\n")
            return banner.startswith("220")

        def smtp_log():
            with open(self.smtp_log) as f:
                return f.read()

        wait_until_ready(self.smtp, "aiosmtpd", SMTP_TIMEOUT, greets, smtp_log)
        log(f"aiosmtpd {self.aiosmtpd_version} on 127.0.0.1:{self.smtp_port}, Maildir {self.maildir}")

    def start_server(self):
        a = self.args
        data = os.path.join(self.work, "data")
        os.makedirs(data)
        if a.sqlite:
            self.db_url = f"sqlite://{data}/ims.db"
            self.backend = "SQLite (embedded, temp data dir)"
        else:
            self.database = f"ims_burst_{time.strftime('%Y%m%d%H%M%S')}_{os.getpid()}"
            self.psql(self.pg_admin, f'CREATE DATABASE "{self.database}"')
            self.db_url = self.pg_url_for(self.database)
            version = self.psql(self.pg_admin, "SHOW server_version").strip()
            self.backend = f"PostgreSQL {version} (127.0.0.1, same machine; fresh database {self.database})"
        self.port = free_port()
        self.code_limit = max(1_000_000, a.requests * 10)
        self.env = self.server_env({
            "IMS_LISTEN": f"127.0.0.1:{self.port}",
            "IMS_DATA_DIR": data,
            "IMS_DATABASE_URL": self.db_url,
            "IMS_MAIL_TRANSPORT": "smtp",
            "IMS_SMTP_URL": f"smtp://127.0.0.1:{self.smtp_port}",
            # All requests come from 127.0.0.1: raise the per-client hourly limit (default 30, above
            # which requests are dropped silently) so every one of them is queued.
            "IMS_CODE_REQUESTS_PER_CLIENT": str(self.code_limit),
        })
        with open(self.server_log, "w") as out:
            self.server = subprocess.Popen([self.bin, "serve"], env=self.env, cwd=self.work,
                                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(("ims serve", self.server))
        def ready():
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                c.request("GET", "/readyz")
                return c.getresponse().status == 200
            finally:
                c.close()

        wait_until_ready(self.server, "ims serve", READY_TIMEOUT, ready, self.tail_log)
        log(f"ims serve on 127.0.0.1:{self.port} ({self.backend})")

    def tail_log(self, n=20):
        try:
            with open(self.server_log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def create_accounts(self):
        a = self.args
        self.emails = [f"burst{i:05d}@{EMAIL_DOMAIN}" for i in range(1, self.accounts + 1)]
        log(f"creating {self.accounts} accounts with `ims users create` ({a.create_jobs} at a time)")
        t0 = time.monotonic()
        errors = []
        lock = threading.Lock()
        todo = iter(enumerate(self.emails, 1))

        def worker():
            while True:
                with lock:
                    item = next(todo, None)
                if item is None or errors or self.stopping:
                    return
                i, addr = item
                r = subprocess.run([self.bin, "users", "create", "--email", addr, "--name", f"Burst Tester {i:05d}",
                                    "--role", "LINE_LEADER", "--password-stdin"], input=PASSWORD + "\n",
                                   env=self.env, cwd=self.work, capture_output=True, text=True, timeout=120)
                if r.returncode != 0:
                    with lock:
                        errors.append(f"{addr}: exit {r.returncode}: {r.stderr.strip()}")

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.create_jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise Failure("ims users create failed: " + errors[0])
        self.create_secs = time.monotonic() - t0
        n = int(self.query("SELECT COUNT(*) FROM users")[0][0])
        if n != self.accounts:
            raise Failure(f"{n} users in the database, expected {self.accounts}")
        queued = self.query("SELECT COUNT(*) FROM outbox")[0][0]
        if int(queued) != 0 or self.maildir_count() != 0:
            raise Failure(f"the outbox ({queued} rows) or the Maildir is not empty before the burst")
        log(f"accounts created in {self.create_secs:.1f}s")

    def wait_quiet(self):
        """Waits (at most --quiet-timeout s) until processes outside the benchmark use at most
        --quiet-max % of one core, so someone else's build does not skew the burst."""
        a = self.args
        self.quiet_note = "no wait for a quiet machine (--quiet-timeout 0)"
        if a.quiet_timeout <= 0:
            return
        t0 = time.monotonic()
        warned = False
        while True:
            s0 = cpu_snapshot(self.cpu_pids())
            time.sleep(1)
            busy = cpu_percent(s0, cpu_snapshot(self.cpu_pids()), 1.0)
            other = busy["busy"] - busy["ims"]
            if other <= a.quiet_max:
                if warned:
                    log(f"machine quiet again after {time.monotonic() - t0:.0f}s")
                self.quiet_note = (f"the burst started once other processes used ≤ {a.quiet_max:.0f}% of a core "
                                   f"(waited {time.monotonic() - t0:.0f} s)")
                return
            if time.monotonic() - t0 > a.quiet_timeout:
                log(f"warning: other processes still use {other:.0f}% CPU after {a.quiet_timeout}s; measuring anyway")
                self.quiet_note = (f"other processes still used {other:.0f}% of a core after waiting "
                                   f"{a.quiet_timeout} s for a quiet machine; measured anyway")
                return
            if not warned:
                log(f"other processes use {other:.0f}% CPU; waiting up to {a.quiet_timeout}s for a quiet machine")
                warned = True
            time.sleep(2)

    # ---- the burst --------------------------------------------------------------------------
    def burst(self):
        a = self.args
        # Round-robin over the accounts: an account's k-th request comes after every account's (k-1)-th.
        plan = [addr for _ in range(a.per_account) for addr in self.emails]
        n = len(plan)
        results = [None] * n  # (send_ns, done_ns, latency_s, status)
        counter = iter(range(n))
        lock = threading.Lock()
        start = threading.Barrier(a.concurrency + 1)
        errors = []

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=a.request_timeout)
            start.wait()
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                body = json.dumps({"email": plan[i]})
                send_ns = time.time_ns()
                t = time.perf_counter()
                try:
                    conn.request("POST", "/auth/forgot-password", body, {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    status = r.status
                except (OSError, http.client.HTTPException) as e:
                    status = f"error: {type(e).__name__}"
                    with lock:
                        errors.append(f"{plan[i]}: {e!r}")
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=a.request_timeout)
                results[i] = (send_ns, time.time_ns(), time.perf_counter() - t, status)
            conn.close()

        threads = [threading.Thread(target=client, daemon=True) for _ in range(a.concurrency)]
        for t in threads:
            t.start()
        log(f"burst: {n} POST /auth/forgot-password over {a.concurrency} connections")
        self.cpu0 = cpu_snapshot(self.cpu_pids())
        self.cpu0_t = time.monotonic()
        start.wait()
        for t in threads:
            t.join(timeout=a.request_timeout * n)  # bounded: each request has its own timeout
            if t.is_alive():
                raise Failure("a client thread did not finish")
        self.results = results
        self.request_errors = errors
        self.first_send_ns = min(r[0] for r in results)
        self.last_done_ns = max(r[1] for r in results)
        self.request_secs = (self.last_done_ns - self.first_send_ns) / 1e9
        ok = sum(1 for r in results if r[3] == 202)
        log(f"requests done in {self.request_secs:.2f}s ({n / self.request_secs:.0f} req/s), {ok} × 202")

    def cpu_pids(self):
        return {"ims": self.server.pid, "client": os.getpid(), "smtp": self.smtp.pid}

    # ---- the drain ------------------------------------------------------------------------
    def maildir_files(self):
        files = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir, sub)
            files.extend(os.path.join(d, e) for e in os.listdir(d) if not e.startswith("."))
        return files

    def maildir_count(self):
        return len(self.maildir_files())

    def outbox_pending(self):
        return int(self.query("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")[0][0])

    def drain(self):
        """Waits until the outbox has nothing pending and the Maildir holds the expected number of
        messages — or nothing more can come (nothing pending, no new message for 5 s), or the
        timeout. Bounded."""
        a = self.args
        deadline = time.monotonic() + a.drain_timeout
        expected_min = self.accounts  # at least one message per account, whatever per_account is
        last_count, last_change, last_check = -1, time.monotonic(), 0.0
        self.drain_outcome = "timeout"
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise Failure(f"ims serve exited during the drain:\n{self.tail_log()}")
            count = self.maildir_count()
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            if now - last_check >= 1.0 and (count >= expected_min or now - last_change >= 5):
                last_check = now
                if self.outbox_pending() == 0:
                    if count >= expected_min:
                        # Settle: a late duplicate would show up now.
                        time.sleep(1.0)
                        self.drain_outcome = "drained"
                        break
                    if now - last_change >= 5:
                        self.drain_outcome = "stalled: nothing pending, no new message for 5 s"
                        break
            time.sleep(0.1)
        self.cpu1 = cpu_snapshot(self.cpu_pids())
        self.cpu1_t = time.monotonic()
        log(f"drain: {self.drain_outcome}; {self.maildir_count()} messages in the Maildir")

    # ---- what arrived ------------------------------------------------------------------
    def read_mail(self):
        mails = []
        bad = []
        for path in self.maildir_files():
            with open(path, "rb") as f:
                msg = email.message_from_bytes(f.read(), policy=email.policy.default)
            rcpt = (msg.get("X-RcptTo") or "").strip().lower()
            accepted = int(msg.get("X-Bench-Accepted-Ns") or os.stat(path).st_mtime_ns)
            texts = {}
            for part in msg.walk():
                if part.get_content_maintype() == "text":
                    texts.setdefault(part.get_content_type(), part.get_content())
            codes_text = re.findall(r"(?<!\d)\d{6}(?!\d)", texts.get("text/plain", ""))
            codes_html = re.findall(r"(?<!\d)\d{6}(?!\d)", texts.get("text/html", ""))
            code = codes_text[0] if len(codes_text) == 1 and codes_html == codes_text else None
            if code is None:
                bad.append(f"{os.path.basename(path)}: {len(codes_text)} codes in text, html {codes_html}")
            mails.append({"rcpt": rcpt, "code": code, "accepted_ns": accepted, "peer": str(msg.get("X-Peer") or ""),
                          "message_id": (msg.get("Message-ID") or "").strip(),
                          "subject": str(msg.get("Subject") or "")})
        self.mails = mails
        self.malformed = bad

    def verify_codes(self):
        """verify-otp with the newest delivered code of a random sample of accounts: must be 200."""
        a = self.args
        newest = {}
        for m in self.mails:
            if m["code"] and m["rcpt"] in self.email_set:
                # Message-ID is <outbox id@host>; outbox ids are UUIDv7, so the largest is the newest.
                if m["rcpt"] not in newest or m["message_id"] > newest[m["rcpt"]]["message_id"]:
                    newest[m["rcpt"]] = m
        sample = random.Random(1).sample(sorted(newest), min(a.verify, len(newest)))
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        failures = []
        for addr in sample:
            conn.request("POST", "/auth/verify-otp", json.dumps({"email": addr, "otp": newest[addr]["code"]}),
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or b"reset_token" not in body:
                failures.append(f"{addr}: {r.status}")
        conn.close()
        self.verified = (len(sample), failures)

    def outbox_state(self):
        rows = self.query("SELECT kind, status, COUNT(*) FROM outbox GROUP BY kind, status ORDER BY kind, status")
        self.outbox = {(k, s): int(n) for k, s, n in rows}
        self.failed_errors = self.query(
            "SELECT last_error, COUNT(*) FROM outbox WHERE status = 'failed' GROUP BY last_error")
        self.codes_issued = int(self.query("SELECT COUNT(*) FROM audit_events WHERE type = 'otp_sent'")[0][0])

    def scan_log(self):
        levels = {}
        kinds = {}
        sent_lines = dropped_client = over_address = 0
        with open(self.server_log, errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    levels["(not JSON)"] = levels.get("(not JSON)", 0) + 1
                    continue
                level = rec.get("level", "?")
                fields = rec.get("fields", {})
                message = fields.get("message", "")
                levels[level] = levels.get(level, 0) + 1
                if level in ("WARN", "ERROR"):
                    key = f"{level} {rec.get('target', '?')}: {message}"
                    if fields.get("reason") or fields.get("error"):
                        key += f" ({fields.get('reason') or fields.get('error')})"
                    kinds[key] = kinds.get(key, 0) + 1
                if message == "mail sent":
                    sent_lines += 1
                elif message == "code requests over the per-client limit; dropped":
                    dropped_client += 1
                elif message == "code request over the hourly limit; not sent":
                    over_address += 1
        self.log_levels = levels
        self.warn_kinds = kinds
        self.warnings = levels.get("WARN", 0) + levels.get("ERROR", 0)
        self.log_counts = {"mail sent": sent_lines, "dropped (per-client limit)": dropped_client,
                           "not sent (per-address hourly limit)": over_address}

    # ---- report ------------------------------------------------------------------------------
    def report(self):
        a = self.args
        n = len(self.results)
        statuses = {}
        for r in self.results:
            statuses[r[3]] = statuses.get(r[3], 0) + 1
        lat = sorted(r[2] * 1000 for r in self.results)
        ours = [m for m in self.mails if m["rcpt"] in self.email_set]
        unexpected = len(self.mails) - len(ours)
        pairs = {}
        ids = {}
        for m in ours:
            key = (m["rcpt"], m["code"])
            pairs[key] = pairs.get(key, 0) + 1
            ids[m["message_id"]] = ids.get(m["message_id"], 0) + 1
        distinct = sum(1 for (rcpt, code) in pairs if code is not None)
        duplicates = sum(c - 1 for c in pairs.values() if c > 1)
        dup_ids = sum(c - 1 for c in ids.values() if c > 1)
        per_rcpt = {}
        for rcpt, _ in pairs:
            per_rcpt[rcpt] = per_rcpt.get(rcpt, 0) + 1
        without_mail = len(self.email_set - set(per_rcpt))
        mail_rows = sum(v for (k, _), v in self.outbox.items() if k == "mail")
        pending = sum(v for (_, s), v in self.outbox.items() if s == "pending")
        failed = sum(v for (_, s), v in self.outbox.items() if s == "failed")
        superseded = self.codes_issued - mail_rows  # codes whose queued mail a newer code replaced
        if a.per_account == 1:
            expected = n
        else:
            expected = mail_rows  # what the server queued and kept: it must all arrive
        lost = max(0, expected - distinct)
        accepted = sorted(m["accepted_ns"] for m in ours)
        if accepted:
            last_ns = accepted[-1]
            drain_first = (last_ns - self.first_send_ns) / 1e9
            drain_last = (last_ns - self.last_done_ns) / 1e9
            span = (last_ns - accepted[0]) / 1e9
            first_mail = (accepted[0] - self.first_send_ns) / 1e9
        else:
            drain_first = drain_last = span = first_mail = float("nan")
        cpu = cpu_percent(self.cpu0, self.cpu1, self.cpu1_t - self.cpu0_t)
        verified_n, verify_failures = self.verified
        # How the server used its SMTP connections: messages per connection (X-Peer) and the time
        # between two messages on one connection.
        by_peer = {}
        for m in ours:
            by_peer.setdefault(m["peer"], []).append(m["accepted_ns"])
        gaps = []
        for ts in by_peer.values():
            ts.sort()
            gaps.extend((b - a) / 1e6 for a, b in zip(ts, ts[1:]))
        gaps.sort()

        checks = [
            (statuses.get(202, 0) == n, f"every request answered 202 ({statuses.get(202, 0)} of {n})"),
            (distinct == expected, f"{expected} distinct messages expected, {distinct} arrived"),
            (lost == 0, f"lost: {lost}"),
            (duplicates == 0 and dup_ids == 0,
             f"duplicates: {duplicates} (same recipient + code), {dup_ids} (same Message-ID)"),
            (failed == 0, f"outbox failed: {failed}"),
            (pending == 0, f"outbox pending: {pending}"),
            (unexpected == 0 and not self.malformed,
             f"unexpected or malformed messages: {unexpected} + {len(self.malformed)}"),
            (not verify_failures, f"newest code of {verified_n} sampled accounts accepted by verify-otp "
                                  f"({verified_n - len(verify_failures)} of {verified_n})"),
        ]
        if a.per_account == 1:
            checks.append((self.codes_issued == n, f"codes issued (audit otp_sent): {self.codes_issued} of {n}"))
        else:
            checks.append((without_mail == 0, f"accounts without any message: {without_mail}"))
        self.passed = all(ok for ok, _ in checks)

        cpu_model = "unknown"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) / 1048576
        fmt = lambda x: f"{x:.2f}" if x < 10 else f"{x:.1f}"  # noqa: E731
        warn_note = "; ".join(f"{c}× {k}" for k, c in sorted(self.warn_kinds.items(), key=lambda kv: -kv[1])[:5])
        status_note = ", ".join(f"{c}× {s}" for s, c in sorted(statuses.items(), key=lambda kv: str(kv[0])))
        outbox_note = ", ".join(f"{k} {s}: {v}" for (k, s), v in sorted(self.outbox.items())) or "empty"
        lines = [
            "# forgot-password burst — delivery through SMTP",
            "",
            "| machine | |",
            "|---|---|",
            f"| date | {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} |",
            f"| git rev | {self.git_rev} |",
            f"| nproc | {os.cpu_count()} |",
            f"| CPU | {cpu_model} |",
            f"| memory | {mem:.1f} GiB |",
            f"| kernel | {platform.release()} |",
            f"| database | {self.backend} |",
            f"| SMTP server | aiosmtpd {self.aiosmtpd_version} (Python {platform.python_version()}), Maildir handler, "
            f"127.0.0.1, same machine |",
            f"| load generator | this script: Python http.client, {a.concurrency} threads with one keep-alive "
            f"connection each, same machine |",
            "",
            f"Settings: {n} `POST /auth/forgot-password` (`{{\"email\": …}}`) to {self.accounts} accounts "
            f"({a.per_account} each, round-robin), {a.concurrency} concurrent connections; "
            f"`IMS_MAIL_TRANSPORT=smtp`, `IMS_SMTP_URL=smtp://127.0.0.1:<port>` (plain, loopback), "
            f"`IMS_CODE_REQUESTS_PER_CLIENT={self.code_limit}` (all requests come from 127.0.0.1), "
            f"`RUST_LOG={a.rust_log}`, everything else default (outbox worker: {OUTBOX_CONCURRENCY} jobs at "
            f"a time). Accounts: `ims users create … --password-stdin`, {a.create_jobs} at a time "
            f"({self.create_secs:.0f} s for {self.accounts}). Drain wait bounded at {a.drain_timeout} s "
            f"({self.drain_outcome}); {self.quiet_note}. Latencies are measured by the Python client "
            f"(request written → response read), so they include its own queueing on the shared cores.",
            "",
            "| | |",
            "|---|---:|",
            f"| requests | {n} ({status_note}) |",
            f"| request phase (first request sent → last response) | {self.request_secs:.2f} s |",
            f"| request rate | {n / self.request_secs:.0f} req/s |",
            f"| response latency p50 / p99 / max | {fmt(pct(lat, 50))} / {fmt(pct(lat, 99))} / {fmt(lat[-1])} ms |",
            f"| first message accepted by SMTP (after the first request) | {first_mail:.2f} s |",
            f"| drain: first request → last message accepted | {drain_first:.2f} s |",
            f"| drain: last response → last message accepted | {drain_last:.2f} s |",
            f"| delivery rate (first → last message) | "
            f"{(len(accepted) - 1) / span if span and span > 0 else float('nan'):.0f} messages/s |",
            f"| SMTP connections the server used / interval between two messages on one connection: "
            f"min / p50 / p90 | {len(by_peer)} / "
            + (f"{fmt(gaps[0])} / {fmt(pct(gaps, 50))} / {fmt(pct(gaps, 90))} ms |" if gaps else "– |"),
            f"| messages in the Maildir | {len(self.mails)} |",
            f"| distinct messages (recipient + code) | {distinct} |",
            f"| expected | {expected} |",
            f"| lost (expected − distinct) | {lost} |",
            f"| duplicates (same recipient + code / same Message-ID) | {duplicates} / {dup_ids} |",
            f"| codes issued (audit `otp_sent`) | {self.codes_issued} |",
        ]
        if a.per_account > 1:
            lines.append(f"| mails superseded by a newer code before they were sent (by design) | {superseded} |")
            lines.append(f"| accounts without any message | {without_mail} |")
        lines += [
            f"| outbox afterwards: pending / failed | {pending} / {failed} ({outbox_note}) |",
            f"| newest code verified with `POST /auth/verify-otp` (random sample) | "
            f"{verified_n - len(verify_failures)} of {verified_n} |",
            f"| server log: WARN/ERROR lines | {self.warnings}{': ' + warn_note if warn_note else ''} |",
            f"| server log: `mail sent` / requests dropped by the per-client limit / codes refused by the "
            f"per-address limit | {self.log_counts['mail sent']} / {self.log_counts['dropped (per-client limit)']} / "
            f"{self.log_counts['not sent (per-address hourly limit)']} |",
            f"| CPU % of one core, burst + drain ({self.cpu1_t - self.cpu0_t:.1f} s): ims / postgres / client / "
            f"aiosmtpd / other | {cpu['ims']:.0f} / {cpu['postgres']:.0f} / {cpu['client']:.0f} / "
            f"{cpu['smtp']:.0f} / {cpu['other']:.0f} |",
            "",
        ]
        if cpu["other"] > 25:
            lines += [f"**Disturbed run:** processes outside the benchmark used {cpu['other']:.0f}% of a core "
                      f"(of {os.cpu_count()}00%) during the burst and drain; the timings are pessimistic.", ""]
        lines += ["Checks:", ""]
        lines += [f"- {'PASS' if ok else 'FAIL'}: {text}" for ok, text in checks]
        if self.failed_errors:
            lines += ["", "Failed outbox rows: " + "; ".join(f"{c}× {e}" for e, c in self.failed_errors)]
        if self.request_errors:
            lines += ["", f"Request errors ({len(self.request_errors)}): " + "; ".join(self.request_errors[:5])]
        if self.malformed:
            lines += ["", "Malformed messages: " + "; ".join(self.malformed[:5])]
        if verify_failures:
            lines += ["", "verify-otp refused: " + "; ".join(verify_failures[:10])]
        text = "\n".join(lines) + "\n"
        os.makedirs(os.path.dirname(os.path.abspath(a.results)), exist_ok=True)
        with open(a.results, "w") as f:
            f.write(text)
        print(text)
        for ok, t in checks:
            print(f"{'PASS' if ok else 'FAIL'} {t}")
        print(f"(written to {os.path.relpath(a.results, ROOT)})")

    def run(self):
        a = self.args
        self.accounts = a.requests // a.per_account
        self.prepare_binary()
        self.start_smtp()
        self.start_server()
        self.create_accounts()
        self.email_set = set(self.emails)
        self.wait_quiet()
        self.burst()
        self.drain()
        self.read_mail()
        self.outbox_state()
        self.verify_codes()
        # Stop the server before reading its log, so every line is flushed.
        for i, (name, proc) in enumerate(self.procs):
            if proc is self.server:
                self.stop(name, proc)
                del self.procs[i]
                break
        self.scan_log()
        self.report()
        return self.passed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000, help="forgot-password requests (default 1000)")
    ap.add_argument("--per-account", type=int, default=1,
                    help=f"requests per account, 1..{CODES_PER_ADDRESS_PER_HOUR} (default 1: REQUESTS accounts)")
    ap.add_argument("--concurrency", type=int, default=32, help="concurrent connections (default 32)")
    ap.add_argument("--drain-timeout", type=int, default=300, help="seconds to wait for the mail (default 300)")
    ap.add_argument("--request-timeout", type=float, default=30, help="seconds per request (default 30)")
    ap.add_argument("--create-jobs", type=int, default=(os.cpu_count() or 2) + 1,
                    help="`ims users create` run at once (default cores + 1)")
    ap.add_argument("--verify", type=int, default=20,
                    help="accounts whose newest code is checked with verify-otp (default 20; 0: none)")
    ap.add_argument("--quiet-max", type=float, default=25,
                    help="before the burst, wait until other processes use at most this %% of a core (default 25)")
    ap.add_argument("--quiet-timeout", type=int, default=120,
                    help="... but no longer than this many seconds (default 120; 0: never wait)")
    ap.add_argument("--sqlite", action="store_true", help="embedded SQLite instead of PostgreSQL")
    ap.add_argument("--pg", default=os.environ.get("IMS_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
                    help="PostgreSQL admin URL (default $IMS_BENCH_PG_URL or postgres://postgres@127.0.0.1:5432/postgres)")
    ap.add_argument("--rust-log", default="info", help="the server's RUST_LOG (default info)")
    ap.add_argument("--skip-build", action="store_true", default=os.environ.get("BENCH_SKIP_BUILD") == "1",
                    help="use the existing release binary (also BENCH_SKIP_BUILD=1)")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--bin", default=os.environ.get("IMS_BIN", os.path.join(target, "release", "ims")))
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "forgot-burst.md"))
    args = ap.parse_args()
    if not 1 <= args.per_account <= CODES_PER_ADDRESS_PER_HOUR:
        ap.error(f"--per-account must be 1..{CODES_PER_ADDRESS_PER_HOUR}: an address gets at most "
                 f"{CODES_PER_ADDRESS_PER_HOUR} codes an hour, the rest are refused by design")
    if args.requests < 1 or args.requests % args.per_account:
        ap.error("--requests must be a positive multiple of --per-account")
    if args.concurrency < 1 or args.create_jobs < 1 or args.drain_timeout < 1 or args.verify < 0:
        ap.error("--concurrency, --create-jobs and --drain-timeout must be positive")
    if not args.sqlite and not shutil.which("psql"):
        ap.error("psql is needed for PostgreSQL (apt-get install postgresql-client), or use --sqlite")

    # SIGTERM/SIGINT end the run through the cleanup below.
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    bench = Bench(args)
    ok = False
    try:
        ok = bench.run()
    except Failure as e:
        log(f"error: {e}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bench.cleanup(ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
