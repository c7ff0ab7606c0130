#!/usr/bin/env bash
# IMS soak test: a fixed request rate for a long time, watching errors, latency and memory.
#
# Starts a release `ims serve` on a fresh PostgreSQL database loaded with `ims demo` (its line
# leader has tasks today), logs in as the demo ADMIN and LINE_LEADER, and drives a mix of
# GET /auth/me (admin) and GET /api/my/tasks (leader) at SOAK_RATE requests/s with wrk, paced by the
# Lua delay() hook (bench/wrk/soak.lua). Access tokens live 15 minutes, and wrk cannot change its
# headers mid-run, so the soak runs as consecutive wrk segments of at most SOAK_SEGMENT seconds,
# each with tokens fetched (a fresh login) shortly before it starts; the gap between two segments
# is measured and must stay under 1 s. Every SOAK_SAMPLE seconds VmRSS of the server is sampled
# into a CSV. Writes a markdown report (SOAK_RESULTS), prints it and a PASS/FAIL line per condition;
# exits 1 when any fails:
#   - non-2xx responses, socket errors and timeouts: 0
#   - achieved rate ≥ SOAK_MIN_RATE_PCT % of SOAK_RATE (the soak ran at the intended load)
#   - RSS at the end ≤ (100 + SOAK_MAX_GROWTH) % of the warm baseline (RSS after SOAK_WARM s)
#   - WARN/ERROR lines in the server log: 0, not counting the demo's business alerts (target
#     ims::alerts: without an SNS topic, alerts are published to the log at WARN; counted apart)
#   - every gap between two wrk segments < 1 s
#
# Everything it starts is stopped and the database it creates is dropped on exit, whatever the
# exit path; every phase is bounded in time. Logs are kept in the temp dir when it fails.
#
# Environment (all optional):
#   SOAK_RATE            target requests/s, both routes together (default 800)
#   SOAK_CONNECTIONS     wrk connections (default 32; a multiple of SOAK_THREADS)
#   SOAK_THREADS         wrk threads (default 2)
#   SOAK_DURATION        seconds of load (default 600)
#   SOAK_SEGMENT         longest wrk segment, seconds (default 300; at most 840, the token lifetime
#                        of 900 s minus the time the next tokens are fetched ahead)
#   SOAK_LEADER_SHARE    % of requests to /api/my/tasks, the rest to /auth/me (default 50)
#   SOAK_PACING          schedule (default: send times spread evenly per wrk thread) or fixed
#                        (each connection waits CONNECTIONS*1000/RATE ms after each response)
#   SOAK_SAMPLE          seconds between two RSS samples (default 10)
#   SOAK_WARM            the warm baseline is the first RSS sample at or after this second (default 60)
#   SOAK_MAX_GROWTH      allowed RSS growth over the baseline at the end, % (default 10)
#   SOAK_MIN_RATE_PCT    least achieved rate, % of SOAK_RATE (default 95)
#   SOAK_WRK_TIMEOUT     wrk's request timeout (default 10s)
#   SOAK_QUIET_MAX       before the soak, wait until processes outside it use at most this % of
#                        one core (default 25) ...
#   SOAK_QUIET_TIMEOUT   ... but no longer than this many seconds (default 120; 0 = never wait)
#   SOAK_DEMO_LINES, SOAK_DEMO_DAYS   the demo (default 3 lines, 30 days of history)
#   SOAK_RESULTS         markdown report (default bench/results/soak.md)
#   SOAK_CSV             RSS samples (default: the report's path with -rss.csv instead of .md)
#   IMS_BENCH_PG_URL     admin URL used to create/drop the database
#                        (default postgres://postgres@127.0.0.1:5432/postgres)
#   BENCH_SKIP_BUILD=1   use the existing release binary
#   IMS_BIN              binary to run (default $CARGO_TARGET_DIR/release/ims)
#   BENCH_SERVER_ENV     extra "VAR=value ..." for the server
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"

