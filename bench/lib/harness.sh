# shellcheck shell=bash
# What bench/run.sh, bench/soak.sh and bench/production/run.sh share: logging, stopping what the
# script started, and the EXIT trap that stops its servers and load generators, drops the databases
# it created and removes its work directory (kept, with the logs, when the run failed).
#
# Set before sourcing: BENCH_NAME (log prefix and work-directory name), PG_ADMIN_URL and
# STOP_TIMEOUT. Record what you start in SERVER_PIDS / BG_PIDS and what you create in DATABASES.
# Also: install_missing (tools by apt), free_port, pg_url_for (the admin URL with another
# database), server_env (the server's clean environment from BENCH_SERVER_ENV), vm_kib, and the
# CPU accounting cpu_snapshot / cpu_json. Define trim_failed_work() to delete bulky files from a failed run's work directory.

log() { printf '[%s %(%H:%M:%S)T] %s\n' "$BENCH_NAME" -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ims-$BENCH_NAME.XXXXXX")"
declare -a SERVER_PIDS=() BG_PIDS=() DATABASES=()

stop_pid() { # pid timeout: SIGTERM, wait, then SIGKILL. Only for processes we started.
  local pid="$1" timeout="${2:-$STOP_TIMEOUT}" i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "pid $pid did not stop within ${timeout}s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

install_missing() { # command:package ... -> installs, with apt, the packages of missing commands
  local pair need=() sudo=()
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}"); done
  ((${#need[@]})) || return 0
  log "installing ${need[*]} with apt"
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
}

vm_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; } # pid field

# CPU accounting, in clock ticks: "machine_busy ims postgres wrk" (ims = the benchmarked server's
# pid in $PID; postgres and wrk = every process of that name). Whatever is left of machine_busy is
# "other": processes that are not part of the benchmark (builds, tests of other sessions...).
cpu_snapshot() {
  local busy
  busy=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat)
  # cat, not awk, opens the files, and its complaints are ignored: processes come and go while we read.
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v busy="$busy" -v ims="${PID:-0}" '
    {
      comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\)[^)]*$/, "", comm)
      rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
      t = f[12] + f[13]
      if ($1 == ims) i += t; else if (comm == "postgres") p += t; else if (comm == "wrk") w += t
    }
    END { printf "%d %d %d %d\n", busy, i, p, w }'
}
CLK_TCK=$(getconf CLK_TCK)

cpu_json() { # "snapshot0" "snapshot1" seconds -> {"cpu_ims_pct":…,…} (100 = one core)
  awk -v a="$1" -v b="$2" -v s="$3" -v hz="$CLK_TCK" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    f = 100 / hz / s
    busy = (y[1] - x[1]) * f; i = (y[2] - x[2]) * f; p = (y[3] - x[3]) * f; w = (y[4] - x[4]) * f
    o = busy - i - p - w; if (o < 0) o = 0
    printf "{\"cpu_busy_pct\":%.0f,\"cpu_ims_pct\":%.0f,\"cpu_postgres_pct\":%.0f,\"cpu_wrk_pct\":%.0f,\"cpu_other_pct\":%.0f}", busy, i, p, w, o
  }'
}

free_port() { # a port nobody listens on (nothing answers a connect on 127.0.0.1)
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

pg_url_for() { # the admin URL with its database name replaced
  local base="${PG_ADMIN_URL%%\?*}" query=""
  [[ "$PG_ADMIN_URL" == *\?* ]] && query="?${PG_ADMIN_URL#*\?}"
  echo "${base%/*}/$1$query"
}

server_env() { # extra VAR=value ... -> env -i argument list on stdout, NUL-separated
  printf '%s\0' "PATH=$PATH" "HOME=${HOME:-/root}" "LANG=C.UTF-8" \
    "IMS_LOG_FORMAT=json" "RUST_LOG=warn" "$@"
  local extra
  # shellcheck disable=SC2086
  for extra in ${BENCH_SERVER_ENV:-}; do printf '%s\0' "$extra"; done
}

psql_admin() { psql "$PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

cleanup() {
  local rc=$? pid db
  trap - EXIT INT TERM
  for pid in "${BG_PIDS[@]}"; do stop_pid "$pid" 5; done
  for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
  for db in "${DATABASES[@]}"; do
    psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
      log "warning: could not drop database $db"
  done
  if ((rc != 0)) && [[ -d "$WORK" ]]; then
    if declare -F trim_failed_work >/dev/null; then trim_failed_work; fi
    log "failed (exit $rc); logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
