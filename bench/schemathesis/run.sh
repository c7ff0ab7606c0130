#!/usr/bin/env bash
# Property-based API testing of IMS with schemathesis, against the OpenAPI document the server
# itself publishes, once per role (anonymous, LINE_LEADER, MANAGER, ADMIN) and a last run of the
# operations that would end the caller's own session.
#
# Starts `ims demo` + `ims serve` on a free loopback port with a throwaway data directory (removed
# on exit), runs the checks, writes reports to $ST_OUT and a table of distinct findings to
# $ST_OUT/findings.md, and exits non-zero when any check failed or a run errored.
#
# Environment (all optional):
#   ST_IMS_BIN       the server binary (default: target/debug/ims; never built here)
#   ST_VENV          virtualenv holding schemathesis (default: ~/.cache/ims-schemathesis-venv;
#                    created from requirements.txt when missing)
#   ST_MAX_EXAMPLES  test cases per operation and phase (default 100)
#   ST_WORKERS       schemathesis workers (default 1: CPython 3.11's ast module is not
#                    thread-safe and hypothesis then fails with "AST constructor recursion depth
#                    mismatch"; more workers also compete with the server for the 2 cores)
#   ST_SEED          fixed seed for a reproducible run (default: random, printed in each log)
#   ST_ROLES         which runs, in order (default: "anonymous leader manager admin self")
#   ST_DATABASE      sqlite (default) or postgres
#   ST_PG_URL        server to create the throwaway database on for postgres
#                    (default: postgres://postgres@127.0.0.1:5432)
#   ST_OUT           report directory (default: bench/schemathesis/out/<UTC timestamp>)
#   ST_RUN_TIMEOUT   seconds after which one run is killed (default 300)
#   ST_CHECKS        schemathesis checks (default: all); e.g. not_a_server_error for 5xx only
#   ST_EXCLUDE_CHECKS checks left out (default: positive_data_acceptance — IMS refuses values that
#                    are valid JSON Schema but break a rule the schema cannot state: a reason code
#                    that does not exist, a date range over 366 days, a cursor it did not issue;
#                    see README.md). Set it to "" to run every check.
#   ST_EXTRA_ARGS    more `st run` options, split on spaces (e.g. "--phases fuzzing")
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
IMS_BIN="${ST_IMS_BIN:-$repo/target/debug/ims}"
ST_VENV="${ST_VENV:-$HOME/.cache/ims-schemathesis-venv}"
ST_MAX_EXAMPLES="${ST_MAX_EXAMPLES:-100}"
ST_WORKERS="${ST_WORKERS:-1}"
ST_ROLES="${ST_ROLES:-anonymous leader manager admin self}"
ST_DATABASE="${ST_DATABASE:-sqlite}"
ST_PG_URL="${ST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
ST_OUT="${ST_OUT:-$here/out/$(date -u +%Y%m%dT%H%M%SZ)}"
ST_RUN_TIMEOUT="${ST_RUN_TIMEOUT:-300}"

if [[ ! -x "$IMS_BIN" ]]; then
    echo "no server binary at $IMS_BIN: build it first (cargo build) or set ST_IMS_BIN" >&2
    exit 2
fi
if [[ ! -x "$ST_VENV/bin/st" ]]; then
    echo "installing schemathesis into $ST_VENV" >&2
    python3 -m venv "$ST_VENV"
    "$ST_VENV/bin/pip" install -q -r "$here/requirements.txt"
fi
st="$ST_VENV/bin/st"
IMS_BIN="$(realpath "$IMS_BIN")"
mkdir -p "$ST_OUT"
ST_OUT="$(cd "$ST_OUT" && pwd)"
# schemathesis keeps a cache of failing cases (.schemathesis/) in the working directory: keep it
# with this run's reports, not in the work tree.
cd "$ST_OUT"

data="$(mktemp -d)"
server_pid=""
pg_db=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    if [[ -n "$pg_db" ]]; then
        dropdb --if-exists -h "$pg_host" -p "$pg_port" -U "$pg_user" "$pg_db" 2>/dev/null || true
    fi
    rm -rf "$data"
}
trap cleanup EXIT INT TERM

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

# The server refuses unknown IMS_* variables and would pick up a caller's IMS_DATABASE_URL etc.:
# start from none.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^IMS_' || true)
export IMS_DATA_DIR="$data" IMS_LISTEN="127.0.0.1:$port"
# Throttles raised so that a fuzzer sending many wrong logins and code requests is not locked out.
export IMS_LOGIN_MAX_FAILURES=100000 IMS_LOGIN_IP_MAX_FAILURES=1000000 \
    IMS_CODE_REQUESTS_PER_CLIENT=1000000