PG_ADMIN_URL="${IMS_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
RATE="${SOAK_RATE:-800}"
CONNS="${SOAK_CONNECTIONS:-32}"
THREADS="${SOAK_THREADS:-2}"
DURATION="${SOAK_DURATION:-600}"
SEGMENT="${SOAK_SEGMENT:-300}"
LEADER_SHARE="${SOAK_LEADER_SHARE:-50}"
PACING="${SOAK_PACING:-schedule}"
SAMPLE="${SOAK_SAMPLE:-10}"
WARM="${SOAK_WARM:-60}"
MAX_GROWTH="${SOAK_MAX_GROWTH:-10}"
MIN_RATE_PCT="${SOAK_MIN_RATE_PCT:-95}"
WRK_TIMEOUT="${SOAK_WRK_TIMEOUT:-10s}"
QUIET_MAX="${SOAK_QUIET_MAX:-25}"
QUIET_TIMEOUT="${SOAK_QUIET_TIMEOUT:-120}"
DEMO_LINES="${SOAK_DEMO_LINES:-3}"
DEMO_DAYS="${SOAK_DEMO_DAYS:-30}"
RESULTS_MD="${SOAK_RESULTS:-$BENCH_DIR/results/soak.md}"
RSS_CSV="${SOAK_CSV:-${RESULTS_MD%.md}-rss.csv}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
IMS_BIN="${IMS_BIN:-$TARGET_DIR/release/ims}"
READY_TIMEOUT=60 # seconds a server may take to answer /readyz
STOP_TIMEOUT=15  # seconds a server may take to stop after SIGTERM
PREFETCH=15      # seconds before a segment ends that the next segment's tokens are fetched

for v in RATE CONNS THREADS DURATION SEGMENT LEADER_SHARE SAMPLE WARM MAX_GROWTH MIN_RATE_PCT DEMO_LINES DEMO_DAYS QUIET_MAX QUIET_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "error: $v must be a whole number (got '${!v}')" >&2; exit 2; }
done
((RATE > 0 && CONNS > 0 && THREADS > 0 && DURATION > 0 && SEGMENT > 0 && SAMPLE > 0)) ||
  { echo "error: rate, connections, threads, durations and the sample interval must be positive" >&2; exit 2; }
((CONNS % THREADS == 0)) ||
  { echo "error: SOAK_CONNECTIONS must be a multiple of SOAK_THREADS (wrk gives each thread CONNECTIONS/THREADS)" >&2; exit 2; }
((SEGMENT <= 900 - 4 * PREFETCH)) ||
  { echo "error: SOAK_SEGMENT must be at most $((900 - 4 * PREFETCH)) s: access tokens live 900 s" >&2; exit 2; }
((LEADER_SHARE <= 100)) || { echo "error: SOAK_LEADER_SHARE is a percentage" >&2; exit 2; }
[[ "$PACING" == schedule || "$PACING" == fixed ]] || { echo "error: SOAK_PACING must be schedule or fixed" >&2; exit 2; }

BENCH_NAME=soak
# shellcheck source=bench/lib/harness.sh
source "$BENCH_DIR/lib/harness.sh"

forget() { # array-name pid
  local -n arr="$1"
  local kept=() p
  for p in "${arr[@]}"; do [[ "$p" == "$2" ]] || kept+=("$p"); done
  arr=("${kept[@]}")
}

# --------------------------------------------------------------------------------------------
# Tools and the release build
# --------------------------------------------------------------------------------------------
install_missing wrk:wrk jq:jq curl:curl psql:postgresql-client

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  log "building ims (cargo build --release)"
  (cd "$ROOT" && cargo build --release --bin ims)
fi
[[ -x "$IMS_BIN" ]] || die "no ims binary at $IMS_BIN"
# A private copy: a concurrent `cargo build` cannot swap the binary during the soak.
cp "$IMS_BIN" "$WORK/ims"
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ "$GIT_REV" != unknown ]] && [[ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$ROOT" status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock migrations 2>/dev/null)" ]]; then
  GIT_REV="$GIT_REV (+ uncommitted changes in src/)"
fi
if [[ "${BENCH_SKIP_BUILD:-0}" == 1 ]]; then
  GIT_REV="$GIT_REV — binary not rebuilt by this run (BENCH_SKIP_BUILD=1, built $(date -u -r "$IMS_BIN" '+%Y-%m-%d %H:%M UTC')), it may be older"
fi
IMS_BIN="$WORK/ims"

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
now_ms() { echo $(($(date +%s%N) / 1000000)); }



# The server gets a clean environment: the config rejects unknown IMS_* variables (IMS_BENCH_PG_URL
# among them), and a developer's own IMS_* settings must not leak into the measurement.

run_ims() { # cwd VAR=value ... -- args: an ims one-shot command with the server environment,
  # at most 10 minutes
  local cwd="$1"; shift
  local envs=()
  while [[ "$1" != -- ]]; do envs+=("$1"); shift; done
  shift
  local args=()
  mapfile -d '' args < <(server_env "${envs[@]}")
  (cd "$cwd" && timeout --kill-after=10 600 env -i "${args[@]}" "$IMS_BIN" "$@")
}



