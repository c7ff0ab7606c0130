#!/usr/bin/env bash
# IMS production-dashboard benchmark. For each backend (PostgreSQL, then SQLite) it loads a year
# of a 10-line factory with `ims demo` (timed), starts `ims serve`, logs in as the demo MANAGER and
# LINE_LEADER, and measures with wrk:
#   kpi_line     GET /api/kpi/lines/{id}?from=<today-29>&to=<today>&group=day   (MANAGER)
#   kpi_summary  GET /api/kpi/summary                                          (MANAGER)
#   my_tasks     GET /api/my/tasks                                             (LINE_LEADER)
# Writes bench/results/production.md and prints it. See bench/README.md, "Production dashboards".
#
# Everything it starts is stopped, and the databases and files it creates are removed, on exit.
#
# Environment (all optional):
#   IMS_BENCH_PG_URL      admin URL used to create/drop the bench database
#                         (default postgres://postgres@127.0.0.1:5432/postgres)
#   BENCH_BACKENDS        "postgres sqlite" (default), or one of them
#   BENCH_LINES, BENCH_DAYS, BENCH_REPORT_EVERY   the demo (default 10, 365, 4: over a million events)
#   BENCH_DURATION        measured seconds per route (default 20)
#   BENCH_WARMUP          warm-up seconds before each (default 5)
#   BENCH_CONNECTIONS     wrk connections; a list measures each route at each (default "1 8":
#                         one client alone = service time, then 8 at once)
#   BENCH_THREADS         wrk threads (default 2)
#   BENCH_QUIET_MAX       before each route, wait until processes outside the benchmark use at
#                         most this % of one core (default 25) ...
#   BENCH_QUIET_TIMEOUT   ... but no longer than this many seconds (default 120; 0 = never wait)
#   BENCH_SKIP_BUILD=1    use the existing release binary
#   IMS_BIN               binary to benchmark (default $CARGO_TARGET_DIR/release/ims)
#   BENCH_RESULTS         output markdown (default bench/results/production.md)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/../.." && pwd)"

PG_ADMIN_URL="${IMS_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BACKENDS="${BENCH_BACKENDS:-postgres sqlite}"
LINES="${BENCH_LINES:-10}"
DAYS="${BENCH_DAYS:-365}"
EVERY="${BENCH_REPORT_EVERY:-4}"
DURATION="${BENCH_DURATION:-20}"
WARMUP="${BENCH_WARMUP:-5}"
CONNS_LIST="${BENCH_CONNECTIONS:-1 8}"
THREADS="${BENCH_THREADS:-2}"
QUIET_MAX="${BENCH_QUIET_MAX:-25}"
QUIET_TIMEOUT="${BENCH_QUIET_TIMEOUT:-120}"
RESULTS_MD="${BENCH_RESULTS:-$ROOT/bench/results/production.md}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
IMS_BIN="${IMS_BIN:-$TARGET_DIR/release/ims}"
READY_TIMEOUT=60
STOP_TIMEOUT=15

for v in LINES DAYS EVERY DURATION WARMUP THREADS QUIET_MAX QUIET_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "error: $v must be a whole number (got '${!v}')" >&2; exit 2; }
done
((DURATION > 0 && THREADS > 0)) || { echo "error: BENCH_DURATION and BENCH_THREADS must be positive" >&2; exit 2; }
for c in $CONNS_LIST; do
  [[ "$c" =~ ^[0-9]+$ ]] && ((c > 0)) || { echo "error: BENCH_CONNECTIONS: '$c' is not a positive number" >&2; exit 2; }
done
for b in $BACKENDS; do
  [[ "$b" == postgres || "$b" == sqlite ]] || { echo "error: unknown backend '$b'" >&2; exit 2; }
done

BENCH_NAME=bench-prod
# Keep the logs of a failed run, not its databases (a year of SQLite history is ~350 MB).
trim_failed_work() { find "$WORK" -name 'ims.db*' -delete 2>/dev/null || true; }
# shellcheck source=bench/lib/harness.sh
source "$BENCH_DIR/../lib/harness.sh"