export IMS_WEB_DIR="$data/no-web" RUST_LOG="${RUST_LOG:-warn}"
if [[ "$ST_DATABASE" == postgres ]]; then
    # postgres://user@host:port -> parts for createdb/dropdb
    rest="${ST_PG_URL#postgres://}"; pg_user="${rest%%@*}"; hp="${rest#*@}"; hp="${hp%%/*}"
    pg_host="${hp%%:*}"; pg_port="${hp##*:}"; [[ "$pg_port" == "$hp" ]] && pg_port=5432
    pg_db="ims_st_$$_$RANDOM"
    createdb -h "$pg_host" -p "$pg_port" -U "$pg_user" "$pg_db"
    export IMS_DATABASE_URL="${ST_PG_URL%/}/$pg_db"
fi

"$IMS_BIN" demo >"$ST_OUT/demo.log" 2>&1 || { echo "ims demo failed; see $ST_OUT/demo.log" >&2; exit 2; }
password() { awk -v e="$1" '$2 == e { print $3 }' "$ST_OUT/demo.log"; }
declare -A email=([admin]=admin@demo.factory [manager]=manager@demo.factory [leader]=leader@demo.factory)
declare -A pass
for r in admin manager leader; do
    pass[$r]="$(password "${email[$r]}")"
    [[ -n "${pass[$r]}" ]] || { echo "no $r password in the demo output ($ST_OUT/demo.log)" >&2; exit 2; }
done
# The passwords are shown once by `ims demo`; keep them out of the report directory.
sed -i -E 's/^(  [A-Z_]+ +[^ ]+@demo\.factory +).*/\1[redacted]/' "$ST_OUT/demo.log"

status=0
"$IMS_BIN" serve >"$ST_OUT/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { echo "server exited; see $ST_OUT/server.log" >&2; exit 2; }
    sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null 2>&1 || { echo "server not ready after 30 s; see $ST_OUT/server.log" >&2; exit 2; }

# The document as served, linted; the runs use a copy with the lint's defects worked around.
python3 "$here/schema.py" "$base" "$ST_OUT" || status=1
schema="$ST_OUT/openapi.json"

login() {
    curl -fsS -X POST "$base/auth/login" -H 'content-type: application/json' \
        -d "$(python3 -c 'import json,sys; print(json.dumps({"email": sys.argv[1], "password": sys.argv[2]}))' "${email[$1]}" "${pass[$1]}")" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# Operations that end the caller's own session (or could lock out the run's own accounts): left
# out of the role runs and exercised in the last run ("self"), after which no run needs a token.
self_ops=(--include-path-regex '^(/auth/logout|/auth/change-password|/api/admin/users.*)$')
not_self_ops=(
    --exclude-operation-id logout --exclude-operation-id change_password
    --exclude-operation-id update_user --exclude-operation-id revoke_sessions
)

common=(--checks "${ST_CHECKS:-all}" -n "$ST_MAX_EXAMPLES" -w "$ST_WORKERS" --no-color
    --generation-database none --request-timeout 30 --suppress-health-check all)
ST_EXCLUDE_CHECKS="${ST_EXCLUDE_CHECKS-positive_data_acceptance}"
[[ -n "$ST_EXCLUDE_CHECKS" ]] && common+=(--exclude-checks "$ST_EXCLUDE_CHECKS")
[[ -n "${ST_SEED:-}" ]] && common+=(--seed "$ST_SEED")
# shellcheck disable=SC2206
[[ -n "${ST_EXTRA_ARGS:-}" ]] && common+=(${ST_EXTRA_ARGS})

printf '%-10s %8s %6s\n' run seconds exit | tee "$ST_OUT/timings.txt"
for run in $ST_ROLES; do
    args=("${common[@]}" --report ndjson,junit --report-ndjson-path "$ST_OUT/$run.ndjson"
        --report-junit-path "$ST_OUT/$run.xml")
    case "$run" in
        anonymous) ;;
        admin | manager | leader) args+=(-H "Authorization: Bearer $(login "$run")" "${not_self_ops[@]}") ;;
        self) args+=(-H "Authorization: Bearer $(login admin)" "${self_ops[@]}") ;;
        *) echo "unknown run $run" >&2; exit 2 ;;
    esac
    start=$(date +%s.%N)
    rc=0
    timeout "$ST_RUN_TIMEOUT" "$st" --config-file "$here/schemathesis.toml" run "$schema" --url "$base" "${args[@]}" >"$ST_OUT/$run.log" 2>&1 || rc=$?
    secs=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
    printf '%-10s %8s %6s\n' "$run" "$secs" "$rc" | tee -a "$ST_OUT/timings.txt"
    [[ $rc -eq 0 ]] || status=1
    kill -0 "$server_pid" 2>/dev/null || { echo "the server died during the $run run; see $ST_OUT/server.log" >&2; exit 1; }
done

# shellcheck disable=SC2086
python3 "$here/summarize.py" "$ST_OUT" $ST_ROLES || status=1
if grep -q -E 'panicked|ERROR' "$ST_OUT/server.log"; then
    echo "the server logged errors or panics: see $ST_OUT/server.log" >&2
    status=1
fi
echo "reports in $ST_OUT"
exit $status