server_alive() { # dies with the server's exit status when it is gone
  kill -0 "$PID" 2>/dev/null && return 0
  local status=0
  wait "$PID" || status=$?
  forget SERVER_PIDS "$PID"
  tail -20 "$WORK/server.log" >&2
  die "ims exited unexpectedly with status $status"
}

login() { # email password -> access token
  local body
  body=$(curl -fsS --max-time 20 -H 'Content-Type: application/json' \
    --data "$(jq -cn --arg e "$1" --arg p "$2" '{email: $e, password: $p}')" "$BASE/auth/login") ||
    die "login as $1 failed"
  jq -er .access_token <<<"$body" || die "no access_token in the login response for $1"
}

# --------------------------------------------------------------------------------------------
# The server: fresh PostgreSQL database with the demo factory, temp data dir
# --------------------------------------------------------------------------------------------
STAMP="$(date +%Y%m%d%H%M%S)_$$"
DB="ims_soak_${STAMP}"
psql_admin -c "CREATE DATABASE \"$DB\"" >/dev/null
DATABASES+=("$DB")
DB_URL="$(pg_url_for "$DB")"
DATA="$WORK/data"
mkdir -p "$DATA"
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
VARS=("IMS_LISTEN=127.0.0.1:$PORT" "IMS_DATA_DIR=$DATA" "IMS_DATABASE_URL=$DB_URL")

log "ims demo --lines $DEMO_LINES --days $DEMO_DAYS (database $DB)"
run_ims "$WORK" "${VARS[@]}" -- demo --lines "$DEMO_LINES" --days "$DEMO_DAYS" \
  >"$WORK/demo.out" 2>"$WORK/demo.err" || { cat "$WORK/demo.err" >&2; die "ims demo failed (or took over 10 minutes)"; }
ADMIN_PW=$(awk '$2 == "admin@demo.factory" { print $3 }' "$WORK/demo.out")
LEADER_PW=$(awk '$2 == "leader@demo.factory" { print $3 }' "$WORK/demo.out")
[[ -n "$ADMIN_PW" && -n "$LEADER_PW" ]] || { cat "$WORK/demo.out" >&2; die "no demo logins in the output of ims demo"; }
DEMO_SUMMARY=$(head -1 "$WORK/demo.out" | sed 's/\.$//')

log "starting ims serve on $BASE"
args=()
mapfile -d '' args < <(server_env "${VARS[@]}")
(cd "$WORK" && exec env -i "${args[@]}" "$IMS_BIN" serve) >"$WORK/server.log" 2>&1 &
PID=$!
SERVER_PIDS+=("$PID")
deadline=$(($(now_ms) + READY_TIMEOUT * 1000))
until curl -fsS -o /dev/null --max-time 1 "$BASE/readyz" 2>/dev/null; do
  server_alive
  (($(now_ms) < deadline)) || die "ims serve not ready within ${READY_TIMEOUT}s"
  sleep 0.05
done

ADMIN_TOKEN=$(login admin@demo.factory "$ADMIN_PW")
LEADER_TOKEN=$(login leader@demo.factory "$LEADER_PW")
curl -fsS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/auth/me" >/dev/null ||
  die "GET /auth/me as the demo admin failed"
TASKS=$(curl -fsS --max-time 10 -H "Authorization: Bearer $LEADER_TOKEN" "$BASE/api/my/tasks" | jq -er 'length') ||
  die "GET /api/my/tasks as the demo leader failed"
((TASKS > 0)) || die "the demo leader has no tasks today: /api/my/tasks would measure an empty list"
TASKS_BYTES=$(curl -fsS --max-time 10 -H "Authorization: Bearer $LEADER_TOKEN" "$BASE/api/my/tasks" | wc -c)
log "demo loaded: $DEMO_SUMMARY; the leader has $TASKS tasks today ($TASKS_BYTES bytes)"
sleep 1
START_RSS_KIB=$(vm_kib "$PID" VmRSS)