# --------------------------------------------------------------------------------------------
# Tools and the release build
# --------------------------------------------------------------------------------------------
tools=(wrk:wrk jq:jq curl:curl)
[[ " $BACKENDS " != *" postgres "* ]] || tools+=(psql:postgresql-client)
install_missing "${tools[@]}"

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  log "building ims (cargo build --release)"
  (cd "$ROOT" && cargo build --release --bin ims)
fi
[[ -x "$IMS_BIN" ]] || die "no ims binary at $IMS_BIN"
cp "$IMS_BIN" "$WORK/ims" # a private copy: a concurrent build cannot swap it mid-run
IMS_BIN="$WORK/ims"
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ "$GIT_REV" != unknown ]] && [[ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock migrations 2>/dev/null)" ]]; then
  GIT_REV="$GIT_REV (+ uncommitted changes)"
fi
[[ "${BENCH_SKIP_BUILD:-0}" != 1 ]] || GIT_REV="$GIT_REV — binary not rebuilt by this run (BENCH_SKIP_BUILD=1)"

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
now_ms() { echo $(($(date +%s%N) / 1000000)); }



forget() { # array-name pid
  local -n arr="$1"
  local kept=() p
  for p in "${arr[@]}"; do [[ "$p" == "$2" ]] || kept+=("$p"); done
  arr=("${kept[@]}")
}


# ims in a clean environment (server_env): the config rejects unknown IMS_* variables, and the
# developer's own settings must not leak in. The factory offset stays at its default (UTC), so
# "today" is `date -u +%F`.
run_ims() { # cwd VAR=value ... -- args
  local cwd="$1"; shift
  local envs=()
  while [[ "$1" != -- ]]; do envs+=("$1"); shift; done
  shift
  local args=()
  mapfile -d '' args < <(server_env "${envs[@]}")
  (cd "$cwd" && env -i "${args[@]}" "$IMS_BIN" "$@")
}


wait_quiet() { # until processes outside the benchmark use <= QUIET_MAX % of a core (bounded)
  ((QUIET_TIMEOUT > 0)) || return 0
  local start s0 s1 other
  start=$(now_ms)
  while :; do
    s0=$(cpu_snapshot); sleep 1; s1=$(cpu_snapshot)
    other=$(cpu_json "$s0" "$s1" 1 | jq -r '.cpu_other_pct + .cpu_postgres_pct + .cpu_wrk_pct')
    ((other <= QUIET_MAX)) && return 0
    if (($(now_ms) - start > QUIET_TIMEOUT * 1000)); then
      log "warning: other processes still use ${other}% CPU after ${QUIET_TIMEOUT}s; measuring anyway"
      return 0
    fi
    sleep 2
  done
}

login() { # email password -> access token
  local body
  body=$(curl -fsS --max-time 10 -H 'Content-Type: application/json' \
    --data "$(jq -cn --arg e "$1" --arg p "$2" '{email: $e, password: $p}')" "$BASE/auth/login") ||
    die "login as $1 failed"
  jq -er .access_token <<<"$body" || die "no access_token in the login response for $1"
}

# measure backend name path token: probe once (status, first-request time), then for each
# connection count warm up and measure. Leaves $WORK/<backend>-<name>-c<connections>.json.
measure() {
  local backend="$1" name="$2" path="$3" token="$4" code first conns
  read -r code first < <(curl -s -o "$WORK/$1-$2.probe" -w '%{http_code} %{time_total}\n' \
    --max-time 30 -H "Authorization: Bearer $token" "$BASE$path")
  for conns in $CONNS_LIST; do
    if [[ "$code" != 200 ]]; then
      jq -cn --arg c "$code" '{skipped: ("HTTP " + $c)}' >"$WORK/$1-$2-c$conns.json"
    else
      measure_at "$@" "$conns" "$first"
    fi
  done
  [[ "$code" == 200 ]] || log "$backend $name: $path answered HTTP $code; not measured"
}

measure_at() { # backend name path token connections first_request_seconds
  local backend="$1" name="$2" path="$3" token="$4" conns="$5" first="$6"
  local out="$WORK/$1-$2-c$5" threads wpid s0 s1 cpu='{}'
  threads=$((THREADS < conns ? THREADS : conns))
  wait_quiet
  if ((WARMUP > 0)); then
    BENCH_TOKEN="$token" timeout --kill-after=5 $((WARMUP + 30)) wrk -t"$threads" -c"$conns" \
      -d"${WARMUP}s" --timeout 10s -s "$BENCH_DIR/get.lua" "$BASE$path" >"$out.warmup" 2>&1 ||
      { cat "$out.warmup" >&2; die "wrk warm-up of $name failed"; }
  fi
  BENCH_TOKEN="$token" timeout --kill-after=5 $((DURATION + 30)) wrk -t"$threads" -c"$conns" \
    -d"${DURATION}s" --timeout 10s --latency -s "$BENCH_DIR/get.lua" "$BASE$path" >"$out.out" 2>&1 &
  wpid=$!
  BG_PIDS+=("$wpid")
  if ((DURATION >= 4)); then
    sleep 1; s0=$(cpu_snapshot)
    sleep $((DURATION - 2)); s1=$(cpu_snapshot)
    cpu=$(cpu_json "$s0" "$s1" $((DURATION - 2)))
  fi
  wait "$wpid" || { cat "$out.out" >&2; die "wrk ($name) failed"; }
  forget BG_PIDS "$wpid"
  kill -0 "$PID" 2>/dev/null || { tail -20 "$WORK/$backend.log" >&2; die "ims exited during $name"; }
  grep -q '^BENCH_JSON ' "$out.out" || { cat "$out.out" >&2; die "no results from wrk ($name)"; }
  grep '^BENCH_JSON ' "$out.out" | tail -1 | cut -d' ' -f2- |
    jq -c --argjson cpu "$cpu" --arg first "$first" --argjson bytes "$(wc -c <"$WORK/$backend-$name.probe")" \
      '. + $cpu + {first_ms: (($first | tonumber) * 1000), bytes: $bytes}' >"$out.json"
  log "$backend $name, $conns connections: $(jq -r '"\(.rps|floor) req/s, p50 \(.p50_ms) ms, p95 \(.p95_ms) ms, p99 \(.p99_ms) ms, non-2xx \(.err_status), other CPU \(.cpu_other_pct // "?")%"' "$out.json")"
}

# --------------------------------------------------------------------------------------------
# One backend: load the demo, serve, measure
# --------------------------------------------------------------------------------------------
STAMP="$(date +%Y%m%d%H%M%S)_$$"
PID=""
BASE=""

bench_backend() {
  local backend="$1" dir="$WORK/$1" url db="" port t0 t1 out manager_pw leader_pw
  mkdir -p "$dir"
  if [[ "$backend" == postgres ]]; then
    db="ims_bench_prod_${STAMP}"
    psql_admin -c "CREATE DATABASE \"$db\"" >/dev/null
    DATABASES+=("$db")
    url=$(pg_url_for "$db")
  else
    url="sqlite://$dir/ims.db"
  fi
  local vars=("IMS_DATA_DIR=$dir" "IMS_DATABASE_URL=$url")

  log "$backend: ims demo --lines $LINES --days $DAYS --report-every-minutes $EVERY"
  t0=$(now_ms)
  run_ims "$dir" "${vars[@]}" -- demo --lines "$LINES" --days "$DAYS" --report-every-minutes "$EVERY" \
    >"$dir/demo.out" 2>"$dir/demo.err" || { cat "$dir/demo.err" >&2; die "ims demo failed ($backend)"; }
  t1=$(now_ms)
  out="$dir/demo.out"
  manager_pw=$(awk '$2 == "manager@demo.factory" { print $3 }' "$out")
  leader_pw=$(awk '$2 == "leader@demo.factory" { print $3 }' "$out")
  [[ -n "$manager_pw" && -n "$leader_pw" ]] || { cat "$out" >&2; die "no demo passwords in the demo output"; }
  local reports stops work_orders size
  reports=$(grep -o '[0-9]* output reports' "$out" | cut -d' ' -f1)
  stops=$(grep -o '[0-9]* stops' "$out" | cut -d' ' -f1)
  work_orders=$(grep -o '[0-9]* work orders' "$out" | head -1 | cut -d' ' -f1)
  if [[ "$backend" == postgres ]]; then
    size=$(psql_admin -c "SELECT pg_database_size('$db')")
  else
    size=$(cat "$dir"/ims.db* 2>/dev/null | wc -c)
  fi
  jq -n --argjson ms $((t1 - t0)) --argjson r "$reports" --argjson s "$stops" --argjson w "$work_orders" \
    --argjson size "$size" '{load_ms: $ms, output_reports: $r, downtimes: $s, work_orders: $w, db_bytes: $size}' \
    >"$WORK/$backend-demo.json"
  log "$backend: loaded in $(((t1 - t0) / 1000)) s: $reports output reports, $stops stops, $work_orders work orders, $((size / 1048576)) MiB"

  port=$(free_port)
  BASE="http://127.0.0.1:$port"
  local args=()
  mapfile -d '' args < <(server_env "${vars[@]}" "IMS_LISTEN=127.0.0.1:$port")
  (cd "$dir" && exec env -i "${args[@]}" "$IMS_BIN" serve) >"$WORK/$backend.log" 2>&1 &
  PID=$!
  SERVER_PIDS+=("$PID")
  local deadline=$(($(now_ms) + READY_TIMEOUT * 1000))
  until curl -fsS -o /dev/null --max-time 1 "$BASE/readyz" 2>/dev/null; do
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/$backend.log" >&2; die "ims serve ($backend) exited"; }
    (($(now_ms) < deadline)) || die "ims serve ($backend) not ready within ${READY_TIMEOUT}s"
    sleep 0.05
  done

  local manager leader line today from
  manager=$(login manager@demo.factory "$manager_pw")
  leader=$(login leader@demo.factory "$leader_pw")
  line=$(curl -fsS --max-time 10 -H "Authorization: Bearer $manager" "$BASE/api/lines" | jq -er '.[0].id') ||
    die "GET /api/lines as the manager failed"
  today=$(date -u +%F)
  from=$(date -u -d "$today -29 days" +%F)
  KPI_LINE_PATH="/api/kpi/lines/$line?from=$from&to=$today&group=day"
  measure "$backend" kpi_line "$KPI_LINE_PATH" "$manager"
  measure "$backend" kpi_summary "/api/kpi/summary" "$manager"
  measure "$backend" my_tasks "/api/my/tasks" "$leader"
  # WARN/ERROR lines, by kind (the demo's paused line and late orders raise alerts, logged as WARN).
  { grep -E '"level":"(WARN|ERROR)"' "$WORK/$backend.log" || true; } |
    jq -rs '{warnings: (map("\(.level) \(.fields.kind // .fields.message)") | group_by(.)
             | map("\(.[0]) ×\(length)") | join(", ") | if . == "" then "none" else . end)}' \
    >"$WORK/$backend-log.json"

  stop_pid "$PID"; forget SERVER_PIDS "$PID"; PID=""
  if [[ -n "$db" ]]; then
    psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    forget DATABASES "$db"
  else
    rm -f "$dir"/ims.db*
  fi
}

