#!/usr/bin/env python3
"""Does forgot-password take the same time whether or not the account exists?

Starts a release `ims serve` on a fresh embedded (SQLite) data directory — or on PostgreSQL with
`--pg URL` — creates one account with `ims users create`, then sends interleaved
`POST /auth/forgot-password` requests for that account and for unknown addresses (random order,
one keep-alive connection, after a warm-up) and compares the latency distributions. The
per-client request limit is raised so every request does the full work.

    python3 bench/forgot_timing.py [--requests 1000] [--pg postgres://postgres@127.0.0.1:5432/postgres]

Exit status 0 when the medians differ by less than 5 ms.
"""
import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "ims")
PASSWORD = "Violet-Tractor-Lamp-2091!"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMS_")}
    env.update(extra)
    env.setdefault("RUST_LOG", "warn")
    return env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000, help="measured requests (half each kind)")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--pg", help="PostgreSQL admin URL; a fresh database is created and dropped")
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "ims"], cwd=ROOT, check=True)
    data = tempfile.mkdtemp(prefix="ims-bench-forgot-")
    port = free_port()
    env = {"IMS_DATA_DIR": data, "IMS_LISTEN": f"127.0.0.1:{port}", "IMS_CODE_REQUESTS_PER_CLIENT": "1000000"}
    dbname = None
    if args.pg:
        dbname = "ims_bench_forgot_" + uuid.uuid4().hex[:8]
        subprocess.run(["psql", args.pg, "-qc", f"CREATE DATABASE {dbname}"], check=True)
        env["IMS_DATABASE_URL"] = re.sub(r"/[^/]*$", "/" + dbname, args.pg)
    env = clean_env(env)

    email = "timing@factory.example"
    subprocess.run([BIN, "users", "create", "--email", email, "--name", "Tim Ing", "--role", "MANAGER",
                    "--password-stdin"], input=PASSWORD + "\n", text=True, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    server = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("server did not become ready")
            time.sleep(0.05)

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def one(address):
            body = json.dumps({"email": address})
            start = time.perf_counter()
            conn.request("POST", "/auth/forgot-password", body, {"content-type": "application/json"})
            r = conn.getresponse()
            r.read()
            elapsed = (time.perf_counter() - start) * 1000
            assert r.status == 202, r.status
            return elapsed

        plan = ["known", "unknown"] * (args.requests // 2)
        for _ in range(args.warmup):
            one(email if random.random() < 0.5 else f"nobody-{uuid.uuid4().hex[:12]}@factory.example")
        random.shuffle(plan)
        times = {"known": [], "unknown": []}
        for kind in plan:
            address = email if kind == "known" else f"nobody-{uuid.uuid4().hex[:12]}@factory.example"
            times[kind].append(one(address))
    finally:
        server.terminate()
        server.wait(timeout=15)
        if dbname:
            subprocess.run(["psql", args.pg, "-qc", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"])

    def q(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(p * len(xs)))]

    backend = "PostgreSQL" if args.pg else "SQLite"
    print(f"forgot-password latency, {backend}, {len(plan)} requests interleaved at random, one connection")
    print("| account | n | median ms | p90 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for kind in ("known", "unknown"):
        xs = times[kind]
        label = "exists" if kind == "known" else "does not exist"
        print(f"| {label} | {len(xs)} | {statistics.median(xs):.3f} | {q(xs, 0.9):.3f} | {q(xs, 0.99):.3f} |")
    diff = abs(statistics.median(times["known"]) - statistics.median(times["unknown"]))
    verdict = "PASS" if diff < 5 else "FAIL"
    print(f"\n{verdict}: medians differ by {diff:.3f} ms (target < 5 ms)")
    sys.exit(0 if diff < 5 else 1)


if __name__ == "__main__":
    main()