# --------------------------------------------------------------------------------------------
# The soak: RSS sampler in the background, wrk segments in the foreground
# --------------------------------------------------------------------------------------------
# First wait (bounded) until processes outside the soak use at most QUIET_MAX % of one core, so a
# build of someone else does not start out the soak.
if ((QUIET_TIMEOUT > 0)); then
  quiet_start=$(now_ms)
  while :; do
    s0=$(cpu_snapshot); sleep 1; s1=$(cpu_snapshot)
    other=$(cpu_json "$s0" "$s1" 1 | jq -r '.cpu_busy_pct - .cpu_ims_pct')
    ((other <= QUIET_MAX)) && break
    if (($(now_ms) - quiet_start > QUIET_TIMEOUT * 1000)); then
      log "warning: other processes still use ${other}% CPU after ${QUIET_TIMEOUT}s; starting anyway"
      break
    fi
    [[ -n "${quiet_warned:-}" ]] || log "other processes use ${other}% CPU; waiting up to ${QUIET_TIMEOUT}s for a quiet machine"
    quiet_warned=1
    sleep 2
  done
fi
# Fresh tokens for the first segment (the ones above may have aged during the wait for quiet).
NEXT_ADMIN=$(login admin@demo.factory "$ADMIN_PW")
NEXT_LEADER=$(login leader@demo.factory "$LEADER_PW")
mkdir -p "$(dirname "$RSS_CSV")"
echo "elapsed_s,vmrss_kib" >"$RSS_CSV"
SOAK_START_MS=$(now_ms)
(
  # Sample k at SOAK_START + k * SAMPLE seconds (no drift), until stopped or the server is gone.
  k=0
  while kill -0 "$PID" 2>/dev/null; do
    rss=$(vm_kib "$PID" VmRSS) || true
    [[ -n "$rss" ]] && echo "$((k * SAMPLE)),$rss" >>"$RSS_CSV"
    k=$((k + 1))
    wait_ms=$((SOAK_START_MS + k * SAMPLE * 1000 - $(now_ms)))
    ((wait_ms > 0)) && sleep "$(awk -v m="$wait_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  done
) &
SAMPLER=$!
BG_PIDS+=("$SAMPLER")

export SOAK_RATE="$RATE" SOAK_THREADS="$THREADS" SOAK_CONNECTIONS="$CONNS" \
  SOAK_LEADER_SHARE="$LEADER_SHARE" SOAK_PACING="$PACING"
# CPU use is sampled inside each segment, from 1 s after its start to 1 s before its end, while
# wrk is alive (a process that has exited takes its CPU time with it); the sums are in CPU_ACC.
CPU_ACC="0 0 0 0"
CPU_SECS=0
sleep_until() { # epoch ms
  local ms=$(($1 - $(now_ms)))
  ((ms > 0)) || return 0
  sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
}
remaining=$DURATION
seg=0
MAX_GAP_MS=0
LAST_END_MS=""
log "soak: ${DURATION}s at $RATE req/s ($LEADER_SHARE% /api/my/tasks), $CONNS connections, $THREADS threads, segments of ≤ ${SEGMENT}s, $PACING pacing"
while ((remaining > 0)); do
  seg=$((seg + 1))
  len=$((remaining < SEGMENT ? remaining : SEGMENT))
  remaining=$((remaining - len))
  out="$WORK/segment-$seg.out"
  SOAK_ADMIN_TOKEN="$NEXT_ADMIN" SOAK_LEADER_TOKEN="$NEXT_LEADER" timeout --kill-after=5 $((len + 60)) \
    wrk -t"$THREADS" -c"$CONNS" -d"${len}s" --timeout "$WRK_TIMEOUT" --latency \
    -s "$BENCH_DIR/wrk/soak.lua" "$BASE/auth/me" >"$out" 2>&1 &
  wpid=$!
  BG_PIDS+=("$wpid")
  seg_start=$(now_ms)
  if [[ -n "$LAST_END_MS" ]]; then
    gap=$((seg_start - LAST_END_MS))
    ((gap > MAX_GAP_MS)) && MAX_GAP_MS=$gap
  fi
  echo "$seg $len $(((seg_start - SOAK_START_MS) / 1000))" >>"$WORK/segments.txt"
  cpu_s0=""
  if ((len >= 4)); then
    sleep_until $((seg_start + 1000))
    cpu_s0=$(cpu_snapshot); cpu_t0=$(now_ms)
  fi
  if ((remaining > 0)); then
    # The next segment's tokens, fetched while this one runs (so the gap is only wrk's restart).
    ahead=$((len > PREFETCH + 5 ? len - PREFETCH : 1))
    sleep_until $((seg_start + ahead * 1000))
    NEXT_ADMIN=$(login admin@demo.factory "$ADMIN_PW")
    NEXT_LEADER=$(login leader@demo.factory "$LEADER_PW")
  fi
  if [[ -n "$cpu_s0" ]]; then
    sleep_until $((seg_start + (len - 1) * 1000))
    cpu_s1=$(cpu_snapshot)
    CPU_ACC=$(awk -v acc="$CPU_ACC" -v a="$cpu_s0" -v b="$cpu_s1" 'BEGIN {
      split(acc, c, " "); split(a, x, " "); split(b, y, " ")
      printf "%d %d %d %d", c[1] + y[1] - x[1], c[2] + y[2] - x[2], c[3] + y[3] - x[3], c[4] + y[4] - x[4] }')
    CPU_SECS=$(awk -v s="$CPU_SECS" -v ms=$(($(now_ms) - cpu_t0)) 'BEGIN { printf "%.3f", s + ms / 1000 }')
  fi
  wait "$wpid" || { cat "$out" >&2; die "wrk (segment $seg) failed"; }
  LAST_END_MS=$(now_ms)
  forget BG_PIDS "$wpid"
  server_alive
  grep -q '^BENCH_JSON ' "$out" || { cat "$out" >&2; die "no results from wrk (segment $seg)"; }
  grep '^BENCH_JSON ' "$out" | tail -1 | cut -d' ' -f2- >"$WORK/segment-$seg.json"
  grep '^SOAK_Q ' "$out" | tail -1 | cut -d' ' -f2- >"$WORK/segment-$seg.q"
  log "segment $seg (${len}s): $(jq -r '"\(.rps|floor) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, non-2xx \(.err_status), socket errors \(.err_connect + .err_read + .err_write), timeouts \(.err_timeout)"' "$WORK/segment-$seg.json")"