for backend in $BACKENDS; do
  bench_backend "$backend"
done

# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
fmt_ms() { awk -v x="$1" 'BEGIN { if (x == "" || x == "null") print "–"; else if (x < 10) printf "%.2f ms", x; else printf "%.1f ms", x }'; }
field() { jq -r ".$2 // empty" "$WORK/$1.json" 2>/dev/null; }
target_of() { case "$1" in kpi_line | kpi_summary) echo 100 ;; my_tasks) echo 10 ;; esac; }
verdict() { # result-file route -> PASS / FAIL / not measured
  local p95 skipped
  skipped=$(field "$1" skipped)
  [[ -z "$skipped" ]] || { echo "not measured ($skipped)"; return; }
  p95=$(field "$1" p95_ms)
  if awk -v p="$p95" -v t="$(target_of "$2")" 'BEGIN { exit !(p < t) }'; then echo PASS; else echo FAIL; fi
}
describe() {
  case "$1" in
    kpi_line) echo "GET /api/kpi/lines/{id}?from=…&to=…&group=day (one line, 30 days; MANAGER)" ;;
    kpi_summary) echo "GET /api/kpi/summary (every line today, orders at risk; MANAGER)" ;;
    my_tasks) echo "GET /api/my/tasks (leader of all $LINES lines)" ;;
  esac
}