done
SOAK_END_MS=$(now_ms)
SOAK_WALL_S=$(awk -v ms=$((SOAK_END_MS - SOAK_START_MS)) 'BEGIN { printf "%.1f", ms / 1000 }')
if [[ "$CPU_SECS" != 0 ]]; then
  CPU=$(cpu_json "0 0 0 0" "$CPU_ACC" "$CPU_SECS")
else
  CPU='{"cpu_busy_pct":0,"cpu_ims_pct":"?","cpu_postgres_pct":"?","cpu_wrk_pct":"?","cpu_other_pct":0}'
fi

# Stop the sampler, then one last sample: the RSS right after the load.
stop_pid "$SAMPLER" 5; forget BG_PIDS "$SAMPLER"
FINAL_RSS_KIB=$(vm_kib "$PID" VmRSS)
HWM_KIB=$(vm_kib "$PID" VmHWM)
echo "$(awk -v ms=$(($(now_ms) - SOAK_START_MS)) 'BEGIN { printf "%.1f", ms / 1000 }'),$FINAL_RSS_KIB" >>"$RSS_CSV"

stop_pid "$PID"; forget SERVER_PIDS "$PID"
WARN_TOTAL=$(grep -c '"level":"\(WARN\|ERROR\)"' "$WORK/server.log" || true)
ALERTS=$({ grep '"level":"\(WARN\|ERROR\)"' "$WORK/server.log" || true; } | { grep -c '"target":"ims::alerts"' || true; })
WARN_OTHER=$((WARN_TOTAL - ALERTS))
# Distinct WARN/ERROR messages with their counts, for the report.
warn_kinds() { # filter: jq select expression
  { grep '"level":"\(WARN\|ERROR\)"' "$WORK/server.log" || true; } |
    jq -r "select($1) | \"\(.level) \(.target // \"?\"): \(.fields.message // \"?\")\(if .fields.kind then \" \(.fields.kind)\" else \"\" end)\(if .fields.error then \" (\(.fields.error))\" else \"\" end)\"" 2>/dev/null |
    sort | uniq -c | sort -rn | head -5 | awk '{ n = $1; $1 = ""; printf "%s%s× %s", (NR > 1 ? "; " : ""), n, substr($0, 2) }' || true
}
WARN_OTHER_KINDS=$(warn_kinds '.target != "ims::alerts"')
ALERT_KINDS=$(warn_kinds '.target == "ims::alerts"')

# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
jq -s '{
    requests: (map(.requests) | add), duration_s: (map(.duration_s) | add),
    err_connect: (map(.err_connect) | add), err_read: (map(.err_read) | add),
    err_write: (map(.err_write) | add), err_status: (map(.err_status) | add),
    err_timeout: (map(.err_timeout) | add), sent_admin: (map(.sent_admin) | add),
    sent_leader: (map(.sent_leader) | add), status_401: (map(.status_401) | add),
    status_403: (map(.status_403) | add), status_404: (map(.status_404) | add),
    status_429: (map(.status_429) | add), status_5xx: (map(.status_5xx) | add),
    status_other: (map(.status_other) | add), max_ms: (map(.max_ms) | max),
    pacing: (map(.pacing) | unique | join(","))
  } | . + {rps: (.requests / .duration_s)}' "$WORK"/segment-*.json >"$WORK/total.json"