mkdir -p "$(dirname "$RESULTS_MD")"
{
  echo "# Production dashboards — latest run"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), revision $GIT_REV, $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), wrk with $(echo "$CONNS_LIST" | sed 's/ / and /g') connections (at most $THREADS threads), ${WARMUP} s warm-up + ${DURATION} s measured per route. Data: \`ims demo --lines $LINES --days $DAYS --report-every-minutes $EVERY\`. Produced by \`bench/production/run.sh\`; method in bench/README.md."
  echo
  echo "| backend | demo load | output reports | stops | work orders | database size |"
  echo "|---|---:|---:|---:|---:|---:|"
  for b in $BACKENDS; do
    echo "| $b | $(jq -r '"\(.load_ms / 1000 | . * 10 | floor / 10) s"' "$WORK/$b-demo.json") | $(field "$b-demo" output_reports) | $(field "$b-demo" downtimes) | $(field "$b-demo" work_orders) | $(jq -r '"\(.db_bytes / 1048576 | floor) MiB"' "$WORK/$b-demo.json") |"
  done
  echo
  echo "| backend | route | connections | req/s | p50 | p95 | p99 | max | first request | body | target (p95) | CPU % of a core: ims / postgres / wrk / other |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
  for b in $BACKENDS; do
    for n in kpi_line kpi_summary my_tasks; do
      for c in $CONNS_LIST; do
        f="$b-$n-c$c"
        if [[ -n "$(field "$f" skipped)" ]]; then
          echo "| $b | $(describe "$n") | $c | – | – | – | – | – | – | – | < $(target_of "$n") ms: $(verdict "$f" "$n") | – |"
          continue
        fi
        errors=$(jq -r '.err_status + .err_connect + .err_read + .err_write + .err_timeout' "$WORK/$f.json")
        echo "| $b | $(describe "$n") | $c | $(jq -r '.rps | floor' "$WORK/$f.json") | $(fmt_ms "$(field "$f" p50_ms)") | $(fmt_ms "$(field "$f" p95_ms)") | $(fmt_ms "$(field "$f" p99_ms)") | $(fmt_ms "$(field "$f" max_ms)") | $(fmt_ms "$(field "$f" first_ms)") | $(($(field "$f" bytes) / 1024)) KiB | < $(target_of "$n") ms: $(verdict "$f" "$n")$( ((errors == 0)) || echo ", $errors errors") | $(jq -r '"\(.cpu_ims_pct // "?") / \(.cpu_postgres_pct // "?") / \(.cpu_wrk_pct // "?") / \(.cpu_other_pct // "?")"' "$WORK/$f.json") |"
      done
    done
  done
  echo
  echo "The targets are for PostgreSQL; SQLite is shown against the same figures for comparison. \"first request\" is the single request made before the warm-up (cold caches). WARN/ERROR lines in the server logs: $(for b in $BACKENDS; do printf '%s: %s. ' "$b" "$(field "$b-log" warnings)"; done)"
} >"$RESULTS_MD"

echo
cat "$RESULTS_MD"
echo "(written to ${RESULTS_MD#"$ROOT"/})"