# The whole soak's percentiles: each segment's quantiles weighted by its requests, merged.
merged_pct() { # percent...
  local s
  for s in $(seq 1 "$seg"); do
    awk -v n="$(jq -r .requests "$WORK/segment-$s.json")" '{
      prev = 0
      for (i = 1; i <= NF; i++) { split($i, kv, ":"); print kv[2], (kv[1] - prev) / 100 * n; prev = kv[1] }
    }' "$WORK/segment-$s.q"
  done | sort -g | awk -v ps="$*" '
    { v[NR] = $1; w[NR] = $2; total += $2 }
    END {
      n = split(ps, p, " ")
      for (j = 1; j <= n; j++) {
        cum = 0; target = p[j] / 100 * total
        for (i = 1; i <= NR; i++) { cum += w[i]; if (cum >= target - 1e-9) break }
        if (i > NR) i = NR
        printf "%s%.3f", (j > 1 ? " " : ""), v[i]
      }
      printf "\n"
    }'
}
read -r P50 P90 P99 P999 < <(merged_pct 50 90 99 99.9)

field() { jq -r ".$1" "$WORK/total.json"; }
TOTAL=$(field requests)
RPS=$(field rps)
NON2XX=$(field err_status)
SOCKET_ERRS=$(($(field err_connect) + $(field err_read) + $(field err_write)))
TIMEOUTS=$(field err_timeout)
WALL_RPS=$(awk -v n="$TOTAL" -v s="$SOAK_WALL_S" 'BEGIN { printf "%.1f", n / s }')

# RSS: the warm baseline is the first sample at or after WARM seconds (the final one if the soak
# was shorter).
BASELINE_LINE=$(awk -F, -v w="$WARM" 'NR > 1 && $1 >= w { print; exit }' "$RSS_CSV")
[[ -n "$BASELINE_LINE" ]] || BASELINE_LINE=$(tail -1 "$RSS_CSV")
BASELINE_AT=${BASELINE_LINE%%,*}
BASELINE_KIB=${BASELINE_LINE##*,}
MAX_RSS_KIB=$(awk -F, 'NR > 1 && $2 > m { m = $2 } END { print m }' "$RSS_CSV")
GROWTH=$(awk -v b="$BASELINE_KIB" -v f="$FINAL_RSS_KIB" 'BEGIN { printf "%.1f", (f - b) * 100 / b }')
SAMPLES=$(($(wc -l <"$RSS_CSV") - 1))
SHORT_NOTE=""
if ((DURATION < 2 * WARM)); then
  SHORT_NOTE=" (the soak is shorter than twice the warm-up: the growth figure says little)"
fi

pass() { if [[ "$1" == 1 ]]; then echo PASS; else echo FAIL; fi; }
ok_zero() { [[ "$1" == 0 ]] && echo 1 || echo 0; }
C_NON2XX=$(pass "$(ok_zero "$NON2XX")")
C_SOCKET=$(pass "$(ok_zero "$SOCKET_ERRS")")
C_TIMEOUT=$(pass "$(ok_zero "$TIMEOUTS")")
C_RATE=$(pass "$(awk -v a="$RPS" -v t="$RATE" -v p="$MIN_RATE_PCT" 'BEGIN { print (a >= t * p / 100) ? 1 : 0 }')")
C_RSS=$(pass "$(awk -v g="$GROWTH" -v m="$MAX_GROWTH" 'BEGIN { print (g <= m) ? 1 : 0 }')")
C_LOG=$(pass "$(ok_zero "$WARN_OTHER")")
C_GAP=$(pass "$( ((MAX_GAP_MS < 1000)) && echo 1 || echo 0)")
RATE_PCT=$(awk -v a="$RPS" -v t="$RATE" 'BEGIN { printf "%.1f", a * 100 / t }')

# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
fmt_ms() { awk -v x="$1" 'BEGIN { printf (x < 10 ? "%.2f ms" : "%.1f ms"), x }'; }
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_TOTAL=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
PG_VERSION=$(psql_admin -c 'SHOW server_version' 2>/dev/null || echo unknown)
WRK_VERSION=$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $1, $2 }')
CPU_OTHER=$(jq -r .cpu_other_pct <<<"$CPU")
DELAY_NOTE=$(awk -v c="$CONNS" -v r="$RATE" -v t="$THREADS" 'BEGIN { printf "each wrk thread sends every %.3f ms (%d connections per thread, so each connection about every %.1f ms)", t * 1000 / r, c / t, c * 1000 / r }')
[[ "$(field pacing)" == fixed ]] &&
  DELAY_NOTE=$(awk -v c="$CONNS" -v r="$RATE" 'BEGIN { printf "each connection waits %.1f ms after each response", c * 1000 / r }')
NON2XX_NOTE=$(jq -r '[(if .status_401 > 0 then "\(.status_401)× 401" else empty end),
  (if .status_403 > 0 then "\(.status_403)× 403" else empty end), (if .status_404 > 0 then "\(.status_404)× 404" else empty end),
  (if .status_429 > 0 then "\(.status_429)× 429" else empty end), (if .status_5xx > 0 then "\(.status_5xx)× 5xx" else empty end),
  (if .status_other > 0 then "\(.status_other)× other" else empty end)] | join(", ")' "$WORK/total.json")

GAP_TEXT="longest ${MAX_GAP_MS} ms"
if ((seg == 1)); then
  GAP_TEXT="one segment, no gap"
  SEGMENTS_NOTE="this soak fitted in one segment (no gap)"
else
  SEGMENTS_NOTE="$seg segments here, the longest gap between two (one wrk exiting → the next starting, results parsed in between) ${MAX_GAP_MS} ms"
fi

mkdir -p "$(dirname "$RESULTS_MD")"
{
  echo "# IMS soak test — ${DURATION} s at ${RATE} req/s"
  echo
  echo "| machine | |"
  echo "|---|---|"
  echo "| date | $(date -u '+%Y-%m-%d %H:%M:%S UTC') |"
  echo "| git rev | $GIT_REV |"
  echo "| nproc | $(nproc) |"
  echo "| CPU | $CPU_MODEL |"
  echo "| memory | $MEM_TOTAL |"
  echo "| kernel | $(uname -r) |"
  echo "| PostgreSQL | $PG_VERSION (127.0.0.1, same machine) |"
  echo "| load generator | $WRK_VERSION, $THREADS threads, $CONNS connections, same machine (wrk, PostgreSQL and ims share the $(nproc) cores) |"
  echo
  echo "Method: \`bench/soak.sh\`. A fresh PostgreSQL database loaded with \`ims demo --lines $DEMO_LINES --days $DEMO_DAYS\` ($DEMO_SUMMARY); \`ims serve\` (release, \`RUST_LOG=warn\`, JSON logs, everything else default). Load: ${LEADER_SHARE}% \`GET /api/my/tasks\` as the demo LINE_LEADER ($TASKS tasks today, $TASKS_BYTES bytes) and the rest \`GET /auth/me\` as the demo ADMIN, interleaved evenly, at a target of ${RATE} req/s paced by wrk's \`delay()\` hook (bench/wrk/soak.lua, $(field pacing) pacing: $DELAY_NOTE). Access tokens live 15 min, so the soak runs as consecutive wrk segments of at most ${SEGMENT} s, each with the tokens of a fresh login of both users made while the previous segment ran (${PREFETCH} s before its end; 1 s after its start when it is shorter than $((PREFETCH + 5)) s): $SEGMENTS_NOTE. Latency is wrk's (from writing a request to reading its response); the percentiles of the whole soak merge the segments' quantiles weighted by their requests. VmRSS of the server sampled every ${SAMPLE} s ($SAMPLES samples); the warm baseline is the sample at ${BASELINE_AT} s."
  echo
  echo "| | |"
  echo "|---|---:|"
  echo "| requests completed | $TOTAL (sent: $(field sent_admin) to /auth/me, $(field sent_leader) to /api/my/tasks) |"
  echo "| target rate | $RATE req/s |"
  echo "| achieved rate (during the wrk segments / over the wall time incl. gaps) | $(awk -v x="$RPS" 'BEGIN { printf "%.1f", x }') req/s (${RATE_PCT}%) / $WALL_RPS req/s |"
  echo "| latency p50 / p90 / p99 / p99.9 / max | $(fmt_ms "$P50") / $(fmt_ms "$P90") / $(fmt_ms "$P99") / $(fmt_ms "$P999") / $(fmt_ms "$(field max_ms)") |"
  echo "| non-2xx responses | $NON2XX${NON2XX_NOTE:+ ($NON2XX_NOTE)} |"
  echo "| socket errors (connect / read / write) | $SOCKET_ERRS ($(field err_connect) / $(field err_read) / $(field err_write)) |"
  echo "| timeouts (> $WRK_TIMEOUT) | $TIMEOUTS |"
  echo "| RSS before the load | $(mib "$START_RSS_KIB") |"
  echo "| RSS warm baseline (at ${BASELINE_AT} s) | $(mib "$BASELINE_KIB") |"
  echo "| RSS max (samples) / VmHWM | $(mib "$MAX_RSS_KIB") / $(mib "$HWM_KIB") |"
  echo "| RSS at the end | $(mib "$FINAL_RSS_KIB") |"
  echo "| RSS growth over the baseline | ${GROWTH}%${SHORT_NOTE} |"
  echo "| WARN/ERROR log lines (not counting alerts) | $WARN_OTHER${WARN_OTHER_KINDS:+: $WARN_OTHER_KINDS} |"
  echo "| alerts published to the log (WARN, target ims::alerts: the demo's business alerts) | $ALERTS${ALERT_KINDS:+: $ALERT_KINDS} |"
  echo "| CPU % of one core during the segments (without their first and last second): ims / postgres / wrk / other | $(jq -r '"\(.cpu_ims_pct) / \(.cpu_postgres_pct) / \(.cpu_wrk_pct) / \(.cpu_other_pct)"' <<<"$CPU") |"
  echo
  if ((CPU_OTHER > 25)); then
    echo "**Disturbed run:** processes outside the soak used ${CPU_OTHER}% of a core on average (of $(nproc)00%)."
    echo
  fi
  echo "| segment | starts at | seconds | requests | req/s | p50 | p99 | max | non-2xx | socket errors | timeouts |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  while read -r s l at; do
    jq -r --arg s "$s" --arg at "$at" '"| \($s) | \($at) s | \(.duration_s | . * 10 | round / 10) | \(.requests) | \(.rps | . * 10 | round / 10) | \(.p50_ms) ms | \(.p99_ms) ms | \(.max_ms) ms | \(.err_status) | \(.err_connect + .err_read + .err_write) | \(.err_timeout) |"' "$WORK/segment-$s.json"
  done <"$WORK/segments.txt"
  echo
  echo "RSS samples (seconds: MiB): $(awk -F, 'NR > 1 { printf "%s%s: %.1f", (NR > 2 ? ", " : ""), $1, $2 / 1024 }' "$RSS_CSV") (CSV: \`$RSS_CSV\`)."
  echo
  echo "Conditions:"
  echo
  echo "- $C_NON2XX: non-2xx responses = 0 ($NON2XX)"
  echo "- $C_SOCKET: socket errors = 0 ($SOCKET_ERRS)"
  echo "- $C_TIMEOUT: timeouts = 0 ($TIMEOUTS)"
  echo "- $C_RATE: achieved rate ≥ ${MIN_RATE_PCT}% of the target ($(awk -v x="$RPS" 'BEGIN { printf "%.1f", x }') of $RATE req/s = ${RATE_PCT}%)"
  echo "- $C_RSS: RSS growth over the warm baseline ≤ ${MAX_GROWTH}% (${GROWTH}%: $(mib "$BASELINE_KIB") → $(mib "$FINAL_RSS_KIB"))"
  echo "- $C_LOG: WARN/ERROR log lines = 0, alerts not counted ($WARN_OTHER; $ALERTS alerts)"
  echo "- $C_GAP: every gap between two wrk segments < 1 s ($GAP_TEXT)"
} >"$RESULTS_MD"

echo
cat "$RESULTS_MD"
echo
echo "$C_NON2XX non-2xx responses = 0 ($NON2XX)"
echo "$C_SOCKET socket errors = 0 ($SOCKET_ERRS)"
echo "$C_TIMEOUT timeouts = 0 ($TIMEOUTS)"
echo "$C_RATE achieved rate >= ${MIN_RATE_PCT}% of $RATE req/s (${RATE_PCT}%)"
echo "$C_RSS RSS growth <= ${MAX_GROWTH}% (${GROWTH}%)"
echo "$C_LOG WARN/ERROR log lines = 0 ($WARN_OTHER, plus $ALERTS alerts)"
echo "$C_GAP segment gaps < 1 s ($GAP_TEXT)"
echo "(written to ${RESULTS_MD#"$ROOT"/}; RSS samples in ${RSS_CSV#"$ROOT"/})"
for c in "$C_NON2XX" "$C_SOCKET" "$C_TIMEOUT" "$C_RATE" "$C_RSS" "$C_LOG" "$C_GAP"; do
  [[ "$c" == PASS ]] || exit 1
done
